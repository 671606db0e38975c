//! The table of handles that `open`, `read`, `release` and the writes share, and the
//! staging files in flight (see `in_flight`). A file is streamed from the regions,
//! served from the on-disk cache, or read from the spool while it is staging.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::fs::cache::CachedFile;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::read::FileReader;
use crate::fs::sync::lock;

/// An open file: streamed from the regions, served from the on-disk cache, or a
/// staging file in the spool.
pub(in crate::fs) enum OpenFile {
    /// Boxed: a reader is large beside the other two.
    Streamed(Box<tokio::sync::Mutex<FileReader>>),
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

/// A handle on a staging file, open for reading or for writing.
pub(in crate::fs) struct SpooledHandle {
    pub project: String,
    pub version: String,
    pub inode: u64,
    pub file: Arc<std::fs::File>,
    pub write: bool,
    /// Its opener's last close was seen: it no longer holds the file open (and, open
    /// for writing, no longer counts as a writer).
    pub closed: AtomicBool,
    /// The process that opened it (0 when unknown): only its closes are the opener's.
    pub opener: u32,
}

/// A staging file in flight: from an open for writing until the close of the last
/// descriptor its writers' process tree holds (which stages it or abandons it), or the
/// release of its last handle. Meanwhile every change to it comes from that tree.
#[derive(Debug, Clone, Default)]
pub(in crate::fs) struct InFlight {
    /// The processes that opened it for writing (0 when unknown): its writers' tree is
    /// theirs and their descendants'.
    pub writers: Vec<u32>,
    /// Why a write failed: what it holds is incomplete, never staged.
    pub write_failed: Option<FsError>,
    /// A writer of its tree died by a signal or with a failure status: kept, abandoned.
    pub abandoned: bool,
}

/// A staging version, as the table keys the file in flight in it.
type VersionKey = (String, String);

pub(in crate::fs) type Handle = Arc<OpenFile>;

/// The files open through the mount, by handle.
pub(in crate::fs) struct OpenFiles {
    files: Mutex<HashMap<u64, Handle>>,
    next_handle: AtomicU64,
    in_flight: Mutex<HashMap<VersionKey, InFlight>>,
}

impl Default for OpenFiles {
    fn default() -> Self {
        OpenFiles {
            files: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            in_flight: Mutex::new(HashMap::new()),
        }
    }
}

impl OpenFiles {
    pub(super) fn add(&self, file: OpenFile) -> u64 {
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        lock(&self.files).insert(handle, Arc::new(file));
        handle
    }

    pub(super) fn get(&self, handle: u64) -> FsResult<Handle> {
        lock(&self.files)
            .get(&handle)
            .cloned()
            .ok_or_else(|| FsError::new(FsErrorKind::BadHandle, format!("no handle {handle}")))
    }

    /// Removes a handle; the file's flight ends with its last handle.
    pub(super) fn remove(&self, handle: u64) -> Option<Handle> {
        let mut files = lock(&self.files);
        let removed = files.remove(&handle)?;
        if let OpenFile::Spooled(gone) = removed.as_ref() {
            let still_open = files.values().any(|file| match file.as_ref() {
                OpenFile::Spooled(s) => s.project == gone.project && s.version == gone.version,
                _ => false,
            });
            if !still_open {
                lock(&self.in_flight).remove(&(gone.project.clone(), gone.version.clone()));
            }
        }
        Some(removed)
    }

    /// The file of a staging version is opened for writing by process `opener`: in
    /// flight from now on, if it was not already.
    pub(in crate::fs) fn start_writing(&self, project: &str, version: &str, opener: u32) {
        let mut in_flight = lock(&self.in_flight);
        let flight = in_flight
            .entry((project.to_string(), version.to_string()))
            .or_default();
        if !flight.writers.contains(&opener) {
            flight.writers.push(opener);
        }
    }

    /// The file of a staging version, if it is in flight.
    pub(in crate::fs) fn in_flight(&self, project: &str, version: &str) -> Option<InFlight> {
        lock(&self.in_flight)
            .get(&(project.to_string(), version.to_string()))
            .cloned()
    }

    /// Changes the flight of a staging version's file, if it is in flight.
    pub(in crate::fs) fn update_flight(
        &self,
        project: &str,
        version: &str,
        change: impl FnOnce(&mut InFlight),
    ) {
        if let Some(flight) =
            lock(&self.in_flight).get_mut(&(project.to_string(), version.to_string()))
        {
            change(flight);
        }
    }

    /// Ends the flight of a staging version's file: the close that lands it decides.
    pub(in crate::fs) fn land(&self, project: &str, version: &str) -> Option<InFlight> {
        lock(&self.in_flight).remove(&(project.to_string(), version.to_string()))
    }

    /// Marks closed every handle of a staging version's file that process `opener`
    /// opened (its last descriptor of the file is closed); returns those it closed.
    pub(in crate::fs) fn close_opened_by(
        &self,
        project: &str,
        version: &str,
        opener: u32,
    ) -> Vec<Handle> {
        lock(&self.files)
            .values()
            .filter(|file| match file.as_ref() {
                OpenFile::Spooled(s) => {
                    s.opener == opener
                        && s.project == project
                        && s.version == version
                        && !s.closed.swap(true, Ordering::Relaxed)
                }
                _ => false,
            })
            .cloned()
            .collect()
    }

    /// The handles of a staging version's file not closed yet: (open for writing,
    /// opener).
    pub(in crate::fs) fn still_open(&self, project: &str, version: &str) -> Vec<(bool, u32)> {
        lock(&self.files)
            .values()
            .filter_map(|file| match file.as_ref() {
                OpenFile::Spooled(s)
                    if !s.closed.load(Ordering::Relaxed)
                        && s.project == project
                        && s.version == version =>
                {
                    Some((s.write, s.opener))
                }
                _ => None,
            })
            .collect()
    }
}
