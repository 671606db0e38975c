//! The filesystem model: what the mount shows and how it answers, with no FUSE types
//! (the adapter in `crate::mount::fuse` only translates). Every method is `async` and
//! runs on the tokio runtime, never on the FUSE session threads.
//!
//! ```text
//! MOUNT/                   projects: SSM parameters and bucket keys, merged
//!   {project}/             versions: ListObjectsV2, the union over regions
//!     latest -> {version}  the quorum read of the latest version
//!     {version}/           one staged version (HeadObject, pinned)
//!       {file name}        the artifact: its saved name, else {project}@{version}
//! ```
//!
//! Writes (see `staging`, `writes` and `in_flight`): `mkdir` makes staging folders kept
//! in the spool, visible only in this mount; the one file of a staging version is
//! spooled to disk and staged to every region when its writer closes it.
//!
//! Caching and consistency: a version, once found, is pinned (size, ETag, time,
//! metadata) for the life of the mount and shown with long TTLs, since versions are
//! immutable. Listings, `latest` and names found missing are kept for `metadata_ttl`
//! (and the kernel is told the same TTL), so they may be that much out of date; each
//! map of them, which any user can grow by looking names up, holds a bounded number of
//! entries (see `tree::bounded`), one dropped costing only a request more.

pub mod attr;
mod cache_check;
pub mod caller;
pub mod disk_cache;
pub mod error;
pub mod host;
mod in_flight;
pub mod inode;
mod metadata_attributes;
pub mod pinned;
pub mod read;
pub mod spool;
mod spool_lock;
pub mod staging;
pub mod status;
mod tree;
mod writes;
pub mod xattr;

#[cfg(test)]
mod tests;

pub use attr::{Attr, DirEntry, Entry, FileKind};
pub use caller::Caller;
pub use disk_cache::DiskCache;
pub use error::{FsError, FsErrorKind, FsResult};
pub use inode::{Node, ROOT_INODE};
pub use read::ReadOptions;
pub use staging::{SetMode, Staging};
pub use tree::{ArtifactFs, FsOptions, Opened, StatFs, DEFAULT_METADATA_TTL};
pub use writes::AttrChange;
pub use xattr::XattrReply;

/// Locks a mutex of the model; a panic elsewhere never leaves its data unusable
/// (every change under these locks is a single insert or replace).
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
