//! A staged version as the mount pins it: the size, ETag and time of the copy that a
//! majority of regions hold (see `protocol::census`), for the life of the mount, and its
//! metadata read from that majority. Every later ranged read goes only to the regions of
//! that majority and asks each for its own copy's ETag (`If-Match`: one content may
//! have several ETags), so the kernel may cache the file's pages safely and a region
//! holding other bytes is never served.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use semver::Version;

use crate::protocol::metadata::{usable_filename, Metadata};
use crate::protocol::{Error as ProtocolError, Session};
use crate::storage::RegionStore;

use super::error::{FsError, FsResult};

#[derive(Debug, Clone)]
pub struct PinnedVersion {
    pub project: String,
    pub version: Version,
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    /// The MD5 when it can be known without reading (see `ObjectInfo::known_md5`).
    pub md5: Option<String>,
    pub mtime: SystemTime,
    /// The first region of the majority (in session order), and its bucket.
    pub region: String,
    pub bucket: String,
    /// Every region of the majority, in session order (`region` first), each with its
    /// own copy's ETag: the same bytes may carry different ETags (sent in one request,
    /// or in parts of some size). Empty when the version was restored from the disk
    /// cache's record without asking the regions: then any region may serve, the pinned
    /// one first, each asked for the pinned ETag.
    pub holders: Vec<Holder>,
    pub metadata: Metadata,
    /// Why the metadata was not read, when its object was larger than readers accept:
    /// its keys cannot be known, so `getxattr` of any `user.` name answers E2BIG with
    /// this reason rather than ENODATA ("no such attribute" would be a wrong answer).
    pub metadata_withheld: Option<String>,
    /// The saved file name when it is a usable one, else `{project}@{version}`.
    pub file_name: String,
    /// Regions whose bytes failed the whole-file check: asked last from then on.
    pub suspects: Suspects,
}

/// A region of the majority and its copy's ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub region: String,
    pub etag: Option<String>,
}

/// The regions that served bytes of a pinned object that failed their MD5 (or whose
/// share of such bytes cannot be told apart from the others'). The pinned ETag cannot
/// catch a region whose body is damaged in transit or at rest, so the next open goes to
/// the rest of the majority first; a suspect is still asked when no other can serve.
#[derive(Debug, Clone, Default)]
pub struct Suspects(Arc<Mutex<BTreeSet<String>>>);

impl Suspects {
    pub fn add(&self, regions: &[String]) {
        if let Ok(mut suspects) = self.0.lock() {
            suspects.extend(regions.iter().cloned());
        }
    }

    pub fn contains(&self, region: &str) -> bool {
        self.0
            .lock()
            .is_ok_and(|suspects| suspects.contains(region))
    }
}

impl PinnedVersion {
    /// Looks the version up: `HeadObject` in every region, decided by the majority
    /// rule, then its metadata from the majority.
    pub async fn resolve(session: &Session, project: &str, version: &Version) -> FsResult<Self> {
        let artifact = session.get(project, Some(version)).await?;
        let majority = artifact.majority().await?;
        let holders = majority
            .group
            .locations
            .iter()
            .map(|l| Holder {
                region: l.region.clone(),
                etag: l.info.etag.clone(),
            })
            .collect();
        let location = majority.first().clone();
        let mut metadata_withheld = None;
        let metadata = match artifact.metadata().await {
            Ok(metadata) => metadata.clone(),
            // Whoever wrote that object, the artifact's own bytes are checked apart
            // from it: serve them, under `P@V` and with no attributes, rather than hide
            // the version. `startifact --info` reports the object's fault.
            Err(e @ ProtocolError::BadMetadata { .. }) => {
                tracing::warn!("{e}: {project}@{version} is shown without metadata");
                Metadata::new()
            }
            Err(e @ ProtocolError::OversizedMetadata { .. }) => {
                tracing::warn!(
                    "{e}: {project}@{version} is shown under its default name, and its \
                     attributes answer E2BIG"
                );
                metadata_withheld = Some(e.to_string());
                Metadata::new()
            }
            Err(e) => return Err(e.into()),
        };
        let file_name = usable_filename(&metadata)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{project}@{version}"));
        Ok(PinnedVersion {
            project: project.to_string(),
            version: version.clone(),
            key: location.key,
            size: location.info.size,
            md5: location.info.known_md5(),
            etag: location.info.etag,
            mtime: location
                .info
                .last_modified
                .unwrap_or(SystemTime::UNIX_EPOCH),
            region: location.region,
            bucket: location.bucket,
            holders,
            metadata,
            metadata_withheld,
            file_name,
            suspects: Suspects::default(),
        })
    }

