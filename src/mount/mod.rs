//! The mount: the `startifact-fs` daemon (options, its life as a process) and the thin
//! FUSE adapter over `crate::fs`.

pub mod daemon;
pub mod fuse;
pub mod options;
