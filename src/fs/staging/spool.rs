//! The spool: staging folders and the bytes written into them, on local disk
//! (`--staging-dir`), so that nothing written through the mount is lost to a failed
//! stage, a killed writer or a restart of the daemon.
//!
//! ```text
//! STAGING_DIR/
//!   @lock                        held by the daemon using the spool, with its PID (`spool_lock`)
//!   status.json                  every entry below and its state, for people and scripts
//!   {project}/                   the staging versions of a project
//!     @made-by-mkdir             there when the project folder was made by `mkdir`
//!     {version}/                 a staging version folder
//!       state.json               names, attributes and the file's state
//!       data                     the file's bytes
//! ```
//!
//! The folder is private (`PrivateDir`): `0700` folders and `0600` files of the daemon's
//! user, every name opened relative to it and never through a link, so that nobody
//! else can read the bytes or make the daemon write elsewhere.
//!
//! State files are replaced atomically (write, fsync, rename). The bytes of `data` are
//! durable once the writer called `fsync`, or once the stage that publishes them is done.
//! Sizes are counted against a limit: writing past it answers ENOSPC.

use crate::fs::caller::Caller;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::spool_lock::SpoolLock;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::host::private_dir::{Access, PrivateDir};

/// The default size limit of the spool.
pub const DEFAULT_STAGING_SIZE: u64 = 10 << 30;

const STATE_FILE: &str = "state.json";
const DATA_FILE: &str = "data";
const STATUS_FILE: &str = "status.json";
/// In a project's folder made by `mkdir` (which stays until `rmdir`): the folder of a
/// project that only holds staging versions goes with the last of them, so the next
/// start must tell the two apart. `@` is in no project name nor version.
const MADE_BY_MKDIR: &str = "@made-by-mkdir";

/// Where the file of a staging version stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum FileStatus {
    /// Open for writing (or the daemon stopped while it was).
    Writing,
    /// Complete, and its stage has begun: saved before the stage's first request, so
    /// that a daemon killed (or stopped) during the stage finishes it at its next start.
    Staging,
    /// Closed under a temporary name (rsync's `.NAME.XXXXXX`, or in a subfolder): staged
    /// when renamed into place.
    Written,
    /// Its writer was killed or failed: nothing was published.
    Abandoned { reason: String },
    /// The stage failed: nothing usable was published. Closing it again retries.
    Failed { reason: String },
    /// Published to a majority of regions; kept to repair the regions that missed it.
    AwaitingRepair(Repair),
    /// Published, but a region holds other bytes or metadata under its key: never
    /// overwritten, kept, checked again at each start.
    Conflict {
        regions: Vec<String>,
        reason: String,
    },
}

impl FileStatus {
    /// Published: the version is an ordinary staged version now.
    pub fn is_published(&self) -> bool {
        matches!(
            self,
            FileStatus::AwaitingRepair(_) | FileStatus::Conflict { .. }
        )
    }
}

/// The repair of a version some regions missed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repair {
    /// The regions that do not hold it yet (empty: not known, every region is checked).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Why they failed last.
    #[serde(default, alias = "failed")]
    pub last_error: String,
    /// Repairs tried so far.
    #[serde(default)]
    pub attempts: u32,
    /// When the next one is due (seconds since the epoch).
    #[serde(default)]
    pub next_try_seconds: u64,
    /// The part size of the stage, so that the repair's parts (and ETags) match.
    #[serde(default)]
    pub part_size: u64,
}

/// The file of a staging version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    pub name: String,
    /// The subfolder of the version folder it is in (rsync's `.~tmp~`), if any.
    #[serde(default)]
    pub folder: Option<String>,
    /// `user.*` attributes set on the file, without the `user.` prefix.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub mtime_seconds: u64,
    /// Who last opened it for writing: its stager, shown as its owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Caller>,
    #[serde(flatten)]
    pub status: FileStatus,
}

