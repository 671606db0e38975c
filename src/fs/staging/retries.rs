//! When a completion is tried again, and what one attempt made of a version (for
//! `startifact-fs status`).
//!
//! When: a region that could not answer is asked again every `REACH_RETRY` (nothing is
//! sent to it until it answers), and at once when its breaker closes (it answered some
//! request again); a region that answered but refused the copy is retried after a wait
//! that doubles from `FIRST_RETRY` up to `LAST_RETRY`. Every entry is tried again at
//! each start, whatever its schedule said.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::protocol::{Completion, Error as ProtocolError};

use super::spool::Repair;

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
    pub(super) fn of(
        project: &str,
        version: &str,
        attempt: u32,
        after: &AfterRepair,
    ) -> RepairSeen {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{LatestChange, RegionOutcome, StageReport};
    use semver::Version;

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
}
