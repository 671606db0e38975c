//! Reading a pinned artifact through one open handle.
//!
//! Sequential reads stream. A GET for a range is one request whose body is consumed as
//! it arrives, by a task that hands chunks to the reader through a channel. The first
//! asks for `first_request` bytes (4 MiB: `head -c 4096` costs no more), the next for
//! the rest of the file, started as soon as the kernel reads in large blocks (a sign of
//! streaming) or the reader is half way through the first; a stream that starts with a
//! large kernel read skips the small first request, so a `cat` is one GET. Few, long
//! requests matter: each costs a first-byte wait, S3 charges per request, and
//! S3-compatible servers (moto among them) may pay for the whole object on every ranged
//! GET. Where one connection is slow (S3 gives each tens of MB/s), the rest of the file
//! is fetched in parts by several GETs at once, as many as add up (`lanes`).
//!
//! The kernel reads ahead with several requests in flight, and they may reach us out of
//! order: a read counts as sequential from the bytes held up to `sequential_slack` past
//! them, and the last bytes consumed are kept (the trail) for the stragglers, so neither
//! resets the stream. Any other read is random: the streams stop and aligned blocks
//! around the offset are fetched, through a shared LRU so nearby re-reads cost nothing.
//!
//! A handle that reads its file from the first byte to the last in order (what `cat`,
//! `cp` and `rsync` do) hashes the bytes as they go out, and its last read answers EIO
//! when they do not match the checksum the version was pinned with (see
//! `crate::checksum`: a CRC, else the MD5; its size alone when the store gives none),
//! as does every later read of that handle. Bytes before the last
//! read cannot be taken back, so the kernel
//! keeps the pages of a streamed file across opens only once some handle has read it
//! whole and its check passed (`ReadShared::is_verified`): the pages of a failed read
//! are dropped at the next open. Reads out of order are pinned by ETag only.
//!
//! Memory: a stream task takes permits of a budget shared by every handle for each chunk
//! it hands over (and stops reading the body, so TCP holds the sender back, while it
//! waits), and each stream hands over at most `chunks_ahead` chunks ahead of the reads
//! (parts further ahead wait in their sockets), so the bytes held ahead of all readers
//! stay bounded. A read waiting on its stream is never held back
//! by the budget (see `stream`): readers of one file wait on each other's pages in the
//! kernel, so a budget spent by the others could otherwise stall them all.

mod lanes;
mod server_pace;
mod shared;
mod stream;
mod whole;

pub use shared::{ReadOptions, ReadShared};

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::checksum::Checksum;
use crate::protocol::Session;

use super::error::{FsError, FsResult};
use super::pinned::PinnedVersion;
use lanes::Lanes;
use shared::object_id;
use stream::{Budget, Permit, Served, Stream};
use whole::WholeRead;

/// A read this large comes from kernel read-ahead of a file being streamed (`head -c`
/// asks for 16 KiB).
const STREAMING_READ: u64 = 256 << 10;

/// The read state of one open handle.
pub struct FileReader {
    pinned: Arc<PinnedVersion>,
    session: Session,
    shared: Arc<ReadShared>,
    streams: VecDeque<Stream>,
    /// Received, not yet consumed: contiguous, starting at `position`.
    held: VecDeque<(Bytes, Permit)>,
    /// Bytes in `held`.
    held_len: u64,
    position: u64,
    /// Recently consumed bytes, contiguous, ending at `position`.
    trail: VecDeque<(u64, Bytes)>,
    trail_len: u64,
    /// Where the next request starts, and how much it asks for.
    next_request: u64,
    next_size: u64,
    /// How many GETs run at once.
    lanes: Lanes,
    /// This handle among the daemon's readers of each server (`ServerPace`).
    reader: u64,
    /// Where the parts begin, once the long GET was cut (`u64::MAX` before).
    parts_from: u64,
    /// Present while every byte consumed so far came in order from the first.
    whole: Option<Box<WholeRead>>,
    /// Why the bytes read whole failed their check: every later read of the handle
    /// answers EIO too (the kernel retries a failed read-ahead with reads of its own).
    failed: Option<Arc<Mismatch>>,
    /// The regions whose bytes this handle consumed in order.
    served: Served,
}

/// Bytes read whole that do not match the checksum the version was pinned with.
#[derive(Debug, thiserror::Error)]
#[error(
    "the bytes of {key} read from {} do not match their checksum (pinned {expected}, read {got})",
    regions.join(", ")
)]
pub struct Mismatch {
    pub key: String,
    /// The regions that served them.
    pub regions: Vec<String>,
    pub expected: Checksum,
    pub got: Checksum,
}

