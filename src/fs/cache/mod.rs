//! The cache wing: the on-disk cache of whole artifacts (`disk`, `--cache-dir`), the
//! check a cached copy passes before it is first served (`check`), and why a copy is
//! not served (`error`).

mod check;
mod disk;
mod error;

pub use disk::{CachedFile, DiskCache};
pub use error::CacheError;