/// What `state.json` keeps of a staging version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionState {
    /// `user.*` attributes set on the version folder, without the prefix.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub subfolders: BTreeSet<String>,
    #[serde(default)]
    pub created_seconds: u64,
    #[serde(default)]
    pub file: Option<FileState>,
    /// The ids of this version's stages, oldest first (at most `KEPT_STAGE_IDS`), each
    /// saved before its first request: objects carrying one are this mount's own, which
    /// a later stage or repair takes up (see `protocol::Stager`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<String>,
}

/// How many stage ids a version keeps.
pub const KEPT_STAGE_IDS: usize = 16;

impl VersionState {
    /// Remembers the id of a stage about to begin.
    pub fn remember_stage(&mut self, id: &str) {
        if !self.stages.iter().any(|s| s == id) {
            self.stages.push(id.to_string());
        }
        let extra = self.stages.len().saturating_sub(KEPT_STAGE_IDS);
        self.stages.drain(..extra);
    }
}

/// A staging version found in the spool at start.
#[derive(Debug, Clone)]
pub struct SpooledVersion {
    pub project: String,
    pub version: String,
    pub state: VersionState,
    pub size: u64,
}

/// One line of `status.json`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusEntry {
    pub project: String,
    pub version: String,
    pub file: Option<String>,
    pub size: u64,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who wrote the file (uid, gid, pid, command).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<Caller>,
    /// Awaiting repair or in conflict: the regions concerned.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Awaiting repair: repairs tried so far, and when the next is due (seconds since
    /// the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_try_seconds: Option<u64>,
}

