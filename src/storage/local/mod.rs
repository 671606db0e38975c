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
//!
//! This file holds the store as a whole and the trait's calls, each handed to the
//! module that does it: `region` (one region's folder), `objects`, `multipart`,
//! `parameters`, over `files` (the file work under them all).

mod files;
pub(crate) mod layout;
mod multipart;
mod objects;
mod parameters;
mod region;

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;

use super::error::StorageError;
use super::store::{
    CompletedPart, ObjectInfo, ObjectStream, ObjectSummary, PartChecks, PutOptions, RegionStore,
};

pub use region::{LocalRegion, RequestCounters};

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
        _full_crc64: bool,
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
        checks: &PartChecks,
    ) -> Result<CompletedPart, StorageError> {
        multipart::upload_part(self, upload_id, part_number, body, checks).await
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
        multipart::complete(self, bucket, key, upload_id, parts, if_none_match, crc64).await
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
