//! Staging: one artifact to every region at once.
//!
//! The file is read once up front to hash it (and each multipart part). Then, in every
//! region concurrently: look up the bucket; `HeadObject` the key (an existing artifact
//! with the same MD5 and metadata counts as held, so a retry after a partial failure
//! succeeds; other bytes fail the region); put the metadata object, then the artifact,
//! both with Content-MD5 and `If-None-Match: *` (so two stagers of one version cannot
//! both win in a region). Only once more than half of all regions hold the artifact
//! does the latest-version parameter move, in each region that holds it, only forward
//! when it can be read first, else written as the Python tool writes it. A stage that
//! fails moves `latest` nowhere.
//!
//! The contract: the stage succeeds when more than half of the regions hold the
//! artifact, so every quorum read of `latest` sees it. "Hold" means a `HeadObject` after
//! every region is done still shows our MD5: of two racing stagers, only the one whose
//! bytes a majority holds wins, even where the server's `If-None-Match` is not atomic;
//! the other's regions are `Taken` and it fails (the mount answers EEXIST). `require_all_regions` restores the
//! Python tool's rule that any failed region fails the stage. The report names every
//! region's outcome either way. A stage that never reached a majority removes again
//! what it created (`ownership`), so a failed stage leaves nothing behind for a
//! retry with other metadata to trip on, nor a stray copy for every census to report.
//!
//! This module holds the contract and its entry points (stage, upload ahead, abandon);
//! `options` says how a stage runs and `source` what it is given; `digests` hashes the
//! file (or trusts what `writer` hashed as the mount wrote it), `region` does one
//! region's part, `ownership` says which objects are the stage's own and removes them
//! when it fails, `sending` learns whether each region takes large files faster in
//! parts or in one request, `complete` completes a version in the regions that missed
//! it, and `crate::protocol::stage_report` says how each region came out.

mod complete;
mod digests;
mod options;
mod ownership;
mod parts;
mod refusal;
mod region;
mod sending;
mod source;
mod writer;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use futures::future::join_all;
use semver::Version;

use super::error::Error;
use super::metadata::{self, validate_user_metadata, Metadata, FILENAME_KEY};
use super::names::{artifact_key, latest_parameter_name, validate_project_name};
use super::session::Session;

pub use super::stage_report::{LatestChange, RegionOutcome, StageReport};
pub use complete::Completion;
pub use digests::{part_size_for, FileDigests, MAX_PARTS, MIN_PART_SIZE};
pub use options::StageOptions;
pub use ownership::{new_stage_id, Stager, STAGE_METADATA_KEY};
use sending::Method;
pub use sending::SendingCosts;
pub use source::{StageSource, UploadedAhead};
pub use writer::{DigestWriter, PartsRule};

use digests::prepare;
use ownership::Ownership;
use region::RegionPlan;

/// How many regions finished their upload, and how many of them hold the artifact.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    finished: usize,
    held: usize,
}

impl Session {
    /// Stages `path` as `project` at `version` with the default options (see the
    /// module's comment for the contract).
    pub async fn stage(
        &self,
        project: &str,
        version: &Version,
        path: &Path,
        metadata: Metadata,
        save_filename: bool,
    ) -> Result<StageReport, Error> {
        self.stage_with(
            project,
            version,
            path,
            metadata,
            save_filename,
            &StageOptions::default(),
        )
        .await
    }

    /// Stages with explicit options. A read-only session runs a dry run: the heads and
    /// the read of the file, no writes.
    pub async fn stage_with(
        &self,
        project: &str,
        version: &Version,
        path: &Path,
        metadata: Metadata,
        save_filename: bool,
        options: &StageOptions,
    ) -> Result<StageReport, Error> {
        let source = StageSource::of(path, save_filename)?;
        self.stage_file(project, version, source, metadata, options)
            .await
    }

    /// Whether some region would take a file of `size` bytes in parts under `options`
    /// (what its earlier stages taught, when `options.sending` is given): only then are
    /// the parts' digests worth their hashing.
    pub fn sends_in_parts(&self, options: &StageOptions, size: u64) -> bool {
        if size <= options.multipart_threshold {
            return false;
        }
        let Some(costs) = &options.sending else {
            return true;
        };
        self.stores().iter().any(|store| {
            let place = sending::place(store.region(), store.s3_endpoint(), size);
            let first = sending::first_method(store.as_ref());
            costs.choose(&place, size, first) == Method::Parts
        })
    }

