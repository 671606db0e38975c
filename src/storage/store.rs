//! What one region can do: the `RegionStore` trait, and the objects, summaries, streams
//! and put options its calls take and answer. Both backends (`aws`, `local`) implement
//! it, and the protocol is written only against it.

use std::collections::HashMap;
use std::fmt::Debug;
use std::ops::Range;
use std::path::Path;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use super::error::StorageError;
use crate::checksum::{Checksum, CRC64_METADATA_KEY};

/// Name of the user-metadata entry (S3 `x-amz-meta-...`) where our stager records the
/// artifact's MD5 as 32 lowercase hex digits, so multipart objects can be verified too.
pub const MD5_METADATA_KEY: &str = "startifact-md5";

/// What a `HeadObject` (or the head of a `GetObject`) tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// The ETag as S3 sends it, quotes included.
    pub etag: Option<String>,
    pub last_modified: Option<SystemTime>,
    /// User metadata (`x-amz-meta-*`), names lower-case without the prefix.
    pub user_metadata: HashMap<String, String>,
    /// `x-amz-server-side-encryption` (`AES256`, `aws:kms`, `aws:kms:dsse`).
    pub server_side_encryption: Option<String>,
    /// Set when the object is encrypted with a customer-provided key (SSE-C).
    pub customer_key_encrypted: bool,
    /// A whole-object CRC the server keeps itself (S3: `x-amz-checksum-*` of the
    /// `FULL_OBJECT` type, asked with the checksum mode on); `None` where it keeps none
    /// or keeps only part checksums (the `COMPOSITE` type).
    pub server_checksum: Option<Checksum>,
}

impl ObjectInfo {
    /// The object's MD5 as 32 lowercase hex digits when it can be known without
    /// reading it: what our stager recorded, else a plain (non-multipart) ETag on an
    /// object that is not KMS- or customer-key-encrypted (for those, S3's ETag is not
    /// the MD5 of the content).
    pub fn known_md5(&self) -> Option<String> {
        if let Some(md5) = self.user_metadata.get(MD5_METADATA_KEY) {
            if is_md5_hex(md5) {
                return Some(md5.to_ascii_lowercase());
            }
        }
        let kms = self
            .server_side_encryption
            .as_deref()
            .is_some_and(|sse| sse.starts_with("aws:kms"));
        if kms || self.customer_key_encrypted {
            return None;
        }
        let etag = self.etag.as_deref()?.trim_matches('"');
        is_md5_hex(etag).then(|| etag.to_ascii_lowercase())
    }
}

impl ObjectInfo {
    /// What the bytes are checked against when read whole (see `crate::checksum`): the
    /// CRC-64/NVME our stager recorded, else the server's own whole-object CRC, else
    /// the MD5 when it is known; `None`: the size only.
    pub fn check(&self) -> Option<Checksum> {
        if let Some(recorded) = self
            .user_metadata
            .get(CRC64_METADATA_KEY)
            .and_then(|text| Checksum::from_recorded_crc64(text))
        {
            return Some(recorded);
        }
        if let Some(kept) = self.server_checksum {
            return Some(kept);
        }
        Checksum::from_md5_hex(&self.known_md5()?)
    }
}

fn is_md5_hex(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One entry of an object listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: Option<SystemTime>,
}

/// An object being read: its head, then its bytes as they arrive.
pub struct ObjectStream {
    pub info: ObjectInfo,
    pub body: BoxStream<'static, Result<Bytes, StorageError>>,
}

/// How a new object is written.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Base64 of the MD5 digest of exactly the bytes sent (`Content-MD5`).
    pub content_md5: Option<String>,
    /// CRC-64/NVME of the same bytes, taken in the same pass as `content_md5`: a body
    /// streamed from a file is checked against it (a fraction of MD5's cost) instead of
    /// being hashed with MD5 again.
    pub body_crc64: Option<u64>,
    /// Fail with `PreconditionFailed` if the key exists (`If-None-Match: *`).
    pub if_none_match: bool,
    /// Replace the object only while its ETag is this one (`If-Match`): else
    /// `PreconditionFailed`, or `NotFound` when it is gone.
    pub if_match: Option<String>,
    /// User metadata to store with the object.
    pub user_metadata: HashMap<String, String>,
}

/// A part of a multipart upload, as returned by `upload_part`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    pub part_number: i32,
    pub etag: String,
    /// Its CRC-64/NVME, when it was sent with it (`PartChecks::crc64`).
    pub crc64: Option<u64>,
}

/// What one part is sent with, for the server to check before it keeps the part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartChecks {
    /// Base64 of the part's MD5 (`Content-MD5`).
    pub content_md5: String,
    /// The part's CRC-64/NVME, sent as S3's own checksum of the part: for an upload
    /// created with `full_crc64`.
    pub crc64: Option<u64>,
}

/// One region's parameters and objects.
#[async_trait]
pub trait RegionStore: Send + Sync + Debug {
    /// The region's name, as in `STARTIFACT_REGIONS`.
    fn region(&self) -> &str;

    /// The S3 endpoint this region is reached at, when not the provider's own (so that
    /// what is learned of a test server never steers requests to AWS).
    fn s3_endpoint(&self) -> Option<&str> {
        None
    }

    /// The name the S3 server gave itself (its `Server` header, `AmazonS3` on Amazon
    /// S3) in the last answer that carried one; `None` before any.
    fn server_name(&self) -> Option<String> {
        None
    }

