//! The local-folder implementation of the storage seam: the embedded store.
//!
//! `DIR/{region}/` holds one region: `parameters/` its SSM parameters, `buckets/{name}/`
//! its buckets' objects (paths from `local_layout`), `uploads/` unfinished multipart
//! uploads, `tmp/` files being written. Every write goes to `tmp/` first and is then
//! renamed (or, for `If-None-Match: *`, hard-linked, which fails if the name exists) into
//! place, so readers never see half an object. Content-MD5 is verified as S3 does.
//!
//! On an empty or missing folder `LocalStore::open` sets itself up: the regions of
//! `STARTIFACT_REGIONS` (or one region, `local`), a bucket per region, its bucket-name
//! parameter and the organisation configuration, so a newcomer needs nothing else.
//! A region whose folder is missing from a store that is set up answers as a region that
//! is down, which is also how tests stop one.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::local_layout::{name_of, path_of, sidecar_of};
use super::{
    CompletedPart, ObjectInfo, ObjectStream, ObjectSummary, PutOptions, RegionStore, StorageError,
};

/// The region a store sets itself up with when `STARTIFACT_REGIONS` is unset.
pub const DEFAULT_LOCAL_REGION: &str = "local";
/// Bucket-name parameter and bucket a fresh local store is set up with.
pub const LOCAL_BUCKET_NAME_PARAM: &str = "/startifact-local/bucket-name";
pub const LOCAL_BUCKET: &str = "startifact-local";
const READ_CHUNK: usize = 1 << 20;

/// Counts of the requests a local region served, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct RequestCounters {
    pub get_object: AtomicU64,
    pub get_object_bytes: AtomicU64,
    pub head_object: AtomicU64,
    pub put_object: AtomicU64,
    pub list_objects: AtomicU64,
    pub get_parameter: AtomicU64,
}

/// The local store as a whole: a folder of regions.
pub struct LocalStore;

impl LocalStore {
    /// Opens `dir`, setting it up first when it is empty or missing. Returns the regions
    /// it holds (the folders in it), sorted.
    pub fn open(dir: &Path, configuration_parameter: &str) -> io::Result<Vec<String>> {
        let empty = match std::fs::read_dir(dir) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(e),
        };
        if empty {
            let regions = crate::protocol::regions::regions_from_env()
                .unwrap_or_else(|_| vec![DEFAULT_LOCAL_REGION.to_string()]);
            Self::set_up(dir, &regions, configuration_parameter)?;
        }
        let mut regions = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                if let Some(name) = entry.file_name().to_str() {
                    regions.push(name.to_string());
                }
            }
        }
        regions.sort();
        Ok(regions)
    }

    /// Creates every region with a bucket, its bucket-name parameter and the
    /// organisation configuration (no prefixes).
    pub fn set_up(dir: &Path, regions: &[String], configuration_parameter: &str) -> io::Result<()> {
        let configuration = crate::protocol::Configuration {
            bucket_name_param: LOCAL_BUCKET_NAME_PARAM.to_string(),
            regions: regions.join(","),
            save_ok: "y".to_string(),
            ..Default::default()
        };
        for region in regions {
            let local = LocalRegion::new(dir, region);
            std::fs::create_dir_all(local.bucket_root(LOCAL_BUCKET))?;
            local.write_parameter(LOCAL_BUCKET_NAME_PARAM, LOCAL_BUCKET)?;
            local.write_parameter(configuration_parameter, &configuration.to_json())?;
        }
        tracing::info!(dir = %dir.display(), ?regions, "set up a new local store");
        Ok(())
    }
}

/// One region of the local store.
#[derive(Debug, Clone)]
pub struct LocalRegion {
    region: String,
    root: PathBuf,
    counters: Arc<RequestCounters>,
}

#[derive(Debug, Serialize, Deserialize, Default)]
struct Sidecar {
    etag: String,
    #[serde(default)]
    user_metadata: HashMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct UploadManifest {
    bucket: String,
    key: String,
    user_metadata: HashMap<String, String>,
}

fn io_error(what: &str, err: io::Error) -> StorageError {
    match err.kind() {
        io::ErrorKind::NotFound => StorageError::NotFound(format!("{what}: {err}")),
        io::ErrorKind::PermissionDenied => StorageError::AccessDenied(format!("{what}: {err}")),
        io::ErrorKind::AlreadyExists => {
            StorageError::PreconditionFailed(format!("{what}: already exists"))
        }
        _ => StorageError::Other(format!("{what}: {err}")),
    }
}

fn md5_base64(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(body))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StorageError::Other(format!("local store task failed: {e}")))?
}

