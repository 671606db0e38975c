//! The local-folder implementation of the storage seam: the embedded store, as a folder
//! of regions, and one region's answer to each `RegionStore` call.
//!
//! `DIR/{region}/` holds one region: `parameters/` its SSM parameters, `buckets/{name}/`
//! its buckets' objects (paths from `layout`), `uploads/` unfinished multipart uploads,
//! `tmp/` files being written. Every write goes to `tmp/` first and is then renamed (or,
//! for `If-None-Match: *`, hard-linked, which fails if the name exists) into place, so
//! readers never see half an object. Content-MD5 is verified as S3 does.
//!
//! The store knows nothing of Startifact: what an empty store is set up with (regions,
//! buckets, parameters) is the protocol's business, written through this seam. A region
//! whose folder is missing answers as a region that is down, which is also how tests
//! stop one.

pub(crate) mod layout;
mod multipart;
mod objects;
mod parameters;

use std::collections::HashMap;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    CompletedPart, ErrorKind, ObjectInfo, ObjectStream, ObjectSummary, PutOptions, RegionStore,
    StorageError,
};

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
    /// Whether `dir` holds nothing yet; a missing folder is empty too.
    pub fn is_empty(dir: &Path) -> io::Result<bool> {
        match std::fs::read_dir(dir) {
            Ok(mut entries) => Ok(entries.next().is_none()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The regions `dir` holds (the folders in it), sorted.
    pub fn regions(dir: &Path) -> io::Result<Vec<String>> {
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
}

/// One region of the local store.
#[derive(Debug, Clone)]
pub struct LocalRegion {
    region: String,
    root: PathBuf,
    /// `file://` and the region's folder, as `s3_endpoint` names it.
    endpoint: String,
    counters: Arc<RequestCounters>,
}

fn io_error(what: &str, err: io::Error) -> StorageError {
    let kind = match err.kind() {
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        // A key longer than a file name may be (S3 takes 1,024 bytes) cannot be in the
        // store: absent, as S3 would say, never a region that is down.
        io::ErrorKind::InvalidFilename => {
            return StorageError::not_found(format!("{what}: too long for the local store"))
                .with_source(err)
        }
        io::ErrorKind::PermissionDenied => ErrorKind::AccessDenied,
        io::ErrorKind::AlreadyExists => {
            return StorageError::precondition_failed(format!("{what}: already exists"))
                .with_source(err)
        }
        _ => ErrorKind::Io,
    };
    StorageError::new(kind, what).with_source(err)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StorageError::other("local store task failed").with_source(e))?
}

/// Every file under `dir`, at any depth; a missing `dir` holds none.
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
            walk(&entry.path(), found)?;
        } else if kind.is_file() {
            found.push(entry.path());
        }
    }
    Ok(())
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

impl LocalRegion {
    pub fn new(store: &Path, region: &str) -> Self {
        let root = store.join(region);
        LocalRegion {
            region: region.to_string(),
            endpoint: format!("file://{}", root.display()),
            root,
            counters: Arc::new(RequestCounters::default()),
        }
    }

    /// Creates a bucket (buckets are made by the user, never by Startifact), and the
    /// region's folder with it.
    pub fn create_bucket(&self, bucket: &str) -> io::Result<()> {
        std::fs::create_dir_all(self.bucket_root(bucket))
    }

    pub fn counters(&self) -> Arc<RequestCounters> {
        Arc::clone(&self.counters)
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
            Err(StorageError::unavailable(format!(
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
            Err(StorageError::not_found(format!(
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
}

#[async_trait]
impl RegionStore for LocalRegion {
    fn region(&self) -> &str {
        &self.region
    }

    fn s3_endpoint(&self) -> Option<&str> {
        Some(&self.endpoint)
    }

    async fn get_parameter(&self, name: &str) -> Result<String, StorageError> {
        parameters::get(self, name).await
    }

    async fn put_parameter(&self, name: &str, value: &str) -> Result<(), StorageError> {
        parameters::put(self, name, value).await
    }

    async fn delete_parameter(&self, name: &str) -> Result<(), StorageError> {
        parameters::delete(self, name).await
    }

    async fn list_parameters(&self, path: &str) -> Result<Vec<(String, String)>, StorageError> {
        parameters::list(self, path).await
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo, StorageError> {
        objects::head(self, bucket, key).await
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<Range<u64>>,
        if_match: Option<&str>,
    ) -> Result<ObjectStream, StorageError> {
        objects::get(self, bucket, key, range, if_match).await
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<(), StorageError> {
        objects::put(self, bucket, key, body, options).await
    }

    async fn put_object_from_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        options: &PutOptions,
    ) -> Result<(), StorageError> {
        objects::put_file(self, bucket, key, path, options).await
    }

    async fn first_part_size(&self, bucket: &str, key: &str) -> Result<Option<u64>, StorageError> {
        Ok(objects::head_sidecar(self, bucket, key).await?.part_size)
    }

    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ObjectSummary>, StorageError> {
        objects::list(self, bucket, prefix).await
    }

    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<(), StorageError> {
        objects::delete(self, bucket, key, if_match).await
    }

    async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        user_metadata: &HashMap<String, String>,
    ) -> Result<String, StorageError> {
        multipart::create(self, bucket, key, user_metadata).await
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
        multipart::upload_part(self, upload_id, part_number, body, content_md5).await
    }

    async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        if_none_match: bool,
    ) -> Result<(), StorageError> {
        multipart::complete(self, bucket, key, upload_id, parts, if_none_match).await
    }

    async fn abort_multipart_upload(
        &self,
        _bucket: &str,
        _key: &str,
        upload_id: &str,
    ) -> Result<(), StorageError> {
        multipart::abort(self, upload_id).await
    }
}
