//! A staged artifact: its version, the majority of regions that hold its bytes (the
//! only regions that serve it), and the metadata a majority of them holds. Downloads
//! are in `download`.

use std::path::PathBuf;
use std::sync::Arc;

use semver::Version;
use tokio::sync::OnceCell;

use crate::storage::{RegionStore, StorageError};

use super::census::{Answer, Census, Content, Location, Majority, Verdict};
use super::error::Error;
use crate::checksum::Checksum;

use super::metadata::{self, usable_filename, Metadata};
use super::names::{artifact_key, metadata_key};
use super::progress::ProgressHandle;
use super::session::Session;

/// How a download was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// What was written has the checksum the object carries (see `crate::checksum`:
    /// our recorded CRC-64/NVME, the server's own CRC, else the MD5).
    Checked(Checksum),
    /// The object carries no checksum (a multipart upload without our record or a
    /// server CRC, KMS without either): the size matched.
    SizeOnly(u64),
}

/// What a download did.
#[derive(Debug, Clone)]
pub struct Download {
    pub key: String,
    /// The region that served the first bytes.
    pub region: String,
    /// Every region that served bytes, in order (more than one when a region failed
    /// mid-body, or served damaged bytes).
    pub regions: Vec<String>,
    /// The file written, for downloads to a path or folder.
    pub path: Option<PathBuf>,
    pub bytes: u64,
    pub verification: Verification,
}

/// One version of one project; created by `Session::get`.
#[derive(Debug)]
pub struct Artifact {
    session: Session,
    project: String,
    version: Version,
    key: String,
    majority: OnceCell<Majority>,
    metadata: OnceCell<Metadata>,
    /// Told of a download's bytes as they arrive.
    progress: Option<ProgressHandle>,
}

impl Session {
    /// The artifact of `project` at `version`, or at the quorum latest version.
    pub async fn get(&self, project: &str, version: Option<&Version>) -> Result<Artifact, Error> {
        super::names::validate_project_name(project)?;
        let version = match version {
            Some(v) => v.clone(),
            None => super::latest::read_latest(self, project).await?.version,
        };
        let prefix = &self.ready_configuration().await?.bucket_key_prefix;
        Ok(Artifact {
            session: self.clone(),
            project: project.to_string(),
            key: artifact_key(prefix, project, &version),
            version,
            majority: OnceCell::new(),
            metadata: OnceCell::new(),
            progress: None,
        })
    }
}

impl Artifact {
    /// Downloads of this artifact tell `progress` of their bytes.
    pub fn with_progress(mut self, progress: ProgressHandle) -> Self {
        self.progress = Some(progress);
        self
    }

