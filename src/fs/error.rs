//! Filesystem errors: each carries the errno the application sees and the reason the
//! log shows. This is the one place where failures become errnos; the FUSE adapter
//! never invents one.

use crate::protocol::Error as ProtocolError;
use crate::storage::StorageError;

/// What went wrong, by the errno it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsErrorKind {
    /// ENOENT: no such project, version or file (or a name that cannot be one).
    NotFound,
    /// ENODATA: no such extended attribute.
    NoAttribute,
    /// ERANGE: the caller's buffer is too small.
    BufferTooSmall,
    /// E2BIG: an attribute value is over the 64 KiB limit.
    TooBig,
    /// EPERM: staged versions are immutable.
    Immutable,
    /// EEXIST: the name is taken.
    Exists,
    /// EROFS: the mount is read-only.
    ReadOnly,
    /// EOPNOTSUPP: an attribute namespace we do not keep.
    Unsupported,
    /// EISDIR / ENOTDIR / EINVAL: the call does not fit the node.
    IsDirectory,
    NotDirectory,
    Invalid,
    /// EBADF: no such open handle.
    BadHandle,
    /// ENOSPC: the staging folder is full (`--staging-size`) or its disk is.
    NoSpace,
    /// EBUSY: a stage of this file is running.
    Busy,
    /// ENOTEMPTY: a staging folder still holds something.
    NotEmpty,
    /// EIO: no region could answer (the log says which failed and why).
    Unavailable,
    /// EACCES: the caller may not make this change (a shared mount: only the daemon's
    /// owner and the stagers may), or may not write a file another process is writing.
    AccessDenied,
    /// ENAMETOOLONG: a name over 255 bytes, refused before any request.
    NameTooLong,
}

#[derive(Debug, Clone)]
pub struct FsError {
    pub kind: FsErrorKind,
    pub message: String,
}

pub type FsResult<T> = Result<T, FsError>;

impl FsError {
    pub fn new(kind: FsErrorKind, message: impl Into<String>) -> Self {
        FsError {
            kind,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(FsErrorKind::NotFound, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(FsErrorKind::Unavailable, message)
    }

    pub fn errno(&self) -> i32 {
        match self.kind {
            FsErrorKind::NotFound => libc::ENOENT,
            FsErrorKind::NoAttribute => libc::ENODATA,
            FsErrorKind::BufferTooSmall => libc::ERANGE,
            FsErrorKind::TooBig => libc::E2BIG,
            FsErrorKind::Immutable => libc::EPERM,
            FsErrorKind::ReadOnly => libc::EROFS,
            FsErrorKind::Exists => libc::EEXIST,
            FsErrorKind::Unsupported => libc::EOPNOTSUPP,
            FsErrorKind::IsDirectory => libc::EISDIR,
            FsErrorKind::NotDirectory => libc::ENOTDIR,
            FsErrorKind::Invalid => libc::EINVAL,
            FsErrorKind::BadHandle => libc::EBADF,
            FsErrorKind::NoSpace => libc::ENOSPC,
            FsErrorKind::Busy => libc::EBUSY,
            FsErrorKind::NotEmpty => libc::ENOTEMPTY,
            FsErrorKind::Unavailable => libc::EIO,
            FsErrorKind::AccessDenied => libc::EACCES,
            FsErrorKind::NameTooLong => libc::ENAMETOOLONG,
        }
    }

    /// Whether the log should show it: expected answers (a missing name, a missing
    /// attribute, a size probe) are not worth a line.
    pub fn is_routine(&self) -> bool {
        matches!(
            self.kind,
            FsErrorKind::NotFound | FsErrorKind::NoAttribute | FsErrorKind::BufferTooSmall
        )
    }
}

impl std::fmt::Display for FsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl From<ProtocolError> for FsError {
    fn from(e: ProtocolError) -> Self {
        let kind = match &e {
            ProtocolError::ProjectName { .. } | ProtocolError::Version { .. } => {
                FsErrorKind::NotFound
            }
            ProtocolError::ArtifactNotFound { absent: true, .. } => FsErrorKind::NotFound,
            ProtocolError::NoQuorum {
                missing, needed, ..
            } if *missing >= *needed => FsErrorKind::NotFound,
            ProtocolError::Storage(StorageError::NotFound(_)) => FsErrorKind::NotFound,
            _ => FsErrorKind::Unavailable,
        };
        FsError::new(kind, e.to_string())
    }
}

impl From<StorageError> for FsError {
    fn from(e: StorageError) -> Self {
        let kind = if e.is_not_found() {
            FsErrorKind::NotFound
        } else {
            FsErrorKind::Unavailable
        };
        FsError::new(kind, e.to_string())
    }
}
