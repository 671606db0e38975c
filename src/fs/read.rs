//! Reading a pinned artifact through one open handle.
//!
//! Sequential reads stream: ranged GETs run ahead of the reader in parts, and the
//! read-ahead window starts at 1 MiB and doubles each time the reader finishes a part
//! while it stays sequential, up to `max_window`; parts are a quarter of the window (at
//! most `max_part`), so several GETs are in flight at once. A read anywhere else is a
//! random read: the read-ahead is dropped and a small block around the offset is fetched
//! (blocks are kept in a shared LRU, so re-reads of nearby ranges cost nothing); the
//! window grows again if reading goes on from there. `head -c 4096` therefore costs
//! about one megabyte, and a long `cat` a few dozen GETs.
//!
//! The kernel reads ahead with several requests in flight, and they may reach us out of
//! order: a read counts as sequential anywhere from the start of the parts held to one
//! window past the read-ahead, and the last parts passed are kept a little longer (the
//! trail) for the stragglers, so neither resets the stream.
//!
//! Memory: each part holds permits of a semaphore shared by every handle for its size,
//! so the bytes held ahead of all readers together stay within a budget. Read-ahead takes
//! permits only when they are free; the part a reader waits for takes them in turn.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use lru::LruCache;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::protocol::Session;

use super::error::{FsError, FsResult};
use super::pinned::PinnedVersion;

/// Sizes of the read path.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub first_window: u64,
    pub max_window: u64,
    pub max_part: u64,
    pub min_part: u64,
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
            first_window: 1 << 20,
            max_window: 32 << 20,
            max_part: 8 << 20,
            min_part: 256 << 10,
            block_size: 256 << 10,
            memory_budget: 64 << 20,
            cached_blocks: 128,
        }
    }
}

/// What every reader shares: the memory budget and the LRU of recent blocks.
#[derive(Debug)]
pub struct ReadShared {
    pub options: ReadOptions,
    budget: Arc<Semaphore>,
    blocks: Mutex<LruCache<(String, u64), Bytes>>,
}

const PERMIT_UNIT: u64 = 4096;
/// Parts kept behind the reader for late reads.
const TRAIL_PARTS: usize = 2;

impl ReadShared {
    pub fn new(options: ReadOptions) -> Self {
        let permits = (options.memory_budget / PERMIT_UNIT).max(1) as usize;
        let blocks = NonZeroUsize::new(options.cached_blocks.max(1)).unwrap_or(NonZeroUsize::MIN);
        ReadShared {
            budget: Arc::new(Semaphore::new(permits)),
            blocks: Mutex::new(LruCache::new(blocks)),
            options,
        }
    }

    fn permits_for(&self, len: u64) -> u32 {
        let total = (self.options.memory_budget / PERMIT_UNIT).max(1);
        len.div_ceil(PERMIT_UNIT).min(total) as u32
    }

    fn cached_block(&self, key: &(String, u64)) -> Option<Bytes> {
        self.blocks.lock().ok()?.get(key).cloned()
    }

    fn keep_block(&self, key: (String, u64), block: Bytes) {
        if let Ok(mut blocks) = self.blocks.lock() {
            blocks.put(key, block);
        }
    }
}

struct Part {
    range: Range<u64>,
    state: PartState,
    _permit: Option<OwnedSemaphorePermit>,
}

enum PartState {
    Pending(JoinHandle<FsResult<Bytes>>),
    Ready(Bytes),
}

/// The read state of one open handle.
pub struct FileReader {
    pinned: Arc<PinnedVersion>,
    session: Session,
    shared: Arc<ReadShared>,
    parts: VecDeque<Part>,
    /// Parts the reader has passed, kept for reads that arrive late.
    trail: VecDeque<(Range<u64>, Bytes)>,
    /// Where the next read-ahead part starts.
    next_fetch: u64,
    /// Where a sequential read would continue.
    expected: u64,
    window: u64,
}

impl Drop for FileReader {
    fn drop(&mut self) {
        self.drop_parts();
    }
}

impl FileReader {
    pub fn new(pinned: Arc<PinnedVersion>, session: Session, shared: Arc<ReadShared>) -> Self {
        let window = shared.options.first_window;
        FileReader {
            pinned,
            session,
            shared,
            parts: VecDeque::new(),
            trail: VecDeque::new(),
            next_fetch: 0,
            expected: 0,
            window,
        }
    }

    fn drop_parts(&mut self) {
        for part in self.parts.drain(..) {
            if let PartState::Pending(handle) = part.state {
                handle.abort();
            }
        }
    }

    fn part_size(&self) -> u64 {
        (self.window / 4).clamp(self.shared.options.min_part, self.shared.options.max_part)
    }

    fn spawn_part(&self, range: Range<u64>, permit: Option<OwnedSemaphorePermit>) -> Part {
        let pinned = Arc::clone(&self.pinned);
        let session = self.session.clone();
        let fetch = range.clone();
        let handle = tokio::spawn(async move { pinned.fetch(&session, fetch).await });
        Part {
            range,
            state: PartState::Pending(handle),
            _permit: permit,
        }
    }

