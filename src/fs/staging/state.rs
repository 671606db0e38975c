//! `Staging`, the write side's state: the spool, the staging folders and versions in
//! memory, the stages in flight, what the repair is due and last saw, and how the spool
//! is opened and taken up at a start. Each sibling module offers one job over it.

use std::sync::{Arc, Mutex};

use crate::protocol::{DigestWriter, PartsRule, Session, StageOptions};

use super::lagging_latest::LaggingLatest;
use super::model::{Folders, StagingVersion};
use super::retries::RepairSeen;
use super::spool::{FileStatus, Spool, SpooledVersion};
use super::stopping::Flight;
use crate::fs::error::{FsError, FsResult};

/// What the stages learned of how each region takes large files, at the spool's top.
pub(super) const SENDING_FILE: &str = "sending.json";
/// Which store the spool stages to, at its top, for operators (`@` is no character
/// of a project name).
const STORE_FILE: &str = "@store.txt";

pub struct Staging {
    pub(super) spool: Spool,
    pub(super) stage_options: StageOptions,
    pub(super) folders: Mutex<Folders>,
    /// What each user may hold of the spool, on a shared mount.
    pub(super) share: Option<u64>,
    pub(super) flight: Flight,
    /// Told when a version starts awaiting repair.
    pub(super) repairs_due: tokio::sync::Notify,
    /// The last background repair attempt of this daemon, for `startifact-fs status`.
    pub(super) last_repair: Mutex<Option<RepairSeen>>,
    /// Projects whose `latest` some region missed (see `lagging_latest`).
    pub(super) lagging_latest: LaggingLatest,
    /// Whether some region takes a file of a size in parts (`sending_to`): files
    /// written have their parts hashed only while it says so.
    pub(super) parts_rule: Option<PartsRule>,
    /// When writes last rewrote `status.json` (see `show_progress`).
    pub(super) progress_shown: Mutex<Option<std::time::Instant>>,
}

impl Staging {
    /// Opens the spool and takes up what it holds: files that were being written when
    /// the daemon stopped are kept, as abandoned; files whose stage was running stay
    /// `staging`, untouchable until `keep_repairing` resumes their stage.
    pub fn open(dir: &std::path::Path, limit: u64, stage_options: StageOptions) -> FsResult<Self> {
        let (spool, found, projects) = Spool::open(dir, limit).map_err(|e| {
            FsError::unavailable(format!(
                "cannot use the staging folder {}: {e}",
                dir.display()
            ))
        })?;
        let mut folders = Folders {
            projects: projects.into_iter().collect(),
            versions: Default::default(),
        };
        for SpooledVersion {
            project,
            version,
            mut state,
            size,
        } in found
        {
            if let Some(file) = state.file.as_mut() {
                if file.status == FileStatus::Writing {
                    file.status = FileStatus::Abandoned {
                        reason: "the daemon stopped before it was staged".into(),
                    };
                    spool.save(&project, &version, &state)?;
                }
            }
            // Its bytes were written when nothing was hashing them.
            let mut digest =
                DigestWriter::new(stage_options.part_size, stage_options.multipart_threshold);
            digest.forget();
            tracing::info!(project, version, "staging folder taken up from the spool");
            let resumes = state
                .file
                .as_ref()
                .is_some_and(|f| f.status == FileStatus::Staging);
            let mut slot = StagingVersion::new(state, size, digest);
            slot.stage.running = resumes;
            folders.versions.insert((project, version), slot);
        }
        if let Some(costs) = &stage_options.sending {
            let from = spool.root().join(SENDING_FILE);
            match spool.read_kept(SENDING_FILE) {
                Ok(Some(bytes)) => costs.take_up(&bytes, &from.display().to_string()),
                Ok(None) => {}
                Err(e) => tracing::warn!("ignoring {}: {e}", from.display()),
            }
        }
        let lagging_latest = LaggingLatest::load(&spool);
        let staging = Staging {
            lagging_latest,
            spool,
            stage_options,
            folders: Mutex::new(folders),
            share: None,
            flight: Default::default(),
            repairs_due: Default::default(),
            last_repair: Default::default(),
            parts_rule: None,
            progress_shown: Mutex::new(None),
        };
        staging.write_status();
        Ok(staging)
    }

    /// Files written from now on are staged to `session`'s regions: when the stage
    /// learns how each takes large files, a file whose size no region takes in parts
    /// is not hashed in parts as it is written (one MD5 pass fewer).
    pub fn sending_to(mut self, session: Session) -> Self {
        if self.stage_options.sending.is_some() {
            let options = self.stage_options.clone();
            self.parts_rule = Some(Arc::new(move |size| session.sends_in_parts(&options, size)));
        }
        self
    }

    pub fn dir(&self) -> &std::path::Path {
        self.spool.root()
    }

    /// Records which store the spool stages to (`@store.txt`, a description the
    /// mount writes); returns what the file said before when it named another store.
    pub fn record_store(&self, description: &str) -> Option<String> {
        let before = match self.spool.read_kept(STORE_FILE) {
            Ok(bytes) => bytes.map(|b| String::from_utf8_lossy(&b).into_owned()),
            Err(e) => Some(format!("(unreadable: {e})")),
        };
        if before.as_deref() == Some(description) {
            return None;
        }
        self.spool.keep(STORE_FILE, description.as_bytes());
        before
    }

    /// How much the spool holds and may still take (what `df` on the mount shows).
    pub fn room(&self) -> Room {
        Room {
            limit: self.spool.limit(),
            used: self.spool.used(),
            disk_free: disk_free(self.spool.root()),
        }
    }

    /// Some region missed a move of `project`'s `latest`: the repair aligns it.
    pub fn align_latest_later(&self, project: &str) {
        if self.lagging_latest.add(project, &self.spool) {
            tracing::info!(
                project,
                "latest did not move in every region: the repair sets them to the majority's value"
            );
        }
        self.repairs_due.notify_one();
    }

    /// Stages running now (their `close()` or `rename` waits for them, or they resume
    /// an interrupted one).
    pub fn stages_in_flight(&self) -> usize {
        self.flight.count()
    }

    /// Waits up to `within` for the stages in flight, then interrupts the rest (and
    /// the repairs): returns how many were interrupted.
    pub async fn stop(&self, within: std::time::Duration) -> usize {
        self.flight.stop(within).await
    }
}

/// The spool's limit, what it holds, and the free space of the disk it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    pub limit: u64,
    pub used: u64,
    /// What the disk under the staging folder has free for an unprivileged user;
    /// `None` when it cannot be asked.
    pub disk_free: Option<u64>,
}

impl Room {
    /// What may still be written: the limit less what is held, and no more than the
    /// disk has (a limit larger than the disk would otherwise promise room that fails
    /// with ENOSPC half way).
    pub fn writable(&self) -> u64 {
        let under_limit = self.limit.saturating_sub(self.used);
        match self.disk_free {
            Some(free) => under_limit.min(free),
            None => under_limit,
        }
    }
}

/// The bytes available to unprivileged users on the filesystem holding `dir`.
fn disk_free(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid C string and `stat` a properly sized buffer.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}
