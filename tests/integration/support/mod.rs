//! What the integration tests stand on: a real `moto_server` (S3 and SSM for several
//! regions), a fault-injecting proxy, the local store, and "worlds": a configured
//! Startifact organisation over three regions, isolated from every other test by its
//! own configuration parameter, bucket-name parameter and buckets.

#[macro_use]
pub mod backends;
pub mod body_fault;
pub mod files;
pub mod frames;
pub mod moto;
pub mod mount;
pub mod proxy;
pub mod regions;
pub mod staging;
pub mod throttle;
pub mod tls;
pub mod world;

use std::path::PathBuf;

/// The Python virtual environment `scripts/test.sh` made (moto_server, startifact).
pub fn venv() -> PathBuf {
    if let Some(dir) = std::env::var_os("STARTIFACT_TEST_VENV") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into());
    home.join(".cache/startifact-fs/venv")
}

/// A short random id for names that must not collide between tests.
pub fn unique_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// Waits up to `bound` for `done`, asking every 250 ms; false if it never came.
pub async fn within<F, Fut>(bound: std::time::Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + bound;
    while std::time::Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    false
}
