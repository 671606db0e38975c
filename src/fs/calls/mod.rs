//! The calls: `ArtifactFs` (`filesystem`), the one face the FUSE adapter talks to,
//! and one module for each family of calls it answers over the wings of `crate::fs`
//! (the namespace, the reads, the cache, staging):
//!
//! - `lookup`: `lookup`, `readdir`, published versions merged with staging ones;
//! - `getattr`: `getattr`, the entries `lookup` returns with their TTLs, `statfs`;
//! - `latest`: `latest` as a symlink, read and moved (`readlink`, `symlink`,
//!   `rename`, `unlink`), with the moves under way in `latest_moves`;
//! - `open_files`: `open`, `read`, `release`, over the table of handles (`handles`);
//! - `writes`: `mkdir`, `rmdir`, `create`, `write`, `fsync`, `setattr`, `rm`, yanks;
//!   `in_flight`: who may change a staging file while it is written, and its `close`;
//! - `extended_attributes`: `getxattr`, `listxattr`, `setxattr`, `removexattr`;
//! - `status`: the status document served as the root's attribute.

mod extended_attributes;
mod filesystem;
mod getattr;
mod handles;
mod in_flight;
mod latest;
mod latest_moves;
mod lookup;
mod open_files;
pub mod status;
mod writes;

pub use filesystem::{ArtifactFs, FsOptions, DEFAULT_METADATA_TTL};
pub use getattr::StatFs;
pub use handles::Opened;
#[cfg(test)]
pub(super) use latest::PENDING_LINKS;
pub use writes::AttrChange;
