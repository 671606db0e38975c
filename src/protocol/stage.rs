//! Staging: one artifact to every region at once.
//!
//! The file is read once up front to hash it (and each multipart part). Then, in every
//! region concurrently: look up the bucket; `HeadObject` the key (an existing artifact
//! with the same MD5 and metadata counts as held, so a retry after a partial failure
//! succeeds; other bytes fail the region); put the metadata object, then the artifact,
//! both with Content-MD5 and `If-None-Match: *` (so two stagers of one version cannot
//! both win in a region); then move the latest-version parameter, only forward when it
//! can be read first, else written as the Python tool writes it.
//!
//! The contract: the stage succeeds when more than half of the regions hold the
//! artifact, so every quorum read of `latest` sees it. `require_all_regions` restores the
//! Python tool's rule that any failed region fails the stage. The report names every
//! region's outcome either way.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use futures::future::join_all;
use futures::stream::{self, StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use semver::Version;

use crate::storage::{CompletedPart, PutOptions, RegionStore, StorageError, MD5_METADATA_KEY};

use super::error::Error;
use super::metadata::{self, validate_user_metadata, Metadata, FILENAME_KEY};
use super::names::{artifact_key, latest_parameter_name, metadata_key, validate_project_name};
use super::session::Session;

/// S3's smallest part (but the last) and its most parts.
pub const MIN_PART_SIZE: u64 = 5 << 20;
pub const MAX_PARTS: u64 = 10_000;

/// How a stage runs beyond what the format fixes.
#[derive(Debug, Clone)]
pub struct StageOptions {
    /// Fail when any region fails (the Python tool's rule) rather than on no majority.
    pub require_all_regions: bool,
    /// Files larger than this are uploaded in parts.
    pub multipart_threshold: u64,
    /// Size of each part (at least 5 MiB; raised when 10,000 parts would not do).
    pub part_size: u64,
    /// Parts in flight per region.
    pub part_concurrency: usize,
}

impl Default for StageOptions {
    fn default() -> Self {
        StageOptions {
            require_all_regions: false,
            multipart_threshold: 16 << 20,
            part_size: 8 << 20,
            part_concurrency: 2,
        }
    }
}

/// What happened to `latest` in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LatestChange {
    /// Set to this version (it was lower, missing or unreadable).
    Moved,
    /// Left at a version at least as high.
    Kept(Version),
    /// Written without reading it first (reading was refused).
    WrittenBlind,
}

/// One region's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionOutcome {
    /// Uploaded here by this stage.
    Staged(LatestChange),
    /// Already here with the same bytes and metadata.
    AlreadyHeld(LatestChange),
    /// A dry run found nothing in the way.
    WouldStage,
    /// The key is taken here by other bytes or other metadata (another stager won).
    Taken(String),
    Failed(String),
}

impl RegionOutcome {
    pub fn holds(&self) -> bool {
        matches!(
            self,
            RegionOutcome::Staged(_) | RegionOutcome::AlreadyHeld(_)
        )
    }
}

impl fmt::Display for RegionOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let latest = |change: &LatestChange| match change {
            LatestChange::Moved | LatestChange::WrittenBlind => "latest moved to it".to_string(),
            LatestChange::Kept(v) => format!("latest kept at {v}"),
        };
        match self {
            RegionOutcome::Staged(c) => write!(f, "staged, {}", latest(c)),
            RegionOutcome::AlreadyHeld(c) => write!(f, "already held, {}", latest(c)),
            RegionOutcome::WouldStage => write!(f, "would stage (dry run)"),
            RegionOutcome::Taken(reason) | RegionOutcome::Failed(reason) => {
                write!(f, "failed: {reason}")
            }
        }
    }
}

/// Every region's outcome of one stage.
#[derive(Debug, Clone)]
pub struct StageReport {
    pub project: String,
    pub version: Version,
    pub key: String,
    pub md5: String,
    pub size: u64,
    pub dry_run: bool,
    pub regions: Vec<(String, RegionOutcome)>,
}

impl StageReport {
    pub fn held(&self) -> usize {
        self.regions.iter().filter(|(_, o)| o.holds()).count()
    }

    pub fn failed(&self) -> Vec<&(String, RegionOutcome)> {
        self.regions
            .iter()
            .filter(|(_, o)| matches!(o, RegionOutcome::Failed(_) | RegionOutcome::Taken(_)))
            .collect()
    }