impl Mismatch {
    fn to_fs_error(self: &Arc<Self>) -> FsError {
        FsError::unavailable(self.to_string()).with_shared_source(Arc::clone(self) as _)
    }
}

impl FileReader {
    pub fn new(pinned: Arc<PinnedVersion>, session: Session, shared: Arc<ReadShared>) -> Self {
        let next_size = shared.options.first_request;
        let lanes = Lanes::new(shared.options.max_streams);
        let algorithm = pinned.copies.check.map(|check| check.algorithm());
        let reader = shared.pace.reader_id();
        FileReader {
            pinned,
            session,
            shared,
            streams: VecDeque::new(),
            held: VecDeque::new(),
            held_len: 0,
            position: 0,
            trail: VecDeque::new(),
            trail_len: 0,
            next_request: 0,
            next_size,
            lanes,
            reader,
            parts_from: u64::MAX,
            whole: Some(Box::new(WholeRead::new(algorithm))),
            failed: None,
            served: Served::default(),
        }
    }

    /// Reads up to `size` bytes at `offset` (fewer only at the end of the file).
    pub async fn read(&mut self, offset: u64, size: u32) -> FsResult<Bytes> {
        if let Some(mismatch) = &self.failed {
            return Err(mismatch.to_fs_error());
        }
        let file_size = self.pinned.copies.size;
        if offset >= file_size || size == 0 {
            return Ok(Bytes::new());
        }
        let end = (offset + u64::from(size)).min(file_size);
        let data = match self.bytes_at_hand(offset, end) {
            Some(data) => data,
            None => {
                let ahead = self
                    .next_request
                    .max(self.position)
                    .saturating_add(self.shared.options.sequential_slack);
                if offset < self.position || offset >= ahead {
                    return self.read_random(offset, end).await;
                }
                match self.read_sequential(offset, end).await {
                    Ok(data) => data,
                    Err(e) => {
                        // Start afresh at the next read rather than keep a broken stream.
                        self.reset(u64::MAX);
                        return Err(e);
                    }
                }
            }
        };
        if end == file_size {
            if let Err(e) = self.check_whole_read().await {
                self.reset(u64::MAX);
                return Err(e);
            }
        }
        Ok(data)
    }

    /// At the last read of the file: when every byte went out in order, checks them
    /// against the pinned checksum before the last ones go.
    async fn check_whole_read(&mut self) -> FsResult<()> {
        let size = self.pinned.copies.size;
        if self.whole.is_none() {
            return Ok(());
        }
        if self.position < size && self.held_end() >= size {
            // The last bytes were served from those held: hash them first.
            self.consume(size, size).await?;
        }
        let Some(whole) = self.whole.take() else {
            return Ok(());
        };
        if whole.hashed != size {
            return Ok(());
        }
        let Ok(got) = whole.finish().await else {
            return Err(FsError::unavailable("the bytes read could not be checked"));
        };
        match (self.pinned.copies.check, got) {
            (Some(expected), Some(got)) if expected != got => {
                let served: Vec<String> = match self.served.lock() {
                    Ok(served) => served.iter().cloned().collect(),
                    Err(_) => Vec::new(),
                };
                tracing::error!(
                    key = %self.pinned.copies.key,
                    regions = %served.join(","),
                    "the bytes read have {got}, the version was pinned with {expected}: \
                     the last read answers EIO, and the next open asks the other regions first"
                );
                self.pinned.copies.suspects.add(&served);
                let mismatch = Arc::new(Mismatch {
                    key: self.pinned.copies.key.clone(),
                    regions: served,
                    expected,
                    got,
                });
                let error = mismatch.to_fs_error();
                self.failed = Some(mismatch);
                Err(error)
            }
            _ => {
                self.shared.mark_verified(&self.pinned);
                Ok(())
            }
        }
    }

    /// Bytes already at hand: behind the reader in the trail, or held ahead. The pieces
    /// are contiguous but cut where chunks and earlier reads ended, so a range may span
    /// several of them.
    fn bytes_at_hand(&self, offset: u64, end: u64) -> Option<Bytes> {
        let trail = self.trail.iter().map(|(start, data)| (*start, data));
        let mut start = self.position;
        let held = self.held.iter().map(move |(data, _)| {
            let at = start;
            start += data.len() as u64;
            (at, data)
        });
        let mut out: Option<BytesMut> = None;
        let mut next = offset;
        for (at, data) in trail.chain(held) {
            let stop = at + data.len() as u64;
            if stop <= next {
                continue;
            }
            if at > next {
                return None;
            }
            let piece = &data[(next - at) as usize..(end.min(stop) - at) as usize];
            if out.is_none() && end <= stop {
                return Some(data.slice((offset - at) as usize..(end - at) as usize));
            }
            out.get_or_insert_with(|| BytesMut::with_capacity((end - offset) as usize))
                .extend_from_slice(piece);
            next = end.min(stop);
            if next == end {
                return out.map(BytesMut::freeze);
            }
        }
        None
    }

