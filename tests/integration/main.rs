//! The integration tests, in one binary (each test binary would link the whole AWS
//! SDK): the protocol on moto and on the local store, the CLI, interop with the Python
//! `startifact` 1.0a10, and the wire-level rules seen through a proxy.

//!
//! Tests share one moto server; each world has its own configuration, buckets and
//! bucket-name parameter, but worlds without a parameter-name prefix share the project
//! parameters (`/{project}/latest`), so such tests use project names of their own.

mod support;

mod cli;
mod interop;
mod mount;
mod protocol;
mod staging;
mod wire;
