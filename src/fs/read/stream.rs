//! One streaming GET of a range of a pinned object: a task that consumes the body as
//! it arrives and hands it to the reader in chunks, each holding permits of the shared
//! memory budget, failing over to the next region mid-body.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::task::JoinHandle;

use crate::fs::error::{FsError, FsResult};
use crate::fs::pinned::PinnedVersion;
use crate::protocol::Session;

use super::shared::ReadShared;

pub(super) type Chunk = FsResult<(Bytes, OwnedSemaphorePermit)>;

/// The regions that handed a reader bytes: when the bytes read whole fail their check,
/// each of them is suspect.
pub(super) type Served = Arc<Mutex<BTreeSet<String>>>;

/// One streaming GET of `range`, handing chunks over in order.
pub(super) struct Stream {
    pub(super) range: Range<u64>,
    /// Offset of the next chunk to come out of `chunks`.
    pub(super) received: u64,
    pub(super) chunks: mpsc::Receiver<Chunk>,
    task: JoinHandle<()>,
}

impl Stream {
    /// Starts the GET of `range` in a task of its own.
    pub(super) fn start(
        pinned: Arc<PinnedVersion>,
        session: Session,
        shared: Arc<ReadShared>,
        range: Range<u64>,
        served: Served,
    ) -> Stream {
        let (sender, receiver) = mpsc::channel(shared.options.chunks_ahead.max(1));
        let start = range.start;
        let task = tokio::spawn(stream_range(
            pinned,
            session,
            shared,
            range.clone(),
            sender,
            served,
        ));
        Stream {
            range,
            received: start,
            chunks: receiver,
            task,
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Streams `range` of the pinned object into `sender`: the pinned region first; when a
/// region fails, even mid-body, the rest comes from the next whose copy has the same
/// ETag.
async fn stream_range(
    pinned: Arc<PinnedVersion>,
    session: Session,
    shared: Arc<ReadShared>,
    range: Range<u64>,
    sender: mpsc::Sender<Chunk>,
    served: Served,
) {
    let mut at = range.start;
    let mut reasons = Vec::new();
    for store in pinned.regions_in_order(&session) {
        let region = store.region().to_string();
        let bucket = match session.bucket(store.as_ref()).await {
            Ok(bucket) => bucket,
            Err(e) => {
                reasons.push(format!("{region}: {e}"));
                continue;
            }
        };
        let mut object = match store
            .get_object(
                &bucket,
                &pinned.key,
                Some(at..range.end),
                pinned.etag.as_deref(),
            )
            .await
        {
            Ok(object) => object,
            Err(e) => {
                tracing::warn!(region, key = %pinned.key, "read of {at}..{} failed: {e}", range.end);
                reasons.push(format!("{region}: {e}"));
                continue;
            }
        };
        // Bodies arrive in small frames: hand them over in chunks of `chunk_size`, so a
        // channel of a few chunks holds megabytes, not kilobytes, ahead of the reader.
        let mut pending = BytesMut::new();
        loop {
            let frame = object.body.next().await;
            let finished = match frame {
                Some(Ok(data)) => {
                    pending.extend_from_slice(&data);
                    false
                }
                Some(Err(e)) => {
                    tracing::warn!(region, key = %pinned.key, "read stream broke at {}: {e}", at + pending.len() as u64);
                    reasons.push(format!("{region}: {e}"));
                    true
                }
                None => true,
            };
            if pending.len() as u64 >= shared.options.chunk_size
                || (finished && !pending.is_empty())
            {
                let data = pending.split().freeze();
                let permits = shared.permits_for(data.len() as u64);
                let Ok(permit) = Arc::clone(&shared.budget).acquire_many_owned(permits).await
                else {
                    return;
                };
                at += data.len() as u64;
                if let Ok(mut served) = served.lock() {
                    served.insert(region.clone());
                }
                if sender.send(Ok((data, permit))).await.is_err() {
                    return; // The reader moved on.
                }
            }
            if finished {
                break;
            }
        }
        if at >= range.end {
            return;
        }
    }
    let _ = sender
        .send(Err(FsError::unavailable(format!(
            "no region could serve bytes {at}..{} of {}: {}",
            range.end,
            pinned.key,
            reasons.join("; ")
        ))))
        .await;
}
