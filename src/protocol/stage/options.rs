//! How a stage runs beyond what the format fixes: when to go in parts, how large and
//! how many at once, the memory they may hold, and whom to tell of the progress.

use std::sync::Arc;

use crate::protocol::progress::ProgressHandle;

use super::sending::SendingCosts;

/// How a stage runs beyond what the format fixes.
#[derive(Debug, Clone)]
pub struct StageOptions {
    /// Fail when any region fails (the Python tool's rule) rather than on no majority.
    pub require_all_regions: bool,
    /// Files larger than this are uploaded in parts, unless `sending` says otherwise.
    pub multipart_threshold: u64,
    /// What each region's earlier stages taught: with it, a file above the threshold
    /// goes to each region the way that was faster there (see `sending`); without it,
    /// always in parts.
    pub sending: Option<Arc<SendingCosts>>,
    /// Size of each part (at least 5 MiB; raised when 10,000 parts would not do).
    pub part_size: u64,
    /// Parts in flight per region.
    pub part_concurrency: usize,
    /// Bytes of parts in memory at once, shared by every region (at least one part).
    pub memory_budget: u64,
    /// Told of the bytes each region took, and of each region's end.
    pub progress: Option<ProgressHandle>,
}

impl Default for StageOptions {
    fn default() -> Self {
        StageOptions {
            require_all_regions: false,
            multipart_threshold: 16 << 20,
            sending: None,
            part_size: 8 << 20,
            part_concurrency: 2,
            memory_budget: 64 << 20,
            progress: None,
        }
    }
}