    /// Whether some region holds the version with other bytes or metadata: the version
    /// was staged by someone else, and retrying cannot help.
    pub fn taken(&self) -> bool {
        self.regions
            .iter()
            .any(|(_, o)| matches!(o, RegionOutcome::Taken(_)))
    }

    /// "2 of 3 regions hold it".
    pub fn summary(&self) -> String {
        if self.dry_run {
            let ok = self.regions.len() - self.failed().len();
            return format!("{ok} of {} regions would take it", self.regions.len());
        }
        format!("{} of {} regions hold it", self.held(), self.regions.len())
    }

    /// "eu-west-2: reason; ..." for the regions that failed.
    pub fn failures(&self) -> String {
        self.failed()
            .iter()
            .map(|(region, outcome)| format!("{region}: {outcome}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn succeeded(&self, require_all: bool) -> bool {
        let n = self.regions.len();
        let ok = if self.dry_run {
            n - self.failed().len()
        } else {
            self.held()
        };
        if require_all {
            ok == n
        } else {
            ok * 2 > n
        }
    }
}

/// What to stage: a file, the name to save for it, its digests when known, and its
/// parts when they were uploaded ahead.
pub struct StageSource<'a> {
    pub path: &'a Path,
    pub file_name: Option<String>,
    pub digests: Option<FileDigests>,
    pub ahead: Option<UploadedAhead>,
}

/// The parts of a large file uploaded to each region before its stage, without the
/// completion that publishes them. The mount uploads ahead when rsync closes its
/// temporary file, so that the rename that stages it only completes the uploads.
#[derive(Debug, Clone, Default)]
pub struct UploadedAhead {
    key: String,
    md5_hex: String,
    size: u64,
    /// Region -> (upload id, parts).
    regions: HashMap<String, (String, Vec<CompletedPart>)>,
}

impl UploadedAhead {
    /// How many regions hold every part.
    pub fn regions(&self) -> usize {
        self.regions.len()
    }
}

/// The file to stage, hashed once.
struct Prepared {
    path: PathBuf,
    size: u64,
    md5_hex: String,
    md5_base64: String,
    /// The whole body, for files staged in one request.
    whole: Option<Bytes>,
    /// (offset, length, Content-MD5) of each part, for files staged in parts.
    parts: Vec<(u64, u64, String)>,
}

fn base64_of(digest: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// The part size for a file: at least the asked size and 5 MiB, raised to fit 10,000.
pub fn part_size_for(size: u64, asked: u64) -> u64 {
    let at_least = size.div_ceil(MAX_PARTS).next_multiple_of(1 << 20);
    asked.max(MIN_PART_SIZE).max(at_least)
}

/// The MD5s of a file, computed while it was written (see `DigestWriter`), so that
/// staging need not read a large file twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigests {
    pub size: u64,
    pub md5: [u8; 16],
    pub part_size: u64,
    /// One per `part_size` piece, the last one shorter.
    pub parts: Vec<[u8; 16]>,
}

/// Hashes a file as it is written front to back: the whole of it, and each piece of
/// `part_size` (the multipart upload's Content-MD5s). A write anywhere but at the end
/// gives up; the stage then reads the file again.
#[derive(Clone)]
pub struct DigestWriter {
    part_size: u64,
    whole: Md5,
    part: Md5,
    part_len: u64,
    parts: Vec<[u8; 16]>,
    size: u64,
    broken: bool,
}

impl DigestWriter {
    pub fn new(part_size: u64) -> Self {
        DigestWriter {
            part_size: part_size.max(1),
            whole: Md5::new(),
            part: Md5::new(),
            part_len: 0,
            parts: Vec::new(),
            size: 0,
            broken: false,
        }
    }

    /// Takes the bytes written at `offset`.
    pub fn write(&mut self, offset: u64, mut data: &[u8]) {
        if self.broken {
            return;
        }
        if offset != self.size {
            self.broken = true;
            return;
        }
        self.whole.update(data);
        self.size += data.len() as u64;
        while !data.is_empty() {
            let room = (self.part_size - self.part_len) as usize;
            let (now, rest) = data.split_at(room.min(data.len()));
            self.part.update(now);
            self.part_len += now.len() as u64;
            if self.part_len == self.part_size {
                self.parts.push(self.part.finalize_reset().into());
                self.part_len = 0;
            }
            data = rest;
        }
    }