    /// Whether the stage of a file hashed while written (`known`) needs its parts'
    /// digests: when they were not taken (a region's figures said none would need
    /// them), the file is read again for them only if one now does.
    fn parts_needed(&self, options: &StageOptions, known: Option<&FileDigests>) -> bool {
        known.is_none_or(|known| self.sends_in_parts(options, known.size))
    }

    /// Stages a file kept under another name (the mount's spool): `file_name` is saved
    /// as `startifact:filename`, and digests computed while it was written spare a
    /// second read.
    pub async fn stage_file(
        &self,
        project: &str,
        version: &Version,
        source: StageSource<'_>,
        mut metadata: Metadata,
        options: &StageOptions,
    ) -> Result<StageReport, Error> {
        let started = std::time::Instant::now();
        validate_project_name(project)?;
        validate_user_metadata(&metadata)?;
        if let Some(name) = source.file_name {
            metadata.insert(FILENAME_KEY.to_string(), name);
        }
        // Before any request: an object readers refuse would hide nothing, but it
        // would carry no metadata and no file name either.
        metadata::check_size(&format!("{project}@{version}"), &metadata)?;
        let path = source.path;
        let parts_needed = self.parts_needed(options, source.digests.as_ref());
        let prepared = prepare(path, options, source.digests, parts_needed).await?;
        let configuration = self.ready_configuration().await?.clone();
        let key = artifact_key(&configuration.bucket_key_prefix, project, version);
        let ahead = match source.ahead {
            Some(ahead)
                if ahead.key == key
                    && ahead.md5_hex == prepared.md5_hex
                    && ahead.size == prepared.size
                    && ahead.stager_id == source.stager.id
                    && !self.read_only() =>
            {
                ahead.regions
            }
            Some(stale) => {
                self.abandon_ahead(stale).await;
                HashMap::new()
            }
            None => HashMap::new(),
        };
        let latest_parameter = latest_parameter_name(&configuration.parameter_name_prefix, project);
        let plan = RegionPlan {
            ahead: std::sync::Mutex::new(ahead),
            dry_run: self.read_only(),
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
        if let Some(progress) = &options.progress {
            let regions = self.regions();
            progress.begin(prepared.size * regions.len() as u64, &regions);
        }
        // `latest` moves in a region only once more than half of all regions hold the
        // artifact (each region's upload counted in `tally`), and only in a region that
        // holds it, checked again just before: a stage that fails moves it nowhere, so
        // no quorum read is ever sent to a version a majority lacks, and a region that
        // hangs does not hold `latest` back in the others.
        let regions = self.stores().len();
        let (tally, _) = tokio::sync::watch::channel(Tally::default());
        // Owned handles, so the future is `Send` for any lifetime (the mount spawns it).
        let outcomes = join_all(self.stores().iter().map(|store| {
            let (store, plan, tally) = (Arc::clone(store), &plan, &tally);
            async move {
                let outcome = plan.run(store.as_ref()).await;
                let holds = outcome.holds();
                tally.send_modify(|t| {
                    t.finished += 1;
                    t.held += usize::from(holds);
                });
                let outcome = if holds && !plan.dry_run {
                    let mut seen = tally.subscribe();
                    let majority = seen
                        .wait_for(|t| t.held * 2 > regions || t.finished == regions)
                        .await
                        .is_ok_and(|t| t.held * 2 > regions);
                    if majority {
                        plan.move_latest_where_held(store.as_ref(), outcome).await
                    } else {
                        outcome
                    }
                } else {
                    outcome
                };
                // Parts uploaded ahead that this stage did not complete are dropped.
                if let Some((upload_id, _)) = plan.take_ahead(store.region()) {
                    if let Ok(bucket) = self.bucket(store.as_ref()).await {
                        plan.abandon(store.as_ref(), &bucket, &upload_id).await;
                    }
                }
                outcome
            }
        }))
        .await;
        // A server's conditional writes may not be atomic (moto's CompleteMultipartUpload
        // is not) or may be ignored: a racing stager's upload can land over ours after
        // ours "succeeded". So once every region is done, each region we believe holds
        // our bytes is asked again, and counts only if it still does.
        let outcomes = if self.read_only() {
            outcomes
        } else {
            join_all(
                self.stores()
                    .iter()
                    .zip(outcomes)
                    .map(|(store, outcome)| plan.confirm(store.as_ref(), outcome)),
            )
            .await
        };
        // A stage that never reached a majority (so moved `latest` nowhere) removes
        // what it created. One that reached it before a racer's bytes replaced some of
        // ours keeps its copies: `latest` may name the version already.
        let reached = tally.borrow().held * 2 > regions;
        let mut left_behind = Vec::new();
        let outcomes = if self.read_only() || reached {
            outcomes
        } else {
            let withdrawn = join_all(
                self.stores()
                    .iter()
                    .map(|s| plan.ownership.withdraw(self, s.as_ref(), &key)),
            )
            .await;
            let regions = self.regions().into_iter();
            outcomes
                .into_iter()
                .zip(withdrawn.into_iter().zip(regions))
                .map(|(outcome, ((removed, left), region))| {
                    left_behind.extend(left.into_iter().map(|what| (region.clone(), what)));
                    if removed {
                        RegionOutcome::Withdrawn
                    } else {
                        outcome
                    }
                })
                .collect()
        };
        let report = StageReport {
            project: project.to_string(),
            version: version.clone(),
            key: key.clone(),
            md5: prepared.md5_hex.clone(),
            size: prepared.size,
            dry_run: self.read_only(),
            regions: self.regions().into_iter().zip(outcomes).collect(),
            stager: plan.ownership.stager.id.clone(),
            left_behind,
        };
        // One line per stage, whatever the outcome: what, how large, how long, where.
        let seconds = format!("{:.2}", started.elapsed().as_secs_f64());
        let size = prepared.size;
        let outcomes = report.outcomes();
        let part_reads = plan.parts.reads();
        if report.failed().is_empty() {
            tracing::info!(project, %version, size, seconds, part_reads, "stage: {} ({outcomes})", report.summary());
        } else {
            tracing::warn!(project, %version, size, seconds, part_reads, "stage: {} ({outcomes})", report.summary());
        }
        if report.succeeded(options.require_all_regions) {
            Ok(report)
        } else {
            Err(Error::CannotStage(Box::new(report)))
        }
    }
}

impl Session {
    /// Uploads the parts of a large file to every region without completing them (see
    /// `UploadedAhead`); `None` for a file staged in one request. A region that fails
    /// is left out: the stage uploads to it in full.
    pub async fn upload_ahead(
        &self,
        project: &str,
        version: &Version,
        source: StageSource<'_>,
        options: &StageOptions,
    ) -> Result<Option<UploadedAhead>, Error> {
        validate_project_name(project)?;
        if self.read_only() {
            return Err(Error::ReadOnly);
        }
        let parts_needed = self.parts_needed(options, source.digests.as_ref());
        let prepared = prepare(source.path, options, source.digests, parts_needed).await?;
        if prepared.one_request {
            return Ok(None);
        }
        let configuration = self.ready_configuration().await?.clone();
        let key = artifact_key(&configuration.bucket_key_prefix, project, version);
        let metadata = Metadata::new();
        let plan = RegionPlan {
            ownership: Ownership::new(source.stager),
            ..RegionPlan::new(
                self,
                &key,
                version,
                &metadata,
                String::new(),
                &prepared,
                options,
            )
        };
        let uploads = join_all(self.stores().iter().map(|store| {
            let (store, plan) = (Arc::clone(store), &plan);
            async move {
                let region = store.region().to_string();
                match plan.upload_without_completing(store.as_ref()).await {
                    Ok(Some(upload)) => Some((region, upload)),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!(region, "could not upload ahead: {e}");
                        None
                    }
                }
            }
        }))
        .await;
        let stager_id = plan.ownership.stager.id.clone();
        Ok(Some(UploadedAhead {
            key,
            md5_hex: prepared.md5_hex.clone(),
            size: prepared.size,
            stager_id,
            regions: uploads.into_iter().flatten().collect(),
        }))
    }

    /// Aborts uploads made ahead that no stage will complete.
    pub async fn abandon_ahead(&self, ahead: UploadedAhead) {
        for store in self.stores() {
            let Some((upload_id, _)) = ahead.regions.get(store.region()) else {
                continue;
            };
            let Ok(bucket) = self.bucket(store.as_ref()).await else {
                continue;
            };
            if let Err(e) = store
                .abort_multipart_upload(&bucket, &ahead.key, upload_id)
                .await
            {
                tracing::debug!(
                    region = store.region(),
                    "could not abort upload {upload_id}: {e}"
                );
            }
        }
    }
}