    pub(super) fn progress(&self) -> Option<&ProgressHandle> {
        self.progress.as_ref()
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    pub fn version(&self) -> &Version {
        &self.version
    }

    /// The S3 key of the artifact object (the same in every region).
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn metadata_key(&self) -> String {
        metadata_key(&self.key)
    }

    pub(crate) fn session(&self) -> &Session {
        &self.session
    }

    /// The regions that hold the artifact's bytes, decided once per `Artifact` by the
    /// majority rule (`census`): present in more than half of all regions with the
    /// same bytes, else absent (`ArtifactNotFound { absent: true }`) when more than
    /// half say so, else `NoMajority`. A region with other bytes is logged and skipped.
    pub async fn majority(&self) -> Result<&Majority, Error> {
        self.majority
            .get_or_try_init(|| async {
                let census = Census::take(&self.session, &self.key, false).await;
                let verdict = census.verdict();
                census.warn_strays(&verdict);
                match verdict {
                    Verdict::Present(majority) => Ok(majority),
                    Verdict::Absent { .. } => Err(Error::ArtifactNotFound {
                        project: self.project.clone(),
                        version: self.version.to_string(),
                        absent: true,
                        reasons: census
                            .answers
                            .iter()
                            .filter_map(|a| match a {
                                Answer::Absent { region, reason } => {
                                    Some(format!("{region}: {reason}"))
                                }
                                _ => None,
                            })
                            .collect(),
                    }),
                    other => {
                        let conflict = matches!(other, Verdict::Conflict { .. });
                        let detail = other.explain();
                        tracing::warn!(key = %self.key, "cannot say whether {}@{} exists: {detail}", self.project, self.version);
                        Err(Error::NoMajority {
                            project: self.project.clone(),
                            version: self.version.to_string(),
                            conflict,
                            detail,
                        })
                    }
                }
            })
            .await
    }

    /// The metadata a majority holds, among the regions that hold the artifact's bytes
    /// (a racing loser's or a failed stage's metadata object never wins): each holder
    /// is asked for the metadata object's `HeadObject`, and the content more than half
    /// of all regions hold is read; "no such key" (or the 403 of a reader without
    /// `s3:ListBucket`, since the region holds the artifact) held by such a majority
    /// means no metadata. When fewer answer but all that do agree, their answer
    /// stands; holders that disagree with no majority are an error.
    pub async fn metadata(&self) -> Result<&Metadata, Error> {
        self.metadata
            .get_or_try_init(|| async {
                let key = self.metadata_key();
                let majority = self.majority().await?;
                let mut holders = majority.group.locations.clone();
                let mut heads = self.metadata_heads(&holders, &key).await;
                let disagree = heads
                    .iter()
                    .filter_map(|(_, answer)| answer.as_ref().ok())
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
                    > 1;
                if disagree {
                    // The census did not wait for every region: the others that hold
                    // the same bytes have their say too.
                    let others = self.other_holders(majority).await;
                    let offset = holders.len();
                    let more = self.metadata_heads(&others, &key).await;
                    heads.extend(more.into_iter().map(|(i, answer)| (i + offset, answer)));
                    holders.extend(others);
                }
                let mut reasons = Vec::new();
                let mut groups: Vec<(Option<Content>, Vec<&Location>)> = Vec::new();
                for (index, answer) in heads {
                    let location = &holders[index];
                    match answer {
                        Ok(content) => match groups.iter_mut().find(|(c, _)| *c == content) {
                            Some((_, locations)) => locations.push(location),
                            None => groups.push((content, vec![location])),
                        },
                        Err(why) => {
                            tracing::warn!(region = %location.region, "failed to head the metadata: {why}");
                            reasons.push(format!("{}: {why}", location.region));
                        }
                    }
                }
                let needed = super::census::majority(self.session.regions().len());
                let chosen = match groups.iter().position(|(_, l)| l.len() >= needed) {
                    Some(index) => Some(index),
                    None if groups.len() == 1 => Some(0),
                    None => None,
                };
                let Some(index) = chosen else {
                    if groups.is_empty() {
                        return Err(Error::NoRegionsAvailable {
                            regions: self.session.regions(),
                            reasons,
                            denied: false,
                        });
                    }
                    let seen: Vec<String> = groups
                        .iter()
                        .map(|(content, locations)| {
                            let regions: Vec<&str> =
                                locations.iter().map(|l| l.region.as_str()).collect();
                            match content {
                                Some(content) => format!("{} hold {content}", regions.join(", ")),
                                None => format!("{} hold none", regions.join(", ")),
                            }
                        })
                        .collect();
                    return Err(Error::NoMajority {
                        project: self.project.clone(),
                        version: self.version.to_string(),
                        conflict: true,
                        detail: format!(
                            "the regions holding it hold different metadata and none is held by {needed}: {}",
                            seen.join("; ")
                        ),
                    });
                };
                let (content, locations) = &groups[index];
                if content.is_none() {
                    return Ok(Metadata::new());
                }
                for location in locations {
                    let (region, bucket) = (&location.region, &location.bucket);
                    let Some(store) = self.store(region) else {
                        continue;
                    };
                    match metadata::read_bounded(store.as_ref(), bucket, &key).await {
                        Ok(bytes) => {
                            return metadata::decode(
                                &format!("s3://{bucket}/{key} in {region}"),
                                &bytes,
                            )
                        }
                        Err(e) => {
                            tracing::warn!(region, "failed to get metadata: {e}");
                            reasons.push(format!("{region}: {e}"));
                        }
                    }
                }
                Err(Error::NoRegionsAvailable {
                    regions: self.session.regions(),
                    reasons,
                    denied: false,
                })
            })
            .await
    }

    /// Each location's answer for the metadata object (`None`: there is none), by the
    /// location's index in `locations`.
    async fn metadata_heads(
        &self,
        locations: &[Location],
        key: &str,
    ) -> Vec<(usize, Result<Option<Content>, StorageError>)> {
        let asked = locations
            .iter()
            .enumerate()
            .map(|(index, location)| async move {
                let answer = match self.store(&location.region) {
                    None => Err(StorageError::other("not a region of this session")),
                    Some(store) => match store.head_object(&location.bucket, key).await {
                        Ok(info) => Ok(Some(Content::of(&info))),
                        Err(e) if e.is_not_found() || e.is_access_denied() => Ok(None),
                        Err(e) => Err(e),
                    },
                };
                (index, answer)
            });
        futures::future::join_all(asked).await
    }

    /// The regions the census did not wait for that hold the majority's bytes.
    async fn other_holders(&self, majority: &Majority) -> Vec<Location> {
        let asked = majority.not_asked.iter().map(|region| async move {
            let store = self.store(region)?;
            let bucket = self.session.bucket(store.as_ref()).await.ok()?;
            let info = store.head_object(&bucket, &self.key).await.ok()?;
            (Content::of(&info) == majority.group.content).then(|| Location {
                region: region.clone(),
                bucket,
                key: self.key.clone(),
                info,
            })
        });
        futures::future::join_all(asked)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// The first region, in session order, of the majority that holds the artifact.
    pub async fn locate(&self) -> Result<Location, Error> {
        Ok(self.majority().await?.first().clone())
    }

    /// The session's store of `region`.
    pub(crate) fn store(&self, region: &str) -> Option<Arc<dyn RegionStore>> {
        self.session
            .stores()
            .iter()
            .find(|s| s.region() == region)
            .cloned()
    }

    /// The file name a download into a folder uses: the saved file name when it is a
    /// usable one, else `{project}@{version}`.
    pub async fn file_name(&self, use_saved_name: bool) -> Result<String, Error> {
        if use_saved_name {
            if let Some(name) = usable_filename(self.metadata().await?) {
                return Ok(name.to_string());
            }
        }
        Ok(format!("{}@{}", self.project, self.version))
    }
}
