//! Staging through the mount: the staging folders made with `mkdir`, the one file each
//! staging version may hold (its bytes in the spool, see `spool`), its attributes, and
//! the stage that publishes it to every region.
//!
//! When a stage runs (the rule is also in the README):
//! - at the `close()` (FUSE `flush`) of a handle open for writing, when it is the last
//!   descriptor of the file its process holds and no other handle is writing, and the
//!   file has its final name in the version folder; `close()` returns when the stage is
//!   done, with its errno;
//! - at the `rename` that gives a file written under a temporary name (rsync's
//!   `.NAME.XXXXXX`, or inside a hidden subfolder such as `.~tmp~`) its final name;
//! - never for a writer that is exiting by a signal or with a failure status: its bytes
//!   stay in the spool, reported as abandoned.
//!
//! A failed stage keeps the file (closing it again retries, `rm` discards it). A stage
//! that reached a majority but not every region publishes the version and keeps the
//! spool, to repair the others from.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use semver::Version;

use crate::protocol::{
    DigestWriter, Error as ProtocolError, Metadata, Session, StageOptions, StageReport,
    StageSource, UploadedAhead,
};

use super::error::{FsError, FsErrorKind, FsResult};
use super::lock;
use super::spool::{
    seconds_of, time_of, FileState, FileStatus, Spool, SpooledVersion, StatusEntry, VersionState,
};

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

/// The file of a staging version, as the mount shows it.
#[derive(Debug, Clone)]
pub struct FileView {
    pub name: String,
    pub folder: Option<String>,
    pub size: u64,
    pub mtime: SystemTime,
    pub attributes: Metadata,
    pub status: FileStatus,
}

/// A staging version, as the mount shows it.
#[derive(Debug, Clone)]
pub struct VersionView {
    pub created: SystemTime,
    pub attributes: Metadata,
    pub subfolders: Vec<String>,
    pub file: Option<FileView>,
}

/// Whose attributes: the version folder's or the file's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeOwner {
    Folder,
    File,
}

/// How `setxattr` was asked to behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetMode {
    Any,
    /// XATTR_CREATE: fail when it exists.
    Create,
    /// XATTR_REPLACE: fail when it does not.
    Replace,
}

/// What a rename of the staging file means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenameEffect {
    Moved,
    /// It now has its final name: stage it (and rename it back if that fails).
    StageNow,
}

/// What closing a handle did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseEffect {
    Nothing,
    /// Published; `complete` when every region holds it.
    Staged {
        complete: bool,
    },
}

struct Slot {
    state: VersionState,
    size: u64,
    /// Handles open for writing.
    writers: usize,
    /// A stage is running.
    staging: bool,
    data: Option<Arc<std::fs::File>>,
    digest: Arc<Mutex<DigestWriter>>,
    stage_lock: Arc<tokio::sync::Mutex<()>>,
    /// Parts uploaded when the file was closed under a temporary name.
    ahead: Option<UploadedAhead>,
}

impl Slot {
    fn view(&self) -> VersionView {
        VersionView {
            created: time_of(self.state.created_seconds),
            attributes: self.state.attributes.clone(),
            subfolders: self.state.subfolders.iter().cloned().collect(),
            file: self.state.file.as_ref().map(|f| FileView {
                name: f.name.clone(),
                folder: f.folder.clone(),
                size: self.size,
                mtime: time_of(f.mtime_seconds),
                attributes: f.attributes.clone(),
                status: f.status.clone(),
            }),
        }
    }

    /// The attributes of the folder or of the file.
    fn attributes_mut(&mut self, owner: AttributeOwner) -> FsResult<&mut Metadata> {
        match owner {
            AttributeOwner::Folder => Ok(&mut self.state.attributes),
            AttributeOwner::File => match self.state.file.as_mut() {
                Some(file) => Ok(&mut file.attributes),
                None => Err(FsError::not_found("no file")),
            },
        }
    }

    /// EBUSY while a stage of the file runs.
    fn not_staging(&self, project: &str, version: &str) -> FsResult<()> {
        if self.staging {
            return Err(FsError::new(
                FsErrorKind::Busy,
                format!("{project}/{version} is being staged"),
            ));
        }
        Ok(())
    }

