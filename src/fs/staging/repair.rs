//! Repair, and the stages a stopped daemon left: for the life of the daemon, a
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
//! When: a region that could not answer is asked again every `REACH_RETRY` (nothing is
//! sent to it until it answers), and at once when its breaker closes (it answered some
//! request again); a region that answered but refused the copy is retried after a wait
//! that doubles from `FIRST_RETRY` up to `LAST_RETRY`. Every entry is tried again at
//! each start, whatever its schedule said.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use semver::Version;
use serde::Serialize;

use crate::protocol::{Completion, Error as ProtocolError, Session, StageOptions, StageSource};

use super::model::key;
use super::spool::{seconds_of, FileStatus, Repair};
use super::Staging;
use crate::fs::sync::lock;

/// The first retry of a region that missed a stage: soon, since most outages are short.
pub const FIRST_RETRY: Duration = Duration::from_secs(10);
/// Retries never wait longer than this.
pub const LAST_RETRY: Duration = Duration::from_secs(600);
/// How often a region that could not answer is asked again: a repair attempt then
/// costs one `HeadObject` a region, and a region that returns is healed within this
/// (sooner when its breaker closes on another request).
pub const REACH_RETRY: Duration = Duration::from_secs(15);

/// How long to wait after `attempts` repairs failed (0: after the stage itself).
pub fn backoff(attempts: u32) -> Duration {
    let doubled = FIRST_RETRY.saturating_mul(1u32 << attempts.min(16));
    doubled.min(LAST_RETRY)
}

/// What a repair made of a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AfterRepair {
    /// Every region holds it: the spool entry goes.
    Done,
    /// Some regions still miss it: tried again later.
    Again(Repair),
    /// A region holds other bytes or metadata under the key.
    Conflict {
        regions: Vec<String>,
        reason: String,
    },
    /// A majority does not hold it (yanked, or never committed): not uploaded.
    NotHeld { reason: String },
}

/// What the completion's result means, after `previous` (at `now`, in seconds).
pub(super) fn after_repair(
    previous: &Repair,
    result: Result<Completion, ProtocolError>,
    now: u64,
) -> AfterRepair {
    let (report, unreachable) = match result {
        Ok(Completion::Completed {
            report,
            unreachable,
        }) => (report, unreachable),
        Ok(Completion::NotHeld { reason }) => return AfterRepair::NotHeld { reason },
        Ok(Completion::Conflict { regions, reason }) => {
            return AfterRepair::Conflict { regions, reason }
        }
        Ok(Completion::Undecided { regions, reason }) => {
            return again(previous, regions, reason, now, true)
        }
        Err(e) => {
            let regions = previous.regions.clone();
            return again(previous, regions, e.to_string(), now, false);
        }
    };
    if report.taken() {
        let (regions, reason) = report.conflict();
        return AfterRepair::Conflict { regions, reason };
    }
    if report.failed().is_empty() {
        return AfterRepair::Done;
    }
    let regions = report.failed_regions();
    let only_unreachable = regions.iter().all(|r| unreachable.contains(r));
    again(previous, regions, report.failures(), now, only_unreachable)
}

/// Tried again: soon when the regions left only failed to answer (a try costs them one
/// request), else after the doubling backoff.
fn again(
    previous: &Repair,
    regions: Vec<String>,
    last_error: String,
    now: u64,
    unreachable: bool,
) -> AfterRepair {
    let attempts = previous.attempts.saturating_add(1);
    let wait = if unreachable {
        REACH_RETRY
    } else {
        backoff(attempts)
    };
    AfterRepair::Again(Repair {
        regions,
        last_error,
        attempts,
        next_try_seconds: now + wait.as_secs(),
        part_size: previous.part_size,
    })
}