    /// Gives up: the bytes were written when nothing was hashing them (before a
    /// restart of the daemon, say).
    pub fn forget(&mut self) {
        self.broken = true;
    }

    /// Follows a truncation: to zero starts again, elsewhere gives up.
    pub fn truncate(&mut self, size: u64) {
        if size == 0 {
            *self = DigestWriter::new(self.part_size);
        } else if size != self.size {
            self.broken = true;
        }
    }

    /// The digests, unless a write out of order made them unknown.
    pub fn finish(&self) -> Option<FileDigests> {
        if self.broken {
            return None;
        }
        let mut parts = self.parts.clone();
        if self.part_len > 0 {
            parts.push(self.part.clone().finalize().into());
        }
        Some(FileDigests {
            size: self.size,
            md5: self.whole.clone().finalize().into(),
            part_size: self.part_size,
            parts,
        })
    }
}

/// Trusts digests computed while the file was written when they fit its size and the
/// part size this stage uses.
fn prepared_from_digests(
    path: &Path,
    size: u64,
    part_size: u64,
    known: &FileDigests,
) -> Option<Prepared> {
    if known.size != size || known.part_size != part_size {
        return None;
    }
    let parts: Vec<(u64, u64, String)> = known
        .parts
        .iter()
        .enumerate()
        .map(|(i, md5)| {
            let offset = i as u64 * part_size;
            (offset, part_size.min(size - offset), base64_of(md5))
        })
        .collect();
    if parts.len() as u64 != size.div_ceil(part_size) {
        return None;
    }
    Some(Prepared {
        path: path.to_path_buf(),
        size,
        md5_hex: hex::encode(known.md5),
        md5_base64: base64_of(&known.md5),
        whole: None,
        parts,
    })
}

fn prepare(
    path: &Path,
    options: &StageOptions,
    known: Option<&FileDigests>,
) -> Result<Prepared, Error> {
    use std::io::Read;
    let what = format!("reading {}", path.display());
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(what.clone(), e))?;
    let size = file
        .metadata()
        .map_err(|e| Error::io(what.clone(), e))?
        .len();
    let multipart = size > options.multipart_threshold;
    let part_size = part_size_for(size, options.part_size);
    if multipart {
        if let Some(prepared) =
            known.and_then(|known| prepared_from_digests(path, size, part_size, known))
        {
            return Ok(prepared);
        }
    }
    let mut whole_hasher = Md5::new();
    let mut whole = Vec::new();
    let mut parts = Vec::new();
    let mut part_hasher = Md5::new();
    let mut part_start = 0u64;
    let mut part_len = 0u64;
    let mut offset = 0u64;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let want = if multipart {
            buffer.len().min((part_size - part_len) as usize)
        } else {
            buffer.len()
        };
        let n = file
            .read(&mut buffer[..want])
            .map_err(|e| Error::io(what.clone(), e))?;
        if n == 0 {
            break;
        }
        let chunk = &buffer[..n];
        whole_hasher.update(chunk);
        offset += n as u64;
        if multipart {
            part_hasher.update(chunk);
            part_len += n as u64;
            if part_len == part_size {
                parts.push((
                    part_start,
                    part_len,
                    base64_of(&part_hasher.finalize_reset()),
                ));
                part_start = offset;
                part_len = 0;
            }
        } else {
            whole.extend_from_slice(chunk);
        }
    }
    if multipart && part_len > 0 {
        parts.push((part_start, part_len, base64_of(&part_hasher.finalize())));
    }
    if offset != size {
        return Err(Error::io(
            what,
            std::io::Error::other(format!(
                "the file changed size while read ({size} then {offset} bytes)"
            )),
        ));
    }
    let digest = whole_hasher.finalize();
    Ok(Prepared {
        path: path.to_path_buf(),
        size,
        md5_hex: hex::encode(digest),
        md5_base64: base64_of(&digest),
        whole: (!multipart).then(|| Bytes::from(whole)),
        parts,
    })
}

impl Session {
    /// Stages `path` as `project` at `version` with the default options (see the
    /// module's comment for the contract).
    pub async fn stage(
        &self,
        project: &str,
        version: &Version,
        path: &Path,
        metadata: Metadata,
        save_filename: bool,
    ) -> Result<StageReport, Error> {
        self.stage_with(
            project,
            version,
            path,
            metadata,
            save_filename,
            &StageOptions::default(),
        )
        .await
    }

