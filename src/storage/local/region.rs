//! One region of the local store: its folder, its buckets' folders, its temporary
//! files, whether it is up (its folder exists), and the counts of what it served.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::storage::error::StorageError;

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

/// One region of the local store.
#[derive(Debug, Clone)]
pub struct LocalRegion {
    pub(super) region: String,
    pub(super) root: PathBuf,
    /// `file://` and the region's folder, as `s3_endpoint` names it.
    pub(super) endpoint: String,
    pub(super) counters: Arc<RequestCounters>,
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

    pub(super) fn bucket_root(&self, bucket: &str) -> PathBuf {
        self.root.join("buckets").join(bucket)
    }

    pub(super) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The region answers only while its folder exists.
    pub(super) fn check_up(&self) -> Result<(), StorageError> {
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

    pub(super) fn existing_bucket(&self, bucket: &str) -> Result<PathBuf, StorageError> {
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
    pub(super) fn write_temporary(&self, body: &[u8]) -> io::Result<PathBuf> {
        let dir = self.tmp_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!(".tmp-{:016x}", rand::random::<u64>()));
        let mut file = std::fs::File::create(&path)?;
        file.write_all(body)?;
        file.sync_data()?;
        Ok(path)
    }
}
