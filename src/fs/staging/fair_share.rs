//! How one staging folder is shared when others may write to the mount: each user may
//! hold at most a share of `--staging-size` (so one user's files, abandoned or not,
//! never fill it for everyone), and abandoned files are removed once they have not been
//! written for `ABANDONED_TTL` (so a killed `cp` nobody comes back for does not hold its
//! space for good). Failed stages are kept: closing them again retries.

use std::time::{Duration, SystemTime};

use super::model::{Folders, StagingVersion};
use super::spool::{seconds_of, FileStatus};
use super::state::Staging;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::sync::lock;

/// How long an abandoned file is kept after its last write: long enough to come back
/// to after a weekend, short enough that the spool does not fill with leftovers.
pub const ABANDONED_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

impl Staging {
    /// Each user may hold at most `share` bytes of the spool (a shared mount).
    pub fn with_share(mut self, share: u64) -> Self {
        self.share = Some(share);
        self
    }

    /// ENOSPC when `growth` more bytes of this version's file would take its writer
    /// past the share.
    pub(super) fn check_share(
        &self,
        folders: &Folders,
        project: &str,
        version: &str,
        growth: u64,
    ) -> FsResult<()> {
        let Some(share) = self.share.filter(|_| growth > 0) else {
            return Ok(());
        };
        // One pass over the staging versions (a handful), no allocation per entry.
        let writer_of = |slot: &StagingVersion| {
            slot.state
                .file
                .as_ref()
                .and_then(|file| file.by.as_ref())
                .map(|by| by.uid)
        };
        let Some(uid) = folders
            .versions
            .get(&(project.to_string(), version.to_string()))
            .and_then(writer_of)
        else {
            return Ok(());
        };
        let held: u64 = folders
            .versions
            .values()
            .filter(|slot| writer_of(slot) == Some(uid))
            .map(|slot| slot.bytes.size)
            .sum();
        if held + growth > share {
            return Err(FsError::new(
                FsErrorKind::NoSpace,
                format!(
                    "uid {uid} holds {held} bytes of the staging folder; each user may hold {share} (half of --staging-size on a shared mount)"
                ),
            ));
        }
        Ok(())
    }

    /// Removes the abandoned files not written for `ttl`; returns how many.
    pub fn expire_abandoned(&self, ttl: Duration) -> usize {
        let cutoff = seconds_of(SystemTime::now()).saturating_sub(ttl.as_secs());
        let expired: Vec<(String, String)> = lock(&self.folders)
            .versions
            .iter()
            .filter(|(_, slot)| {
                slot.state.file.as_ref().is_some_and(|file| {
                    matches!(file.status, FileStatus::Abandoned { .. })
                        && file.mtime_seconds < cutoff
                })
            })
            .map(|(key, _)| key.clone())
            .collect();
        let mut removed = 0;
        for (project, version) in expired {
            match self.discard_file(&project, &version) {
                Ok(_) => {
                    tracing::info!(
                        project,
                        version,
                        "abandoned file removed after {} days",
                        ttl.as_secs() / 86_400
                    );
                    removed += 1;
                }
                Err(e) => tracing::warn!(project, version, "abandoned file not removed: {e}"),
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::caller::Caller;
    use crate::protocol::StageOptions;

    fn user(uid: u32) -> Caller {
        Caller {
            uid,
            gid: uid,
            pid: 0,
            command: None,
        }
    }

    fn staging(dir: &std::path::Path) -> Staging {
        Staging::open(&dir.join("staging"), 10_000, StageOptions::default())
            .unwrap()
            .with_share(1_000)
    }

    fn new_file(staging: &Staging, version: &str, by: &Caller) -> std::sync::Arc<std::fs::File> {
        staging.create_project("P").ok();
        staging.create_version("P", version).unwrap();
        staging.create_file("P", version, None, "dist", by).unwrap()
    }

    #[test]
    fn each_user_holds_at_most_the_share() {
        let dir = tempfile::tempdir().unwrap();
        let staging = staging(dir.path());
        let (alice, bob) = (user(5001), user(5002));
        let first = new_file(&staging, "1.0.0", &alice);
        staging.write("P", "1.0.0", &first, 0, &[1; 600]).unwrap();
        let second = new_file(&staging, "2.0.0", &alice);
        let refused = staging
            .write("P", "2.0.0", &second, 0, &[2; 500])
            .unwrap_err();
        assert_eq!(refused.errno(), libc::ENOSPC);
        assert!(refused.message.contains("uid 5001"), "{}", refused.message);
        assert_eq!(
            staging.truncate("P", "2.0.0", 500).unwrap_err().errno(),
            libc::ENOSPC
        );
        let others = new_file(&staging, "3.0.0", &bob);
        staging.write("P", "3.0.0", &others, 0, &[3; 500]).unwrap();
    }

    #[test]
    fn abandoned_files_expire_and_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let staging = staging(dir.path());
        let by = user(5001);
        for version in ["1.0.0", "2.0.0", "3.0.0"] {
            let file = new_file(&staging, version, &by);
            staging.write("P", version, &file, 0, b"bytes").unwrap();
        }
        let abandoned = FileStatus::Abandoned {
            reason: "killed".into(),
        };
        let long_ago = SystemTime::now() - Duration::from_secs(8 * 24 * 3600);
        // Old and abandoned; recent and abandoned; old but failed (a retry may come).
        staging.set_status("P", "1.0.0", abandoned.clone()).unwrap();
        staging.set_mtime("P", "1.0.0", long_ago).unwrap();
        staging.set_status("P", "2.0.0", abandoned).unwrap();
        let failed = FileStatus::Failed {
            reason: "no region".into(),
        };
        staging.set_status("P", "3.0.0", failed).unwrap();
        staging.set_mtime("P", "3.0.0", long_ago).unwrap();

        assert_eq!(staging.expire_abandoned(ABANDONED_TTL), 1);
        let file_of = |v: &str| staging.view("P", v).and_then(|view| view.file);
        assert!(file_of("1.0.0").is_none());
        assert!(file_of("2.0.0").is_some() && file_of("3.0.0").is_some());
    }
}