    /// The regions that may serve the pinned bytes: the majority's, in its order, then
    /// (when the MD5 is known) the regions the census did not wait for, each checked
    /// first (`etag_for`), the suspects last.
    pub fn regions_in_order(&self, session: &Session) -> Vec<Arc<dyn RegionStore>> {
        let stores = session.stores();
        let mut order: Vec<Arc<dyn RegionStore>> = if self.holders.is_empty() {
            stores
                .iter()
                .filter(|s| s.region() == self.region)
                .chain(stores.iter().filter(|s| s.region() != self.region))
                .cloned()
                .collect()
        } else {
            let holds = |region: &str| self.holders.iter().any(|h| h.region == region);
            let others = stores
                .iter()
                .filter(|s| self.md5.is_some() && !holds(s.region()));
            self.holders
                .iter()
                .filter_map(|holder| stores.iter().find(|s| s.region() == holder.region))
                .chain(others)
                .cloned()
                .collect()
        };
        // A stable sort: the trusted keep their order, then the suspects keep theirs.
        order.sort_by_key(|store| self.suspects.contains(store.region()));
        order
    }

    /// The ETag to ask `store`'s region for (`If-Match`): its own copy's, as the census
    /// saw it; for a region the census did not wait for, asked now (`HeadObject`) and
    /// taken only when its copy has the pinned size and MD5 (so a read still goes on
    /// when the regions it was pinned to are down); the pinned ETag for a version
    /// restored from the disk cache's record.
    pub async fn etag_for(
        &self,
        store: &dyn RegionStore,
        bucket: &str,
    ) -> Result<Option<String>, String> {
        if self.holders.is_empty() {
            return Ok(self.etag.clone());
        }
        if let Some(holder) = self.holders.iter().find(|h| h.region == store.region()) {
            return Ok(holder.etag.clone());
        }
        let info = store
            .head_object(bucket, &self.key)
            .await
            .map_err(|e| e.to_string())?;
        if info.size == self.size && info.known_md5().is_some() && info.known_md5() == self.md5 {
            Ok(info.etag)
        } else {
            Err(format!(
                "its copy is not the pinned one ({} bytes, MD5 {:?})",
                info.size,
                info.known_md5()
            ))
        }
    }

    /// Reads `range` of the pinned object from the regions of the majority, the pinned
    /// one first (each asked for its own copy's ETag).
    pub async fn fetch(&self, session: &Session, range: Range<u64>) -> FsResult<Bytes> {
        let mut reasons = Vec::new();
        for store in self.regions_in_order(session) {
            let region = store.region();
            let bucket = match session.bucket(store.as_ref()).await {
                Ok(bucket) => bucket,
                Err(e) => {
                    reasons.push(format!("{region}: {e}"));
                    continue;
                }
            };
            let etag = match self.etag_for(store.as_ref(), &bucket).await {
                Ok(etag) => etag,
                Err(why) => {
                    reasons.push(format!("{region}: {why}"));
                    continue;
                }
            };
            match fetch_from(
                store.as_ref(),
                &bucket,
                &self.key,
                range.clone(),
                etag.as_deref(),
            )
            .await
            {
                Ok(bytes) => return Ok(bytes),
                Err(e) => {
                    tracing::warn!(region, key = %self.key, "ranged read {range:?} failed: {e}");
                    reasons.push(format!("{region}: {e}"));
                }
            }
        }
        Err(FsError::unavailable(format!(
            "no region could serve bytes {range:?} of {}: {}",
            self.key,
            reasons.join("; ")
        )))
    }
}

async fn fetch_from(
    store: &dyn RegionStore,
    bucket: &str,
    key: &str,
    range: Range<u64>,
    etag: Option<&str>,
) -> Result<Bytes, String> {
    let expected = (range.end - range.start) as usize;
    let mut object = store
        .get_object(bucket, key, Some(range), etag)
        .await
        .map_err(|e| e.to_string())?;
    let mut buffer = BytesMut::with_capacity(expected);
    while let Some(chunk) = object.body.next().await {
        buffer.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
    }
    if buffer.len() != expected {
        return Err(format!("got {} bytes, expected {expected}", buffer.len()));
    }
    Ok(buffer.freeze())
}
