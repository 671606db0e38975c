//! The mount: the `startifact-fs` daemon (options, its life as a process) and the thin
//! FUSE adapter over `crate::fs`, which checks who may change what (`access`).

pub mod access;
pub mod config_file;
pub mod daemon;
pub mod declaration;
mod flags;
mod folders;
pub mod fuse;
mod help;
mod invalidations;
mod logging;
mod notify;
pub mod option_spec;
pub mod option_values;
pub mod options;
mod passthrough;
pub mod settings;
mod shutdown;
mod staging_folder;
pub mod status;
mod translate;