impl LocalRegion {
    pub fn new(store: &Path, region: &str) -> Self {
        LocalRegion {
            region: region.to_string(),
            root: store.join(region),
            counters: Arc::new(RequestCounters::default()),
        }
    }

    /// Creates a bucket (buckets are made by the user, never by Startifact).
    pub fn create_bucket(&self, bucket: &str) -> io::Result<()> {
        std::fs::create_dir_all(self.bucket_root(bucket))
    }

    pub fn counters(&self) -> Arc<RequestCounters> {
        Arc::clone(&self.counters)
    }

    fn parameters_root(&self) -> PathBuf {
        self.root.join("parameters")
    }

    fn bucket_root(&self, bucket: &str) -> PathBuf {
        self.root.join("buckets").join(bucket)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The region answers only while its folder exists.
    fn check_up(&self) -> Result<(), StorageError> {
        if self.root.is_dir() {
            Ok(())
        } else {
            Err(StorageError::Unavailable(format!(
                "local region {} has no folder at {}",
                self.region,
                self.root.display()
            )))
        }
    }

    fn existing_bucket(&self, bucket: &str) -> Result<PathBuf, StorageError> {
        self.check_up()?;
        let root = self.bucket_root(bucket);
        if root.is_dir() {
            Ok(root)
        } else {
            Err(StorageError::NotFound(format!(
                "NoSuchBucket: {bucket} in {}",
                self.region
            )))
        }
    }

    /// Writes `body` to a new temporary file in this region and returns its path.
    fn write_temporary(&self, body: &[u8]) -> io::Result<PathBuf> {
        let dir = self.tmp_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!(".tmp-{:016x}", rand::random::<u64>()));
        let mut file = std::fs::File::create(&path)?;
        file.write_all(body)?;
        file.sync_data()?;
        Ok(path)
    }

    /// Moves a temporary file into place; with `exclusive`, fails if `dest` exists.
    fn place(temporary: &Path, dest: &Path, exclusive: bool) -> io::Result<()> {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if exclusive {
            let linked = std::fs::hard_link(temporary, dest);
            let _ = std::fs::remove_file(temporary);
            linked
        } else {
            std::fs::rename(temporary, dest)
        }
    }

    fn write_parameter(&self, name: &str, value: &str) -> io::Result<()> {
        let temporary = self.write_temporary(value.as_bytes())?;
        Self::place(&temporary, &path_of(&self.parameters_root(), name), false)
    }

    fn read_sidecar(file: &Path) -> Sidecar {
        std::fs::read(sidecar_of(file))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    fn write_sidecar(&self, file: &Path, sidecar: &Sidecar) -> io::Result<()> {
        let body = serde_json::to_vec(sidecar).map_err(io::Error::other)?;
        let temporary = self.write_temporary(&body)?;
        Self::place(&temporary, &sidecar_of(file), false)
    }

    fn info_of(file: &Path) -> io::Result<ObjectInfo> {
        let metadata = std::fs::metadata(file)?;
        if !metadata.is_file() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "not an object"));
        }
        let sidecar = Self::read_sidecar(file);
        Ok(ObjectInfo {
            size: metadata.len(),
            etag: (!sidecar.etag.is_empty()).then_some(sidecar.etag),
            last_modified: metadata.modified().ok(),
            user_metadata: sidecar.user_metadata,
            server_side_encryption: None,
            customer_key_encrypted: false,
        })
    }

    /// Stores a complete temporary file as `key`, with its sidecar.
    fn commit_object(
        &self,
        bucket_root: &Path,
        key: &str,
        temporary: &Path,
        sidecar: &Sidecar,
        exclusive: bool,
    ) -> Result<(), StorageError> {
        let dest = path_of(bucket_root, key);
        let what = format!("storing {key} in {}", self.region);
        Self::place(temporary, &dest, exclusive).map_err(|e| io_error(&what, e))?;
        self.write_sidecar(&dest, sidecar)
            .map_err(|e| io_error(&what, e))
    }

    fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> io::Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                Self::walk(&entry.path(), found)?;
            } else if kind.is_file() {
                found.push(entry.path());
            }
        }
        Ok(())
    }

    fn upload_dir(&self, upload_id: &str) -> Result<PathBuf, StorageError> {
        if upload_id.is_empty() || !upload_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StorageError::NotFound(format!("NoSuchUpload: {upload_id}")));
        }
        Ok(self.root.join("uploads").join(upload_id))
    }
}