pub fn seconds_of(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn time_of(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

fn io_error(what: impl std::fmt::Display, e: std::io::Error) -> FsError {
    let kind = if e.raw_os_error() == Some(libc::ENOSPC) {
        FsErrorKind::NoSpace
    } else {
        FsErrorKind::Unavailable
    };
    FsError::new(kind, format!("{what}: {e}"))
}

pub struct Spool {
    root: PrivateDir,
    limit: u64,
    used: AtomicU64,
    /// Held while a state file is replaced: its temporary `{name}.new` is created
    /// exclusively, so two replacements must not overlap.
    replacing: Mutex<()>,
    /// The folder is this spool's alone while it is open.
    _lock: SpoolLock,
}

impl Spool {
    /// Opens (creating) the spool folder, refusing one that is not private (see
    /// `PrivateDir`) or that another daemon holds (see `SpoolLock`: refused before
    /// anything in it is read), and reads what it holds: its staging versions, and
    /// the projects whose folder was made by `mkdir` (marked so, or left empty by an
    /// older daemon, which did not mark them); its folders and files are tightened
    /// to `0700` and `0600` on the way.
    pub fn open(
        root: &Path,
        limit: u64,
    ) -> std::io::Result<(Spool, Vec<SpooledVersion>, Vec<String>)> {
        let root = PrivateDir::open(root)?;
        let lock = SpoolLock::take(&root)?;
        let mut versions = Vec::new();
        let mut projects = Vec::new();
        for project in root.entries()? {
            let Some(project_name) = project.name.to_str().map(str::to_string) else {
                continue;
            };
            if !project.is_folder {
                continue;
            }
            let project_dir = match root.folder(&project_name, false) {
                Ok(dir) => dir,
                Err(e) => {
                    tracing::warn!(
                        "ignoring {}: {e}",
                        root.path().join(&project_name).display()
                    );
                    continue;
                }
            };
            let entries = project_dir.entries()?;
            let marked = entries.iter().any(|e| e.name == MADE_BY_MKDIR);
            if marked || entries.is_empty() {
                projects.push(project_name.clone());
            }
            for version in entries {
                let Some(version_name) = version.name.to_str().map(str::to_string) else {
                    continue;
                };
                if version_name == MADE_BY_MKDIR {
                    continue;
                }
                let place = project_dir.path().join(&version_name);
                let found = project_dir
                    .folder(&version_name, false)
                    .and_then(|dir| read_version(&dir).map(|found| (dir, found)));
                let (version_dir, state) = match found {
                    Ok(found) => found,
                    Err(e) => {
                        tracing::warn!(
                            "ignoring the staging folder {}: {STATE_FILE}: {e}",
                            place.display()
                        );
                        continue;
                    }
                };
                let size = match version_dir.open_file(DATA_FILE, Access::Read) {
                    Ok(file) => file.metadata()?.len(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                    Err(e) => {
                        tracing::warn!("ignoring {}/{DATA_FILE}: {e}", place.display());
                        0
                    }
                };
                versions.push(SpooledVersion {
                    project: project_name.clone(),
                    version: version_name,
                    state,
                    size,
                });
            }
        }
        let used = versions.iter().map(|v| v.size).sum();
        let spool = Spool {
            root,
            limit,
            used: AtomicU64::new(used),
            replacing: Mutex::new(()),
            _lock: lock,
        };
        Ok((spool, versions, projects))
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    fn version_path(&self, project: &str, version: &str) -> PathBuf {
        self.root().join(project).join(version)
    }

    /// Where the data file is, for what reads it by its path (the stage). The spool
    /// folder is private, so nothing between it and the file can be swapped by another
    /// user.
    pub fn data_path(&self, project: &str, version: &str) -> PathBuf {
        self.version_path(project, version).join(DATA_FILE)
    }

    fn version_dir(&self, project: &str, version: &str) -> std::io::Result<PrivateDir> {
        self.root.folder(project, false)?.folder(version, false)
    }

    /// Makes a project's folder, marked as made by `mkdir`.
    pub fn create_project(&self, project: &str) -> FsResult<()> {
        self.root
            .folder(project, true)
            .and_then(|dir| match dir.create_new(MADE_BY_MKDIR) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                made => made.map(drop),
            })
            .map_err(|e| io_error(self.root().join(project).display(), e))
    }

    /// Removes a project's folder once it holds no staging version.
    pub fn remove_project(&self, project: &str) -> FsResult<()> {
        let unmarked = match self.root.folder(project, false) {
            Ok(dir) => dir.remove_file(MADE_BY_MKDIR),
            Err(e) => Err(e),
        };
        match unmarked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(self.root().join(project).display(), e)),
        }
        match self.root.remove_folder(project) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(self.root().join(project).display(), e)),
        }
    }

    pub fn create_version(
        &self,
        project: &str,
        version: &str,
        state: &VersionState,
    ) -> FsResult<()> {
        self.root
            .folder(project, true)
            .and_then(|dir| dir.folder(version, true))
            .map_err(|e| io_error(self.version_path(project, version).display(), e))?;
        self.save(project, version, state)
    }

    /// Replaces `state.json` atomically and durably.
    pub fn save(&self, project: &str, version: &str, state: &VersionState) -> FsResult<()> {
        let path = self.version_path(project, version).join(STATE_FILE);
        let bytes = serde_json::to_vec_pretty(state)
            .map_err(|e| FsError::unavailable(format!("encoding {}: {e}", path.display())))?;
        let _one_at_a_time = crate::fs::sync::lock(&self.replacing);
        self.version_dir(project, version)
            .and_then(|dir| dir.replace(STATE_FILE, &bytes))
            .map_err(|e| io_error(path.display(), e))
    }

    /// Drops a staging version and its bytes.
    pub fn remove_version(&self, project: &str, version: &str) -> FsResult<()> {
        let project_dir = match self.root.folder(project, false) {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error(self.root().join(project).display(), e)),
        };
        let size = self
            .version_dir(project, version)
            .and_then(|dir| dir.file_size(DATA_FILE))
            .ok()
            .flatten()
            .unwrap_or(0);
        match project_dir.remove_all(version) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(self.version_path(project, version).display(), e)),
        }
        self.release(size);
        Ok(())
    }

    /// Opens the data file, creating it empty (`0600`) when asked; never through a link.
    pub fn open_data(&self, project: &str, version: &str, create: bool) -> FsResult<std::fs::File> {
        let access = if create {
            Access::ReadWriteCreate
        } else {
            Access::ReadWrite
        };
        self.version_dir(project, version)
            .and_then(|dir| dir.open_file(DATA_FILE, access))
            .map_err(|e| io_error(self.data_path(project, version).display(), e))
    }

    /// Drops the data file (its bytes no longer count).
    pub fn remove_data(&self, project: &str, version: &str) -> FsResult<()> {
        let path = self.data_path(project, version);
        let dir = match self.version_dir(project, version) {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error(path.display(), e)),
        };
        let size = dir.file_size(DATA_FILE).ok().flatten().unwrap_or(0);
        match dir.remove_file(DATA_FILE) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(path.display(), e)),
        }
        self.release(size);
        Ok(())
    }

    /// Counts `bytes` more against the limit, or answers ENOSPC.
    pub fn reserve(&self, bytes: u64) -> FsResult<()> {
        let mut current = self.used.load(Ordering::Relaxed);
        loop {
            let next = current.saturating_add(bytes);
            if next > self.limit {
                return Err(FsError::new(
                    FsErrorKind::NoSpace,
                    format!(
                        "the staging folder {} is full: {current} of {} bytes used (--staging-size)",
                        self.root().display(),
                        self.limit
                    ),
                ));
            }
            match self
                .used
                .compare_exchange(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }

    pub fn release(&self, bytes: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(bytes))
            });
    }

    /// Rewrites `status.json`; a failure is logged, not fatal.
    pub fn write_status(&self, entries: &[StatusEntry]) {
        let document = serde_json::json!({
            "used_bytes": self.used(),
            "limit_bytes": self.limit,
            "versions": entries,
        });
        let result = serde_json::to_vec_pretty(&document)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                let _one_at_a_time = crate::fs::sync::lock(&self.replacing);
                self.root.replace(STATUS_FILE, &bytes)
            });
        if let Err(e) = result {
            tracing::warn!(
                "cannot write {}: {e}",
                self.root().join(STATUS_FILE).display()
            );
        }
    }
}

