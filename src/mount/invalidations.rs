//! Names the kernel is told to forget (`latest` of a project, when the daemon learns that
//! it moved): sent in order from one thread of their own, since the kernel takes the
//! folder's lock to drop a name and may hold it while it waits for an answer of ours.
//!
//! A call that changed what a name leads to (the `close` that staged a version and so
//! moved `latest`) answers only once the kernel was told, so that the caller's next
//! `readlink` already sees the move. Calls the kernel makes while holding the project
//! folder's lock (`lookup`, `readdir`, `rename` over `latest`) never wait: the kernel
//! hears of their changes right after it answered them. The wait is bounded, in case the
//! folder is held by a call that waits for this one.

use std::ffi::OsString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use fuser::{INodeNo, Notifier};
use tokio::sync::watch;

/// The longest a call waits for the kernel to be told of its change.
const TELL_WAIT: Duration = Duration::from_secs(1);

struct Forget {
    parent: u64,
    name: OsString,
    sequence: u64,
}

/// The queue of names to forget, and how far the kernel was told.
pub struct Invalidations {
    queued: AtomicU64,
    sender: Mutex<mpsc::Sender<Forget>>,
    told: watch::Receiver<u64>,
}

/// The other end, until the session exists to tell the kernel.
pub struct Teller {
    receiver: mpsc::Receiver<Forget>,
    told: watch::Sender<u64>,
}

impl Invalidations {
    pub fn new() -> (Invalidations, Teller) {
        let (sender, receiver) = mpsc::channel();
        let (told_tx, told) = watch::channel(0);
        (
            Invalidations {
                queued: AtomicU64::new(0),
                sender: Mutex::new(sender),
                told,
            },
            Teller {
                receiver,
                told: told_tx,
            },
        )
    }

    /// How many names were queued so far.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::SeqCst)
    }

    /// Tells the kernel to forget `name` in folder `parent`, in the background.
    pub fn forget(&self, parent: u64, name: &str) {
        let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        let sequence = self.queued.fetch_add(1, Ordering::SeqCst) + 1;
        let forget = Forget {
            parent,
            name: OsString::from(name),
            sequence,
        };
        if sender.send(forget).is_err() {
            tracing::debug!(parent, name, "the kernel can no longer be told to forget");
        }
    }

    /// Returns once the kernel was told of every name queued before `since` was read
    /// and after it (at once when none was), or after `TELL_WAIT`.
    pub async fn told_since(&self, since: u64) {
        let queued = self.queued();
        if queued == since {
            return;
        }
        let mut told = self.told.clone();
        let waited = tokio::time::timeout(TELL_WAIT, told.wait_for(|t| *t >= queued)).await;
        if waited.is_err() {
            tracing::debug!("the kernel was not told within {TELL_WAIT:?} that a name changed");
        }
    }
}

impl Teller {
    /// Tells the kernel, through `notifier`, on a thread of its own, until the queue ends.
    pub fn start(self, notifier: Notifier) {
        let Teller { receiver, told } = self;
        let spawned = std::thread::Builder::new()
            .name("invalidations".into())
            .spawn(move || {
                for forget in receiver {
                    // ENOENT: the kernel does not hold the name, nothing to forget.
                    if let Err(e) = notifier.inval_entry(INodeNo(forget.parent), &forget.name) {
                        tracing::trace!(parent = forget.parent, "inval_entry: {e}");
                    }
                    told.send_replace(forget.sequence);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the thread that tells the kernel of moves of latest: {e}");
        }
    }
}