    /// Starts read-ahead parts up to `window` bytes past `from`, while the budget allows.
    fn fill_window(&mut self, from: u64) {
        let size = self.pinned.size;
        let target = (from + self.window).min(size);
        while self.next_fetch < target {
            let len = self.part_size().min(size - self.next_fetch);
            let permits = self.shared.permits_for(len);
            let Ok(permit) = Arc::clone(&self.shared.budget).try_acquire_many_owned(permits) else {
                break;
            };
            let range = self.next_fetch..self.next_fetch + len;
            let part = self.spawn_part(range, Some(permit));
            self.parts.push_back(part);
            self.next_fetch += len;
        }
    }

    /// Reads up to `size` bytes at `offset` (fewer only at the end of the file).
    pub async fn read(&mut self, offset: u64, size: u32) -> FsResult<Bytes> {
        let file_size = self.pinned.size;
        if offset >= file_size || size == 0 {
            return Ok(Bytes::new());
        }
        let end = (offset + u64::from(size)).min(file_size);
        if let Some(data) = self.from_trail(offset, end) {
            return Ok(data);
        }
        let front = self
            .parts
            .front()
            .map(|p| p.range.start)
            .unwrap_or(self.expected);
        let horizon = self.next_fetch.max(self.expected) + self.window;
        if offset < front || offset >= horizon {
            return self.read_random(offset, end).await;
        }
        self.read_sequential(offset, end).await
    }

    fn from_trail(&self, offset: u64, end: u64) -> Option<Bytes> {
        self.trail
            .iter()
            .find(|(range, _)| range.start <= offset && end <= range.end)
            .map(|(range, data)| {
                data.slice((offset - range.start) as usize..(end - range.start) as usize)
            })
    }

    async fn read_sequential(&mut self, offset: u64, end: u64) -> FsResult<Bytes> {
        if self.parts.is_empty() {
            self.next_fetch = offset;
        }
        self.fill_window(offset);
        if self.next_fetch < end {
            // The budget is spent elsewhere: wait for what this read needs.
            let len = (end - self.next_fetch)
                .max(self.part_size().min(self.pinned.size - self.next_fetch));
            let permits = self.shared.permits_for(len);
            let permit = Arc::clone(&self.shared.budget)
                .acquire_many_owned(permits)
                .await
                .map_err(|_| FsError::unavailable("the read budget is closed"))?;
            let range = self.next_fetch..self.next_fetch + len;
            let part = self.spawn_part(range, Some(permit));
            self.parts.push_back(part);
            self.next_fetch += len;
        }
        let mut out = BytesMut::with_capacity((end - offset) as usize);
        let mut position = offset;
        let mut index = 0;
        while position < end {
            let Some(part) = self.parts.get_mut(index) else {
                return Err(FsError::unavailable("read-ahead lost its place"));
            };
            if part.range.end <= position {
                index += 1;
                continue;
            }
            let data = match ready(part).await {
                Ok(data) => data,
                Err(e) => {
                    // Start afresh at the next read rather than keep a failed part.
                    self.drop_parts();
                    self.expected = u64::MAX;
                    return Err(e);
                }
            };
            let start = (position - part.range.start) as usize;
            let stop = (end.min(part.range.end) - part.range.start) as usize;
            out.extend_from_slice(&data[start..stop]);
            position = part.range.start + stop as u64;
            index += 1;
        }
        // Parts the reader has passed go to the trail, and the window widens.
        while self.parts.front().is_some_and(|p| p.range.end <= end) {
            if let Some(Part {
                range,
                state: PartState::Ready(data),
                ..
            }) = self.parts.pop_front()
            {
                self.trail.push_back((range, data));
                if self.trail.len() > TRAIL_PARTS {
                    self.trail.pop_front();
                }
            }
            self.window = (self.window * 2).min(self.shared.options.max_window);
        }
        self.expected = self.expected.max(end);
        self.fill_window(end);
        Ok(out.freeze())
    }

    async fn read_random(&mut self, offset: u64, end: u64) -> FsResult<Bytes> {
        self.drop_parts();
        self.trail.clear();
        self.window = self.shared.options.first_window;
        let block_size = self.shared.options.block_size.max(1);
        let mut out = BytesMut::with_capacity((end - offset) as usize);
        let mut block = offset / block_size;
        while block * block_size < end {
            let range = block * block_size..((block + 1) * block_size).min(self.pinned.size);
            let key = (
                format!(
                    "{}\0{}",
                    self.pinned.key,
                    self.pinned.etag.as_deref().unwrap_or("")
                ),
                block,
            );
            let data = match self.shared.cached_block(&key) {
                Some(data) => data,
                None => {
                    let data = self.pinned.fetch(&self.session, range.clone()).await?;
                    self.shared.keep_block(key, data.clone());
                    data
                }
            };
            let start = offset.max(range.start) - range.start;
            let stop = end.min(range.end) - range.start;
            out.extend_from_slice(&data[start as usize..stop as usize]);
            block += 1;
        }
        self.expected = end;
        self.next_fetch = end;
        Ok(out.freeze())
    }
}

async fn ready(part: &mut Part) -> FsResult<Bytes> {
    if let PartState::Pending(handle) = &mut part.state {
        let data = handle
            .await
            .map_err(|e| FsError::unavailable(format!("read task failed: {e}")))??;
        part.state = PartState::Ready(data);
    }
    match &part.state {
        PartState::Ready(data) => Ok(data.clone()),
        PartState::Pending(_) => Err(FsError::unavailable("read part not ready")),
    }
}
