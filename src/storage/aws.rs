//! The AWS implementation of the storage seam: one S3 client and one SSM client per
//! region, built from one shared `aws-config` chain (profiles, `AWS_*` variables,
//! instance roles, refreshed credentials).
//!
//! Endpoints: `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_SSM` are read
//! by `aws-config` itself; `StorageOptions::region_endpoints` overrides both services of
//! one region. With any custom endpoint S3 is addressed path-style, since
//! S3-compatible servers rarely resolve bucket subdomains.
//!
//! Every request carries the timeouts of `StorageOptions`; the SDK's own answers are
//! classified into `StorageError` in `aws_errors::classify`, and nowhere else.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::time::SystemTime;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use futures::StreamExt;

use super::aws_errors::classify;
use super::checked_file::{checked_file_body, Expected};
use super::error::{ErrorKind, StorageError};
use super::options::{OptionsError, StorageOptions};
use super::server_name::ServerName;
use super::store::{
    CompletedPart, ObjectInfo, ObjectStream, ObjectSummary, PartChecks, PutOptions, RegionStore,
};
use crate::checksum::{Algorithm, Checksum};

/// Loads the shared AWS configuration once; regions are then cheap to add. The
/// options' profile and shared files stand in for `AWS_PROFILE`,
/// `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE` (a daemon started by mount(8)
/// at boot has no environment); a CA bundle replaces the system's roots.
// aws-config's names for the profile files; their new home (aws-runtime) is not a
// dependency of ours.
#[allow(deprecated)]
pub async fn load_sdk_config(options: &StorageOptions) -> Result<SdkConfig, OptionsError> {
    use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &options.aws_profile {
        loader = loader.profile_name(profile);
    }
    if options.aws_credentials_file.is_some() || options.aws_config_file.is_some() {
        // The SDK wants one file of each kind: the default stands in for one not given.
        let mut files = ProfileFiles::builder()
            .include_default_config_file(options.aws_config_file.is_none())
            .include_default_credentials_file(options.aws_credentials_file.is_none());
        if let Some(path) = &options.aws_credentials_file {
            files = files.with_file(ProfileFileKind::Credentials, path);
        }
        if let Some(path) = &options.aws_config_file {
            files = files.with_file(ProfileFileKind::Config, path);
        }
        loader = loader.profile_files(files.build());
    }
    if let Some(bundle) = &options.ca_bundle {
        loader = loader.http_client(super::trust::http_client_trusting(bundle)?);
    }
    Ok(loader.load().await)
}

/// True when the environment points the SDK at a custom endpoint.
fn env_has_custom_endpoint() -> bool {
    ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()))
}

/// One region of Amazon S3 and SSM Parameter Store.
pub struct AwsRegion {
    region: String,
    s3_endpoint: Option<String>,
    server_name: ServerName,
    pub(super) s3: aws_sdk_s3::Client,
    ssm: aws_sdk_ssm::Client,
    options: StorageOptions,
}

impl fmt::Debug for AwsRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsRegion")
            .field("region", &self.region)
            .finish()
    }
}

impl AwsRegion {
    pub fn new(sdk_config: &SdkConfig, region: &str, options: &StorageOptions) -> Self {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(options.connect_timeout)
            .operation_timeout(options.short_operation_timeout)
            .operation_attempt_timeout(options.short_operation_timeout)
            .build();
        let retries = RetryConfig::standard().with_max_attempts(options.max_attempts);
        let stalls = StalledStreamProtectionConfig::enabled()
            .grace_period(options.stall_grace_period)
            .build();
        let endpoint = options.region_endpoints.get(region);
        let server_name = ServerName::default();

        let mut s3 = aws_sdk_s3::config::Builder::from(sdk_config)
            .region(Region::new(region.to_string()))
            .interceptor(server_name.clone())
            .timeout_config(timeouts.clone())
            .retry_config(retries.clone())
            .stalled_stream_protection(stalls.clone())
            // We send Content-MD5 ourselves; no aws-chunked trailer is needed.
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .response_checksum_validation(
                aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
            );
        if endpoint.is_some() || sdk_config.endpoint_url().is_some() || env_has_custom_endpoint() {
            s3 = s3.force_path_style(true);
        }
        if let Some(url) = endpoint {
            s3 = s3.endpoint_url(url);
        }

        let mut ssm = aws_sdk_ssm::config::Builder::from(sdk_config)
            .region(Region::new(region.to_string()))
            .timeout_config(timeouts)
            .retry_config(retries)
            .stalled_stream_protection(stalls);
        if let Some(url) = endpoint {
            ssm = ssm.endpoint_url(url);
        }

        // The endpoint S3 requests go to, as far as the options and environment say.
        let s3_endpoint = endpoint
            .cloned()
            .or_else(|| {
                ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
                    .iter()
                    .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
            })
            .or_else(|| sdk_config.endpoint_url().map(str::to_string));
        AwsRegion {
            region: region.to_string(),
            s3_endpoint,
            server_name,
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            ssm: aws_sdk_ssm::Client::from_conf(ssm.build()),
            options: options.clone(),
        }
    }

