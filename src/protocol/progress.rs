//! What a long transfer tells whoever shows its progress: the bytes moved, by region,
//! and each region's end. The protocol only says it; the command line draws it (on a
//! terminal), and everyone else passes nothing.

use std::fmt;
use std::sync::Arc;

/// Told as a stage or a download goes. Every method has a default that does nothing.
pub trait Progress: Send + Sync {
    /// The transfer begins (or, for a download that fails over, begins again from the
    /// first byte): `total` bytes in all, to or from `regions`.
    fn begin(&self, _total: u64, _regions: &[String]) {}
    /// `bytes` more went to (or came from) `region`.
    fn moved(&self, _region: &str, _bytes: u64) {}
    /// `region` is done with, well or not: its bytes not moved are no longer expected.
    fn region_done(&self, _region: &str, _ok: bool) {}
}

/// A shared `Progress`, for options that are cloned and printed.
#[derive(Clone)]
pub struct ProgressHandle(pub Arc<dyn Progress>);

impl fmt::Debug for ProgressHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressHandle")
    }
}

impl std::ops::Deref for ProgressHandle {
    type Target = dyn Progress;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}
