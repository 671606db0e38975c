//! Open files: `open`, `read` and `release`, and the table of handles they share
//! with writes. A file is streamed from the regions, served from the on-disk cache,
//! or read from the spool while it is staging.

use crate::fs::caller::Caller;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::ArtifactFs;
use crate::fs::disk_cache::CachedFile;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::inode::Node;
use crate::fs::lock;
use crate::fs::read::FileReader;

/// An open file: streamed from the regions, served from the on-disk cache, or a
/// staging file in the spool.
pub(in crate::fs) enum OpenFile {
    Streamed(tokio::sync::Mutex<FileReader>),
    Cached(Arc<CachedFile>),
    Spooled(SpooledHandle),
}

/// An opened file: its handle, whether the kernel may keep its pages (its content
/// can never change, and what is read of it is what was staged), and the file the
/// kernel may read it from directly instead of asking the daemon.
#[derive(Debug)]
pub struct Opened {
    pub handle: u64,
    pub keep_pages: bool,
    /// The cache file of a whole artifact that passed its check (`CachedFile::backing`),
    /// when passthrough is on; `None` for every other open, which reads through `read`.
    pub backing: Option<std::fs::File>,
}

/// A handle on a staging file.
pub(in crate::fs) struct SpooledHandle {
    pub project: String,
    pub version: String,
    pub inode: u64,
    pub file: Arc<std::fs::File>,
    pub write: bool,
    /// Its last close was seen (it no longer counts as a writer).
    pub closed: AtomicBool,
    /// Why a write through it failed: what it wrote is incomplete, never staged.
    pub write_failed: Mutex<Option<FsError>>,
    /// The process that opened it (0 when unknown): only its closes are the writer's.
    pub opener: u32,
}

pub(in crate::fs) type Handle = Arc<OpenFile>;

/// The files open through the mount, by handle.
pub(in crate::fs) struct OpenFiles {
    files: Mutex<HashMap<u64, Handle>>,
    next_handle: AtomicU64,
}

impl Default for OpenFiles {
    fn default() -> Self {
        OpenFiles {
            files: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
        }
    }
}

impl OpenFiles {
    fn add(&self, file: OpenFile) -> u64 {
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        lock(&self.files).insert(handle, Arc::new(file));
        handle
    }

    fn get(&self, handle: u64) -> FsResult<Handle> {
        lock(&self.files)
            .get(&handle)
            .cloned()
            .ok_or_else(|| FsError::new(FsErrorKind::BadHandle, format!("no handle {handle}")))
    }

    fn remove(&self, handle: u64) -> Option<Handle> {
        lock(&self.files).remove(&handle)
    }

    /// The processes that opened a staging version's file for writing and still
    /// count as its writers.
    pub(in crate::fs) fn writers_of(&self, project: &str, version: &str) -> Vec<u32> {
        lock(&self.files)
            .values()
            .filter_map(|file| match file.as_ref() {
                OpenFile::Spooled(s)
                    if s.write
                        && !s.closed.load(Ordering::Relaxed)
                        && s.project == project
                        && s.version == version =>
                {
                    Some(s.opener)
                }
                _ => None,
            })
            .collect()
    }
}

impl ArtifactFs {
    /// Opens a file for `caller`; `write` for any access that may change it,
    /// `truncate` for O_TRUNC.
    pub async fn open(
        &self,
        inode: u64,
        write: bool,
        truncate: bool,
        caller: &Caller,
    ) -> FsResult<Opened> {
        let (project, version) = match self.node(inode)? {
            Node::File(project, version) => (project, version),
            Node::Root | Node::Project(_) | Node::Version(..) | Node::Subfolder(..) => {
                return Err(FsError::new(FsErrorKind::IsDirectory, "a folder"))
            }
            Node::Latest(_) | Node::PendingLink(..) => {
                return Err(FsError::new(FsErrorKind::Invalid, "a symlink"))
            }
        };
        if self.is_staging(&project, &version) {
            let handle = self.open_spooled(inode, project, version, write, truncate, caller)?;
            return Ok(Opened {
                handle,
                keep_pages: false,
                backing: None,
            });
        }
        if write {
            return Err(self.refuse_change(&format!("opening {project}@{version} for writing")));
        }
        let pinned = self.pinned(&project, &version).await?;
        // The kernel keeps the pages of a cached file only once its fetch has passed its
        // check: those read while it arrives are dropped at the next open, in case it
        // then failed.
        let (file, keep_pages, backing) = match self.cache.as_ref().filter(|c| c.fits(pinned.size))
        {
            Some(cache) => {
                let cached = cache.open_file(&pinned, &self.session).await?;
                let checked = cached.is_checked();
                let backing = match self.options.passthrough {
                    true => cached.backing(),
                    false => None,
                };
                (OpenFile::Cached(cached), checked, backing)
            }
            None => {
                // Likewise a streamed file's, once some handle read it whole and its
                // bytes passed their check (see `crate::fs::read`).
                let verified = self.read_shared.is_verified(&pinned);
                let reader =
                    FileReader::new(pinned, self.session.clone(), Arc::clone(&self.read_shared));
                (
                    OpenFile::Streamed(tokio::sync::Mutex::new(reader)),
                    verified,
                    None,
                )
            }
        };
        Ok(Opened {
            handle: self.add_handle(file),
            keep_pages,
            backing,
        })
    }

    pub(in crate::fs) fn add_handle(&self, file: OpenFile) -> u64 {
        self.open_files.add(file)
    }

    pub(in crate::fs) fn handle(&self, handle: u64) -> FsResult<Handle> {
        self.open_files.get(handle)
    }

    pub async fn read(&self, handle: u64, offset: u64, size: u32) -> FsResult<Bytes> {
        let file = self.handle(handle)?;
        match file.as_ref() {
            OpenFile::Streamed(reader) => reader.lock().await.read(offset, size).await,
            OpenFile::Cached(cached) => cached.read(offset, size).await,
            OpenFile::Spooled(spooled) => spooled_read(&spooled.file, offset, size),
        }
    }

    pub fn release(&self, handle: u64) {
        let Some(file) = self.open_files.remove(handle) else {
            return;
        };
        if let OpenFile::Spooled(spooled) = file.as_ref() {
            self.writer_closed(spooled);
        }
    }
}

/// Reads a staging file from the spool.
fn spooled_read(file: &std::fs::File, offset: u64, size: u32) -> FsResult<Bytes> {
    use std::os::unix::fs::FileExt;
    let mut buffer = vec![0u8; size as usize];
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FsError::unavailable(format!("reading the spool: {e}"))),
        }
    }
    buffer.truncate(filled);
    Ok(Bytes::from(buffer))
}