    fn reset(&mut self, position: u64) {
        self.streams.clear();
        self.held.clear();
        self.held_len = 0;
        self.trail.clear();
        self.trail_len = 0;
        self.position = position;
        self.next_request = position;
        self.next_size = self.shared.options.first_request;
        self.lanes = Lanes::new(self.shared.options.max_streams);
        self.parts_from = u64::MAX;
        // Bytes skipped or read out of order: the whole file can no longer be checked.
        self.whole = None;
    }

    /// Starts the next GET: the next part when fetching in parts (false when the budget
    /// or the server's bound of GETs in flight has no room for it while others run),
    /// else the next request.
    fn start_stream(&mut self) -> bool {
        let options = &self.shared.options;
        let start = self.next_request;
        let size = if self.lanes.in_parts() {
            options.part_size.max(1)
        } else {
            self.next_size
        };
        let end = start.saturating_add(size).min(self.pinned.copies.size);
        if start >= end {
            return false;
        }
        let pace = &self.shared.pace;
        let server = &self.pinned.copies.region;
        // A reader with no GET in flight always gets one; a part only within the bound.
        let part = self.lanes.in_parts() && !self.streams.is_empty();
        let Some(slot) = pace.enter(server, self.reader, part) else {
            return false;
        };
        let budget = if self.lanes.in_parts() {
            let permits = self.shared.permits_for(end - start);
            match Arc::clone(&self.shared.budget).try_acquire_many_owned(permits) {
                Ok(permit) => Budget::Reserved(Arc::new(permit)),
                Err(_) if self.streams.is_empty() => Budget::PerChunk,
                Err(_) => return false,
            }
        } else {
            Budget::PerChunk
        };
        self.streams.push_back(Stream::start(
            Arc::clone(&self.pinned),
            self.session.clone(),
            Arc::clone(&self.shared),
            start..end,
            Arc::clone(&self.served),
            budget,
            slot,
        ));
        self.next_request = end;
        // After the first request, the rest of the file.
        self.next_size = u64::MAX;
        true
    }

    /// Starts the GETs the read needs now: in parts, as many as the lanes say; else the
    /// next request once the kernel streams or the current one is half drained.
    fn keep_streams(&mut self, streaming: bool) {
        let size = self.pinned.copies.size;
        if self.lanes.in_parts() {
            // Streams done receiving wait only for the reader: they hold no connection.
            while self.streams.iter().filter(|s| s.receiving()).count() < self.lanes.target()
                && self.next_request < size
            {
                if !self.start_stream() {
                    break;
                }
            }
            return;
        }
        if self.streams.is_empty() {
            self.start_stream();
        }
        if let (1, Some(current)) = (self.streams.len(), self.streams.front()) {
            let drained = current.range.end - current.received
                <= (current.range.end - current.range.start) / 2;
            if (streaming || drained) && self.next_request < size {
                self.start_stream();
            }
        }
    }

    /// Once the long GET has run long enough, its rate decides whether the rest of the
    /// file comes in parts: it is then cut where its task is. A slow rate decides at
    /// once; a fast one is watched until `probe_until` bytes came.
    fn measure_long_stream(&mut self) {
        let options = &self.shared.options;
        let size = self.pinned.copies.size;
        let Some(long) = self.streams.back_mut().filter(|s| s.range.end == size) else {
            return;
        };
        let Some((rate, received)) = long.rate(options.probe_after) else {
            return;
        };
        let server = &self.pinned.copies.region;
        let together = self.shared.pace.together(server, self.reader, rate);
        if size.saturating_sub(long.received) < options.part_size.saturating_mul(4) {
            self.lanes.settle();
            return;
        }
        // A fast start may be the server's read-ahead: one stream stays alone only once
        // it kept its pace over `probe_until`.
        if together.rate >= options.parallel_below as f64 && received < options.probe_until {
            return;
        }
        let share = self
            .shared
            .pace
            .share(together.readers, options.max_streams);
        if !self
            .lanes
            .measured(rate, together.rate, share, options.parallel_below as f64)
        {
            tracing::debug!(
                key = %self.pinned.copies.key,
                "one GET ran at {:.0} MB/s, the server's {} GETs from {} readers at {:.0} MB/s \
                 together: it stays alone",
                rate / 1e6,
                together.gets,
                together.readers,
                together.rate / 1e6
            );
        } else {
            self.next_request = long.cut(0);
            self.parts_from = self.next_request;
            tracing::debug!(
                key = %self.pinned.copies.key,
                "one GET ran at {:.0} MB/s, the server's {} GETs from {} readers at {:.0} MB/s \
                 together: the rest from {} comes in parts of {} bytes, {} at once",
                rate / 1e6,
                together.gets,
                together.readers,
                together.rate / 1e6,
                self.next_request,
                options.part_size,
                self.lanes.target()
            );
        }
    }