    /// Per-request override for a transfer of `size` bytes.
    /// One PutObject of `body` (`size` bytes), with the options' checks and metadata.
    async fn send_put(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        size: u64,
        options: &PutOptions,
    ) -> Result<(), StorageError> {
        let mut request = self.s3.put_object().bucket(bucket).key(key).body(body);
        if let Some(md5) = &options.content_md5 {
            request = request.content_md5(md5);
        }
        if let Some(crc) = options.body_crc64 {
            // S3 checks the body against it before it stores the object, and keeps it as
            // the object's own checksum; given here, the SDK computes none.
            request = request
                .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc64Nvme)
                .checksum_crc64_nvme(Checksum::Crc64Nvme(crc).to_s3());
        }
        if options.if_none_match {
            request = request.if_none_match("*");
        }
        if let Some(etag) = &options.if_match {
            request = request.if_match(etag);
        }
        for (name, value) in &options.user_metadata {
            request = request.metadata(name, value);
        }
        let mut request = request.customize();
        // A body with a Content-MD5 (signed, and verified by S3) is not hashed again for
        // the signature: that hash costs one pass over the bytes per region. botocore
        // spares it too.
        if options.content_md5.is_some() {
            request = request.disable_payload_signing();
        }
        request
            .config_override(self.transfer_config(size))
            .send()
            .await
            .map_err(|e| classify(self.what("PutObject", &format!("s3://{bucket}/{key}")), e))?;
        Ok(())
    }

    pub(super) fn transfer_config(&self, size: u64) -> aws_sdk_s3::config::Builder {
        let timeout = self.options.transfer_timeout(size);
        aws_sdk_s3::config::Builder::default().timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(self.options.connect_timeout)
                .operation_timeout(timeout)
                .operation_attempt_timeout(timeout)
                .build(),
        )
    }

    pub(super) fn what(&self, verb: &str, target: &str) -> String {
        format!("{verb} {target} in {}", self.region)
    }
}

