//! The integration tests, in one binary (each test binary would link the whole AWS
//! SDK): the protocol on moto and on the local store, the CLI, interop with the Python
//! `startifact` 1.0a10, the wire-level rules seen through a proxy, and the examples of
//! `docs/SEMANTICS.md`, run.

//!
//! Tests share one moto server; each world has its own configuration, buckets and
//! bucket-name parameter, but worlds without a parameter-name prefix share the project
//! parameters (`/{project}/latest`), so such tests use project names of their own.

/// Runs `async fn $name(world: World)` on moto and on the local store, as two tests
/// (the module that uses it imports `World` and `WorldOptions`).
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_moto() {
                super::$name(super::World::moto(super::WorldOptions::default()).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_local_store() {
                super::$name(super::World::local(super::WorldOptions::default()).await).await
            }
        }
    };
}

mod support;

mod cli;
mod interop;
mod limits;
mod mknod;
mod mount;
mod ops;
mod private_disk;
mod protocol;
mod semantics;
mod shared_mount;
mod staging;
mod tampered_spool;
mod wire;