    fn published(&self) -> bool {
        self.state
            .file
            .as_ref()
            .is_some_and(|f| f.status.is_published())
    }
}

#[derive(Default)]
struct Tables {
    /// Project folders made by `mkdir` (kept while they hold staging versions or
    /// until `rmdir`).
    projects: BTreeSet<String>,
    versions: BTreeMap<(String, String), Slot>,
}

impl Tables {
    /// The slot of a staging version holding a file that may change now.
    fn file_slot(&mut self, project: &str, version: &str) -> FsResult<&mut Slot> {
        let slot = self
            .versions
            .get_mut(&key(project, version))
            .filter(|slot| !slot.published() && slot.state.file.is_some())
            .ok_or_else(|| FsError::not_found(format!("{project}/{version} holds no file")))?;
        slot.not_staging(project, version)?;
        Ok(slot)
    }
}

/// Everything a stage needs, taken under the lock.
struct StageJob {
    version: Version,
    ahead: Option<UploadedAhead>,
    data_path: PathBuf,
    file_name: String,
    metadata: Metadata,
    digests: Option<crate::protocol::FileDigests>,
}

fn key(project: &str, version: &str) -> (String, String) {
    (project.to_string(), version.to_string())
}

pub struct Staging {
    spool: Spool,
    stage_options: StageOptions,
    tables: Mutex<Tables>,
}

impl Staging {
    /// Opens the spool and takes up what it holds: files that were being written when
    /// the daemon stopped are kept, as abandoned.
    pub fn open(dir: &std::path::Path, limit: u64, stage_options: StageOptions) -> FsResult<Self> {
        let (spool, found, projects) = Spool::open(dir, limit).map_err(|e| {
            FsError::unavailable(format!(
                "cannot use the staging folder {}: {e}",
                dir.display()
            ))
        })?;
        let mut tables = Tables {
            projects: projects.into_iter().collect(),
            versions: BTreeMap::new(),
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
            let mut digest = DigestWriter::new(stage_options.part_size);
            digest.forget();
            tracing::info!(project, version, "staging folder taken up from the spool");
            tables.versions.insert(
                (project, version),
                Slot {
                    state,
                    size,
                    writers: 0,
                    staging: false,
                    data: None,
                    digest: Arc::new(Mutex::new(digest)),
                    stage_lock: Arc::default(),
                    ahead: None,
                },
            );
        }
        let staging = Staging {
            spool,
            stage_options,
            tables: Mutex::new(tables),
        };
        staging.write_status();
        Ok(staging)
    }

    pub fn dir(&self) -> &std::path::Path {
        self.spool.root()
    }

    // ---- what the mount shows ----

    /// Projects with a staging folder here.
    pub fn projects(&self) -> Vec<String> {
        let tables = lock(&self.tables);
        let mut projects = tables.projects.clone();
        projects.extend(
            tables
                .versions
                .iter()
                .filter(|(_, slot)| !slot.published())
                .map(|((p, _), _)| p.clone()),
        );
        projects.into_iter().collect()
    }

    pub fn has_project(&self, project: &str) -> bool {
        self.projects().iter().any(|p| p == project)
    }

    /// The staging (unpublished) versions of a project.
    pub fn versions_of(&self, project: &str) -> Vec<String> {
        lock(&self.tables)
            .versions
            .iter()
            .filter(|((p, _), slot)| p == project && !slot.published())
            .map(|((_, v), _)| v.clone())
            .collect()
    }

    /// Whether a version is staging here (and unpublished).
    pub fn is_staging(&self, project: &str, version: &str) -> bool {
        lock(&self.tables)
            .versions
            .get(&key(project, version))
            .is_some_and(|slot| !slot.published())
    }

    /// A staging version, unless it was published.
    pub fn view(&self, project: &str, version: &str) -> Option<VersionView> {
        lock(&self.tables)
            .versions
            .get(&key(project, version))
            .filter(|slot| !slot.published())
            .map(Slot::view)
    }

    // ---- folders ----

    pub fn create_project(&self, project: &str) -> FsResult<()> {
        self.spool.create_project(project)?;
        lock(&self.tables).projects.insert(project.to_string());
        tracing::info!(project, "staging project folder made");
        Ok(())
    }

