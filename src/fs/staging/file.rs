//! The one file of a staging version: created, opened, written and truncated in the
//! spool (counted against its limit), renamed between the version folder and its
//! hidden subfolders, synced, and discarded by `rm`.

use crate::fs::caller::Caller;
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::protocol::UploadedAhead;

use super::model::{key, SpooledBytes};
use super::spool::{seconds_of, FileState, FileStatus, Spool};
use super::stage::has_final_name;
use super::state::Staging;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::sync::lock;

/// How often writes rewrite `status.json` with the size written so far.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// What a rename of the staging file means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenameEffect {
    Moved,
    /// It now has its final name: stage it (and rename it back if that fails).
    StageNow,
}

impl SpooledBytes {
    /// The spool file, opened (and kept open) at its first use.
    fn data_file(
        &mut self,
        spool: &Spool,
        project: &str,
        version: &str,
    ) -> FsResult<Arc<std::fs::File>> {
        if let Some(file) = &self.data {
            return Ok(Arc::clone(file));
        }
        let file = Arc::new(spool.open_data(project, version, true)?);
        self.data = Some(Arc::clone(&file));
        Ok(file)
    }

    /// Empties the spool file, giving its bytes back to the spool's limit.
    fn empty(&mut self, spool: &Spool, file: &std::fs::File) -> FsResult<()> {
        file.set_len(0)
            .map_err(|e| FsError::unavailable(format!("emptying the spool file: {e}")))?;
        spool.release(self.size);
        self.size = 0;
        lock(&self.digest).truncate(0);
        Ok(())
    }
}

impl Staging {
    /// Creates the version's file (`open` with `O_CREAT` of a name not there yet).
    pub fn create_file(
        &self,
        project: &str,
        version: &str,
        folder: Option<&str>,
        name: &str,
        by: &Caller,
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
            let file = slot.bytes.data_file(&self.spool, project, version)?;
            slot.bytes.empty(&self.spool, &file)?;
            slot.bytes.writers += 1;
            slot.state.file = Some(FileState {
                name: name.to_string(),
                folder: folder.map(str::to_string),
                attributes: BTreeMap::new(),
                mtime_seconds: seconds_of(SystemTime::now()),
                status: FileStatus::Writing,
                by: Some(by.clone()),
            });
            Ok(file)
        })
    }

    /// Opens the version's file: for reading, or for writing by `writer` (`truncate`
    /// empties it).
    pub fn open_file(
        &self,
        project: &str,
        version: &str,
        writer: Option<&Caller>,
        truncate: bool,
    ) -> FsResult<Arc<std::fs::File>> {
        let write = writer.is_some();
        self.update(project, version, |slot| {
            if write {
                slot.not_staging(project, version)?;
            }
            if slot.state.file.is_none() {
                return Err(FsError::not_found(format!(
                    "{project}/{version} holds no file"
                )));
            }
            let file = slot.bytes.data_file(&self.spool, project, version)?;
            if write {
                if truncate {
                    slot.bytes.empty(&self.spool, &file)?;
                }
                slot.bytes.writers += 1;
                if let Some(state) = slot.state.file.as_mut() {
                    state.status = FileStatus::Writing;
                    state.by = writer.cloned();
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
            let mut folders = lock(&self.folders);
            let end = offset + data.len() as u64;
            let growth = end.saturating_sub(folders.file_slot(project, version)?.bytes.size);
            self.check_share(&folders, project, version, growth)?;
            let slot = folders.file_slot(project, version)?;
            self.spool.reserve(growth)?;
            slot.bytes.size = slot.bytes.size.max(end);
            if let Some(state) = slot.state.file.as_mut() {
                state.mtime_seconds = seconds_of(SystemTime::now());
            }
            Arc::clone(&slot.bytes.digest)
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
        self.show_progress_now_and_then();
        Ok(data.len() as u32)
    }

    /// Rewrites `status.json`, so that it shows the size written so far (at a close
    /// that does not stage).
    pub fn show_progress(&self) {
        *lock(&self.progress_shown) = Some(Instant::now());
        self.write_status();
    }

    /// `show_progress` at most once every `PROGRESS_EVERY` while writes come.
    fn show_progress_now_and_then(&self) {
        let due = {
            let mut shown = lock(&self.progress_shown);
            match *shown {
                Some(at) if at.elapsed() < PROGRESS_EVERY => false,
                _ => {
                    *shown = Some(Instant::now());
                    true
                }
            }
        };
        if due {
            self.write_status();
        }
    }

    /// Whether the file has its final name: in the version folder, not hidden.
    pub fn has_final_name(&self, project: &str, version: &str) -> bool {
        lock(&self.folders)
            .unpublished(project, version)
            .and_then(|slot| slot.state.file.as_ref())
            .is_some_and(has_final_name)
    }

    /// `truncate`/`ftruncate` of the staging file.
    pub fn truncate(&self, project: &str, version: &str, size: u64) -> FsResult<()> {
        let mut folders = lock(&self.folders);
        let growth = size.saturating_sub(folders.file_slot(project, version)?.bytes.size);
        self.check_share(&folders, project, version, growth)?;
        let bytes = &mut folders.file_slot(project, version)?.bytes;
        if size > bytes.size {
            self.spool.reserve(size - bytes.size)?;
        } else {
            self.spool.release(bytes.size - size);
        }
        let file = bytes.data_file(&self.spool, project, version)?;
        file.set_len(size)
            .map_err(|e| FsError::unavailable(format!("resizing the spool file: {e}")))?;
        bytes.size = size;
        lock(&bytes.digest).truncate(size);
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
            let folders = lock(&self.folders);
            let Some(slot) = folders.versions.get(&key(project, version)) else {
                return Ok(());
            };
            (slot.bytes.data.clone(), slot.state.clone())
        };
        if let Some(file) = file {
            file.sync_all()
                .map_err(|e| FsError::unavailable(format!("syncing the spool file: {e}")))?;
        }
        self.spool.save(project, version, &state)
    }

    /// A handle open for writing is released.
    pub fn writer_gone(&self, project: &str, version: &str) {
        let mut folders = lock(&self.folders);
        if let Some(slot) = folders.versions.get_mut(&key(project, version)) {
            slot.bytes.writers = slot.bytes.writers.saturating_sub(1);
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
            let writers = slot.bytes.writers;
            let file = slot
                .state
                .file
                .as_mut()
                .filter(|f| f.folder.as_deref() == from.0 && f.name == from.1)
                .ok_or_else(|| FsError::not_found(format!("no file {}", from.1)))?;
            file.folder = to.0.map(str::to_string);
            file.name = to.1.to_string();
            Ok(if has_final_name(file) && writers == 0 {
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
            slot.bytes.data = None;
            slot.bytes.size = 0;
            Ok(slot.stage.ahead.take())
        })?;
        self.spool.remove_data(project, version)?;
        tracing::info!(project, version, "staging file discarded");
        Ok(ahead)
    }
}
