//! One region's part of a stage: its bucket and whether the key is there, the metadata
//! object placed first (never beside another's), the upload (in one request or in
//! parts, or completing parts uploaded ahead), the check of an artifact already there,
//! and the forward-only move of `latest` (which the stage asks for only once a majority
//! holds the artifact). Which objects are the stage's own, and their removal when it
//! fails, are `ownership`'s: a plan holds its `Ownership`, which knows nothing of plans.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use semver::Version;

use crate::checksum::{Checksum, CRC64_METADATA_KEY};
use crate::protocol::error::Error;
use crate::protocol::metadata::{self, Metadata};
use crate::protocol::names::metadata_key;
use crate::protocol::session::Session;
use crate::storage::{
    CompletedPart, ObjectInfo, PutOptions, RegionStore, StorageError, MD5_METADATA_KEY,
};

use crate::digest::Md5;

use super::digests::{base64_of, Prepared};
use super::options::StageOptions;
use super::ownership::Ownership;
use super::parts::SharedParts;
use super::refusal::{Existing, Refusal, RegionError, Taken};
use super::sending::{first_method, place, Method, Sent};
use crate::protocol::stage_report::{LatestChange, RegionOutcome};

/// Everything one region's stage needs.
pub(super) struct RegionPlan<'a> {
    pub(super) session: &'a Session,
    /// Parts uploaded ahead, by region: completed instead of uploaded again.
    pub(super) ahead: Mutex<HashMap<String, (String, Vec<CompletedPart>)>>,
    pub(super) key: &'a str,
    pub(super) metadata: &'a Metadata,
    pub(super) metadata_bytes: Option<Bytes>,
    pub(super) latest_parameter: String,
    pub(super) version: &'a Version,
    pub(super) prepared: &'a Prepared,
    /// The parts, read once for every region.
    pub(super) parts: SharedParts,
    pub(super) options: &'a StageOptions,
    pub(super) dry_run: bool,
    /// The id this stage's objects carry, its stager's earlier ones, and what was sent
    /// to each region: what a failed stage removes (see `ownership`).
    pub(super) ownership: Ownership,
}

impl<'a> RegionPlan<'a> {
    /// A plan for every region of `session`: `metadata` staged with the artifact at
    /// `key`, `latest_parameter` moved (empty for a plan that never moves it), the
    /// parts read once for all; no parts uploaded ahead, not a dry run, a new stager.
    pub(super) fn new(
        session: &'a Session,
        key: &'a str,
        version: &'a Version,
        metadata: &'a Metadata,
        latest_parameter: String,
        prepared: &'a Prepared,
        options: &'a StageOptions,
    ) -> Self {
        RegionPlan {
            session,
            ahead: Mutex::new(HashMap::new()),
            key,
            metadata,
            metadata_bytes: metadata::encode(metadata).map(Bytes::from),
            latest_parameter,
            version,
            prepared,
            parts: SharedParts::new(
                &prepared.path,
                &prepared.parts,
                options.part_concurrency,
                options.memory_budget,
            ),
            options,
            dry_run: false,
            ownership: Ownership::default(),
        }
    }
}