    pub fn remove_project(&self, project: &str) -> FsResult<()> {
        let mut tables = lock(&self.tables);
        if tables.versions.keys().any(|(p, _)| p == project) {
            return Err(FsError::new(
                FsErrorKind::NotEmpty,
                format!("{project} holds staging versions"),
            ));
        }
        if !tables.projects.remove(project) {
            return Err(FsError::not_found(format!("no staging folder {project}")));
        }
        self.spool.remove_project(project)
    }

    pub fn create_version(&self, project: &str, version: &str) -> FsResult<()> {
        let state = VersionState {
            created_seconds: seconds_of(SystemTime::now()),
            ..VersionState::default()
        };
        self.spool.create_version(project, version, &state)?;
        let mut tables = lock(&self.tables);
        tables.versions.insert(
            key(project, version),
            Slot {
                state,
                size: 0,
                writers: 0,
                staging: false,
                data: None,
                digest: Arc::new(Mutex::new(DigestWriter::new(self.stage_options.part_size))),
                stage_lock: Arc::default(),
                ahead: None,
            },
        );
        drop(tables);
        tracing::info!(project, version, "staging version folder made");
        self.write_status();
        Ok(())
    }

    /// `rmdir` of an empty staging version folder.
    pub fn remove_version(&self, project: &str, version: &str) -> FsResult<()> {
        let mut tables = lock(&self.tables);
        let slot = tables
            .versions
            .get(&key(project, version))
            .filter(|slot| !slot.published())
            .ok_or_else(|| FsError::not_found(format!("no staging folder {project}/{version}")))?;
        if slot.state.file.is_some() || !slot.state.subfolders.is_empty() {
            return Err(FsError::new(
                FsErrorKind::NotEmpty,
                format!("{project}/{version} is not empty"),
            ));
        }
        tables.versions.remove(&key(project, version));
        drop(tables);
        self.spool.remove_version(project, version)?;
        self.write_status();
        Ok(())
    }

    pub fn create_subfolder(&self, project: &str, version: &str, name: &str) -> FsResult<()> {
        if !name.starts_with('.') {
            return Err(FsError::new(
                FsErrorKind::Immutable,
                format!(
                    "{project}/{version} holds one file; only hidden folders (rsync's .~tmp~) may be made in it"
                ),
            ));
        }
        self.update(project, version, |slot| {
            if slot
                .state
                .file
                .as_ref()
                .is_some_and(|f| f.name == name && f.folder.is_none())
                || !slot.state.subfolders.insert(name.to_string())
            {
                return Err(FsError::new(FsErrorKind::Exists, format!("{name} exists")));
            }
            Ok(())
        })
    }

    pub fn remove_subfolder(&self, project: &str, version: &str, name: &str) -> FsResult<()> {
        self.update(project, version, |slot| {
            if slot
                .state
                .file
                .as_ref()
                .is_some_and(|f| f.folder.as_deref() == Some(name))
            {
                return Err(FsError::new(
                    FsErrorKind::NotEmpty,
                    format!("{project}/{version}/{name} is not empty"),
                ));
            }
            if !slot.state.subfolders.remove(name) {
                return Err(FsError::not_found(format!("no folder {name}")));
            }
            Ok(())
        })
    }

    /// Changes a staging version's state under the lock and saves it.
    fn update<T>(
        &self,
        project: &str,
        version: &str,
        change: impl FnOnce(&mut Slot) -> FsResult<T>,
    ) -> FsResult<T> {
        let mut tables = lock(&self.tables);
        let slot = tables
            .versions
            .get_mut(&key(project, version))
            .filter(|slot| !slot.published())
            .ok_or_else(|| FsError::not_found(format!("no staging folder {project}/{version}")))?;
        let before = slot.state.clone();
        let result = change(slot)?;
        if slot.state != before {
            if let Err(e) = self.spool.save(project, version, &slot.state) {
                slot.state = before;
                return Err(e);
            }
        }
        drop(tables);
        self.write_status();
        Ok(result)
    }

    // ---- the file ----

