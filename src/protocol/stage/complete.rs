//! Completing a version in the regions that missed its stage (the mount's repair, and
//! the resume of a stage the daemon was running when it stopped).
//!
//! A completion copies what the majority holds now, nothing else. It takes the census
//! first (every region's `HeadObject`):
//! - a majority holds our bytes (the same MD5 and size, whatever each copy's ETag): the
//!   regions that answered "absent" get the artifact (and its metadata first, never
//!   beside another's metadata), the regions holding other bytes are reported and never
//!   overwritten (unless an earlier, failed stage of ours left them: `ownership`), and each region's
//!   `latest` is then set to the majority's value (`latest_agreement`). The stage's
//!   "forward only" rule is never applied: a rollback made meanwhile holds.
//! - a majority says the key is absent: the version was yanked, or its stage never
//!   reached a majority. Nothing is uploaded, so no repair or resume can bring back a
//!   yanked version or publish a stage that failed.
//! - a majority holds other bytes, or copies disagree with no majority: a conflict,
//!   never overwritten.
//! - too few regions answer to know: nothing is uploaded; tried again later.

use std::sync::Arc;

use futures::future::join_all;
use semver::Version;

use crate::protocol::census::{Census, Content, Verdict};
use crate::protocol::error::Error;
use crate::protocol::metadata::{validate_user_metadata, Metadata, FILENAME_KEY};
use crate::protocol::names::{artifact_key, latest_parameter_name, validate_project_name};
use crate::protocol::session::Session;

use crate::protocol::stage_report::{LatestChange, RegionOutcome, StageReport};

use super::digests::prepare;
use super::options::StageOptions;
use super::ownership::Ownership;
use super::region::RegionPlan;
use super::source::StageSource;

/// What a completion found and did.
#[derive(Debug, Clone)]
pub enum Completion {
    /// A majority holds our bytes: each region's outcome (`AlreadyHeld` where it was,
    /// `Staged` where it was copied, `Taken` where other bytes sit, `Failed` where the
    /// region could not answer or take it), and the regions that could not even answer
    /// the census (nothing was sent to them: trying again costs one request each).
    Completed {
        report: StageReport,
        unreachable: Vec<String>,
    },
    /// A majority says the version is not there (yanked, or never committed): nothing
    /// was uploaded.
    NotHeld { reason: String },
    /// A majority holds other bytes, or copies disagree and none has a majority.
    Conflict {
        regions: Vec<String>,
        reason: String,
    },
    /// Too few regions answered to decide: nothing was uploaded.
    Undecided {
        regions: Vec<String>,
        reason: String,
    },
}

