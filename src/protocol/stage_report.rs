//! What a stage reports: each region's outcome, what happened to `latest` there,
//! whether the regions that hold the artifact make the stage a success, and what a
//! failed stage could not remove again.

use std::fmt;

use semver::Version;

/// What happened to `latest` in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LatestChange {
    /// Set to this version (it was lower, missing or unreadable).
    Moved,
    /// Left at a version at least as high.
    Kept(Version),
    /// Written without reading it first (reading was refused).
    WrittenBlind,
    /// Not touched: the stage did not reach a majority (a failed stage moves `latest`
    /// nowhere), or the region was completed by a repair, which never applies the
    /// stage's rule (see `complete`).
    Untouched,
    /// The artifact is held here, but `latest` could not be written: the region lags,
    /// and the repair sets it to the majority's value.
    Failed(String),
}

/// One region's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionOutcome {
    /// Uploaded here by this stage.
    Staged(LatestChange),
    /// Already here with the same bytes and metadata.
    AlreadyHeld(LatestChange),
    /// A dry run found nothing in the way.
    WouldStage,
    /// The key is taken here by other bytes or other metadata (another stager won).
    Taken(String),
    Failed(String),
    /// Uploaded here, then removed again: the stage reached no majority.
    Withdrawn,
}

impl RegionOutcome {
    pub fn holds(&self) -> bool {
        matches!(
            self,
            RegionOutcome::Staged(_) | RegionOutcome::AlreadyHeld(_)
        )
    }

    /// Whether the region needs more work: it does not hold the artifact, or it does
    /// but its `latest` could not be moved.
    pub fn is_failure(&self) -> bool {
        match self {
            RegionOutcome::Taken(_) | RegionOutcome::Failed(_) | RegionOutcome::Withdrawn => true,
            RegionOutcome::Staged(change) | RegionOutcome::AlreadyHeld(change) => {
                matches!(change, LatestChange::Failed(_))
            }
            RegionOutcome::WouldStage => false,
        }
    }

    /// The same outcome with `latest`'s change in this region set to `change`.
    pub(super) fn with_latest(self, change: LatestChange) -> RegionOutcome {
        match self {
            RegionOutcome::Staged(_) => RegionOutcome::Staged(change),
            RegionOutcome::AlreadyHeld(_) => RegionOutcome::AlreadyHeld(change),
            other => other,
        }
    }
}

impl fmt::Display for RegionOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let latest = |change: &LatestChange| match change {
            LatestChange::Moved | LatestChange::WrittenBlind => "latest moved to it".to_string(),
            LatestChange::Kept(v) => format!("latest kept at {v}"),
            LatestChange::Untouched => "latest not moved".to_string(),
            LatestChange::Failed(why) => format!("latest not moved: {why}"),
        };
        match self {
            RegionOutcome::Staged(c) => write!(f, "staged, {}", latest(c)),
            RegionOutcome::AlreadyHeld(c) => write!(f, "already held, {}", latest(c)),
            RegionOutcome::WouldStage => write!(f, "would stage (dry run)"),
            RegionOutcome::Taken(reason) | RegionOutcome::Failed(reason) => {
                write!(f, "failed: {reason}")
            }
            RegionOutcome::Withdrawn => {
                write!(f, "staged, then removed again: no majority holds it")
            }
        }
    }
}

/// Every region's outcome of one stage.
#[derive(Debug, Clone)]
pub struct StageReport {
    pub project: String,
    pub version: Version,
    pub key: String,
    pub md5: String,
    pub size: u64,
    pub dry_run: bool,
    pub regions: Vec<(String, RegionOutcome)>,
    /// The id the stage's objects carry (see `ownership`).
    pub stager: String,
    /// What a stage that reached no majority created and could not remove again, by
    /// region: "KEY (why)". A later stage given `stager` as an earlier id takes it up.
    pub left_behind: Vec<(String, String)>,
}

impl StageReport {
    pub fn held(&self) -> usize {
        self.regions.iter().filter(|(_, o)| o.holds()).count()
    }

    pub fn failed(&self) -> Vec<&(String, RegionOutcome)> {
        self.regions
            .iter()
            .filter(|(_, o)| o.is_failure())
            .collect()
    }

    /// The regions that do not hold the artifact.
    pub fn failed_regions(&self) -> Vec<String> {
        self.failed()
            .iter()
            .map(|(region, _)| region.clone())
            .collect()
    }

    /// The regions holding other bytes or metadata under the key, and why.
    pub fn conflict(&self) -> (Vec<String>, String) {
        let taken: Vec<&(String, RegionOutcome)> = self
            .regions
            .iter()
            .filter(|(_, o)| matches!(o, RegionOutcome::Taken(_)))
            .collect();
        let reason = taken
            .iter()
            .map(|(region, outcome)| match outcome {
                RegionOutcome::Taken(why) => format!("{region}: {why}"),
                other => format!("{region}: {other}"),
            })
            .collect::<Vec<_>>()
            .join("; ");
        (taken.into_iter().map(|(r, _)| r.clone()).collect(), reason)
    }

    /// Whether some region holds the version with other bytes or metadata: the version
    /// was staged by someone else, and retrying cannot help.
    pub fn taken(&self) -> bool {
        self.regions
            .iter()
            .any(|(_, o)| matches!(o, RegionOutcome::Taken(_)))
    }

    /// "2 of 3 regions hold it".
    pub fn summary(&self) -> String {
        if self.dry_run {
            let ok = self.regions.len() - self.failed().len();
            return format!("{ok} of {} regions would take it", self.regions.len());
        }
        format!("{} of {} regions hold it", self.held(), self.regions.len())
    }

    /// "eu-west-1: staged, latest moved to it; eu-west-2: failed: reason" for every region.
    pub fn outcomes(&self) -> String {
        self.regions
            .iter()
            .map(|(region, outcome)| format!("{region}: {outcome}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// "; left behind in eu-west-1: KEY (why), ..." when a failed stage could not
    /// remove all it created; else empty.
    pub fn left_behind_text(&self) -> String {
        if self.left_behind.is_empty() {
            return String::new();
        }
        let items: Vec<String> = self
            .left_behind
            .iter()
            .map(|(region, what)| format!("{region}: {what}"))
            .collect();
        format!(
            "; left behind, for a retry of the version by the same stager to take up: {}",
            items.join(", ")
        )
    }

    /// "eu-west-2: reason; ..." for the regions that failed.
    pub fn failures(&self) -> String {
        self.failed()
            .iter()
            .map(|(region, outcome)| format!("{region}: {outcome}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub(super) fn succeeded(&self, require_all: bool) -> bool {
        let n = self.regions.len();
        // Under the Python tool's rule a region whose `latest` could not move failed too.
        let ok = if self.dry_run || require_all {
            n - self.failed().len()
        } else {
            self.held()
        };
        if require_all {
            ok == n
        } else {
            ok * 2 > n
        }
    }
}
