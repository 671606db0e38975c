//! One streaming GET of a range of a pinned object: a task that consumes the body as
//! it arrives and hands it to the reader in chunks (the body's own frames, never
//! copied), each holding its share of the memory budget, failing over to the next
//! region mid-body. The reader may cut a stream short while it runs, and reads how
//! fast the server sent it; so does the daemon's `ServerPace`, through the GET's slot.
//!
//! A reader waiting on its stream is never held back by the budget: the bytes other
//! handles hold may belong to readers that wait, in the kernel, on the very page this
//! read will fill (readers of one file share its pages). So while the reader waits,
//! the task hands its next chunk over without a permit (or two, when it is quicker
//! than the reader to notice the wait is over): the excess is bounded by the reads in
//! flight, and no read waits on another.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit};
use tokio::task::JoinHandle;

use crate::fs::error::{FsError, FsResult};
use crate::fs::pinned::PinnedVersion;
use crate::protocol::Session;

use super::server_pace::GetSlot;
use super::shared::ReadShared;

/// Memory of the budget, released when the last byte it covers is consumed (`None`:
/// a chunk handed to a waiting reader over the budget).
pub(super) type Permit = Option<Arc<OwnedSemaphorePermit>>;

/// Contiguous frames of the body, and the memory they hold.
pub(super) type Chunk = FsResult<(Vec<Bytes>, Permit)>;

/// The regions that handed a reader bytes: when the bytes read whole fail their check,
/// each of them is suspect.
pub(super) type Served = Arc<Mutex<BTreeSet<String>>>;

/// What the task and the reader share: where the task is, where it must stop, and
/// how long it waited for the bytes it received.
#[derive(Debug)]
struct Progress {
    /// Offset of the next byte the task will receive.
    at: u64,
    end: u64,
    /// Bytes received, and the time spent waiting for the body's frames after the first
    /// (not for the reader, nor for the request's answer).
    received: u64,
    waited: Duration,
    /// The reader waits for the next chunk.
    reader_waiting: bool,
}

/// One streaming GET of `range`, handing chunks over in order.
pub(super) struct Stream {
    pub(super) range: Range<u64>,
    /// Offset of the next chunk to come out of `chunks`.
    pub(super) received: u64,
    chunks: mpsc::Receiver<Chunk>,
    progress: Arc<Mutex<Progress>>,
    /// Wakes the task when the reader starts waiting.
    waiting: Arc<Notify>,
    task: JoinHandle<()>,
}

/// How the task pays for what it holds: a permit per chunk, or one taken for the
/// whole range before it started.
pub(super) enum Budget {
    PerChunk,
    Reserved(Arc<OwnedSemaphorePermit>),
}

impl Stream {
    /// Starts the GET of `range` in a task of its own.
    pub(super) fn start(
        pinned: Arc<PinnedVersion>,
        session: Session,
        shared: Arc<ReadShared>,
        range: Range<u64>,
        served: Served,
        budget: Budget,
        slot: GetSlot,
    ) -> Stream {
        let (sender, receiver) = mpsc::channel(shared.options.chunks_ahead.max(1));
        let progress = Arc::new(Mutex::new(Progress {
            at: range.start,
            end: range.end,
            received: 0,
            waited: Duration::ZERO,
            reader_waiting: false,
        }));
        let waiting = Arc::new(Notify::new());
        let link = Link {
            progress: Arc::clone(&progress),
            waiting: Arc::clone(&waiting),
            slot,
        };
        let task = tokio::spawn(stream_range(
            pinned, session, shared, link, sender, served, budget,
        ));
        Stream {
            received: range.start,
            range,
            chunks: receiver,
            progress,
            waiting,
            task,
        }
    }

    /// The next chunk (`None` once the task is done). While this waits, the task is
    /// told so, and hands its next chunk over whatever the budget says.
    pub(super) async fn next_chunk(&mut self) -> Option<Chunk> {
        match self.chunks.try_recv() {
            Ok(chunk) => return Some(chunk),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
            Err(mpsc::error::TryRecvError::Empty) => {}
        }
        let _waiting = WaitingReader::new(&self.progress, &self.waiting);
        self.chunks.recv().await
    }

    /// Makes the stream end at `end`, or as soon after it as the task already is.
    /// Returns where it now ends.
    pub(super) fn cut(&mut self, end: u64) -> u64 {
        let mut progress = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        progress.end = progress.end.min(end.max(progress.at));
        self.range.end = progress.end;
        progress.end
    }

    /// Whether the task still receives bytes (else it is done, or cut where it was).
    pub(super) fn receiving(&self) -> bool {
        let progress = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        progress.at < progress.end && !self.task.is_finished()
    }

    /// How fast the server sent the body once it flowed (bytes a second), and the bytes
    /// received, once at least `least` came.
    pub(super) fn rate(&self, least: u64) -> Option<(f64, u64)> {
        let progress = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        let seconds = progress.waited.as_secs_f64();
        (progress.received >= least && seconds > 0.0)
            .then(|| (progress.received as f64 / seconds, progress.received))
    }
}

