//! The stage: when closing a writer stages (the file has its final name and no other
//! handle writes it), the upload ahead of a large file closed under a temporary name,
//! and the stage itself, whose outcome becomes the file's status and the errno of the
//! `close()` or `rename` that ran it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use semver::Version;

use crate::protocol::{
    new_stage_id, Error as ProtocolError, FileDigests, Metadata, Session, StageReport, StageSource,
    Stager, UploadedAhead,
};

use super::model::key;
use super::retries::backoff;
use super::spool::{seconds_of, FileState, FileStatus, Repair};
use super::state::Staging;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::sync::lock;

/// What closing a handle did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseEffect {
    Nothing,
    /// Published; `complete` when every region holds it.
    Staged {
        complete: bool,
    },
}

/// rsync's temporary names: `.NAME.XXXXXX` with six letters or digits.
pub fn is_temporary_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    match rest.rsplit_once('.') {
        Some((stem, suffix)) => {
            !stem.is_empty()
                && suffix.len() == 6
                && suffix.chars().all(|c| c.is_ascii_alphanumeric())
        }
        None => false,
    }
}

/// The file is in the version folder under a name that is not hidden (rsync's
/// temporary `.NAME.XXXXXX` is one): closing or renaming it there stages it.
pub(super) fn has_final_name(file: &FileState) -> bool {
    file.folder.is_none() && !file.name.starts_with('.')
}

/// Everything a stage needs, taken under the lock.
struct StageJob {
    version: Version,
    ahead: Option<UploadedAhead>,
    data_path: PathBuf,
    file_name: String,
    metadata: Metadata,
    digests: Option<FileDigests>,
    stager: Stager,
}

impl Staging {
    /// Whether closing a writer should stage now: the file has its final name and no
    /// other handle is writing it (the closing one no longer counts).
    pub fn ready_to_stage(&self, project: &str, version: &str) -> bool {
        lock(&self.folders)
            .unpublished(project, version)
            .filter(|slot| slot.bytes.writers == 0)
            .and_then(|slot| slot.state.file.as_ref())
            .is_some_and(has_final_name)
    }

    /// Stages the version's file to every region; `Nothing` when it was published
    /// meanwhile (by a stage this one waited for).
    pub async fn stage(
        &self,
        session: &Session,
        project: &str,
        version: &str,
    ) -> FsResult<CloseEffect> {
        let one_at_a_time = match lock(&self.folders).versions.get(&key(project, version)) {
            Some(slot) => Arc::clone(&slot.stage.one_at_a_time),
            None => return Ok(CloseEffect::Nothing),
        };
        let _in_flight = self.flight.enter();
        let _one_at_a_time = one_at_a_time.lock().await;
        let Some(job) = self.begin_stage(project, version)? else {
            return Ok(CloseEffect::Nothing);
        };
        if self.flight.is_interrupted() {
            return Err(self.interrupt_stage(project, version));
        }
        // `status.json` says `staging` for as long as the stage runs.
        self.write_status();
        tracing::info!(project, version, file = job.file_name, "staging");
        let source = StageSource {
            path: &job.data_path,
            file_name: Some(job.file_name.clone()),
            digests: job.digests.clone(),
            ahead: job.ahead,
            stager: job.stager,
        };
        let staged = session.stage_file(
            project,
            &job.version,
            source,
            job.metadata.clone(),
            &self.stage_options,
        );
        let result = tokio::select! {
            biased;
            _ = self.flight.interrupted() => return Err(self.interrupt_stage(project, version)),
            result = staged => result,
        };
        self.finish_stage(project, version, result)
    }

