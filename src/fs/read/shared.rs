//! What every open handle's reader shares: the sizes of the read path, the memory
//! budget of bytes held ahead of readers, the GETs in flight to each server and their
//! pace (`server_pace`), the LRU of recent random-read blocks, and the objects read
//! whole whose bytes passed their check.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use lru::LruCache;
use tokio::sync::Semaphore;

use crate::fs::pinned::PinnedVersion;

use super::server_pace::ServerPace;

/// Sizes of the read path.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Bytes asked by the first GET of a sequential stream (the next asks for the rest).
    pub first_request: u64,
    /// Bytes a stream receives before its rate decides whether to fetch in parallel.
    pub probe_after: u64,
    /// A stream that is fast at `probe_after` stays alone only if it still is here.
    pub probe_until: u64,
    /// A stream slower than this (bytes a second) has the rest fetched in parallel parts.
    pub parallel_below: u64,
    /// Bytes per part when fetching in parallel.
    pub part_size: u64,
    /// GETs one handle keeps in flight at most.
    pub max_streams: usize,
    /// GETs in flight to one server past which no handle starts a part of a read cut
    /// for speed (a handle's one GET is never held back).
    pub max_gets_per_server: usize,
    /// Chunks each stream hands its reader ahead of the reads (a stream further ahead
    /// stops reading its body, and TCP holds its server back).
    pub chunks_ahead: usize,
    /// Bytes per chunk handed from a stream to its reader.
    pub chunk_size: u64,
    /// How far past the bytes held a read still counts as sequential.
    pub sequential_slack: u64,
    /// Bytes kept behind the reader for late reads.
    pub trail_bytes: u64,
    /// Random reads fetch aligned blocks of this size.
    pub block_size: u64,
    /// Bytes all handles together may hold ahead of their readers.
    pub memory_budget: u64,
    /// Blocks kept in the shared LRU.
    pub cached_blocks: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            first_request: 4 << 20,
            probe_after: 8 << 20,
            probe_until: 64 << 20,
            parallel_below: 256 << 20,
            part_size: 8 << 20,
            max_streams: 8,
            max_gets_per_server: 16,
            chunks_ahead: 4,
            chunk_size: 512 << 10,
            sequential_slack: 16 << 20,
            trail_bytes: 8 << 20,
            block_size: 256 << 10,
            memory_budget: 64 << 20,
            cached_blocks: 128,
        }
    }
}

/// The memory budget is counted in permits of this many bytes.
const PERMIT_UNIT: u64 = 4096;

/// Pinned objects remembered as read whole and checked (beyond it, a file's pages are
/// dropped at its next open until it is read whole again).
const VERIFIED_OBJECTS: usize = 65_536;

/// What every reader shares: the memory budget, the GETs in flight to each server, the
/// LRU of recent blocks, and the objects read whole that passed their check.
#[derive(Debug)]
pub struct ReadShared {
    pub options: ReadOptions,
    pub(super) budget: Arc<Semaphore>,
    pub(super) pace: Arc<ServerPace>,
    blocks: Mutex<LruCache<(String, u64), Bytes>>,
    verified: Mutex<LruCache<String, ()>>,
}

impl ReadShared {
    pub fn new(options: ReadOptions) -> Self {
        let permits = (options.memory_budget / PERMIT_UNIT).max(1) as usize;
        let blocks = NonZeroUsize::new(options.cached_blocks.max(1)).unwrap_or(NonZeroUsize::MIN);
        ReadShared {
            budget: Arc::new(Semaphore::new(permits)),
            pace: Arc::new(ServerPace::new(options.max_gets_per_server)),
            blocks: Mutex::new(LruCache::new(blocks)),
            verified: Mutex::new(LruCache::new(
                NonZeroUsize::new(VERIFIED_OBJECTS).unwrap_or(NonZeroUsize::MIN),
            )),
            options,
        }
    }

    pub(super) fn permits_for(&self, len: u64) -> u32 {
        let total = (self.options.memory_budget / PERMIT_UNIT).max(1);
        len.div_ceil(PERMIT_UNIT).clamp(1, total) as u32
    }

    /// Whether a handle has read `pinned` whole and its bytes passed their check: only
    /// then may the kernel keep its pages from one open to the next.
    pub fn is_verified(&self, pinned: &PinnedVersion) -> bool {
        self.verified
            .lock()
            .is_ok_and(|mut verified| verified.get(&object_id(pinned)).is_some())
    }

    pub(super) fn mark_verified(&self, pinned: &PinnedVersion) {
        if let Ok(mut verified) = self.verified.lock() {
            verified.put(object_id(pinned), ());
        }
    }

    pub(super) fn cached_block(&self, key: &(String, u64)) -> Option<Bytes> {
        self.blocks.lock().ok()?.get(key).cloned()
    }

    pub(super) fn keep_block(&self, key: (String, u64), block: Bytes) {
        if let Ok(mut blocks) = self.blocks.lock() {
            blocks.put(key, block);
        }
    }
}

/// The pinned object's identity: its key and ETag.
pub(super) fn object_id(pinned: &PinnedVersion) -> String {
    format!(
        "{}\0{}",
        pinned.copies.key,
        pinned.copies.etag.as_deref().unwrap_or("")
    )
}
