//! SIGTERM and SIGINT: the stages in flight get a bounded time (`--stop-timeout`) to
//! finish; those still running then are interrupted (their `close()` answers EIO, and
//! their files stay `staging` in the spool, resumed at the next start), and the mount
//! goes.

use std::time::Duration;

use crate::fs::Staging;

/// Waits for the stages in flight, up to `within`, then interrupts the rest.
pub fn finish_stages(runtime: &tokio::runtime::Runtime, staging: &Staging, within: Duration) {
    let in_flight = staging.stages_in_flight();
    if in_flight > 0 {
        tracing::info!(
            in_flight,
            "waiting up to {} s for the stages in flight (--stop-timeout)",
            within.as_secs_f64()
        );
    }
    let interrupted = runtime.block_on(staging.stop(within));
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "stages still running were interrupted: kept in the spool, resumed at the next start"
        );
    }
}