    /// Uploads the parts of a large file closed under a temporary name, so that the
    /// rename that stages it only completes them. Failures are logged: the stage then
    /// uploads in full.
    pub async fn upload_ahead(&self, session: &Session, project: &str, version: &str) {
        let found = lock(&self.folders)
            .versions
            .get(&key(project, version))
            .map(|slot| {
                (
                    Arc::clone(&slot.stage.one_at_a_time),
                    lock(&slot.bytes.digest).finish(),
                    slot.bytes.size,
                )
            });
        let Some((one_at_a_time, digests, size)) = found else {
            return;
        };
        if size <= self.stage_options.multipart_threshold {
            return;
        }
        let _one_at_a_time = one_at_a_time.lock().await;
        let Ok(parsed) = Version::parse(version) else {
            return;
        };
        let data_path = self.spool.data_path(project, version);
        let source = StageSource {
            path: &data_path,
            file_name: None,
            digests,
            ahead: None,
            stager: Stager::default(),
        };
        match session
            .upload_ahead(project, &parsed, source, &self.stage_options)
            .await
        {
            Ok(Some(ahead)) => {
                tracing::info!(
                    project,
                    version,
                    regions = ahead.regions(),
                    "parts uploaded ahead of the rename"
                );
                let stale = match lock(&self.folders).versions.get_mut(&key(project, version)) {
                    Some(slot) => slot.stage.ahead.replace(ahead),
                    None => Some(ahead),
                };
                if let Some(stale) = stale {
                    session.abandon_ahead(stale).await;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(project, version, "could not upload ahead: {e}"),
        }
    }

    fn begin_stage(&self, project: &str, version: &str) -> FsResult<Option<StageJob>> {
        let mut folders = lock(&self.folders);
        let Some(slot) = folders.unpublished_mut(project, version) else {
            return Ok(None);
        };
        let parsed = Version::parse(version)
            .map_err(|e| FsError::new(FsErrorKind::Invalid, format!("{version}: {e}")))?;
        if slot.state.file.is_none() {
            return Ok(None);
        }
        // The id its objects carry: the parts uploaded ahead were sent under theirs.
        let id = match &slot.stage.ahead {
            Some(ahead) => ahead.stager_id().to_string(),
            None => new_stage_id(),
        };
        let stager = Stager {
            id: id.clone(),
            earlier: slot.state.stages.clone(),
        };
        // Durable before the first request: a daemon killed during the stage finds
        // the file complete at its next start, and finishes the stage; and whatever
        // the stage created is known to be this mount's own.
        let before = slot.state.clone();
        slot.state.remember_stage(&id);
        if let Some(file) = slot.state.file.as_mut() {
            file.status = FileStatus::Staging;
        }
        if slot.state != before {
            if let Err(e) = self.spool.save(project, version, &slot.state) {
                slot.state = before;
                return Err(e);
            }
        }
        let Some(file) = slot.state.file.as_ref() else {
            return Ok(None);
        };
        let job = StageJob {
            version: parsed,
            ahead: slot.stage.ahead.take(),
            data_path: self.spool.data_path(project, version),
            file_name: file.name.clone(),
            metadata: slot.metadata(),
            digests: lock(&slot.bytes.digest).finish(),
            stager,
        };
        slot.stage.running = true;
        Ok(Some(job))
    }

    fn finish_stage(
        &self,
        project: &str,
        version: &str,
        result: Result<StageReport, ProtocolError>,
    ) -> FsResult<CloseEffect> {
        if let Some(bytes) = self
            .stage_options
            .sending
            .as_ref()
            .and_then(|c| c.changes())
        {
            self.spool.keep(super::state::SENDING_FILE, &bytes);
        }
        let now = seconds_of(SystemTime::now());
        let part_size = self.stage_options.part_size;
        let (status, outcome) = outcome(project, version, result, part_size, now);
        match status {
            None => self.drop_version(project, version)?,
            Some(status) => {
                let awaits_repair = matches!(status, FileStatus::AwaitingRepair(_));
                self.settle(project, version, status);
                if awaits_repair {
                    self.repairs_due.notify_one();
                }
            }
        }
        outcome
    }

    /// Ends a stage (or a repair) with the file kept in `status`.
    pub(super) fn settle(&self, project: &str, version: &str, status: FileStatus) {
        if let Some(slot) = lock(&self.folders).versions.get_mut(&key(project, version)) {
            slot.stage.running = false;
            if let Some(file) = slot.state.file.as_mut() {
                file.status = status;
            }
            if let Err(e) = self.spool.save(project, version, &slot.state) {
                tracing::warn!("{e}");
            }
        }
        self.write_status();
    }

    /// Drops a version every region holds from the spool.
    pub(super) fn drop_version(&self, project: &str, version: &str) -> FsResult<()> {
        let mut folders = lock(&self.folders);
        folders.versions.remove(&key(project, version));
        let others = folders.versions.keys().any(|(p, _)| p == project);
        if !others {
            folders.projects.remove(project);
        }
        drop(folders);
        self.spool.remove_version(project, version)?;
        if !others {
            self.spool.remove_project(project)?;
        }
        self.write_status();
        Ok(())
    }

    /// The daemon stops during the stage: the file stays `staging` in `state.json`
    /// (the next start resumes it), and nothing changes it until then.
    fn interrupt_stage(&self, project: &str, version: &str) -> FsError {
        if let Some(slot) = lock(&self.folders).versions.get_mut(&key(project, version)) {
            slot.stage.interrupted = true;
        }
        self.write_status();
        tracing::warn!(
            project,
            version,
            "stage interrupted: the daemon is stopping; kept, completed at the next start where a majority holds it"
        );
        FsError::unavailable(format!(
            "{project}/{version}: the daemon stopped during the stage; the file is kept, and the next start completes the stage only if a majority of regions already hold it (else nothing is published)"
        ))
    }
}

/// What a stage's result makes of the file (`None`: published everywhere, dropped from
/// the spool) and what the `close()` or `rename` that ran it answers.
fn outcome(
    project: &str,
    version: &str,
    result: Result<StageReport, ProtocolError>,
    part_size: u64,
    now: u64,
) -> (Option<FileStatus>, FsResult<CloseEffect>) {
    match result {
        Ok(report) if report.taken() => {
            let (regions, reason) = report.conflict();
            tracing::warn!(
                project,
                version,
                "staged, but {}; in conflict, never overwritten, the spool is kept ({reason})",
                report.summary()
            );
            (
                Some(FileStatus::Conflict { regions, reason }),
                Ok(CloseEffect::Staged { complete: false }),
            )
        }
        Ok(report) if report.failed().is_empty() => {
            tracing::info!(project, version, "staged: {}", report.summary());
            (None, Ok(CloseEffect::Staged { complete: true }))
        }
        Ok(report) => {
            let failed = report.failures();
            tracing::warn!(
                project,
                version,
                "staged, but {}: the spool is kept for repair ({failed})",
                report.summary()
            );
            let repair = Repair {
                regions: report.failed_regions(),
                last_error: failed,
                attempts: 0,
                next_try_seconds: now + backoff(0).as_secs(),
                part_size,
            };
            (
                Some(FileStatus::AwaitingRepair(repair)),
                Ok(CloseEffect::Staged { complete: false }),
            )
        }
        Err(ProtocolError::CannotStage(report)) => {
            let kind = if report.taken() {
                FsErrorKind::Exists
            } else {
                FsErrorKind::Unavailable
            };
            failed(kind, ProtocolError::CannotStage(report).to_string())
        }
        Err(e @ ProtocolError::ReservedMetadataKey { .. }) => {
            failed(FsErrorKind::Immutable, e.to_string())
        }
        // Only a spool kept from before `setxattr` checked the size: `rm` the attribute.
        Err(e @ ProtocolError::OversizedMetadata { .. }) => {
            failed(FsErrorKind::NoSpace, e.to_string())
        }
        Err(e) => failed(
            FsErrorKind::Unavailable,
            format!("could not stage {project}@{version}: {e}"),
        ),
    }
}

/// A stage that published nothing usable: the file is kept, marked failed.
fn failed(kind: FsErrorKind, reason: String) -> (Option<FileStatus>, FsResult<CloseEffect>) {
    (
        Some(FileStatus::Failed {
            reason: reason.clone(),
        }),
        Err(FsError::new(kind, reason)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsync_temporary_names() {
        assert!(is_temporary_name(".dist.tar.gz.HplhRg"));
        assert!(is_temporary_name(".a.123456"));
        assert!(!is_temporary_name("dist.tar.gz"));
        assert!(!is_temporary_name(".hidden"));
        assert!(!is_temporary_name("..abcdef"));
        assert!(!is_temporary_name(".x.abc-ef"));
    }
}