    /// Creates the version's file (`open` with `O_CREAT` of a name not there yet).
    pub fn create_file(
        &self,
        project: &str,
        version: &str,
        folder: Option<&str>,
        name: &str,
    ) -> FsResult<Arc<std::fs::File>> {
        self.update(project, version, |slot| {
            if let Some(existing) = &slot.state.file {
                if existing.name == name && existing.folder.as_deref() == folder {
                    return Err(FsError::new(FsErrorKind::Exists, format!("{name} exists")));
                }
                return Err(FsError::new(
                    FsErrorKind::Immutable,
                    format!(
                        "{project}/{version} already holds {:?}: a version holds one file (rm it first)",
                        existing.name
                    ),
                ));
            }
            if let Some(folder) = folder {
                if !slot.state.subfolders.contains(folder) {
                    return Err(FsError::not_found(format!("no folder {folder}")));
                }
            }
            let file = match &slot.data {
                Some(file) => Arc::clone(file),
                None => Arc::new(self.spool.open_data(project, version, true)?),
            };
            file.set_len(0)
                .map_err(|e| FsError::unavailable(format!("emptying the spool file: {e}")))?;
            self.spool.release(slot.size);
            slot.size = 0;
            slot.data = Some(Arc::clone(&file));
            *lock(&slot.digest) = DigestWriter::new(self.stage_options.part_size);
            slot.writers += 1;
            slot.state.file = Some(FileState {
                name: name.to_string(),
                folder: folder.map(str::to_string),
                attributes: BTreeMap::new(),
                mtime_seconds: seconds_of(SystemTime::now()),
                status: FileStatus::Writing,
            });
            Ok(file)
        })
    }

    /// Opens the version's file: for reading, or for writing (`truncate` empties it).
    pub fn open_file(
        &self,
        project: &str,
        version: &str,
        write: bool,
        truncate: bool,
    ) -> FsResult<Arc<std::fs::File>> {
        self.update(project, version, |slot| {
            if slot.staging && write {
                return Err(FsError::new(
                    FsErrorKind::Busy,
                    format!("{project}/{version} is being staged"),
                ));
            }
            if slot.state.file.is_none() {
                return Err(FsError::not_found(format!(
                    "{project}/{version} holds no file"
                )));
            }
            let file = match &slot.data {
                Some(file) => Arc::clone(file),
                None => Arc::new(self.spool.open_data(project, version, true)?),
            };
            slot.data = Some(Arc::clone(&file));
            if write {
                if truncate {
                    file.set_len(0).map_err(|e| {
                        FsError::unavailable(format!("emptying the spool file: {e}"))
                    })?;
                    self.spool.release(slot.size);
                    slot.size = 0;
                    lock(&slot.digest).truncate(0);
                }
                slot.writers += 1;
                if let Some(state) = slot.state.file.as_mut() {
                    state.status = FileStatus::Writing;
                }
            }
            Ok(file)
        })
    }

    /// Writes at `offset`, counted against the spool's limit.
    pub fn write(
        &self,
        project: &str,
        version: &str,
        file: &std::fs::File,
        offset: u64,
        data: &[u8],
    ) -> FsResult<u32> {
        let digest = {
            let mut tables = lock(&self.tables);
            let slot = tables.file_slot(project, version)?;
            let end = offset + data.len() as u64;
            let growth = end.saturating_sub(slot.size);
            self.spool.reserve(growth)?;
            slot.size = slot.size.max(end);
            if let Some(state) = slot.state.file.as_mut() {
                state.mtime_seconds = seconds_of(SystemTime::now());
            }
            Arc::clone(&slot.digest)
        };
        file.write_all_at(data, offset).map_err(|e| {
            let kind = if e.raw_os_error() == Some(libc::ENOSPC) {
                FsErrorKind::NoSpace
            } else {
                FsErrorKind::Unavailable
            };
            FsError::new(kind, format!("writing to the spool: {e}"))
        })?;
        lock(&digest).write(offset, data);
        Ok(data.len() as u32)
    }

    /// `truncate`/`ftruncate` of the staging file.
    pub fn truncate(&self, project: &str, version: &str, size: u64) -> FsResult<()> {
        let mut tables = lock(&self.tables);
        let slot = tables.file_slot(project, version)?;
        if size > slot.size {
            self.spool.reserve(size - slot.size)?;
        } else {
            self.spool.release(slot.size - size);
        }
        let file = match &slot.data {
            Some(file) => Arc::clone(file),
            None => Arc::new(self.spool.open_data(project, version, true)?),
        };
        slot.data = Some(Arc::clone(&file));
        file.set_len(size)
            .map_err(|e| FsError::unavailable(format!("resizing the spool file: {e}")))?;
        slot.size = size;
        lock(&slot.digest).truncate(size);
        Ok(())
    }

