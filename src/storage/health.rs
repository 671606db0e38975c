//! Each region's recent health, and the `RegionStore` wrapper that keeps it.
//!
//! A `HealthBoard` holds, per region of a session, the last success, the last error (when
//! and why) and a circuit breaker (`breaker`). `GuardedRegion` wraps a region's store:
//! before each request it asks the board, after it records the outcome.
//!
//! What counts: a timeout, a refused connection or a server error (`Timeout`,
//! `Unavailable`) is a failure of the region; every other result, "not found", "access
//! denied" and "precondition failed" included, is an answer and counts as a success.
//!
//! A region whose breaker is open is refused at once (`Unavailable`, saying so) only while
//! the other regions whose breakers let requests through can still make a majority of
//! the session; otherwise it is tried anyway, so that the breaker never stands between a
//! reader or a stager and a quorum that the regions could give.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;

use super::breaker::{Admission, Breaker, BreakerPolicy, BreakerState, Transition};
use super::error::{ErrorKind, StorageError};
use super::store::{
    CompletedPart, ObjectInfo, ObjectStream, ObjectSummary, PartChecks, PutOptions, RegionStore,
};

/// The recent health of every region of a session; cheap to clone and share.
#[derive(Clone, Default)]
pub struct HealthBoard {
    inner: Arc<Mutex<Board>>,
    /// Told whenever a region answers again after its breaker opened (see `returned`).
    returned: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct Board {
    policy: BreakerPolicy,
    regions: BTreeMap<String, Record>,
}

struct Record {
    breaker: Breaker,
    last_success: Option<SystemTime>,
    last_error: Option<(SystemTime, String)>,
}

impl fmt::Debug for HealthBoard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.report()).finish()
    }
}

/// One region's health as the status report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionHealth {
    pub region: String,
    /// `closed` (requests go through), `open` (refused for a while) or `half-open` (one
    /// probe is out).
    pub breaker: &'static str,
    pub consecutive_failures: u32,
    /// Seconds until an open breaker lets a probe through.
    pub retry_in_seconds: Option<f64>,
    /// Seconds since the Unix epoch.
    pub last_success: Option<f64>,
    pub last_error: Option<ErrorSeen>,
}

/// The last failure of a region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorSeen {
    /// Seconds since the Unix epoch.
    pub at: f64,
    pub reason: String,
}

fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Whether an error says the region itself failed, rather than answering.
pub fn is_region_failure(error: &StorageError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Timeout | ErrorKind::Unavailable | ErrorKind::Throttled
    )
}

impl HealthBoard {
    pub fn new(policy: BreakerPolicy) -> Self {
        HealthBoard {
            inner: Arc::new(Mutex::new(Board {
                policy,
                regions: BTreeMap::new(),
            })),
            returned: Arc::default(),
        }
    }