/// The task's side of what it shares with its reader, and its GET's place among the
/// daemon's GETs to its server (held until the task ends, where it tells its rate).
struct Link {
    progress: Arc<Mutex<Progress>>,
    waiting: Arc<Notify>,
    slot: GetSlot,
}

/// Marks the reader as waiting while it lives (a read given up mid-wait clears it too).
struct WaitingReader<'a>(&'a Mutex<Progress>);

impl<'a> WaitingReader<'a> {
    fn new(progress: &'a Mutex<Progress>, waiting: &Notify) -> Self {
        progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reader_waiting = true;
        waiting.notify_one();
        WaitingReader(progress)
    }
}

impl Drop for WaitingReader<'_> {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reader_waiting = false;
    }
}

/// A share of the budget for `bytes`, waited for unless the reader is waiting (then
/// `None`: the chunk goes over the budget). `Err` when the budget is closed.
async fn permit_for(
    shared: &ReadShared,
    progress: &Mutex<Progress>,
    waiting: &Notify,
    bytes: u64,
) -> Result<Permit, ()> {
    let permits = shared.permits_for(bytes);
    loop {
        let reader_waiting = progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reader_waiting;
        if reader_waiting {
            return match Arc::clone(&shared.budget).try_acquire_many_owned(permits) {
                Ok(permit) => Ok(Some(Arc::new(permit))),
                Err(_) => Ok(None),
            };
        }
        tokio::select! {
            permit = Arc::clone(&shared.budget).acquire_many_owned(permits) => {
                return permit.map(|p| Some(Arc::new(p))).map_err(|_| ());
            }
            // Looked at again: a notice left from an earlier wait finds no reader waiting.
            _ = waiting.notified() => {}
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Streams the range of `progress` from the pinned object into `sender` (`Copies::read`:
/// the pinned region first; when a region fails, even mid-body, the rest comes from the
/// next region of the majority).
async fn stream_range(
    pinned: Arc<PinnedVersion>,
    session: Session,
    shared: Arc<ReadShared>,
    link: Link,
    sender: mpsc::Sender<Chunk>,
    served: Served,
    budget: Budget,
) {
    let Link {
        progress,
        waiting,
        slot,
    } = link;
    let range = {
        let progress = progress.lock().unwrap_or_else(PoisonError::into_inner);
        progress.at..progress.end
    };
    let mut read = pinned.copies.read(&session, Some(range));
    let mut waiting_since = Instant::now();
    // Bodies arrive in small frames: hand them over in chunks of at least
    // `chunk_size`, so a channel of a few chunks holds megabytes ahead of the reader.
    let mut frames = Vec::new();
    let mut pending = 0u64;
    let mut last_region: Option<Arc<str>> = None;
    loop {
        let piece = read.next().await;
        let finished = {
            let mut progress = progress.lock().unwrap_or_else(PoisonError::into_inner);
            match piece {
                Some(Ok(piece)) => {
                    // The reader may have cut the stream short meanwhile: a region
                    // that takes over asks only for what is still wanted.
                    read.shorten(progress.end);
                    if !piece.first {
                        progress.waited += waiting_since.elapsed();
                    }
                    let mut data = piece.bytes;
                    let room = progress.end.saturating_sub(progress.at);
                    data.truncate(room.min(data.len() as u64) as usize);
                    progress.at += data.len() as u64;
                    progress.received += data.len() as u64;
                    pending += data.len() as u64;
                    if !data.is_empty() {
                        frames.push(data);
                        if last_region.as_ref() != Some(&piece.region) {
                            if let Ok(mut served) = served.lock() {
                                served.insert(piece.region.to_string());
                            }
                            last_region = Some(piece.region);
                        }
                    }
                    progress.at >= progress.end
                }
                Some(Err(unserved)) => {
                    drop(progress);
                    let _ = sender
                        .send(Err(FsError::unavailable(unserved.to_string())))
                        .await;
                    return;
                }
                None => true,
            }
        };
        if pending >= shared.options.chunk_size || (finished && pending > 0) {
            let rate = {
                let progress = progress.lock().unwrap_or_else(PoisonError::into_inner);
                let seconds = progress.waited.as_secs_f64();
                (seconds > 0.0).then(|| progress.received as f64 / seconds)
            };
            if let Some(rate) = rate {
                slot.report(rate);
            }
            let permit = match &budget {
                Budget::Reserved(permit) => Some(Arc::clone(permit)),
                Budget::PerChunk => match permit_for(&shared, &progress, &waiting, pending).await {
                    Ok(permit) => permit,
                    Err(()) => return,
                },
            };
            pending = 0;
            if sender
                .send(Ok((std::mem::take(&mut frames), permit)))
                .await
                .is_err()
            {
                return; // The reader moved on.
            }
        }
        if finished {
            return;
        }
        waiting_since = Instant::now();
    }
}