impl Spool {
    /// The bytes of a small file the daemon keeps at the spool's top (such as what it
    /// learned of each region): None when there is none; an error for a file that is
    /// not a regular file of at most 1 MiB.
    pub fn read_kept(&self, name: &str) -> std::io::Result<Option<Vec<u8>>> {
        const LIMIT: u64 = 1 << 20;
        let file = match self.root.open_file(name, Access::Read) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let metadata = file.metadata()?;
        if !metadata.is_file() || metadata.len() > LIMIT {
            return Err(std::io::Error::other("not a regular file of at most 1 MiB"));
        }
        let mut bytes = Vec::new();
        file.take(LIMIT).read_to_end(&mut bytes)?;
        Ok(Some(bytes))
    }

    /// Replaces such a file atomically and durably; a failure is logged, not fatal.
    pub fn keep(&self, name: &str, bytes: &[u8]) {
        let _one_at_a_time = crate::fs::sync::lock(&self.replacing);
        if let Err(e) = self.root.replace(name, bytes) {
            tracing::warn!("cannot write {}: {e}", self.root().join(name).display());
        }
    }
}

/// Reads a version's `state.json` (tightened to `0600` on the way).
fn read_version(dir: &PrivateDir) -> std::io::Result<VersionState> {
    let mut bytes = Vec::new();
    dir.open_file(STATE_FILE, Access::Read)?
        .read_to_end(&mut bytes)?;
    serde_json::from_slice(&bytes).map_err(std::io::Error::other)
}

#[cfg(test)]
#[path = "spool_tests.rs"]
mod tests;
