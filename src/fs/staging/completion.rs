//! Completing stages (what `startifact-fs status` calls their repair), and the stages
//! a stopped daemon left: for the life of the daemon, a
//! background task first resumes the stages that were running when the daemon last
//! stopped, then repairs the versions published to a majority of regions but not to
//! every one.
//!
//! Both copy what the majority holds now, nothing else (`Session::complete_stage`):
//! the census comes first, and only a version a majority holds with our bytes is
//! copied to the regions that say it is absent; `latest` is then set, in each region,
//! to the value a majority holds (never moved by the stage's "forward only" rule, so a
//! rollback made meanwhile holds). A version a majority no longer holds (yanked
//! elsewhere, or a stage interrupted before it reached a majority) is never uploaded
//! again: its entry ends `failed`, the file kept, with the reason. When every region
//! holds the version, its spool entry is dropped. A region holding other bytes or
//! metadata under the key is a conflict: reported (`conflict` in `status.json`, a
//! warning in the log), never overwritten, the spool kept, and checked again only at
//! the next start.
//!
//! When each is tried again, and what an attempt saw, is in `retries`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use semver::Version;

use crate::protocol::{Session, StageOptions, StageSource};

use super::model::key;
use super::retries::{after_repair, AfterRepair, RepairSeen, REACH_RETRY};
use super::spool::{seconds_of, FileStatus, Repair};
use super::state::Staging;
use crate::fs::sync::lock;

/// Everything a repair needs, taken under the lock.
struct RepairJob {
    version: Version,
    repair: Repair,
    file_name: String,
    metadata: crate::protocol::Metadata,
    /// A new id after the mount's stages of the version: what they left is taken up.
    stager: crate::protocol::Stager,
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
}