    /// Sets the file's modification time (`touch`, `cp -p`, rsync).
    pub fn set_mtime(&self, project: &str, version: &str, mtime: SystemTime) -> FsResult<()> {
        self.update(project, version, |slot| {
            if let Some(file) = slot.state.file.as_mut() {
                file.mtime_seconds = seconds_of(mtime);
            }
            Ok(())
        })
    }

    /// `fsync`: the bytes and the state reach the disk.
    pub fn sync(&self, project: &str, version: &str) -> FsResult<()> {
        let (file, state) = {
            let tables = lock(&self.tables);
            let Some(slot) = tables.versions.get(&key(project, version)) else {
                return Ok(());
            };
            (slot.data.clone(), slot.state.clone())
        };
        if let Some(file) = file {
            file.sync_all()
                .map_err(|e| FsError::unavailable(format!("syncing the spool file: {e}")))?;
        }
        self.spool.save(project, version, &state)
    }

    /// A handle open for writing is released.
    pub fn writer_gone(&self, project: &str, version: &str) {
        let mut tables = lock(&self.tables);
        if let Some(slot) = tables.versions.get_mut(&key(project, version)) {
            slot.writers = slot.writers.saturating_sub(1);
        }
    }

    /// Keeps the file without publishing it (its writer was killed, or it awaits the
    /// rename to its final name).
    pub fn set_status(&self, project: &str, version: &str, status: FileStatus) -> FsResult<()> {
        self.update(project, version, |slot| {
            if let Some(file) = slot.state.file.as_mut() {
                file.status = status;
            }
            Ok(())
        })
    }

    /// Renames the file within its version (between the folder and its subfolders).
    pub fn rename_file(
        &self,
        project: &str,
        version: &str,
        from: (Option<&str>, &str),
        to: (Option<&str>, &str),
    ) -> FsResult<RenameEffect> {
        self.update(project, version, |slot| {
            slot.not_staging(project, version)?;
            if let Some(folder) = to.0 {
                if !slot.state.subfolders.contains(folder) {
                    return Err(FsError::not_found(format!("no folder {folder}")));
                }
            }
            if to.0.is_none() && slot.state.subfolders.contains(to.1) {
                return Err(FsError::new(
                    FsErrorKind::IsDirectory,
                    format!("{} is a folder", to.1),
                ));
            }
            let writers = slot.writers;
            let file = slot
                .state
                .file
                .as_mut()
                .filter(|f| f.folder.as_deref() == from.0 && f.name == from.1)
                .ok_or_else(|| FsError::not_found(format!("no file {}", from.1)))?;
            file.folder = to.0.map(str::to_string);
            file.name = to.1.to_string();
            let final_place = to.0.is_none() && !is_temporary_name(to.1);
            Ok(if final_place && writers == 0 {
                RenameEffect::StageNow
            } else {
                RenameEffect::Moved
            })
        })
    }

    /// `rm` of the file: its bytes are dropped (and parts uploaded ahead are returned,
    /// to abort).
    pub fn discard_file(&self, project: &str, version: &str) -> FsResult<Option<UploadedAhead>> {
        let ahead = self.update(project, version, |slot| {
            slot.not_staging(project, version)?;
            slot.state.file = None;
            slot.data = None;
            slot.size = 0;
            Ok(slot.ahead.take())
        })?;
        self.spool.remove_data(project, version)?;
        tracing::info!(project, version, "staging file discarded");
        Ok(ahead)
    }

    /// Drops a kept spool (awaiting repair) of a version that was yanked.
    pub fn forget_published(&self, project: &str, version: &str) -> FsResult<()> {
        let removed = lock(&self.tables)
            .versions
            .remove(&key(project, version))
            .is_some();
        if removed {
            self.spool.remove_version(project, version)?;
            self.write_status();
        }
        Ok(())
    }

    // ---- attributes ----

