//! Stopping while stages run: the stages in flight are counted, so that SIGTERM can
//! wait for them for a bounded time; those still running then are interrupted. An
//! interrupted stage leaves its file `staging` in `state.json` (saved before its
//! first request), so the next start resumes it; its `close()` answers EIO at once,
//! and nothing may change the file until then.

use std::time::Duration;

use tokio::sync::watch;

/// The stages in flight, and the signal that interrupts them.
pub(super) struct Flight {
    count: watch::Sender<usize>,
    interrupt: watch::Sender<bool>,
}

/// One stage in flight, counted until it is dropped.
pub(super) struct InFlight<'a>(&'a Flight);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.count.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Default for Flight {
    fn default() -> Self {
        Flight {
            count: watch::Sender::new(0),
            interrupt: watch::Sender::new(false),
        }
    }
}

impl Flight {
    pub(super) fn enter(&self) -> InFlight<'_> {
        self.count.send_modify(|n| *n += 1);
        InFlight(self)
    }

    /// Resolves once the daemon is stopping and waits no longer (at once if it is).
    pub(super) async fn interrupted(&self) {
        let mut interrupt = self.interrupt.subscribe();
        let _ = interrupt.wait_for(|stopping| *stopping).await;
    }

    pub(super) fn is_interrupted(&self) -> bool {
        *self.interrupt.borrow()
    }

    async fn none_in_flight(&self) {
        let mut count = self.count.subscribe();
        let _ = count.wait_for(|n| *n == 0).await;
    }

    /// Stages running now.
    pub(super) fn count(&self) -> usize {
        *self.count.borrow()
    }

    /// Waits up to `within` for the stages in flight, then interrupts the rest (and
    /// the repairs): returns how many were interrupted.
    pub(super) async fn stop(&self, within: Duration) -> usize {
        let finished = tokio::time::timeout(within, self.none_in_flight())
            .await
            .is_ok();
        let left = if finished { 0 } else { self.count() };
        self.interrupt.send_replace(true);
        if left > 0 {
            let _ = tokio::time::timeout(ANSWER_WAIT, self.none_in_flight()).await;
        }
        left
    }
}

/// How long interrupted stages have to answer their `close()` before the unmount.
const ANSWER_WAIT: Duration = Duration::from_secs(5);