    /// A parameter's value; `NotFound` when it does not exist.
    async fn get_parameter(&self, name: &str) -> Result<String, StorageError>;
    /// Writes a String parameter, overwriting it.
    async fn put_parameter(&self, name: &str, value: &str) -> Result<(), StorageError>;
    /// Deletes a parameter; deleting a missing one succeeds.
    async fn delete_parameter(&self, name: &str) -> Result<(), StorageError>;
    /// Every parameter under a path, recursively, as (name, value).
    async fn list_parameters(&self, path: &str) -> Result<Vec<(String, String)>, StorageError>;

    /// The object's head; `NotFound` (or `AccessDenied` without `s3:ListBucket`).
    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo, StorageError>;
    /// The object's bytes, all or a range, optionally only if its ETag still matches.
    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<Range<u64>>,
        if_match: Option<&str>,
    ) -> Result<ObjectStream, StorageError>;
    /// Writes a whole object in one request.
    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<(), StorageError>;
    /// Writes a whole object in one request from a file, which is streamed, not held,
    /// and fails unless the bytes sent match `options.body_crc64`, or else
    /// `options.content_md5` (when given).
    async fn put_object_from_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        options: &PutOptions,
    ) -> Result<(), StorageError>;
    /// The length of part 1 of a multipart object (`HeadObject` with `partNumber=1`), so
    /// a copy can repeat its part layout and with it its ETag; `None` when not known.
    async fn first_part_size(&self, bucket: &str, key: &str) -> Result<Option<u64>, StorageError>;
    /// Every key under a prefix (all pages).
    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ObjectSummary>, StorageError>;
    /// Deletes an object; deleting a missing one succeeds. With `if_match`, only while
    /// its ETag is that one (`If-Match`): else `PreconditionFailed`, or `NotFound` when
    /// it is gone.
    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<(), StorageError>;

    /// Starts a multipart upload; returns its upload id. `full_crc64`: the upload is
    /// checked by S3 as a whole, with a full-object CRC-64/NVME (each part is then sent
    /// with its CRC, and the completion with the whole object's).
    async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        user_metadata: &HashMap<String, String>,
        full_crc64: bool,
    ) -> Result<String, StorageError>;
    /// Uploads one part (numbered from 1) with its checks.
    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: i32,
        body: Bytes,
        checks: &PartChecks,
    ) -> Result<CompletedPart, StorageError>;
    /// Completes the upload, optionally only if the key does not exist yet; `crc64`: the
    /// whole object's, for an upload created with `full_crc64` (S3 refuses to complete
    /// when the parts do not make it).
    async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        if_none_match: bool,
        crc64: Option<u64>,
    ) -> Result<(), StorageError>;
    /// Abandons the upload (best effort: stagers are usually not granted it).
    async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StorageError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(etag: &str) -> ObjectInfo {
        ObjectInfo {
            size: 1,
            etag: Some(etag.to_string()),
            last_modified: None,
            user_metadata: HashMap::new(),
            server_side_encryption: None,
            customer_key_encrypted: false,
            server_checksum: None,
        }
    }

    #[test]
    fn plain_etag_is_the_md5() {
        let md5 = "0123456789abcdef0123456789ABCDEF";
        assert_eq!(
            info(&format!("\"{md5}\"")).known_md5(),
            Some(md5.to_lowercase())
        );
    }

    #[test]
    fn multipart_and_kms_etags_are_not_md5s() {
        assert_eq!(
            info("\"0123456789abcdef0123456789abcdef-3\"").known_md5(),
            None
        );
        let mut kms = info("\"0123456789abcdef0123456789abcdef\"");
        kms.server_side_encryption = Some("aws:kms".into());
        assert_eq!(kms.known_md5(), None);
        let mut ssec = info("\"0123456789abcdef0123456789abcdef\"");
        ssec.customer_key_encrypted = true;
        assert_eq!(ssec.known_md5(), None);
    }

    #[test]
    fn the_check_is_our_crc_then_the_servers_then_the_md5() {
        let md5 = "0123456789abcdef0123456789abcdef";
        let mut object = info(&format!("\"{md5}\""));
        assert_eq!(object.check().map(|c| c.hex()), Some(md5.to_string()));
        object.server_checksum = Some(Checksum::Crc32(7));
        assert_eq!(object.check(), Some(Checksum::Crc32(7)));
        object
            .user_metadata
            .insert(CRC64_METADATA_KEY.into(), "00000000000000ff".into());
        assert_eq!(object.check(), Some(Checksum::Crc64Nvme(255)));
        // A record that is not 16 hex digits is not ours: the next check stands.
        object
            .user_metadata
            .insert(CRC64_METADATA_KEY.into(), "ff".into());
        assert_eq!(object.check(), Some(Checksum::Crc32(7)));
        let mut bare = info("\"0123456789abcdef0123456789abcdef-3\"");
        assert_eq!(bare.check(), None);
        bare.customer_key_encrypted = true;
        assert_eq!(bare.check(), None);
    }

    #[test]
    fn recorded_md5_wins_over_etag() {
        let mut multipart = info("\"0123456789abcdef0123456789abcdef-3\"");
        multipart.user_metadata.insert(
            MD5_METADATA_KEY.into(),
            "fedcba9876543210fedcba9876543210".into(),
        );
        assert_eq!(
            multipart.known_md5().as_deref(),
            Some("fedcba9876543210fedcba9876543210")
        );
    }
}
