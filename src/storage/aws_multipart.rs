//! Multipart uploads to one AWS region: created, sent part by part with each part's
//! Content-MD5 (and its CRC-64/NVME when the upload is checked as a whole), completed
//! with the whole object's full-object CRC-64/NVME, so that S3 refuses to complete an
//! upload whose parts do not make the object the stager read.

use std::collections::HashMap;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, CompletedPart as S3CompletedPart,
};
use bytes::Bytes;

use super::aws::AwsRegion;
use super::aws_errors::classify;
use super::error::StorageError;
use super::store::{CompletedPart, PartChecks};
use crate::checksum::Checksum;

/// The base64 text S3 takes for a CRC-64/NVME.
fn crc64_text(crc: u64) -> String {
    Checksum::Crc64Nvme(crc).to_s3()
}

impl AwsRegion {
    /// `CreateMultipartUpload`, declaring a full-object CRC-64/NVME when `full_crc64`.
    pub(super) async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        user_metadata: &HashMap<String, String>,
        full_crc64: bool,
    ) -> Result<String, StorageError> {
        let what = self.what("CreateMultipartUpload", &format!("s3://{bucket}/{key}"));
        let mut request = self.s3.create_multipart_upload().bucket(bucket).key(key);
        for (name, value) in user_metadata {
            request = request.metadata(name, value);
        }
        if full_crc64 {
            request = request
                .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
                .checksum_type(ChecksumType::FullObject);
        }
        let out = request
            .send()
            .await
            .map_err(|e| classify(what.clone(), e))?;
        out.upload_id
            .ok_or_else(|| StorageError::other(format!("{what}: no upload id in the answer")))
    }

    /// `UploadPart` with the part's checks.
    pub(super) async fn send_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: i32,
        body: Bytes,
        checks: &PartChecks,
    ) -> Result<CompletedPart, StorageError> {
        let what = self.what(
            &format!("UploadPart {part_number} of"),
            &format!("s3://{bucket}/{key}"),
        );
        let size = body.len() as u64;
        let mut request = self
            .s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number)
            .content_md5(&checks.content_md5)
            .body(ByteStream::from(body));
        if let Some(crc) = checks.crc64 {
            // Given here, the SDK computes none itself.
            request = request
                .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
                .checksum_crc64_nvme(crc64_text(crc));
        }
        let out = request
            .customize()
            // Checked by its Content-MD5: see `AwsRegion::send_put`.
            .disable_payload_signing()
            .config_override(self.transfer_config(size))
            .send()
            .await
            .map_err(|e| classify(what.clone(), e))?;
        let etag = out
            .e_tag
            .ok_or_else(|| StorageError::other(format!("{what}: no ETag in the answer")))?;
        Ok(CompletedPart {
            part_number,
            etag,
            crc64: checks.crc64,
        })
    }

    /// `CompleteMultipartUpload`, with the whole object's CRC when given.
    pub(super) async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        if_none_match: bool,
        crc64: Option<u64>,
    ) -> Result<(), StorageError> {
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| {
                        S3CompletedPart::builder()
                            .part_number(p.part_number)
                            .e_tag(&p.etag)
                            .set_checksum_crc64_nvme(p.crc64.map(crc64_text))
                            .build()
                    })
                    .collect(),
            ))
            .build();
        let mut request = self
            .s3
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(completed);
        if if_none_match {
            request = request.if_none_match("*");
        }
        if let Some(crc) = crc64 {
            request = request
                .checksum_crc64_nvme(crc64_text(crc))
                .checksum_type(ChecksumType::FullObject);
        }
        // Completing assembles the parts server-side: allow it the time of a transfer.
        let size = parts.len() as u64 * (8 << 20);
        request
            .customize()
            .config_override(self.transfer_config(size))
            .send()
            .await
            .map_err(|e| {
                classify(
                    self.what("CompleteMultipartUpload", &format!("s3://{bucket}/{key}")),
                    e,
                )
            })?;
        Ok(())
    }
}
