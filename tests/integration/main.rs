//! The integration tests, in one binary (each test binary would link the whole AWS
//! SDK): the protocol on moto and on the local store, the CLI, the filesystem calls
//! through the real kernel (one module per operation, in `ops`), interop with the Python
//! `startifact` 1.0a10, the wire-level rules seen through a proxy, damaged and replaced
//! bytes never passing for an artifact, and the examples of `docs/SEMANTICS.md`, run.
//!
//! Tests share one moto server; each world has its own configuration, buckets and
//! bucket-name parameter, but worlds without a parameter-name prefix share the project
//! parameters (`/{project}/latest`), so such tests use project names of their own.
//! `on_both_backends!` (in `support::backends`) runs one test on moto and on the local
//! store.

#[macro_use]
mod support;

mod cli;
mod cli_options;
mod consistency;
mod credentials;
mod hostile_objects;
mod integrity;
mod interop;
mod limits;
mod metadata_at_scale;
mod metadata_limits;
mod mknod;
mod mount_type;
mod ops;
mod package;
mod private_disk;
mod progress;
mod promises;
mod protocol;
mod region_outages;
mod repair;
mod semantics;
mod sending;
mod service;
mod shared_mount;
mod stage_regions;
mod staging_folders;
mod tampered_spool;
mod wire;
