//! Staging through the mount: the staging folders made with `mkdir`, the one file each
//! staging version may hold (its bytes in the spool, see `spool`), its attributes, and
//! the stage that publishes it to every region.
//!
//! When a stage runs (the rule is also in the README):
//! - at the `close()` (FUSE `flush`) of the last descriptor of any kind (read or write)
//!   that the writers' process tree holds of the file (see `crate::fs::calls::in_flight`),
//!   when the file has its final name in the version folder; `close()` returns when the
//!   stage is done, with its errno;
//! - at the `rename` that gives a file written under a hidden name (any name starting
//!   with `.`, such as rsync's `.NAME.XXXXXX`, or inside a hidden subfolder such as
//!   `.~tmp~`) its final name;
//! - never for a writer that is exiting by a signal or with a failure status: its bytes
//!   stay in the spool, reported as abandoned. Metadata cannot change while a stage
//!   runs (EBUSY): the stage publishes what it took at its start.
//!
//! A failed stage keeps the file (closing it again retries, `rm` discards it). A stage
//! that reached a majority but not every region publishes the version and keeps the
//! spool, to repair the others from (`repair`). The file is saved as `staging` before
//! a stage's first request, so a stage the daemon was running when it died or was
//! stopped (`stopping`) is taken up at the next start: completed where a majority of
//! regions already holds it, else ended `failed` with nothing published.
//!
//! Its parts: `model` (what is staging, in memory: the folders, each version's file
//! and its stage), `folders` (`mkdir`, `rmdir` and what the mount lists), `file` (the
//! one file: create, open, write, truncate, rename, `rm`), `attributes` (`user.*` of the
//! folder and the file), `journal` (every change saved to `state.json`, and
//! `status.json`), `stage` (when a stage runs, and the stage itself), `repair` (the
//! background repair and the resumed stages), `lagging_latest` (projects whose
//! `latest` some region missed), `stopping` (SIGTERM's bounded wait).

mod attributes;
mod fair_share;
mod file;
mod folders;
mod journal;
mod lagging_latest;
mod model;
mod repair;
mod spool;
mod spool_lock;
mod stage;
mod stopping;

use std::sync::{Arc, Mutex};

use crate::protocol::{DigestWriter, PartsRule, Session, StageOptions};

use super::error::{FsError, FsResult};
use model::{Folders, StagingVersion};
use spool::{Spool, SpooledVersion};

pub use attributes::{AttributeOwner, SetMode};
pub use fair_share::ABANDONED_TTL;
pub use file::RenameEffect;
pub use model::{FileView, VersionView};
pub use repair::{backoff, RepairSeen, FIRST_RETRY, LAST_RETRY};
pub use spool::{seconds_of, FileStatus, DEFAULT_STAGING_SIZE};
pub use stage::{is_temporary_name, CloseEffect};

/// What the stages learned of how each region takes large files, at the spool's top.
const SENDING_FILE: &str = "sending.json";
/// Which store the spool stages to, at its top, for operators (`@` is no character
/// of a project name).
const STORE_FILE: &str = "@store.txt";

pub struct Staging {
    spool: Spool,
    stage_options: StageOptions,
    folders: Mutex<Folders>,
    /// What each user may hold of the spool, on a shared mount.
    share: Option<u64>,
    flight: stopping::Flight,
    /// Told when a version starts awaiting repair.
    repairs_due: tokio::sync::Notify,
    /// The last background repair attempt of this daemon, for `startifact-fs status`.
    last_repair: Mutex<Option<RepairSeen>>,
    /// Projects whose `latest` some region missed (see `lagging_latest`).
    lagging_latest: Mutex<std::collections::BTreeSet<String>>,
    /// Whether some region takes a file of a size in parts (`sending_to`): files
    /// written have their parts hashed only while it says so.
    parts_rule: Option<PartsRule>,
    /// When writes last rewrote `status.json` (see `show_progress`).
    progress_shown: Mutex<Option<std::time::Instant>>,
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
        let lagging_latest = match spool.read_kept(lagging_latest::LAGGING_LATEST_FILE) {
            Ok(Some(bytes)) => lagging_latest::decode(&bytes),
            Ok(None) => Default::default(),
            Err(e) => {
                tracing::warn!("ignoring {}: {e}", lagging_latest::LAGGING_LATEST_FILE);
                Default::default()
            }
        };
        let staging = Staging {
            lagging_latest: Mutex::new(lagging_latest),
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
