//! Open files: `open`, `read` and `release`, over the table of handles (`handles`).

use std::sync::Arc;

use bytes::Bytes;

use super::filesystem::ArtifactFs;
use super::handles::{Handle, OpenFile, Opened};
use crate::fs::caller::Caller;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::inode::Node;
use crate::fs::read::FileReader;

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
            Node::Latest(..) | Node::PendingLink(..) => {
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
        let pinned = self.namespace.pinned(&project, &version).await?;
        // The kernel keeps the pages of a cached file only once its fetch has passed its
        // check: those read while it arrives are dropped at the next open, in case it
        // then failed.
        let (file, keep_pages, backing) = match self
            .cache
            .as_ref()
            .filter(|c| c.fits(pinned.copies.size))
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
                    OpenFile::Streamed(Box::new(tokio::sync::Mutex::new(reader))),
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
            self.handle_closed(spooled);
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