#[async_trait]
impl RegionStore for LocalRegion {
    fn region(&self) -> &str {
        &self.region
    }

    async fn get_parameter(&self, name: &str) -> Result<String, StorageError> {
        self.counters.get_parameter.fetch_add(1, Ordering::Relaxed);
        self.check_up()?;
        let path = path_of(&self.parameters_root(), name);
        let what = format!("parameter {name} in {}", self.region);
        let value = tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| io_error(&what, e))?;
        Ok(value)
    }

    async fn put_parameter(&self, name: &str, value: &str) -> Result<(), StorageError> {
        self.check_up()?;
        let this = self.clone();
        let (name, value) = (name.to_string(), value.to_string());
        blocking(move || {
            let what = format!("writing parameter {name} in {}", this.region);
            this.write_parameter(&name, &value)
                .map_err(|e| io_error(&what, e))
        })
        .await
    }

    async fn delete_parameter(&self, name: &str) -> Result<(), StorageError> {
        self.check_up()?;
        let path = path_of(&self.parameters_root(), name);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&format!("deleting parameter {name}"), e)),
        }
    }

    async fn list_parameters(&self, path: &str) -> Result<Vec<(String, String)>, StorageError> {
        self.check_up()?;
        let root = self.parameters_root();
        let under = if path.ends_with('/') {
            path.to_string()
        } else {
            format!("{path}/")
        };
        blocking(move || {
            let mut files = Vec::new();
            LocalRegion::walk(&root, &mut files).map_err(|e| io_error("listing parameters", e))?;
            let mut found = Vec::new();
            for file in files {
                let Some(name) = name_of(&root, &file) else {
                    continue;
                };
                if name.starts_with(&under) {
                    let value = std::fs::read_to_string(&file)
                        .map_err(|e| io_error(&format!("reading parameter {name}"), e))?;
                    found.push((name, value));
                }
            }
            found.sort();
            Ok(found)
        })
        .await
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo, StorageError> {
        self.counters.head_object.fetch_add(1, Ordering::Relaxed);
        let file = path_of(&self.existing_bucket(bucket)?, key);
        let what = format!("s3://{bucket}/{key} in {}", self.region);
        blocking(move || LocalRegion::info_of(&file).map_err(|e| io_error(&what, e))).await
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<Range<u64>>,
        if_match: Option<&str>,
    ) -> Result<ObjectStream, StorageError> {
        self.counters.get_object.fetch_add(1, Ordering::Relaxed);
        let file_path = path_of(&self.existing_bucket(bucket)?, key);
        let what = format!("s3://{bucket}/{key} in {}", self.region);
        let if_match = if_match.map(str::to_string);
        let (info, file, range) = {
            let what = what.clone();
            blocking(move || {
                let info = LocalRegion::info_of(&file_path).map_err(|e| io_error(&what, e))?;
                if let Some(expected) = &if_match {
                    if info.etag.as_deref() != Some(expected.as_str()) {
                        return Err(StorageError::PreconditionFailed(format!(
                            "{what}: ETag is {:?}, not {expected}",
                            info.etag
                        )));
                    }
                }
                let range = match range {
                    None => 0..info.size,
                    Some(r) if r.start >= info.size || r.is_empty() => {
                        return Err(StorageError::Invalid(format!(
                            "{what}: range {r:?} outside {} bytes",
                            info.size
                        )))
                    }
                    Some(r) => r.start..r.end.min(info.size),
                };
                let mut file = std::fs::File::open(&file_path).map_err(|e| io_error(&what, e))?;
                file.seek(SeekFrom::Start(range.start))
                    .map_err(|e| io_error(&what, e))?;
                Ok((info, file, range))
            })
            .await?
        };
        let counters = Arc::clone(&self.counters);
        let remaining = range.end - range.start;
        let info = ObjectInfo {
            size: remaining,
            ..info
        };
        let body = futures::stream::unfold((Some(file), remaining), move |(file, remaining)| {
            let what = what.clone();
            let counters = Arc::clone(&counters);
            async move {
                let mut file = file?;
                if remaining == 0 {
                    return None;
                }
                let want = remaining.min(READ_CHUNK as u64) as usize;
                let read = tokio::task::spawn_blocking(move || {
                    let mut chunk = vec![0u8; want];
                    let result = file.read_exact(&mut chunk);
                    (file, chunk, result)
                })
                .await;
                match read {
                    Ok((file, chunk, Ok(()))) => {
                        counters
                            .get_object_bytes
                            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        Some((
                            Ok(Bytes::from(chunk)),
                            (Some(file), remaining - want as u64),
                        ))
                    }
                    Ok((_, _, Err(e))) => Some((Err(io_error(&what, e)), (None, 0))),
                    Err(e) => Some((
                        Err(StorageError::Other(format!(
                            "{what}: read task failed: {e}"
                        ))),
                        (None, 0),
                    )),
                }
            }
        });
        Ok(ObjectStream {
            info,
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
        self.counters.put_object.fetch_add(1, Ordering::Relaxed);
        let bucket_root = self.existing_bucket(bucket)?;
        let this = self.clone();
        let key = key.to_string();
        let options = options.clone();
        blocking(move || {
            let what = format!("s3://{}/{key} in {}", bucket_root.display(), this.region);
            let digest = Md5::digest(&body);
            if let Some(sent) = &options.content_md5 {
                let actual = base64::engine::general_purpose::STANDARD.encode(digest);
                if *sent != actual {
                    return Err(StorageError::BadDigest(format!(
                        "{what}: Content-MD5 {sent} but the body's MD5 is {actual}"
                    )));
                }
            }
            if options.if_none_match && path_of(&bucket_root, &key).exists() {
                return Err(StorageError::PreconditionFailed(format!("{what} exists")));
            }
            let temporary = this
                .write_temporary(&body)
                .map_err(|e| io_error(&what, e))?;
            let sidecar = Sidecar {
                etag: format!("\"{}\"", hex::encode(digest)),
                user_metadata: options.user_metadata.clone(),
            };
            this.commit_object(
                &bucket_root,
                &key,
                &temporary,
                &sidecar,
                options.if_none_match,
            )
        })
        .await
    }

    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ObjectSummary>, StorageError> {
        self.counters.list_objects.fetch_add(1, Ordering::Relaxed);
        let bucket_root = self.existing_bucket(bucket)?;
        let prefix = prefix.to_string();
        blocking(move || {
            let mut files = Vec::new();
            LocalRegion::walk(&bucket_root, &mut files)
                .map_err(|e| io_error("listing objects", e))?;
            let mut found = Vec::new();
            for file in files {
                let Some(key) = name_of(&bucket_root, &file) else {
                    continue;
                };
                if !key.starts_with(&prefix) {
                    continue;
                }
                // An object may vanish between the walk and its head.
                if let Ok(info) = LocalRegion::info_of(&file) {
                    found.push(ObjectSummary {
                        key,
                        size: info.size,
                        etag: info.etag,
                        last_modified: info.last_modified,
                    });
                }
            }
            found.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(found)
        })
        .await
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        let file = path_of(&self.existing_bucket(bucket)?, key);
        for path in [sidecar_of(&file), file] {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&format!("deleting {key}"), e)),
            }
        }
        Ok(())
    }

    async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        user_metadata: &HashMap<String, String>,
    ) -> Result<String, StorageError> {
        self.existing_bucket(bucket)?;
        let upload_id = format!("{:032x}", rand::random::<u128>());
        let dir = self.upload_dir(&upload_id)?;
        let manifest = UploadManifest {
            bucket: bucket.to_string(),
            key: key.to_string(),
            user_metadata: user_metadata.clone(),
        };
        let body = serde_json::to_vec(&manifest)
            .map_err(|e| StorageError::Other(format!("upload manifest: {e}")))?;
        blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|e| io_error("creating upload", e))?;
            std::fs::write(dir.join("manifest.json"), body)
                .map_err(|e| io_error("creating upload", e))
        })
        .await?;
        Ok(upload_id)
    }

    async fn upload_part(
        &self,
        _bucket: &str,
        _key: &str,
        upload_id: &str,
        part_number: i32,
        body: Bytes,
        content_md5: &str,
    ) -> Result<CompletedPart, StorageError> {
        self.check_up()?;
        if !(1..=10_000).contains(&part_number) {
            return Err(StorageError::Invalid(format!("part number {part_number}")));
        }
        let dir = self.upload_dir(upload_id)?;
        let content_md5 = content_md5.to_string();
        let upload_id = upload_id.to_string();
        blocking(move || {
            if !dir.is_dir() {
                return Err(StorageError::NotFound(format!(
                    "NoSuchUpload: {upload_id:?}"
                )));
            }
            let actual = md5_base64(&body);
            if actual != content_md5 {
                return Err(StorageError::BadDigest(format!(
                    "part {part_number}: Content-MD5 {content_md5} but the body's MD5 is {actual}"
                )));
            }
            let etag = format!("\"{}\"", hex::encode(Md5::digest(&body)));
            std::fs::write(dir.join(format!("part-{part_number:05}")), &body)
                .map_err(|e| io_error("writing part", e))?;
            Ok(CompletedPart { part_number, etag })
        })
        .await
    }

    async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        if_none_match: bool,
    ) -> Result<(), StorageError> {
        let bucket_root = self.existing_bucket(bucket)?;
        let dir = self.upload_dir(upload_id)?;
        let this = self.clone();
        let key = key.to_string();
        let parts = parts.to_vec();
        blocking(move || {
            let what = format!("completing {key} in {}", this.region);
            let manifest: UploadManifest = std::fs::read(dir.join("manifest.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| StorageError::NotFound(format!("{what}: NoSuchUpload")))?;
            if manifest.key != key {
                return Err(StorageError::Invalid(format!(
                    "{what}: upload is for {}",
                    manifest.key
                )));
            }
            if if_none_match && path_of(&bucket_root, &key).exists() {
                return Err(StorageError::PreconditionFailed(format!("{what}: exists")));
            }
            let tmp = this.tmp_dir();
            std::fs::create_dir_all(&tmp).map_err(|e| io_error(&what, e))?;
            let temporary = tmp.join(format!(".tmp-{:016x}", rand::random::<u64>()));
            let mut out = std::fs::File::create(&temporary).map_err(|e| io_error(&what, e))?;
            let mut digests = Vec::new();
            for (index, part) in parts.iter().enumerate() {
                if part.part_number != index as i32 + 1 {
                    let _ = std::fs::remove_file(&temporary);
                    return Err(StorageError::Invalid(format!("{what}: parts out of order")));
                }
                let body = std::fs::read(dir.join(format!("part-{:05}", part.part_number)))
                    .map_err(|e| io_error(&what, e))?;
                let digest = Md5::digest(&body);
                if format!("\"{}\"", hex::encode(digest)) != part.etag {
                    let _ = std::fs::remove_file(&temporary);
                    return Err(StorageError::Invalid(format!(
                        "{what}: InvalidPart {index}"
                    )));
                }
                digests.extend_from_slice(&digest);
                out.write_all(&body).map_err(|e| io_error(&what, e))?;
            }
            out.sync_data().map_err(|e| io_error(&what, e))?;
            drop(out);
            let sidecar = Sidecar {
                etag: format!("\"{}-{}\"", hex::encode(Md5::digest(&digests)), parts.len()),
                user_metadata: manifest.user_metadata,
            };
            this.commit_object(&bucket_root, &key, &temporary, &sidecar, if_none_match)?;
            let _ = std::fs::remove_dir_all(&dir);
            Ok(())
        })
        .await
    }

    async fn abort_multipart_upload(
        &self,
        _bucket: &str,
        _key: &str,
        upload_id: &str,
    ) -> Result<(), StorageError> {
        let dir = self.upload_dir(upload_id)?;
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("aborting upload", e)),
        }
    }
}
