//! Tests of the filesystem model with no kernel and no FUSE: each file drives
//! `ArtifactFs` through one family of calls over a local store (see `fixture`), and
//! checks the answers docs/SEMANTICS.md gives, the errno of every refusal included. A
//! failure here points at the model, not at the kernel or the adapter.

mod fixture;
mod getattr;
mod hostile;
mod in_flight;
mod latest;
mod lookup;
mod majority;
mod mkdir;
mod passthrough;
mod properties;
mod read;
mod readdir;
mod reference_model;
mod regions_down;
mod rename;
mod rmdir;
mod setattr;
mod stage_outcomes;
mod staging_file;
mod statfs;
mod unlink;
mod xattr;