    /// Stages with explicit options. A read-only session runs a dry run: the heads and
    /// the read of the file, no writes.
    pub async fn stage_with(
        &self,
        project: &str,
        version: &Version,
        path: &Path,
        metadata: Metadata,
        save_filename: bool,
        options: &StageOptions,
    ) -> Result<StageReport, Error> {
        let file_name = if save_filename {
            let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                Error::io(
                    format!("staging {}", path.display()),
                    std::io::Error::other("the path has no usable file name"),
                )
            })?;
            Some(name.to_string())
        } else {
            None
        };
        let source = StageSource {
            path,
            file_name,
            digests: None,
            ahead: None,
        };
        self.stage_file(project, version, source, metadata, options)
            .await
    }

    /// Stages a file kept under another name (the mount's spool): `file_name` is saved
    /// as `startifact:filename`, and digests computed while it was written spare a
    /// second read.
    pub async fn stage_file(
        &self,
        project: &str,
        version: &Version,
        source: StageSource<'_>,
        mut metadata: Metadata,
        options: &StageOptions,
    ) -> Result<StageReport, Error> {
        validate_project_name(project)?;
        validate_user_metadata(&metadata)?;
        if let Some(name) = source.file_name {
            metadata.insert(FILENAME_KEY.to_string(), name);
        }
        let path = source.path;
        let prepared = {
            let path = path.to_path_buf();
            let options = options.clone();
            let digests = source.digests;
            tokio::task::spawn_blocking(move || prepare(&path, &options, digests.as_ref()))
                .await
                .map_err(|e| Error::Internal(format!("hashing task failed: {e}")))??
        };
        let configuration = self.ready_configuration().await?.clone();
        let key = artifact_key(&configuration.bucket_key_prefix, project, version);
        let ahead = match source.ahead {
            Some(ahead)
                if ahead.key == key
                    && ahead.md5_hex == prepared.md5_hex
                    && ahead.size == prepared.size
                    && !self.read_only() =>
            {
                ahead.regions
            }
            Some(stale) => {
                self.abandon_ahead(stale).await;
                HashMap::new()
            }
            None => HashMap::new(),
        };
        let plan = RegionPlan {
            session: self,
            ahead: std::sync::Mutex::new(ahead),
            key: &key,
            metadata_bytes: metadata::encode(&metadata).map(Bytes::from),
            metadata: &metadata,
            latest_parameter: latest_parameter_name(&configuration.parameter_name_prefix, project),
            version,
            prepared: &prepared,
            options,
            dry_run: self.read_only(),
        };
        // Owned handles, so the future is `Send` for any lifetime (the mount spawns it).
        let outcomes = join_all(self.stores().iter().map(|store| {
            let (store, plan) = (Arc::clone(store), &plan);
            async move {
                let outcome = plan.run(store.as_ref()).await;
                // Parts uploaded ahead that this stage did not complete are dropped.
                if let Some((upload_id, _)) = plan.take_ahead(store.region()) {
                    if let Ok(bucket) = self.bucket(store.as_ref()).await {
                        plan.abandon(store.as_ref(), &bucket, &upload_id).await;
                    }
                }
                outcome
            }
        }))
        .await;
        let report = StageReport {
            project: project.to_string(),
            version: version.clone(),
            key: key.clone(),
            md5: prepared.md5_hex.clone(),
            size: prepared.size,
            dry_run: self.read_only(),
            regions: self.regions().into_iter().zip(outcomes).collect(),
        };
        for (region, outcome) in &report.regions {
            match outcome {
                RegionOutcome::Failed(_) => tracing::warn!(region, project, %version, "{outcome}"),
                _ => tracing::info!(region, project, %version, "{outcome}"),
            }
        }
        if report.succeeded(options.require_all_regions) {
            Ok(report)
        } else {
            Err(Error::CannotStage(Box::new(report)))
        }
    }
}