fn to_system_time(time: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<SystemTime> {
    time.and_then(|t| SystemTime::try_from(*t).ok())
}

fn bytes_len(body: &Bytes) -> u64 {
    body.len() as u64
}

#[async_trait]
impl RegionStore for AwsRegion {
    fn region(&self) -> &str {
        &self.region
    }

    fn s3_endpoint(&self) -> Option<&str> {
        self.s3_endpoint.as_deref()
    }

    fn server_name(&self) -> Option<String> {
        self.server_name.get()
    }

    async fn get_parameter(&self, name: &str) -> Result<String, StorageError> {
        let out = self
            .ssm
            .get_parameter()
            .name(name)
            .send()
            .await
            .map_err(|e| classify(self.what("GetParameter", name), e))?;
        out.parameter.and_then(|p| p.value).ok_or_else(|| {
            StorageError::other(self.what("GetParameter answered no value for", name))
        })
    }

    async fn put_parameter(&self, name: &str, value: &str) -> Result<(), StorageError> {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| classify(self.what("PutParameter", name), e))?;
        Ok(())
    }

    async fn delete_parameter(&self, name: &str) -> Result<(), StorageError> {
        match self.ssm.delete_parameter().name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) => match classify(self.what("DeleteParameter", name), e) {
                gone if gone.is_not_found() => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn list_parameters(&self, path: &str) -> Result<Vec<(String, String)>, StorageError> {
        let mut pages = self
            .ssm
            .get_parameters_by_path()
            .path(path)
            .recursive(true)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(self.what("GetParametersByPath", path), e))?;
            for parameter in page.parameters.unwrap_or_default() {
                if let (Some(name), Some(value)) = (parameter.name, parameter.value) {
                    found.push((name, value));
                }
            }
        }
        Ok(found)
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo, StorageError> {
        let out = self
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            // The server's own whole-object CRC, where it keeps one (see `server_checksum`).
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| classify(self.what("HeadObject", &format!("s3://{bucket}/{key}")), e))?;
        Ok(ObjectInfo {
            size: out.content_length.unwrap_or(0).max(0) as u64,
            etag: out.e_tag,
            last_modified: to_system_time(out.last_modified.as_ref()),
            user_metadata: out.metadata.unwrap_or_default(),
            server_side_encryption: out.server_side_encryption.map(|s| s.as_str().to_string()),
            customer_key_encrypted: out.sse_customer_algorithm.is_some(),
            server_checksum: Checksum::of_s3_head(
                out.checksum_type.as_ref().map(|t| t.as_str()),
                [
                    (Algorithm::Crc64Nvme, out.checksum_crc64_nvme.as_deref()),
                    (Algorithm::Crc32c, out.checksum_crc32_c.as_deref()),
                    (Algorithm::Crc32, out.checksum_crc32.as_deref()),
                ],
            ),
        })
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<Range<u64>>,
        if_match: Option<&str>,
    ) -> Result<ObjectStream, StorageError> {
        let what = self.what("GetObject", &format!("s3://{bucket}/{key}"));
        let mut request = self.s3.get_object().bucket(bucket).key(key);
        if let Some(range) = &range {
            if range.is_empty() {
                return Err(StorageError::invalid(format!(
                    "{what}: empty range {range:?}"
                )));
            }
            request = request.range(format!("bytes={}-{}", range.start, range.end - 1));
        }
        if let Some(etag) = if_match {
            request = request.if_match(etag);
        }
        // The operation timeout of a GET ends at the answer's headers (the SDK hands the
        // body over unread), so it is a short one whatever the size: a hung region is
        // left after it, not after a transfer's time. The body is then held to the
        // stalled-stream protection.
        let out = request
            .send()
            .await
            .map_err(|e| classify(what.clone(), e))?;
        let info = ObjectInfo {
            size: out.content_length.unwrap_or(0).max(0) as u64,
            etag: out.e_tag,
            last_modified: to_system_time(out.last_modified.as_ref()),
            user_metadata: out.metadata.unwrap_or_default(),
            server_side_encryption: out.server_side_encryption.map(|s| s.as_str().to_string()),
            customer_key_encrypted: out.sse_customer_algorithm.is_some(),
            // A GET does not ask for it: the SDK would check a ranged body against it.
            server_checksum: None,
        };
        let body = futures::stream::unfold(Some(out.body), move |body| {
            let what = what.clone();
            async move {
                let mut body = body?;
                match body.next().await? {
                    Ok(chunk) => Some((Ok(chunk), Some(body))),
                    Err(e) => Some((Err(StorageError::unavailable(what).with_source(e)), None)),
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
        let size = bytes_len(&body);
        self.send_put(bucket, key, ByteStream::from(body), size, options)
            .await
    }

    async fn put_object_from_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        options: &PutOptions,
    ) -> Result<(), StorageError> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| {
                let what = self.what("PutObject", &format!("s3://{bucket}/{key}"));
                StorageError::new(ErrorKind::Io, format!("{what}: reading {}", path.display()))
                    .with_source(e)
            })?
            .len();
        let body = checked_file_body(path, size, Expected::of(options));
        self.send_put(bucket, key, body, size, options).await
    }

    async fn first_part_size(&self, bucket: &str, key: &str) -> Result<Option<u64>, StorageError> {
        let out = self
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .part_number(1)
            .send()
            .await
            .map_err(|e| {
                classify(
                    self.what("HeadObject partNumber=1", &format!("s3://{bucket}/{key}")),
                    e,
                )
            })?;
        Ok(out.content_length.and_then(|n| u64::try_from(n).ok()))
    }

    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ObjectSummary>, StorageError> {
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                classify(
                    self.what("ListObjectsV2", &format!("s3://{bucket}/{prefix}")),
                    e,
                )
            })?;
            for object in page.contents.unwrap_or_default() {
                if let Some(key) = object.key {
                    found.push(ObjectSummary {
                        key,
                        size: object.size.unwrap_or(0).max(0) as u64,
                        etag: object.e_tag,
                        last_modified: to_system_time(object.last_modified.as_ref()),
                    });
                }
            }
        }
        Ok(found)
    }

    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<(), StorageError> {
        self.s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .set_if_match(if_match.map(str::to_string))
            .send()
            .await
            .map_err(|e| {
                classify(
                    self.what("DeleteObject", &format!("s3://{bucket}/{key}")),
                    e,
                )
            })?;
        Ok(())
    }

    async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        user_metadata: &HashMap<String, String>,
        full_crc64: bool,
    ) -> Result<String, StorageError> {
        self.create_upload(bucket, key, user_metadata, full_crc64)
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
        self.send_part(bucket, key, upload_id, part_number, body, checks)
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
        self.complete_upload(bucket, key, upload_id, parts, if_none_match, crc64)
            .await
    }

    async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StorageError> {
        self.s3
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(|e| {
                classify(
                    self.what("AbortMultipartUpload", &format!("s3://{bucket}/{key}")),
                    e,
                )
            })?;
        Ok(())
    }
}