    /// Told (one stored wake-up) each time a region whose breaker had opened answers
    /// again: the repair waits on it, so a region that returns is healed at once rather
    /// than at its next backoff step.
    pub fn returned(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.returned)
    }

    fn board(&self) -> MutexGuard<'_, Board> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wraps a region's store so that its requests are recorded on this board.
    pub fn guard(&self, store: Arc<dyn RegionStore>) -> Arc<dyn RegionStore> {
        let region = store.region().to_string();
        {
            let mut board = self.board();
            let policy = board.policy;
            board.regions.entry(region.clone()).or_insert(Record {
                breaker: Breaker::new(policy),
                last_success: None,
                last_error: None,
            });
        }
        Arc::new(GuardedRegion {
            region,
            store,
            board: self.clone(),
        })
    }

    /// Every region's health, by region name.
    pub fn report(&self) -> Vec<RegionHealth> {
        let now = Instant::now();
        self.board()
            .regions
            .iter()
            .map(|(region, record)| {
                let state = record.breaker.state();
                RegionHealth {
                    region: region.clone(),
                    breaker: state.name(),
                    consecutive_failures: record.breaker.consecutive_failures(),
                    retry_in_seconds: match state {
                        BreakerState::Open { until } => {
                            Some(until.saturating_duration_since(now).as_secs_f64())
                        }
                        _ => None,
                    },
                    last_success: record.last_success.map(unix_seconds),
                    last_error: record.last_error.as_ref().map(|(at, reason)| ErrorSeen {
                        at: unix_seconds(*at),
                        reason: reason.clone(),
                    }),
                }
            })
            .collect()
    }

    /// Asks whether a request to `region` may go now.
    fn admit(&self, region: &str, now: Instant) -> Result<Pass, StorageError> {
        let mut board = self.board();
        let total = board.regions.len();
        let others_usable = board
            .regions
            .iter()
            .filter(|(name, record)| name.as_str() != region && record.breaker.admits(now))
            .count();
        let Some(record) = board.regions.get_mut(region) else {
            return Ok(Pass::new(self, region, false));
        };
        match record.breaker.admit(now) {
            Admission::Go => Ok(Pass::new(self, region, false)),
            Admission::Probe => {
                tracing::info!(region, "probing a region whose breaker was open");
                Ok(Pass::new(self, region, true))
            }
            Admission::Refuse { .. } if others_usable < total / 2 + 1 => {
                // Without this region the others cannot make a majority: try it anyway.
                tracing::debug!(region, "breaker open, tried for a quorum");
                Ok(Pass::new(self, region, false))
            }
            Admission::Refuse { retry_in } => {
                let last = record
                    .last_error
                    .as_ref()
                    .map(|(_, reason)| reason.as_str())
                    .unwrap_or("unknown");
                Err(StorageError::unavailable(format!(
                    "region {region} is not being asked for {:.1} s after {} consecutive \
                     failures (last: {last})",
                    retry_in.as_secs_f64(),
                    record.breaker.consecutive_failures()
                )))
            }
        }
    }

    fn record_success(&self, region: &str) {
        let mut board = self.board();
        if let Some(record) = board.regions.get_mut(region) {
            record.last_success = Some(SystemTime::now());
            if record.breaker.succeeded() == Some(Transition::Closed) {
                tracing::info!(region, "region {region} answers again: breaker closed");
                self.returned.notify_one();
            }
        }
    }

    fn record_failure(&self, region: &str, error: &StorageError, now: Instant) {
        let mut board = self.board();
        if let Some(record) = board.regions.get_mut(region) {
            record.last_error = Some((SystemTime::now(), error.to_string()));
            if let Some(Transition::Opened { backoff, failures }) = record.breaker.failed(now) {
                tracing::warn!(
                    region,
                    "region {region} failed {failures} times in a row: breaker open, not \
                     asked for {} s unless a quorum needs it (last: {error})",
                    backoff.as_secs_f64()
                );
            }
        }
    }

    fn record(&self, region: &str, error: Option<&StorageError>) {
        match error {
            Some(e) if is_region_failure(e) => self.record_failure(region, e, Instant::now()),
            _ => self.record_success(region),
        }
    }
}

/// A request on its way; a probe dropped before its outcome lets the next one probe.
struct Pass {
    board: HealthBoard,
    region: String,
    probe: bool,
    done: bool,
}

impl Pass {
    fn new(board: &HealthBoard, region: &str, probe: bool) -> Self {
        Pass {
            board: board.clone(),
            region: region.to_string(),
            probe,
            done: false,
        }
    }

    fn finish(mut self, error: Option<&StorageError>) {
        self.done = true;
        self.board.record(&self.region, error);
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        if self.probe && !self.done {
            let mut board = self.board.board();
            if let Some(record) = board.regions.get_mut(&self.region) {
                record.breaker.probe_abandoned(Instant::now());
            }
        }
    }
}

/// A region's store whose requests go through its breaker and are recorded.
pub struct GuardedRegion {
    region: String,
    store: Arc<dyn RegionStore>,
    board: HealthBoard,
}