impl Session {
    /// Completes `project`@`version` from `source` in the regions that miss it (see the
    /// module's comment).
    pub async fn complete_stage(
        &self,
        project: &str,
        version: &Version,
        source: StageSource<'_>,
        mut metadata: Metadata,
        options: &StageOptions,
    ) -> Result<Completion, Error> {
        validate_project_name(project)?;
        validate_user_metadata(&metadata)?;
        if self.read_only() {
            return Err(Error::ReadOnly);
        }
        if let Some(name) = source.file_name {
            metadata.insert(FILENAME_KEY.to_string(), name);
        }
        let configuration = self.ready_configuration().await?.clone();
        let key = artifact_key(&configuration.bucket_key_prefix, project, version);
        let census = Census::take(self, &key, true).await;
        let verdict = census.verdict();
        let majority = match verdict {
            Verdict::Present(majority) => majority,
            Verdict::Absent { .. } => {
                return Ok(Completion::NotHeld {
                    reason: format!(
                    "{}: it was yanked, or its stage never reached a majority; not uploaded again",
                    verdict.explain()
                ),
                })
            }
            Verdict::Conflict { ref groups, .. } => {
                let regions = groups
                    .iter()
                    .flat_map(|g| g.locations.iter().map(|l| l.region.clone()))
                    .collect();
                return Ok(Completion::Conflict {
                    regions,
                    reason: verdict.explain(),
                });
            }
            Verdict::Unknown { ref failed, .. } => {
                return Ok(Completion::Undecided {
                    regions: failed.iter().map(|(r, _)| r.clone()).collect(),
                    reason: verdict.explain(),
                })
            }
        };
        let parts_needed = self.parts_needed(options, source.digests.as_ref());
        let prepared = prepare(source.path, options, source.digests, parts_needed).await?;
        let ours = Content::Md5 {
            size: prepared.size,
            md5: prepared.md5_hex.clone(),
        };
        if majority.group.content != ours {
            return Ok(Completion::Conflict {
                regions: majority
                    .group
                    .locations
                    .iter()
                    .map(|l| l.region.clone())
                    .collect(),
                reason: format!(
                    "a majority holds other bytes ({}) than ours ({ours}): another stager's version",
                    majority.group.content
                ),
            });
        }
        let latest_parameter = latest_parameter_name(&configuration.parameter_name_prefix, project);
        let plan = RegionPlan {
            ownership: Ownership::new(source.stager),
            ..RegionPlan::new(
                self,
                &key,
                version,
                &metadata,
                latest_parameter,
                &prepared,
                options,
            )
        };
        let outcomes = join_all(self.stores().iter().map(|store| {
            let (store, plan, majority) = (Arc::clone(store), &plan, &majority);
            async move {
                let region = store.region();
                if majority.holds_in(region) {
                    return RegionOutcome::AlreadyHeld(LatestChange::Untouched);
                }
                let stray = majority.strays.iter().find(|l| l.region == region);
                if let Some(stray) = stray.filter(|s| !plan.ownership.stager.left_earlier(&s.info)) {
                    return RegionOutcome::Taken(format!(
                        "{} in {region} holds other bytes ({}) than the majority: never overwritten",
                        stray.key,
                        Content::of(&stray.info)
                    ));
                }
                if stray.is_some() || majority.missing.iter().any(|r| r == region) {
                    let outcome = plan.run(store.as_ref()).await;
                    return plan.confirm(store.as_ref(), outcome).await;
                }
                let why = majority
                    .failed
                    .iter()
                    .find(|(r, _)| r == region)
                    .map(|(_, why)| why.clone())
                    .unwrap_or_else(|| "not answered".into());
                RegionOutcome::Failed(format!("could not be asked whether it holds it: {why}"))
            }
        }))
        .await;
        let mut report = StageReport {
            project: project.to_string(),
            version: version.clone(),
            key: key.clone(),
            md5: prepared.md5_hex.clone(),
            size: prepared.size,
            dry_run: false,
            regions: self.regions().into_iter().zip(outcomes).collect(),
            stager: plan.ownership.stager.id.clone(),
            left_behind: Vec::new(),
        };
        match self.align_latest(project).await {
            Ok(alignment) => {
                for problem in &alignment.problems {
                    tracing::info!(project, "{problem}");
                }
                for (region, _, result) in alignment.set {
                    if let (Err(why), Some((_, outcome))) = (
                        result,
                        report.regions.iter_mut().find(|(r, _)| *r == region),
                    ) {
                        let failed = LatestChange::Failed(why.to_string());
                        *outcome = match std::mem::replace(outcome, RegionOutcome::WouldStage) {
                            held @ (RegionOutcome::Staged(_) | RegionOutcome::AlreadyHeld(_)) => {
                                held.with_latest(failed)
                            }
                            other => other,
                        };
                    }
                }
            }
            Err(e) => tracing::warn!(project, "latest not aligned: {e}"),
        }
        let unreachable = majority
            .failed
            .iter()
            .map(|(r, _)| r.clone())
            .chain(majority.not_asked.iter().cloned())
            .collect();
        Ok(Completion::Completed {
            report,
            unreachable,
        })
    }
}
