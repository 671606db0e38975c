//! Filesystem errors: each carries the errno the application sees and the reason the
//! log shows. This is the one place where failures become errnos; the FUSE adapter
//! never invents one.

use std::sync::Arc;

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

/// A failure: the errno's kind, the reason the log shows, and the error underneath
/// (a protocol or storage error, with its service answer and cause) for whoever wants
/// more than the reason.
#[derive(Debug, Clone)]
pub struct FsError {
    pub kind: FsErrorKind,
    pub message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

pub type FsResult<T> = Result<T, FsError>;

impl FsError {
    pub fn new(kind: FsErrorKind, message: impl Into<String>) -> Self {
        FsError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// The error underneath; the message should already say what it adds.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The same, for an error already shared (one failure that several callers meet):
    /// kept as itself, not behind another `Arc`, so that it downcasts to its own type.
    pub fn with_shared_source(mut self, source: Arc<dyn std::error::Error + Send + Sync>) -> Self {
        self.source = Some(source);
        self
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

    /// How loud the log says it: expected answers (a missing name, a missing attribute,
    /// a size probe) at `DEBUG`, not worth a line by default; what the caller asked
    /// amiss (a change to an immutable version, a name taken...) at `INFO`; what an
    /// operator must see (regions that cannot answer, a full staging folder, a change
    /// refused to another process) at `WARN`.
    pub fn level(&self) -> tracing::Level {
        match self.kind {
            FsErrorKind::NotFound | FsErrorKind::NoAttribute | FsErrorKind::BufferTooSmall => {
                tracing::Level::DEBUG
            }
            FsErrorKind::Unavailable | FsErrorKind::NoSpace | FsErrorKind::AccessDenied => {
                tracing::Level::WARN
            }
            FsErrorKind::TooBig
            | FsErrorKind::Immutable
            | FsErrorKind::Exists
            | FsErrorKind::ReadOnly
            | FsErrorKind::Unsupported
            | FsErrorKind::IsDirectory
            | FsErrorKind::NotDirectory
            | FsErrorKind::Invalid
            | FsErrorKind::BadHandle
            | FsErrorKind::Busy
            | FsErrorKind::NotEmpty
            | FsErrorKind::NameTooLong => tracing::Level::INFO,
        }
    }
}

impl std::error::Error for FsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
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
            ProtocolError::NoQuorum { absent: true, .. } => FsErrorKind::NotFound,
            ProtocolError::Storage(e) if e.is_not_found() => FsErrorKind::NotFound,
            ProtocolError::OversizedMetadata { .. } => FsErrorKind::NoSpace,
            _ => FsErrorKind::Unavailable,
        };
        FsError::new(kind, e.to_string()).with_source(e)
    }
}