    /// The offset just past the bytes held.
    fn held_end(&self) -> u64 {
        self.position + self.held_len
    }

    async fn read_sequential(&mut self, offset: u64, end: u64) -> FsResult<Bytes> {
        let streaming = end - offset >= STREAMING_READ;
        if self.streams.is_empty() && self.held.is_empty() {
            self.position = offset.max(self.position);
            self.next_request = self.position;
            if streaming && self.next_size == self.shared.options.first_request {
                // Streaming from the start: skip the small first request.
                self.next_size = u64::MAX;
            }
        }
        while self.held_end() < end {
            self.keep_streams(streaming);
            let Some(stream) = self.streams.front_mut() else {
                return Err(FsError::unavailable("read past the end of the streams"));
            };
            match stream.next_chunk().await {
                Some(Ok((frames, permit))) => {
                    for data in frames {
                        stream.received += data.len() as u64;
                        self.held_len += data.len() as u64;
                        self.held.push_back((data, permit.clone()));
                    }
                }
                Some(Err(e)) => return Err(e),
                None => {
                    if stream.received < stream.range.end {
                        return Err(FsError::unavailable("a read stream ended early"));
                    }
                    // The long GET cut for the parts is not one of them.
                    if let Some(done) = self
                        .streams
                        .pop_front()
                        .filter(|done| done.range.start >= self.parts_from)
                    {
                        let bytes = done.range.end - done.range.start;
                        if let Some(together) = self.lanes.finished(bytes, Instant::now()) {
                            tracing::debug!(
                                key = %self.pinned.copies.key,
                                "the parts came at {:.0} MB/s together: {} GETs at once from now on",
                                together / 1e6,
                                self.lanes.target()
                            );
                        }
                    }
                }
            }
            if self.lanes.probing() {
                self.measure_long_stream();
            }
        }
        self.consume(offset, end).await
    }

    /// Moves the held bytes before `end` to the trail, returning `offset..end`.
    async fn consume(&mut self, offset: u64, end: u64) -> FsResult<Bytes> {
        let mut out = Vec::new();
        let mut to_hash = Vec::new();
        let mut hash_next = self.whole.as_ref().map(|w| w.hashed);
        while self.position < end {
            let Some((data, permit)) = self.held.pop_front() else {
                return Err(FsError::unavailable("read-ahead lost its place"));
            };
            self.held_len -= data.len() as u64;
            let at = self.position;
            let stop = at + data.len() as u64;
            let (used, rest) = if stop > end {
                let split = (end - at) as usize;
                (data.slice(..split), Some(data.slice(split..)))
            } else {
                (data, None)
            };
            if offset < at + used.len() as u64 {
                out.push(used.slice(offset.saturating_sub(at) as usize..));
            }
            if hash_next == Some(at) {
                hash_next = Some(at + used.len() as u64);
                to_hash.push(used.clone());
            }
            self.position = at + used.len() as u64;
            self.trail_len += used.len() as u64;
            self.trail.push_back((at, used));
            if let Some(rest) = rest {
                self.held_len += rest.len() as u64;
                self.held.push_front((rest, permit));
            }
        }
        while self.trail_len > self.shared.options.trail_bytes {
            match self.trail.pop_front() {
                Some((_, data)) => self.trail_len -= data.len() as u64,
                None => break,
            }
        }
        if let Some(whole) = self.whole.as_mut().filter(|_| !to_hash.is_empty()) {
            whole.update(to_hash).await;
        }
        Ok(joined(out))
    }

    async fn read_random(&mut self, offset: u64, end: u64) -> FsResult<Bytes> {
        self.reset(end);
        let block_size = self.shared.options.block_size.max(1);
        let mut out = BytesMut::with_capacity((end - offset) as usize);
        let mut block = offset / block_size;
        while block * block_size < end {
            let range = block * block_size..((block + 1) * block_size).min(self.pinned.copies.size);
            let key = (object_id(&self.pinned), block);
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
        Ok(out.freeze())
    }
}

/// The pieces as one buffer: the only copy of the bytes a read hands out, and none when
/// they lie in one piece.
fn joined(mut pieces: Vec<Bytes>) -> Bytes {
    if pieces.len() <= 1 {
        return pieces.pop().unwrap_or_default();
    }
    let mut out = BytesMut::with_capacity(pieces.iter().map(Bytes::len).sum());
    for piece in pieces {
        out.extend_from_slice(&piece);
    }
    out.freeze()
}