impl Session {
    /// Uploads the parts of a large file to every region without completing them (see
    /// `UploadedAhead`); `None` for a file staged in one request. A region that fails
    /// is left out: the stage uploads to it in full.
    pub async fn upload_ahead(
        &self,
        project: &str,
        version: &Version,
        source: StageSource<'_>,
        options: &StageOptions,
    ) -> Result<Option<UploadedAhead>, Error> {
        validate_project_name(project)?;
        if self.read_only() {
            return Err(Error::ReadOnly);
        }
        let prepared = {
            let path = source.path.to_path_buf();
            let options = options.clone();
            let digests = source.digests;
            tokio::task::spawn_blocking(move || prepare(&path, &options, digests.as_ref()))
                .await
                .map_err(|e| Error::Internal(format!("hashing task failed: {e}")))??
        };
        if prepared.whole.is_some() {
            return Ok(None);
        }
        let configuration = self.ready_configuration().await?.clone();
        let key = artifact_key(&configuration.bucket_key_prefix, project, version);
        let metadata = Metadata::new();
        let plan = RegionPlan {
            session: self,
            ahead: std::sync::Mutex::new(HashMap::new()),
            key: &key,
            metadata_bytes: None,
            metadata: &metadata,
            latest_parameter: String::new(),
            version,
            prepared: &prepared,
            options,
            dry_run: false,
        };
        let uploads = join_all(self.stores().iter().map(|store| {
            let (store, plan) = (Arc::clone(store), &plan);
            async move {
                let region = store.region().to_string();
                match plan.upload_without_completing(store.as_ref()).await {
                    Ok(Some(upload)) => Some((region, upload)),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!(region, "could not upload ahead: {e}");
                        None
                    }
                }
            }
        }))
        .await;
        Ok(Some(UploadedAhead {
            key,
            md5_hex: prepared.md5_hex.clone(),
            size: prepared.size,
            regions: uploads.into_iter().flatten().collect(),
        }))
    }

    /// Aborts uploads made ahead that no stage will complete.
    pub async fn abandon_ahead(&self, ahead: UploadedAhead) {
        for store in self.stores() {
            let Some((upload_id, _)) = ahead.regions.get(store.region()) else {
                continue;
            };
            let Ok(bucket) = self.bucket(store.as_ref()).await else {
                continue;
            };
            if let Err(e) = store
                .abort_multipart_upload(&bucket, &ahead.key, upload_id)
                .await
            {
                tracing::debug!(
                    region = store.region(),
                    "could not abort upload {upload_id}: {e}"
                );
            }
        }
    }
}

/// Why a region did not take the artifact.
enum Refusal {
    /// The key holds other bytes or metadata.
    Taken(String),
    Failed(String),
}

impl From<String> for Refusal {
    fn from(reason: String) -> Self {
        Refusal::Failed(reason)
    }
}

/// Everything one region's stage needs.
struct RegionPlan<'a> {
    session: &'a Session,
    /// Parts uploaded ahead, by region: completed instead of uploaded again.
    ahead: std::sync::Mutex<HashMap<String, (String, Vec<CompletedPart>)>>,
    key: &'a str,
    metadata: &'a Metadata,
    metadata_bytes: Option<Bytes>,
    latest_parameter: String,
    version: &'a Version,
    prepared: &'a Prepared,
    options: &'a StageOptions,
    dry_run: bool,
}