impl From<StorageError> for FsError {
    fn from(e: StorageError) -> Self {
        let kind = if e.is_not_found() {
            FsErrorKind::NotFound
        } else {
            FsErrorKind::Unavailable
        };
        FsError::new(kind, e.to_string()).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The errno names of the table "Every errno" at the end of docs/SEMANTICS.md.
    fn errnos_on_the_page() -> Vec<String> {
        let page = include_str!("../../docs/SEMANTICS.md");
        let table = page
            .split("\n## Every errno\n")
            .nth(1)
            .expect("docs/SEMANTICS.md has a section \"Every errno\"");
        table
            .lines()
            .filter_map(|line| line.strip_prefix("| E"))
            .flat_map(|row| {
                let first_cell = row.split('|').next().unwrap_or("");
                format!("E{first_cell}")
                    .split(',')
                    .map(|name| name.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn errno_named(name: &str) -> i32 {
        match name {
            "ENOENT" => libc::ENOENT,
            "ENODATA" => libc::ENODATA,
            "ERANGE" => libc::ERANGE,
            "E2BIG" => libc::E2BIG,
            "EPERM" => libc::EPERM,
            "EEXIST" => libc::EEXIST,
            "EROFS" => libc::EROFS,
            "EOPNOTSUPP" => libc::EOPNOTSUPP,
            "EISDIR" => libc::EISDIR,
            "ENOTDIR" => libc::ENOTDIR,
            "EINVAL" => libc::EINVAL,
            "EBADF" => libc::EBADF,
            "ENOSPC" => libc::ENOSPC,
            "EBUSY" => libc::EBUSY,
            "ENOTEMPTY" => libc::ENOTEMPTY,
            "EIO" => libc::EIO,
            "EACCES" => libc::EACCES,
            "ENAMETOOLONG" => libc::ENAMETOOLONG,
            "ENOTTY" => libc::ENOTTY,
            other => panic!("{other} is not an errno this test knows"),
        }
    }

    /// Each kind and the errno the page promises for it. The match built from the same
    /// list makes a new kind fail to compile here until it is given its row.
    macro_rules! kinds_and_errnos {
        ($($kind:ident => $errno:literal,)*) => {
            const KINDS: &[(FsErrorKind, &str)] = &[$((FsErrorKind::$kind, $errno),)*];
            #[allow(dead_code)]
            fn every_kind_is_listed(kind: FsErrorKind) {
                match kind {
                    $(FsErrorKind::$kind => {})*
                }
            }
        };
    }

    // Where the op tests in `crate::fs::tests` produce each errno of the page (the file,
    // then a test's name, shortened):
    kinds_and_errnos! {
        // lookup: enoent_for_a_version_no_region_holds; latest: a_symlink_to_a_version_that_is_not_staged_is_enoent
        NotFound => "ENOENT",
        // xattr: a_missing_attribute_is_enodata
        NoAttribute => "ENODATA",
        // xattr: a_zero_size_buffer_gets_the_size_and_a_small_one_erange
        BufferTooSmall => "ERANGE",
        // xattr: a_value_over_64_kib_is_e2big
        TooBig => "E2BIG",
        // staging_file: a_second_file_in_a_staging_version_is_eperm; rmdir, unlink, rename, setattr, xattr
        Immutable => "EPERM",
        // mkdir: mkdir_of_a_staged_version_is_eexist; stage_outcomes: close_after_someone_else_staged...
        Exists => "EEXIST",
        // mkdir: mkdir_on_a_read_only_mount_is_erofs
        ReadOnly => "EROFS",
        // xattr: attributes_outside_user_are_eopnotsupp
        Unsupported => "EOPNOTSUPP",
        // read: opening_a_folder_is_eisdir; rename: renaming_the_file_onto_a_hidden_folder_is_eisdir
        IsDirectory => "EISDIR",
        // lookup: enotdir_for_a_name_looked_up_in_a_file_or_in_latest
        NotDirectory => "ENOTDIR",
        // mkdir: mkdir_of_a_version_that_is_not_canonical_semver_is_einval; latest, xattr
        Invalid => "EINVAL",
        // read: a_released_handle_reads_nothing_ebadf
        BadHandle => "EBADF",
        // staging_file: a_write_past_the_staging_size_is_enospc...
        NoSpace => "ENOSPC",
        // stage_outcomes: changes_to_the_file_while_its_stage_runs_are_ebusy
        Busy => "EBUSY",
        // rmdir: rmdir_of_a_staging_version_holding_its_file_is_enotempty
        NotEmpty => "ENOTEMPTY",
        // regions_down: with_two_regions_down_a_missing_project_is_eio, ..._a_stage_is_eio...
        Unavailable => "EIO",
        // staging_file: a_write_from_outside_the_openers_process_tree_is_eacces
        AccessDenied => "EACCES",
        // crate::mount::translate: a_name_over_255_bytes_is_enametoolong (the adapter's check)
        NameTooLong => "ENAMETOOLONG",
    }

    /// On the page but never the model's: fuser answers `ioctl` (the kernel then says
    /// ENOTTY).
    const ANSWERED_OUTSIDE_THE_MODEL: &[&str] = &["ENOTTY"];

    #[test]
    fn every_kind_maps_to_the_errno_of_its_row() {
        for (kind, name) in KINDS {
            let error = FsError::new(*kind, "test");
            assert_eq!(
                error.errno(),
                errno_named(name),
                "{kind:?} should be {name}"
            );
        }
    }

    #[test]
    fn every_errno_of_the_page_is_a_kinds_or_answered_outside_the_model() {
        let page = errnos_on_the_page();
        assert!(page.len() >= 19, "the table was not found whole: {page:?}");
        for name in &page {
            let ours = KINDS.iter().any(|(_, errno)| errno == name);
            assert!(
                ours || ANSWERED_OUTSIDE_THE_MODEL.contains(&name.as_str()),
                "{name} is on the page, but no kind answers it"
            );
        }
    }

    #[test]
    fn every_kinds_errno_is_on_the_page() {
        let page = errnos_on_the_page();
        for (kind, name) in KINDS {
            assert!(
                page.iter().any(|p| p == name),
                "{kind:?} answers {name}, which the page's table does not list"
            );
        }
    }

    #[test]
    fn protocol_errors_keep_absent_apart_from_unreachable() {
        let absent = ProtocolError::ArtifactNotFound {
            project: "P".into(),
            version: "1.0.0".into(),
            absent: true,
            reasons: Vec::new(),
        };
        assert_eq!(FsError::from(absent).errno(), libc::ENOENT);
        let unreachable = ProtocolError::ArtifactNotFound {
            project: "P".into(),
            version: "1.0.0".into(),
            absent: false,
            reasons: Vec::new(),
        };
        assert_eq!(FsError::from(unreachable).errno(), libc::EIO);
        let no_latest = |missing, absent| ProtocolError::NoQuorum {
            project: "P".into(),
            needed: 2,
            missing,
            absent,
            reasons: Vec::new(),
        };
        assert_eq!(FsError::from(no_latest(3, true)).errno(), libc::ENOENT);
        assert_eq!(FsError::from(no_latest(2, false)).errno(), libc::EIO);
        let down = StorageError::unavailable("down");
        assert_eq!(FsError::from(down).errno(), libc::EIO);
        let gone = StorageError::not_found("gone");
        assert_eq!(FsError::from(gone).errno(), libc::ENOENT);
    }

    #[test]
    fn the_error_underneath_is_kept_with_its_answer() {
        use crate::storage::{ErrorKind, ServiceAnswer};
        use std::error::Error as _;
        let denied = StorageError::access_denied("GetObject s3://b/k").with_answer(ServiceAnswer {
            status: 403,
            code: Some("AccessDenied".into()),
            request_id: Some("R2".into()),
            ..Default::default()
        });
        let error = FsError::from(ProtocolError::Storage(denied));
        assert_eq!(error.errno(), libc::EIO);
        assert_eq!(error.level(), tracing::Level::WARN);
        let protocol = error
            .source()
            .and_then(|s| s.downcast_ref::<ProtocolError>());
        let Some(ProtocolError::Storage(storage)) = protocol else {
            panic!("lost: {error:?}");
        };
        assert_eq!(storage.kind(), ErrorKind::AccessDenied);
        assert_eq!(
            storage.answer().and_then(|a| a.request_id.as_deref()),
            Some("R2")
        );
    }
}
