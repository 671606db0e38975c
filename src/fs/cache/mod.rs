//! The cache wing: the on-disk cache of whole artifacts (`disk`, `--cache-dir`) and
//! the check a cached copy passes before it is first served (`check`).

mod check;
mod disk;

pub use disk::{CachedFile, DiskCache};
