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
//! Writes (see `staging`, and `writes` and `in_flight` in `calls`): `mkdir` makes
//! staging folders kept in the spool, visible only in this mount; the one file of a
//! staging version is spooled to disk and staged to every region when its writer
//! closes it.
//!
//! Caching and consistency: a version, once found, is pinned (size, ETag, time,
//! metadata) for the life of the mount and shown with long TTLs, since versions are
//! immutable. Listings, `latest` and names found missing are kept for `metadata_ttl`
//! (and the kernel is told the same TTL), so they may be that much out of date; each
//! map of them, which any user can grow by looking names up, holds a bounded number of
//! entries (see `bounded`), one dropped costing only a request more.
//!
//! Its wings, each the owner of its state, offering methods rather than fields:
//!
//! - `calls`: `ArtifactFs`, the face the FUSE adapter talks to, one module for each
//!   family of calls; it holds the wings below and routes each call through them;
//! - `namespace`: what exists (projects, versions, `latest`, pinned versions, names
//!   found missing, inode numbers) and what the mount keeps of it; the write side
//!   tells it what changed;
//! - `read`: streaming a pinned version's bytes from the regions, checked;
//! - `cache`: the on-disk cache of whole artifacts and its check;
//! - `staging`: the write side, with its spool: staging folders, the staging file,
//!   its stage to every region and the completion of stages some region missed;
//! - `host`: the host's files and processes (private folders, checks of a folder,
//!   who a process is), which `crate::mount` uses too.
//!
//! Beside them: `stat` (stat attributes), `xattr` (which extended attributes are
//! shown, and their limits), `inode`, `pinned`, `caller`, `error` (the errno table),
//! `bounded` and `sync`.

pub mod bounded;
pub mod cache;
pub mod caller;
pub mod calls;
pub mod error;
pub mod host;
pub mod inode;
pub mod namespace;
pub mod pinned;
pub mod read;
pub mod staging;
pub mod stat;
pub mod sync;
pub mod xattr;

#[cfg(test)]
mod tests;

pub use cache::DiskCache;
pub use caller::Caller;
pub use calls::status::STATUS_ATTRIBUTE;
pub use calls::{ArtifactFs, AttrChange, FsOptions, Opened, StatFs, DEFAULT_METADATA_TTL};
pub use error::{FsError, FsErrorKind, FsResult};
pub use inode::{Node, ROOT_INODE};
pub use read::ReadOptions;
pub use staging::{SetMode, Staging};
pub use stat::{Attr, DirEntry, Entry, FileKind};
pub use xattr::XattrReply;