    pub fn attributes(&self, project: &str, version: &str, owner: AttributeOwner) -> Metadata {
        let Some(view) = self.view(project, version) else {
            return Metadata::new();
        };
        match owner {
            AttributeOwner::Folder => view.attributes,
            AttributeOwner::File => {
                // What will be staged: the folder's, the file's winning.
                let mut all = view.attributes;
                if let Some(file) = view.file {
                    all.extend(file.attributes);
                }
                all
            }
        }
    }

    pub fn set_attribute(
        &self,
        project: &str,
        version: &str,
        owner: AttributeOwner,
        name: &str,
        value: String,
        mode: SetMode,
    ) -> FsResult<()> {
        self.update(project, version, |slot| {
            let attributes = slot.attributes_mut(owner)?;
            match (mode, attributes.contains_key(name)) {
                (SetMode::Create, true) => Err(FsError::new(
                    FsErrorKind::Exists,
                    format!("user.{name} exists"),
                )),
                (SetMode::Replace, false) => Err(FsError::new(
                    FsErrorKind::NoAttribute,
                    format!("no user.{name}"),
                )),
                _ => {
                    attributes.insert(name.to_string(), value);
                    Ok(())
                }
            }
        })
    }

    pub fn remove_attribute(
        &self,
        project: &str,
        version: &str,
        owner: AttributeOwner,
        name: &str,
    ) -> FsResult<()> {
        self.update(project, version, |slot| {
            let attributes = slot.attributes_mut(owner)?;
            attributes
                .remove(name)
                .map(|_| ())
                .ok_or_else(|| FsError::new(FsErrorKind::NoAttribute, format!("no user.{name}")))
        })
    }

    // ---- the stage ----

    /// Whether closing a writer should stage now: the file has its final name and no
    /// other handle is writing it (the closing one no longer counts).
    pub fn ready_to_stage(&self, project: &str, version: &str) -> bool {
        lock(&self.tables)
            .versions
            .get(&key(project, version))
            .filter(|slot| !slot.published() && slot.writers == 0)
            .and_then(|slot| slot.state.file.as_ref())
            .is_some_and(|f| f.folder.is_none() && !is_temporary_name(&f.name))
    }

    /// Stages the version's file to every region; `Nothing` when it was published
    /// meanwhile (by a stage this one waited for).
    pub async fn stage(
        &self,
        session: &Session,
        project: &str,
        version: &str,
    ) -> FsResult<CloseEffect> {
        let stage_lock = match lock(&self.tables).versions.get(&key(project, version)) {
            Some(slot) => Arc::clone(&slot.stage_lock),
            None => return Ok(CloseEffect::Nothing),
        };
        let _one_at_a_time = stage_lock.lock().await;
        let Some(job) = self.begin_stage(project, version)? else {
            return Ok(CloseEffect::Nothing);
        };
        tracing::info!(project, version, file = job.file_name, "staging");
        let source = StageSource {
            path: &job.data_path,
            file_name: Some(job.file_name.clone()),
            digests: job.digests.clone(),
            ahead: job.ahead,
        };
        let result = session
            .stage_file(
                project,
                &job.version,
                source,
                job.metadata.clone(),
                &self.stage_options,
            )
            .await;
        self.finish_stage(project, version, result)
    }