impl fmt::Debug for GuardedRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.store.fmt(f)
    }
}

impl GuardedRegion {
    async fn call<T>(
        &self,
        request: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        let pass = self.board.admit(&self.region, Instant::now())?;
        let result = request.await;
        if let Err(e) = &result {
            log_failed_request(&self.region, e);
        }
        pass.finish(result.as_ref().err());
        result
    }
}

/// One line per failed request, with the region and the reason. "Not found" and a
/// precondition that did not hold are answers the protocol expects, not failures.
fn log_failed_request(region: &str, error: &StorageError) {
    if !error.is_not_found() && !error.is_precondition_failed() {
        tracing::warn!(region, "request failed: {error}");
    }
}

#[async_trait]
impl RegionStore for GuardedRegion {
    fn region(&self) -> &str {
        &self.region
    }

    fn s3_endpoint(&self) -> Option<&str> {
        self.store.s3_endpoint()
    }

    fn server_name(&self) -> Option<String> {
        self.store.server_name()
    }

    async fn get_parameter(&self, name: &str) -> Result<String, StorageError> {
        self.call(self.store.get_parameter(name)).await
    }

    async fn put_parameter(&self, name: &str, value: &str) -> Result<(), StorageError> {
        self.call(self.store.put_parameter(name, value)).await
    }

    async fn delete_parameter(&self, name: &str) -> Result<(), StorageError> {
        self.call(self.store.delete_parameter(name)).await
    }

    async fn list_parameters(&self, path: &str) -> Result<Vec<(String, String)>, StorageError> {
        self.call(self.store.list_parameters(path)).await
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo, StorageError> {
        self.call(self.store.head_object(bucket, key)).await
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<Range<u64>>,
        if_match: Option<&str>,
    ) -> Result<ObjectStream, StorageError> {
        let stream = self
            .call(self.store.get_object(bucket, key, range, if_match))
            .await?;
        // A body that stalls or breaks half way is the region failing too.
        let board = self.board.clone();
        let region = self.region.clone();
        let body = stream.body.map(move |chunk| {
            if let Err(e) = &chunk {
                log_failed_request(&region, e);
                if is_region_failure(e) {
                    board.record_failure(&region, e, Instant::now());
                }
            }
            chunk
        });
        Ok(ObjectStream {
            info: stream.info,
            body: body.boxed(),
        })
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<(), StorageError> {
        self.call(self.store.put_object(bucket, key, body, options))
            .await
    }

    async fn put_object_from_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        options: &PutOptions,
    ) -> Result<(), StorageError> {
        self.call(self.store.put_object_from_file(bucket, key, path, options))
            .await
    }

    async fn first_part_size(&self, bucket: &str, key: &str) -> Result<Option<u64>, StorageError> {
        self.call(self.store.first_part_size(bucket, key)).await
    }

    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ObjectSummary>, StorageError> {
        self.call(self.store.list_objects(bucket, prefix)).await
    }

    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<(), StorageError> {
        self.call(self.store.delete_object(bucket, key, if_match))
            .await
    }

    async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        user_metadata: &HashMap<String, String>,
        full_crc64: bool,
    ) -> Result<String, StorageError> {
        self.call(
            self.store
                .create_multipart_upload(bucket, key, user_metadata, full_crc64),
        )
        .await
    }

    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: i32,
        body: Bytes,
        checks: &PartChecks,
    ) -> Result<CompletedPart, StorageError> {
        self.call(
            self.store
                .upload_part(bucket, key, upload_id, part_number, body, checks),
        )
        .await
    }

    async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        if_none_match: bool,
        crc64: Option<u64>,
    ) -> Result<(), StorageError> {
        self.call(self.store.complete_multipart_upload(
            bucket,
            key,
            upload_id,
            parts,
            if_none_match,
            crc64,
        ))
        .await
    }

    async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StorageError> {
        self.call(self.store.abort_multipart_upload(bucket, key, upload_id))
            .await
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