impl Staging {
    /// Runs for the life of the daemon (see the module's comment).
    pub async fn keep_repairing(self: Arc<Self>, session: Session) {
        self.resume_interrupted(&session).await;
        let returned = session.region_returned();
        let mut at_start = true;
        let mut every_awaiting = false;
        loop {
            let now = seconds_of(SystemTime::now());
            let due = if every_awaiting { u64::MAX } else { now };
            for (project, version) in self.repairs_due(due, at_start) {
                if self.flight.is_interrupted() {
                    return;
                }
                self.repair(&session, &project, &version).await;
            }
            if self.lagging_latest.lags() {
                self.lagging_latest.align(&session, &self.spool).await;
            }
            at_start = false;
            every_awaiting = false;
            let wait = self.next_repair_in(seconds_of(SystemTime::now()));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.repairs_due.notified() => {}
                _ = returned.notified() => {
                    tracing::info!("a region answers again: every version awaiting repair is tried now");
                    every_awaiting = true;
                }
                _ = self.flight.interrupted() => return,
            }
        }
    }

    /// The last background repair attempt since the daemon started, if any.
    pub fn last_repair(&self) -> Option<RepairSeen> {
        lock(&self.last_repair).clone()
    }

    /// Every repair at once, as at a start: the step `keep_repairing` runs, for tests.
    #[cfg(test)]
    pub(crate) async fn repair_everything_now(&self, session: &Session) {
        for (project, version) in self.repairs_due(0, true) {
            self.repair(session, &project, &version).await;
        }
        self.lagging_latest.align(session, &self.spool).await;
    }

    /// Completes the stages that were running when the daemon last stopped, as a repair
    /// does: copied where a majority already holds them, never published otherwise.
    async fn resume_interrupted(&self, session: &Session) {
        let resumed: Vec<(String, String)> = lock(&self.folders)
            .versions
            .iter()
            .filter(|(_, slot)| {
                slot.state
                    .file
                    .as_ref()
                    .is_some_and(|f| f.status == FileStatus::Staging)
            })
            .map(|(key, _)| key.clone())
            .collect();
        let stages = resumed.iter().map(|(project, version)| async move {
            tracing::info!(
                project,
                version,
                "resuming the stage the daemon was running when it stopped: completed only where a majority holds it"
            );
            self.repair(session, project, version).await;
        });
        futures::future::join_all(stages).await;
    }

    /// The versions whose repair is due (every one at start, conflicts included).
    fn repairs_due(&self, now: u64, at_start: bool) -> Vec<(String, String)> {
        lock(&self.folders)
            .versions
            .iter()
            .filter(
                |(_, slot)| match slot.state.file.as_ref().map(|f| &f.status) {
                    Some(FileStatus::AwaitingRepair(repair)) => {
                        at_start || repair.next_try_seconds <= now
                    }
                    Some(FileStatus::Conflict { .. }) => at_start,
                    _ => false,
                },
            )
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// How long until the next repair is due (an hour when none is: a new one wakes
    /// the task); a lagging `latest` is tried again every `REACH_RETRY`.
    fn next_repair_in(&self, now: u64) -> Duration {
        let lagging = self.lagging_latest.lags().then_some(REACH_RETRY);
        let due = lock(&self.folders)
            .versions
            .values()
            .filter_map(|slot| match slot.state.file.as_ref().map(|f| &f.status) {
                Some(FileStatus::AwaitingRepair(repair)) => Some(repair.next_try_seconds),
                _ => None,
            })
            .min()
            .map(|due| Duration::from_secs(due.saturating_sub(now).max(1)));
        match (due, lagging) {
            (Some(due), Some(lagging)) => due.min(lagging),
            (due, lagging) => due.or(lagging).unwrap_or(Duration::from_secs(3600)),
        }
    }

    fn repair_job(&self, project: &str, version: &str) -> Option<RepairJob> {
        let folders = lock(&self.folders);
        let slot = folders.versions.get(&key(project, version))?;
        let file = slot.state.file.as_ref()?;
        let repair = match &file.status {
            FileStatus::AwaitingRepair(repair) => repair.clone(),
            FileStatus::Conflict { regions, reason } => Repair {
                regions: regions.clone(),
                last_error: reason.clone(),
                ..Repair::default()
            },
            FileStatus::Staging => Repair::default(),
            _ => return None,
        };
        Some(RepairJob {
            version: Version::parse(version).ok()?,
            repair,
            file_name: file.name.clone(),
            metadata: slot.metadata(),
            stager: crate::protocol::Stager::after(slot.state.stages.clone()),
            one_at_a_time: Arc::clone(&slot.stage.one_at_a_time),
        })
    }

    /// One repair attempt of a version, logged in one line.
    async fn repair(&self, session: &Session, project: &str, version: &str) {
        let Some(job) = self.repair_job(project, version) else {
            return;
        };
        let _one_at_a_time = job.one_at_a_time.lock().await;
        let options = StageOptions {
            part_size: match job.repair.part_size {
                0 => self.stage_options.part_size,
                size => size,
            },
            ..self.stage_options.clone()
        };
        let data_path = self.spool.data_path(project, version);
        let source = StageSource {
            path: &data_path,
            file_name: Some(job.file_name.clone()),
            digests: None,
            ahead: None,
            stager: job.stager,
        };
        let staged = session.complete_stage(project, &job.version, source, job.metadata, &options);
        let result = tokio::select! {
            biased;
            _ = self.flight.interrupted() => return,
            result = staged => result,
        };
        // Yanked meanwhile: nothing left to repair.
        if self.repair_job(project, version).is_none() {
            return;
        }
        let attempt = job.repair.attempts + 1;
        let after = after_repair(&job.repair, result, seconds_of(SystemTime::now()));
        let seen = RepairSeen::of(project, version, attempt, &after);
        match after {
            AfterRepair::Done => {
                tracing::info!(
                    project,
                    version,
                    attempt,
                    "repaired: every region holds it; spool entry dropped"
                );
                if let Err(e) = self.drop_version(project, version) {
                    tracing::warn!(project, version, "{e}");
                }
            }
            AfterRepair::Again(repair) => {
                tracing::warn!(
                    project,
                    version,
                    attempt,
                    regions = repair.regions.join(","),
                    "repair failed, next try in {} s: {}",
                    repair
                        .next_try_seconds
                        .saturating_sub(seconds_of(SystemTime::now())),
                    repair.last_error
                );
                self.settle(project, version, FileStatus::AwaitingRepair(repair));
            }
            AfterRepair::Conflict { regions, reason } => {
                tracing::warn!(
                    project,
                    version,
                    attempt,
                    regions = regions.join(","),
                    "repair found a conflict, never overwritten, spool kept: {reason}"
                );
                self.settle(project, version, FileStatus::Conflict { regions, reason });
            }
            AfterRepair::NotHeld { reason } => {
                tracing::warn!(
                    project,
                    version,
                    attempt,
                    "not repaired, never uploaded again: {reason}; the file is kept"
                );
                let reason = format!(
                    "not published: {reason}; the file is kept (close it again, or stage it with the CLI, to publish it)"
                );
                self.settle(project, version, FileStatus::Failed { reason });
                // A yank that missed a region may have left its `latest` naming this
                // version: the majority's value is set there too.
                self.align_latest_later(project);
            }
        }
        // Recorded once the entry is settled, so that status never shows the outcome
        // beside an entry it has ended.
        *lock(&self.last_repair) = Some(seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_start_a_stage_in_flight_waits_to_resume_and_a_file_being_written_is_abandoned() {
        use crate::fs::caller::Caller;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("staging");
        let staging = Staging::open(&root, 10_000, StageOptions::default()).unwrap();
        staging.create_project("P").unwrap();
        for version in ["1.0.0", "2.0.0"] {
            staging.create_version("P", version).unwrap();
            let file = staging
                .create_file("P", version, None, "a.bin", &Caller::daemon())
                .unwrap();
            staging.write("P", version, &file, 0, b"bytes").unwrap();
        }
        staging
            .set_status("P", "1.0.0", FileStatus::Staging)
            .unwrap();
        drop(staging);

        let staging = Staging::open(&root, 10_000, StageOptions::default()).unwrap();
        let status_of = |v: &str| {
            staging
                .view("P", v)
                .and_then(|view| view.file)
                .map(|f| f.status)
        };
        assert_eq!(status_of("1.0.0"), Some(FileStatus::Staging));
        assert!(matches!(
            status_of("2.0.0"),
            Some(FileStatus::Abandoned { .. })
        ));
        // Nothing changes a file whose stage waits to resume.
        let busy = staging.open_file("P", "1.0.0", Some(&Caller::daemon()), true);
        assert_eq!(busy.unwrap_err().errno(), libc::EBUSY);
    }
}