    /// Uploads the parts of a large file closed under a temporary name, so that the
    /// rename that stages it only completes them. Failures are logged: the stage then
    /// uploads in full.
    pub async fn upload_ahead(&self, session: &Session, project: &str, version: &str) {
        let found = lock(&self.tables)
            .versions
            .get(&key(project, version))
            .map(|slot| {
                (
                    Arc::clone(&slot.stage_lock),
                    lock(&slot.digest).finish(),
                    slot.size,
                )
            });
        let Some((stage_lock, digests, size)) = found else {
            return;
        };
        if size <= self.stage_options.multipart_threshold {
            return;
        }
        let _one_at_a_time = stage_lock.lock().await;
        let Ok(parsed) = Version::parse(version) else {
            return;
        };
        let data_path = self.spool.data_path(project, version);
        let source = StageSource {
            path: &data_path,
            file_name: None,
            digests,
            ahead: None,
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
                let stale = match lock(&self.tables).versions.get_mut(&key(project, version)) {
                    Some(slot) => slot.ahead.replace(ahead),
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
        let mut tables = lock(&self.tables);
        let Some(slot) = tables
            .versions
            .get_mut(&key(project, version))
            .filter(|slot| !slot.published())
        else {
            return Ok(None);
        };
        let Some(file) = slot.state.file.as_ref() else {
            return Ok(None);
        };
        let parsed = Version::parse(version)
            .map_err(|e| FsError::new(FsErrorKind::Invalid, format!("{version}: {e}")))?;
        let mut metadata = slot.state.attributes.clone();
        metadata.extend(file.attributes.clone());
        let job = StageJob {
            version: parsed,
            ahead: slot.ahead.take(),
            data_path: self.spool.data_path(project, version),
            file_name: file.name.clone(),
            metadata,
            digests: lock(&slot.digest).finish(),
        };
        slot.staging = true;
        Ok(Some(job))
    }

    fn finish_stage(
        &self,
        project: &str,
        version: &str,
        result: Result<StageReport, ProtocolError>,
    ) -> FsResult<CloseEffect> {
        let (status, outcome) = match result {
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
                (
                    Some(FileStatus::AwaitingRepair { failed }),
                    Ok(CloseEffect::Staged { complete: false }),
                )
            }
            Err(ProtocolError::CannotStage(report)) => {
                let kind = if report.taken() {
                    FsErrorKind::Exists
                } else {
                    FsErrorKind::Unavailable
                };
                let reason = ProtocolError::CannotStage(report).to_string();
                (
                    Some(FileStatus::Failed {
                        reason: reason.clone(),
                    }),
                    Err(FsError::new(kind, reason)),
                )
            }
            Err(e @ ProtocolError::ReservedMetadataKey { .. }) => {
                let reason = e.to_string();
                (
                    Some(FileStatus::Failed {
                        reason: reason.clone(),
                    }),
                    Err(FsError::new(FsErrorKind::Immutable, reason)),
                )
            }
            Err(e) => {
                let reason = format!("could not stage {project}@{version}: {e}");
                (
                    Some(FileStatus::Failed {
                        reason: reason.clone(),
                    }),
                    Err(FsError::unavailable(reason)),
                )
            }
        };
        let mut tables = lock(&self.tables);
        let remove_project = match status {
            None => {
                tables.versions.remove(&key(project, version));
                let others = tables.versions.keys().any(|(p, _)| p == project);
                if !others {
                    tables.projects.remove(project);
                }
                Some(!others)
            }
            Some(status) => {
                if let Some(slot) = tables.versions.get_mut(&key(project, version)) {
                    slot.staging = false;
                    if let Some(file) = slot.state.file.as_mut() {
                        file.status = status;
                    }
                    if let Err(e) = self.spool.save(project, version, &slot.state) {
                        tracing::warn!("{e}");
                    }
                }
                None
            }
        };
        drop(tables);
        if let Some(remove_project) = remove_project {
            self.spool.remove_version(project, version)?;
            if remove_project {
                self.spool.remove_project(project)?;
            }
        }
        self.write_status();
        outcome
    }

    fn write_status(&self) {
        let entries: Vec<StatusEntry> = lock(&self.tables)
            .versions
            .iter()
            .map(|((project, version), slot)| {
                let file = slot.state.file.as_ref();
                let (state, reason) = match file.map(|f| &f.status) {
                    None => ("empty", None),
                    Some(FileStatus::Writing) if slot.staging => ("staging", None),
                    Some(FileStatus::Writing) => ("writing", None),
                    Some(FileStatus::Written) => ("awaiting-rename", None),
                    Some(FileStatus::Abandoned { reason }) => ("abandoned", Some(reason.clone())),
                    Some(FileStatus::Failed { reason }) => ("failed", Some(reason.clone())),
                    Some(FileStatus::AwaitingRepair { failed }) => {
                        ("awaiting-repair", Some(failed.clone()))
                    }
                };
                StatusEntry {
                    project: project.clone(),
                    version: version.clone(),
                    file: file.map(|f| f.name.clone()),
                    size: slot.size,
                    state: state.to_string(),
                    reason,
                }
            })
            .collect();
        self.spool.write_status(&entries);
    }
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