impl RegionPlan<'_> {
    pub(super) async fn run(&self, store: &dyn RegionStore) -> RegionOutcome {
        let outcome = match self.try_run(store).await {
            Ok(outcome) => outcome,
            Err(Refusal::Taken(taken)) => RegionOutcome::Taken(taken.to_string()),
            Err(Refusal::Failed(error)) => RegionOutcome::Failed(error.to_string()),
        };
        if let Some(progress) = &self.options.progress {
            let ok = !matches!(outcome, RegionOutcome::Taken(_) | RegionOutcome::Failed(_));
            progress.region_done(store.region(), ok);
        }
        outcome
    }

    /// Tells the progress that `region` took `bytes` more.
    fn moved(&self, region: &str, bytes: u64) {
        if let Some(progress) = &self.options.progress {
            progress.moved(region, bytes);
        }
    }

    /// The region's bucket, and the key's head when it is there already.
    async fn bucket_and_presence(
        &self,
        store: &dyn RegionStore,
    ) -> Result<(String, Option<ObjectInfo>), RegionError> {
        let bucket = self.session.bucket(store).await?;
        match store.head_object(&bucket, self.key).await {
            Ok(info) => Ok((bucket, Some(info))),
            Err(e) if e.is_not_found() => Ok((bucket, None)),
            Err(source) => Err(RegionError::Presence {
                bucket,
                key: self.key.to_string(),
                region: store.region().to_string(),
                source,
            }),
        }
    }

    async fn try_run(&self, store: &dyn RegionStore) -> Result<RegionOutcome, Refusal> {
        let region = store.region();
        let (bucket, present) = self.bucket_and_presence(store).await?;
        if present.is_some() && self.dry_run {
            return Err(Taken::Exists(self.existing(store, &bucket)).into());
        }
        if let Some(info) = present {
            if !self.ownership.stager.left_earlier(&info) {
                self.check_existing(store, &bucket).await?;
                return Ok(RegionOutcome::AlreadyHeld(LatestChange::Untouched));
            }
            // Left by an earlier stage of ours that failed (see `ownership`).
            if info.known_md5().as_deref() == Some(self.prepared.md5_hex.as_str()) {
                self.place_metadata(store, &bucket).await?;
                return Ok(RegionOutcome::AlreadyHeld(LatestChange::Untouched));
            }
            self.ownership
                .remove_earlier_artifact(store, &bucket, self.key, &info)
                .await?;
        }
        if self.dry_run {
            return Ok(RegionOutcome::WouldStage);
        }
        // The metadata first: an artifact is never put beside another's metadata.
        self.place_metadata(store, &bucket).await?;
        self.ownership.note_sent(region, true);
        match self.upload(store, &bucket).await {
            Ok(()) => {}
            Err(e) if e.is_precondition_failed() => {
                // Another stager won the race in this region.
                self.check_existing(store, &bucket).await?;
                return Ok(RegionOutcome::AlreadyHeld(LatestChange::Untouched));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(RegionOutcome::Staged(LatestChange::Untouched))
    }

    /// Asks the region again whether it holds our bytes (see `Session::stage_file`):
    /// an outcome that holds stays only while the region's copy has our MD5.
    pub(super) async fn confirm(
        &self,
        store: &dyn RegionStore,
        outcome: RegionOutcome,
    ) -> RegionOutcome {
        if !outcome.holds() {
            return outcome;
        }
        let region = store.region();
        let bucket = match self.session.bucket(store).await {
            Ok(bucket) => bucket,
            Err(e) => return RegionOutcome::Failed(format!("could not check again: {e}")),
        };
        match store.head_object(&bucket, self.key).await {
            Ok(info) if info.known_md5().as_deref() == Some(self.prepared.md5_hex.as_str()) => {
                outcome
            }
            Ok(info) => {
                let theirs = info
                    .known_md5()
                    .unwrap_or_else(|| format!("unknown, ETag {:?}", info.etag));
                tracing::warn!(
                    region,
                    key = self.key,
                    "another stager's bytes (MD5 {theirs}) replaced ours ({}) after our upload",
                    self.prepared.md5_hex
                );
                RegionOutcome::Taken(format!(
                    "{} in {bucket} in {region} holds other content (MD5 {theirs}, ours {}): another stager won here",
                    self.key, self.prepared.md5_hex
                ))
            }
            Err(e) => RegionOutcome::Failed(format!(
                "could not check that {} in {region} is ours: {e}",
                self.key
            )),
        }
    }

    /// Who staged it, and the whole artifact's MD5 and CRC-64/NVME (the CRC is what a
    /// whole read is checked against: see `crate::checksum`).
    fn user_metadata(&self) -> HashMap<String, String> {
        self.ownership.owned_metadata(&[
            (MD5_METADATA_KEY, &self.prepared.md5_hex),
            (
                CRC64_METADATA_KEY,
                &Checksum::recorded_crc64(self.prepared.crc64),
            ),
        ])
    }

    pub(super) fn take_ahead(&self, region: &str) -> Option<(String, Vec<CompletedPart>)> {
        self.ahead
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(region)
    }

    async fn upload(&self, store: &dyn RegionStore, bucket: &str) -> Result<(), StorageError> {
        if let Some((upload_id, parts)) = self.take_ahead(store.region()) {
            let completed = self.complete(store, bucket, &upload_id, &parts).await;
            match completed {
                Ok(()) => {
                    self.moved(store.region(), self.prepared.size);
                    return Ok(());
                }
                Err(e) if e.is_precondition_failed() => {
                    self.abandon(store, bucket, &upload_id).await;
                    return Err(e);
                }
                Err(e) => {
                    // The upload may have expired: upload again.
                    tracing::warn!(
                        region = store.region(),
                        "completing the upload made ahead failed ({e}); uploading again"
                    );
                    self.abandon(store, bucket, &upload_id).await;
                }
            }
        }
        let method = self.method(store);
        let started = Instant::now();
        if method == Method::OneRequest {
            // A file changed since it was hashed fails its Content-MD5: checked by the
            // server, and by the store as a streamed file is sent (some servers do not).
            let options = PutOptions {
                content_md5: Some(self.prepared.md5_base64.clone()),
                body_crc64: Some(self.prepared.crc64),
                if_none_match: true,
                if_match: None,
                user_metadata: self.user_metadata(),
            };
            match &self.prepared.whole {
                Some(body) => {
                    store
                        .put_object(bucket, self.key, body.clone(), &options)
                        .await?
                }
                None => {
                    store
                        .put_object_from_file(bucket, self.key, &self.prepared.path, &options)
                        .await?
                }
            }
            self.moved(store.region(), self.prepared.size);
            self.learn(store, method, started, Duration::ZERO);
            return Ok(());
        }
        let upload_id = store
            .create_multipart_upload(bucket, self.key, &self.user_metadata(), true)
            .await?;
        let result = self.upload_parts(store, bucket, &upload_id).await;
        let parts = match result {
            Ok(parts) => parts,
            Err(e) => {
                self.abandon(store, bucket, &upload_id).await;
                return Err(e);
            }
        };
        let completing = Instant::now();
        let completed = self.complete(store, bucket, &upload_id, &parts).await;
        if completed.is_err() {
            self.abandon(store, bucket, &upload_id).await;
        } else {
            self.learn(store, method, started, completing.elapsed());
        }
        completed
    }

    /// How this region is sent the file: in one request when it is under the
    /// threshold; above it, in parts, or as the region's earlier stages advise.
    pub(super) fn method(&self, store: &dyn RegionStore) -> Method {
        // No parts: none was hashed, since no region would take them when the stage
        // began (figures that changed since do not turn the file into zero parts).
        if self.prepared.one_request || self.prepared.parts.is_empty() {
            return Method::OneRequest;
        }
        match &self.options.sending {
            Some(costs) => costs.choose(
                &place(store.region(), store.s3_endpoint(), self.prepared.size),
                self.prepared.size,
                first_method(store),
            ),
            None => Method::Parts,
        }
    }

    /// Tells the region's figures what a file above the threshold took.
    fn learn(
        &self,
        store: &dyn RegionStore,
        method: Method,
        started: Instant,
        completion: Duration,
    ) {
        if let (Some(costs), false) = (&self.options.sending, self.prepared.one_request) {
            let sent = Sent {
                method,
                size: self.prepared.size,
                took: started.elapsed(),
                completion,
            };
            let place = place(store.region(), store.s3_endpoint(), sent.size);
            costs.record(&place, sent, first_method(store));
        }
    }

    /// Creates a multipart upload and uploads every part, unless the key is taken.
    pub(super) async fn upload_without_completing(
        &self,
        store: &dyn RegionStore,
    ) -> Result<Option<(String, Vec<CompletedPart>)>, RegionError> {
        if self.method(store) == Method::OneRequest {
            return Ok(None);
        }
        let (bucket, present) = self.bucket_and_presence(store).await?;
        if present.is_some() {
            return Ok(None);
        }
        let upload_id = store
            .create_multipart_upload(&bucket, self.key, &self.user_metadata(), true)
            .await?;
        match self.upload_parts(store, &bucket, &upload_id).await {
            Ok(parts) => Ok(Some((upload_id, parts))),
            Err(e) => {
                self.abandon(store, &bucket, &upload_id).await;
                Err(e.into())
            }
        }
    }

    async fn upload_parts(
        &self,
        store: &dyn RegionStore,
        bucket: &str,
        upload_id: &str,
    ) -> Result<Vec<CompletedPart>, StorageError> {
        let mut parts: Vec<CompletedPart> = stream::iter(self.parts.numbered())
            .map(|(index, number, length, checks)| async move {
                let body = self.parts.get(index).await?;
                let part = store
                    .upload_part(bucket, self.key, upload_id, number, body, &checks)
                    .await?;
                self.moved(store.region(), length);
                Ok::<_, StorageError>(part)
            })
            .buffer_unordered(self.options.part_concurrency.max(1))
            .try_collect()
            .await?;
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }

    /// Completes this stage's upload in parts, unless the key is taken, with the whole
    /// file's CRC for S3 to check the parts against.
    async fn complete(
        &self,
        store: &dyn RegionStore,
        bucket: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), StorageError> {
        let crc64 = Some(self.prepared.crc64);
        store
            .complete_multipart_upload(bucket, self.key, upload_id, parts, true, crc64)
            .await
    }

    /// Best effort: stagers are usually not granted `s3:AbortMultipartUpload`, and a
    /// bucket lifecycle rule should clean up what is left.
    pub(super) async fn abandon(&self, store: &dyn RegionStore, bucket: &str, upload_id: &str) {
        if let Err(e) = store
            .abort_multipart_upload(bucket, self.key, upload_id)
            .await
        {
            tracing::debug!(
                region = store.region(),
                "could not abort upload {upload_id}: {e}"
            );
        }
    }

    /// An artifact already in the region counts as held only with our MD5 and metadata.
    async fn check_existing(&self, store: &dyn RegionStore, bucket: &str) -> Result<(), Refusal> {
        let info = store.head_object(bucket, self.key).await?;
        match info.known_md5() {
            Some(md5) if md5 == self.prepared.md5_hex => {}
            Some(theirs) => {
                return Err(Taken::OtherContent {
                    at: self.existing(store, bucket),
                    theirs,
                    ours: self.prepared.md5_hex.clone(),
                }
                .into())
            }
            None => return Err(Taken::UnknownContent(self.existing(store, bucket)).into()),
        }
        self.check_existing_metadata(store, bucket).await
    }

    fn existing(&self, store: &dyn RegionStore, bucket: &str) -> Existing {
        Existing {
            key: self.key.to_string(),
            bucket: bucket.to_string(),
            region: store.region().to_string(),
        }
    }

    pub(super) async fn check_existing_metadata(
        &self,
        store: &dyn RegionStore,
        bucket: &str,
    ) -> Result<(), Refusal> {
        let metadata_key = metadata_key(self.key);
        let existing = match metadata::read_bounded(store, bucket, &metadata_key).await {
            Ok(bytes) => metadata::decode(&metadata_key, &bytes)?,
            Err(e) if e.is_not_found() => Metadata::new(),
            Err(e) => return Err(e.into()),
        };
        if &existing != self.metadata {
            return Err(Taken::OtherMetadata(self.existing(store, bucket)).into());
        }
        Ok(())
    }

    /// Puts our metadata object where the artifact is absent or our own earlier
    /// stage's: created if missing; a copy already there with our metadata is taken as
    /// it is; one an earlier stage of ours left is replaced; any other is another
    /// stager's (`Taken`). Without metadata, a metadata object there must be absent,
    /// empty, or our earlier stage's (then removed): an artifact is never put beside
    /// another's metadata.
    pub(super) async fn place_metadata(
        &self,
        store: &dyn RegionStore,
        bucket: &str,
    ) -> Result<(), Refusal> {
        let key = metadata_key(self.key);
        if let Some(body) = &self.metadata_bytes {
            self.ownership.note_sent(store.region(), false);
            match self.put_metadata(store, bucket, body, None).await {
                Err(e) if e.is_precondition_failed() => {}
                other => return other.map_err(Refusal::from),
            }
        }
        let info = match store.head_object(bucket, &key).await {
            Ok(info) => info,
            Err(e) if e.is_not_found() && self.metadata_bytes.is_none() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let same = self.check_existing_metadata(store, bucket).await;
        if same.is_ok() || !self.ownership.stager.left_earlier(&info) {
            return same;
        }
        let etag = info.etag.as_deref().unwrap_or_default();
        let written = match &self.metadata_bytes {
            Some(body) => self.put_metadata(store, bucket, body, Some(etag)).await,
            None => store.delete_object(bucket, &key, Some(etag)).await,
        };
        written.map_err(|source| RegionError::NotReplaced { key, source }.into())
    }

    async fn put_metadata(
        &self,
        store: &dyn RegionStore,
        bucket: &str,
        body: &Bytes,
        replacing: Option<&str>,
    ) -> Result<(), StorageError> {
        let options = PutOptions {
            content_md5: Some(base64_of(&Md5::digest(body))),
            body_crc64: None,
            if_none_match: replacing.is_none(),
            if_match: replacing.map(str::to_string),
            user_metadata: self.ownership.owned_metadata(&[]),
        };
        store
            .put_object(bucket, &metadata_key(self.key), body.clone(), &options)
            .await
    }

    /// Once a majority holds the artifact: checks again that this region holds our
    /// bytes, then moves its `latest` forward.
    pub(super) async fn move_latest_where_held(
        &self,
        store: &dyn RegionStore,
        outcome: RegionOutcome,
    ) -> RegionOutcome {
        let outcome = self.confirm(store, outcome).await;
        if !outcome.holds() {
            return outcome;
        }
        let change = self.move_latest(store).await;
        outcome.with_latest(change)
    }

    /// Moves `latest` forward only: read it first; when reading is refused, write it as
    /// the Python tool does. Called only once a majority holds the artifact, and only
    /// in a region that holds it (see `Session::stage_file`).
    async fn move_latest(&self, store: &dyn RegionStore) -> LatestChange {
        match self.try_move_latest(store).await {
            Ok(change) => change,
            Err(error) => {
                tracing::warn!(region = store.region(), "{error}");
                LatestChange::Failed(error.to_string())
            }
        }
    }

    async fn try_move_latest(&self, store: &dyn RegionStore) -> Result<LatestChange, Error> {
        let name = &self.latest_parameter;
        let change = match store.get_parameter(name).await {
            Ok(text) => match Version::parse(text.trim()) {
                Ok(current) if current.cmp_precedence(self.version).is_ge() => {
                    return Ok(LatestChange::Kept(current))
                }
                _ => LatestChange::Moved,
            },
            Err(e) if e.is_not_found() => LatestChange::Moved,
            Err(e) if e.is_access_denied() => LatestChange::WrittenBlind,
            Err(e) => {
                tracing::warn!(
                    region = store.region(),
                    "could not read {name} before moving it: {e}"
                );
                LatestChange::WrittenBlind
            }
        };
        store
            .put_parameter(name, &self.version.to_string())
            .await
            .map_err(|source| Error::Parameter {
                name: name.clone(),
                region: store.region().to_string(),
                source,
            })?;
        Ok(change)
    }
}