/// The outcome of one background repair attempt, as `startifact-fs status` shows it:
/// the entry awaiting repair is gone once it succeeds, and this says it did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepairSeen {
    pub project: String,
    pub version: String,
    /// 1 for the first repair after the stage.
    pub attempt: u32,
    /// Seconds since the Unix epoch.
    pub at: f64,
    /// `repaired` (every region holds it), `failed` (tried again later), `conflict`, or
    /// `not-held` (a majority does not hold it: not uploaded, the entry ended).
    pub outcome: &'static str,
    /// The regions still missing it (`failed`) or holding other bytes (`conflict`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl RepairSeen {
    fn of(project: &str, version: &str, attempt: u32, after: &AfterRepair) -> RepairSeen {
        let (outcome, regions, reason) = match after {
            AfterRepair::Done => ("repaired", Vec::new(), None),
            AfterRepair::Again(repair) => (
                "failed",
                repair.regions.clone(),
                Some(repair.last_error.clone()),
            ),
            AfterRepair::Conflict { regions, reason } => {
                ("conflict", regions.clone(), Some(reason.clone()))
            }
            AfterRepair::NotHeld { reason } => ("not-held", Vec::new(), Some(reason.clone())),
        };
        RepairSeen {
            project: project.to_string(),
            version: version.to_string(),
            attempt,
            at: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            outcome,
            regions,
            reason,
        }
    }
}

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
            if self.latest_lags() {
                self.align_lagging_latest(&session).await;
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
        self.align_lagging_latest(session).await;
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
        let lagging = self.latest_lags().then_some(REACH_RETRY);
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
    use crate::protocol::{LatestChange, RegionOutcome, StageReport};

    fn completed(report: StageReport, unreachable: &[&str]) -> Result<Completion, ProtocolError> {
        Ok(Completion::Completed {
            report,
            unreachable: unreachable.iter().map(|r| r.to_string()).collect(),
        })
    }

    fn report(outcomes: &[(&str, RegionOutcome)]) -> StageReport {
        StageReport {
            project: "P".into(),
            version: Version::new(1, 0, 0),
            key: "P/P@1.0.0".into(),
            md5: "00".into(),
            size: 3,
            dry_run: false,
            regions: outcomes
                .iter()
                .map(|(r, o)| (r.to_string(), o.clone()))
                .collect(),
            stager: String::new(),
            left_behind: Vec::new(),
        }
    }

    fn previous() -> Repair {
        Repair {
            regions: vec!["c".into()],
            last_error: "c: down".into(),
            attempts: 2,
            next_try_seconds: 0,
            part_size: 8 << 20,
        }
    }

    #[test]
    fn backoff_starts_at_10_seconds_doubles_and_stops_at_10_minutes() {
        let waits: Vec<u64> = (0..9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(backoff(u32::MAX), LAST_RETRY);
    }

    #[test]
    fn every_region_holding_it_ends_the_repair() {
        let held = RegionOutcome::AlreadyHeld(LatestChange::Kept(Version::new(1, 0, 0)));
        let result = report(&[
            ("a", held.clone()),
            ("b", held),
            ("c", RegionOutcome::Staged(LatestChange::Moved)),
        ]);
        assert_eq!(
            after_repair(&previous(), completed(result, &[]), 100),
            AfterRepair::Done
        );
    }

    #[test]
    fn a_region_that_refused_the_copy_is_tried_again_later_with_a_longer_wait() {
        let held = RegionOutcome::AlreadyHeld(LatestChange::Moved);
        let result = report(&[
            ("a", held.clone()),
            ("b", held),
            ("c", RegionOutcome::Failed("refused".into())),
        ]);
        let AfterRepair::Again(next) = after_repair(&previous(), completed(result, &[]), 100)
        else {
            panic!("not tried again");
        };
        assert_eq!(next.regions, ["c"]);
        assert_eq!(next.attempts, 3);
        assert_eq!(next.next_try_seconds, 100 + 80);
        assert_eq!(next.part_size, 8 << 20);
        assert!(next.last_error.contains("refused"), "{}", next.last_error);
    }

    #[test]
    fn a_region_that_cannot_answer_is_asked_again_soon_however_many_tries_failed() {
        let held = RegionOutcome::AlreadyHeld(LatestChange::Untouched);
        let result = report(&[
            ("a", held.clone()),
            ("b", held),
            ("c", RegionOutcome::Failed("could not be asked".into())),
        ]);
        let mut long_away = previous();
        long_away.attempts = 20;
        let AfterRepair::Again(next) = after_repair(&long_away, completed(result, &["c"]), 100)
        else {
            panic!("not tried again");
        };
        assert_eq!(next.next_try_seconds, 100 + REACH_RETRY.as_secs());
    }

    #[test]
    fn too_few_regions_answering_is_tried_again_soon_and_uploads_nothing() {
        let undecided = Ok(Completion::Undecided {
            regions: vec!["b".into(), "c".into()],
            reason: "too few regions answered".into(),
        });
        let AfterRepair::Again(next) = after_repair(&previous(), undecided, 0) else {
            panic!("not tried again");
        };
        assert_eq!(next.regions, ["b", "c"]);
        assert_eq!(next.next_try_seconds, REACH_RETRY.as_secs());
    }

    #[test]
    fn a_version_no_majority_holds_ends_the_repair_without_an_upload() {
        let gone = Ok(Completion::NotHeld {
            reason: "absent in a, b".into(),
        });
        assert_eq!(
            after_repair(&previous(), gone, 0),
            AfterRepair::NotHeld {
                reason: "absent in a, b".into()
            }
        );
    }

    #[test]
    fn a_lagging_latest_keeps_the_entry_awaiting_repair() {
        let result = report(&[
            ("a", RegionOutcome::AlreadyHeld(LatestChange::Untouched)),
            ("b", RegionOutcome::AlreadyHeld(LatestChange::Untouched)),
            (
                "c",
                RegionOutcome::Staged(LatestChange::Failed("throttled".into())),
            ),
        ]);
        let AfterRepair::Again(next) = after_repair(&previous(), completed(result, &[]), 0) else {
            panic!("not tried again");
        };
        assert_eq!(next.regions, ["c"]);
    }

    #[test]
    fn other_bytes_in_a_region_are_a_conflict_not_a_retry() {
        let result = report(&[
            ("a", RegionOutcome::AlreadyHeld(LatestChange::Moved)),
            ("b", RegionOutcome::AlreadyHeld(LatestChange::Moved)),
            ("c", RegionOutcome::Taken("other content".into())),
        ]);
        let AfterRepair::Conflict { regions, reason } =
            after_repair(&previous(), completed(result, &[]), 0)
        else {
            panic!("not a conflict");
        };
        assert_eq!(regions, ["c"]);
        assert!(reason.contains("c: other content"), "{reason}");
    }

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