impl RegionPlan<'_> {
    async fn run(&self, store: &dyn RegionStore) -> RegionOutcome {
        match self.try_run(store).await {
            Ok(outcome) => outcome,
            Err(Refusal::Taken(reason)) => RegionOutcome::Taken(reason),
            Err(Refusal::Failed(reason)) => RegionOutcome::Failed(reason),
        }
    }

    /// The region's bucket, and whether the key is there already.
    async fn bucket_and_presence(&self, store: &dyn RegionStore) -> Result<(String, bool), String> {
        let bucket = self
            .session
            .bucket(store)
            .await
            .map_err(|e| e.to_string())?;
        match store.head_object(&bucket, self.key).await {
            Ok(_) => Ok((bucket, true)),
            Err(e) if e.is_not_found() => Ok((bucket, false)),
            Err(e) => Err(format!(
                "Failed to discover if s3:/{bucket}/{} exists in {}: {e}",
                self.key,
                store.region()
            )),
        }
    }

    async fn try_run(&self, store: &dyn RegionStore) -> Result<RegionOutcome, Refusal> {
        let region = store.region();
        let (bucket, present) = self.bucket_and_presence(store).await?;
        if present && self.dry_run {
            return Err(Refusal::Taken(format!(
                "{} exists in {bucket} in {region}",
                self.key
            )));
        }
        if present {
            self.check_existing(store, &bucket).await?;
            let latest = self.move_latest(store).await?;
            return Ok(RegionOutcome::AlreadyHeld(latest));
        }
        if self.dry_run {
            return Ok(RegionOutcome::WouldStage);
        }
        if let Some(body) = &self.metadata_bytes {
            let options = PutOptions {
                content_md5: Some(base64_of(&Md5::digest(body))),
                if_none_match: true,
                user_metadata: HashMap::new(),
            };
            let metadata_key = metadata_key(self.key);
            match store
                .put_object(&bucket, &metadata_key, body.clone(), &options)
                .await
            {
                Ok(()) => {}
                // Left by an earlier attempt, or another stager's: fine if it is ours.
                Err(e) if e.is_precondition_failed() => {
                    self.check_existing_metadata(store, &bucket).await?
                }
                Err(e) => return Err(e.to_string().into()),
            }
        }
        match self.upload(store, &bucket).await {
            Ok(()) => {}
            Err(e) if e.is_precondition_failed() => {
                // Another stager won the race in this region.
                self.check_existing(store, &bucket).await?;
                let latest = self.move_latest(store).await?;
                return Ok(RegionOutcome::AlreadyHeld(latest));
            }
            Err(e) => return Err(e.to_string().into()),
        }
        let latest = self.move_latest(store).await?;
        Ok(RegionOutcome::Staged(latest))
    }

    fn user_metadata(&self) -> HashMap<String, String> {
        HashMap::from([(MD5_METADATA_KEY.to_string(), self.prepared.md5_hex.clone())])
    }

    fn take_ahead(&self, region: &str) -> Option<(String, Vec<CompletedPart>)> {
        self.ahead
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(region)
    }

    async fn upload(&self, store: &dyn RegionStore, bucket: &str) -> Result<(), StorageError> {
        if let Some((upload_id, parts)) = self.take_ahead(store.region()) {
            let completed = store
                .complete_multipart_upload(bucket, self.key, &upload_id, &parts, true)
                .await;
            match completed {
                Ok(()) => return Ok(()),
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
        if let Some(body) = &self.prepared.whole {
            let options = PutOptions {
                content_md5: Some(self.prepared.md5_base64.clone()),
                if_none_match: true,
                user_metadata: self.user_metadata(),
            };
            return store
                .put_object(bucket, self.key, body.clone(), &options)
                .await;
        }
        let upload_id = store
            .create_multipart_upload(bucket, self.key, &self.user_metadata())
            .await?;
        let result = self.upload_parts(store, bucket, &upload_id).await;
        let parts = match result {
            Ok(parts) => parts,
            Err(e) => {
                self.abandon(store, bucket, &upload_id).await;
                return Err(e);
            }
        };
        let completed = store
            .complete_multipart_upload(bucket, self.key, &upload_id, &parts, true)
            .await;
        if completed.is_err() {
            self.abandon(store, bucket, &upload_id).await;
        }
        completed
    }

    /// Creates a multipart upload and uploads every part, unless the key is taken.
    async fn upload_without_completing(
        &self,
        store: &dyn RegionStore,
    ) -> Result<Option<(String, Vec<CompletedPart>)>, String> {
        let (bucket, present) = self.bucket_and_presence(store).await?;
        if present {
            return Ok(None);
        }
        let upload_id = store
            .create_multipart_upload(&bucket, self.key, &self.user_metadata())
            .await
            .map_err(|e| e.to_string())?;
        match self.upload_parts(store, &bucket, &upload_id).await {
            Ok(parts) => Ok(Some((upload_id, parts))),
            Err(e) => {
                self.abandon(store, &bucket, &upload_id).await;
                Err(e.to_string())
            }
        }
    }

    async fn upload_parts(
        &self,
        store: &dyn RegionStore,
        bucket: &str,
        upload_id: &str,
    ) -> Result<Vec<CompletedPart>, StorageError> {
        let path = &self.prepared.path;
        let parts: Vec<(i32, u64, u64, String)> = self
            .prepared
            .parts
            .iter()
            .enumerate()
            .map(|(index, (offset, length, md5))| (index as i32 + 1, *offset, *length, md5.clone()))
            .collect();
        let mut parts: Vec<CompletedPart> = stream::iter(parts)
            .map(|(number, offset, length, md5)| async move {
                let body = read_part(path, offset, length).await?;
                store
                    .upload_part(bucket, self.key, upload_id, number, body, &md5)
                    .await
            })
            .buffer_unordered(self.options.part_concurrency.max(1))
            .try_collect()
            .await?;
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }

    /// Best effort: stagers are usually not granted `s3:AbortMultipartUpload`, and a
    /// bucket lifecycle rule should clean up what is left.
    async fn abandon(&self, store: &dyn RegionStore, bucket: &str, upload_id: &str) {
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
        let region = store.region();
        let info = store
            .head_object(bucket, self.key)
            .await
            .map_err(|e| e.to_string())?;
        match info.known_md5() {
            Some(md5) if md5 == self.prepared.md5_hex => {}
            Some(md5) => {
                return Err(Refusal::Taken(format!(
                    "{} exists in {bucket} in {region} with other content (MD5 {md5}, ours {})",
                    self.key, self.prepared.md5_hex
                )))
            }
            None => {
                return Err(Refusal::Taken(format!(
                    "{} exists in {bucket} in {region} and its MD5 cannot be known to compare",
                    self.key
                )))
            }
        }
        self.check_existing_metadata(store, bucket).await
    }

    async fn check_existing_metadata(
        &self,
        store: &dyn RegionStore,
        bucket: &str,
    ) -> Result<(), Refusal> {
        let region = store.region();
        let metadata_key = metadata_key(self.key);
        let existing = match store.get_object(bucket, &metadata_key, None, None).await {
            Ok(mut object) => {
                let mut bytes = Vec::new();
                while let Some(chunk) = object.body.next().await {
                    bytes.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
                }
                metadata::decode(&metadata_key, &bytes).map_err(|e| e.to_string())?
            }
            Err(e) if e.is_not_found() => Metadata::new(),
            Err(e) => return Err(e.to_string().into()),
        };
        if &existing != self.metadata {
            return Err(Refusal::Taken(format!(
                "{} exists in {bucket} in {region} with other metadata",
                self.key
            )));
        }
        Ok(())
    }

    /// Moves `latest` forward only: read it first; when reading is refused, write it as
    /// the Python tool does.
    async fn move_latest(&self, store: &dyn RegionStore) -> Result<LatestChange, String> {
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
            .map_err(|e| {
                format!(
                    "Failed to interact with parameter {name} in {}: {e}",
                    store.region()
                )
            })?;
        Ok(change)
    }
}

async fn read_part(path: &Path, offset: u64, length: u64) -> Result<Bytes, StorageError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::open(&path)
            .map_err(|e| StorageError::Other(format!("reading {}: {e}", path.display())))?;
        let mut body = vec![0u8; length as usize];
        file.read_exact_at(&mut body, offset)
            .map_err(|e| StorageError::Other(format!("reading {}: {e}", path.display())))?;
        Ok(Bytes::from(body))
    })
    .await
    .map_err(|e| StorageError::Other(format!("read task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_while_writing_match_a_second_read() {
        let data: Vec<u8> = (0..(11u32 << 20)).map(|i| (i % 251) as u8).collect();
        let part_size = MIN_PART_SIZE;
        let mut writer = DigestWriter::new(part_size);
        for (i, chunk) in data.chunks(131_072 + 17).enumerate() {
            writer.write((i * (131_072 + 17)) as u64, chunk);
        }
        let digests = writer.finish().unwrap();
        assert_eq!(digests.size, data.len() as u64);
        assert_eq!(digests.md5, <[u8; 16]>::from(Md5::digest(&data)));
        assert_eq!(digests.parts.len(), 3);
        for (i, part) in data.chunks(part_size as usize).enumerate() {
            assert_eq!(digests.parts[i], <[u8; 16]>::from(Md5::digest(part)));
        }
        // Out of order: unknown. Truncated to zero: starts again.
        writer.write(5, b"x");
        assert!(writer.finish().is_none());
        writer.truncate(0);
        writer.write(0, b"abc");
        assert_eq!(
            writer.finish().unwrap().md5,
            <[u8; 16]>::from(Md5::digest(b"abc"))
        );
    }

    #[test]
    fn part_size_respects_s3_limits() {
        assert_eq!(part_size_for(100 << 20, 1 << 20), MIN_PART_SIZE);
        assert_eq!(part_size_for(100 << 20, 8 << 20), 8 << 20);
        let huge = 200u64 << 30;
        let size = part_size_for(huge, 8 << 20);
        assert!(huge.div_ceil(size) <= MAX_PARTS);
    }
}
