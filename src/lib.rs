//! Startifact in Rust: a multi-region artifact store on Amazon S3 and SSM Parameter
//! Store, byte-compatible with the Python `startifact` tool.
//!
//! Layers, bottom up (with `digest`, the MD5 every layer uses, beneath them all):
//! - `storage`: one region's S3-and-SSM operations behind the `RegionStore` trait, with
//!   the AWS implementation and the local-folder one.
//! - `protocol`: the Startifact format over that seam (`Session`, `Artifact`, staging).
//! - `fs`: the filesystem model over a `Session`, with no FUSE types.
//! - `arguments`: how both programs parse their arguments, below both of them.
//! - `mount`: the `startifact-fs` daemon and the thin FUSE adapter over `fs`.
//! - `cli`: the `startifact` command line, a thin layer over `protocol`.

pub mod arguments;
pub mod checksum;
pub mod cli;
pub mod digest;
pub mod fs;
pub mod mount;
pub mod protocol;
pub mod storage;

pub use protocol::{Artifact, Error, Metadata, Session, SessionBuilder};

#[cfg(test)]
mod imports_tests;
