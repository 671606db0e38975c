//! The file work under every local call: an I/O error named as S3 would answer it,
//! blocking work moved off the runtime, a folder walked, a finished temporary file put
//! in place.

use std::io;
use std::path::{Path, PathBuf};

use crate::storage::error::{ErrorKind, StorageError};

pub(super) fn io_error(what: &str, err: io::Error) -> StorageError {
    let kind = match err.kind() {
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        // A key longer than a file name may be (S3 takes 1,024 bytes) cannot be in the
        // store: absent, as S3 would say, never a region that is down.
        io::ErrorKind::InvalidFilename => {
            return StorageError::not_found(format!("{what}: too long for the local store"))
                .with_source(err)
        }
        io::ErrorKind::PermissionDenied => ErrorKind::AccessDenied,
        io::ErrorKind::AlreadyExists => {
            return StorageError::precondition_failed(format!("{what}: already exists"))
                .with_source(err)
        }
        _ => ErrorKind::Io,
    };
    StorageError::new(kind, what).with_source(err)
}

pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StorageError::other("local store task failed").with_source(e))?
}

/// Every file under `dir`, at any depth; a missing `dir` holds none.
pub(super) fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), found)?;
        } else if kind.is_file() {
            found.push(entry.path());
        }
    }
    Ok(())
}

/// Moves a temporary file into place; with `exclusive`, fails if `dest` exists.
pub(super) fn place(temporary: &Path, dest: &Path, exclusive: bool) -> io::Result<()> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if exclusive {
        let linked = std::fs::hard_link(temporary, dest);
        let _ = std::fs::remove_file(temporary);
        linked
    } else {
        std::fs::rename(temporary, dest)
    }
}
