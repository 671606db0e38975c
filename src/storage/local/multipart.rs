//! A local region's multipart uploads: `uploads/{id}/` holds the upload's manifest
//! (bucket, key, user metadata) and its parts as they arrive; completing joins the
//! parts into one temporary file, checks each against its ETag, and commits it as an
//! object with S3's multipart ETag (`"{md5 of the part digests}-{parts}"`).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use crate::digest::{Crc64, Md5};
use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::files::{blocking, io_error};
use super::layout::path_of;
use super::objects::{commit, Sidecar};
use super::region::LocalRegion;
use crate::storage::error::StorageError;
use crate::storage::store::{CompletedPart, PartChecks};

#[derive(Debug, Serialize, Deserialize)]
struct UploadManifest {
    bucket: String,
    key: String,
    user_metadata: HashMap<String, String>,
}

fn md5_base64(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(body))
}

/// The folder of an upload; an id that is not ours (hex) names no upload.
fn upload_dir(local: &LocalRegion, upload_id: &str) -> Result<PathBuf, StorageError> {
    if upload_id.is_empty() || !upload_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StorageError::not_found(format!(
            "NoSuchUpload: {upload_id}"
        )));
    }
    Ok(local.root.join("uploads").join(upload_id))
}

pub(super) async fn create(
    local: &LocalRegion,
    bucket: &str,
    key: &str,
    user_metadata: &HashMap<String, String>,
) -> Result<String, StorageError> {
    local.existing_bucket(bucket)?;
    let upload_id = format!("{:032x}", rand::random::<u128>());
    let dir = upload_dir(local, &upload_id)?;
    let manifest = UploadManifest {
        bucket: bucket.to_string(),
        key: key.to_string(),
        user_metadata: user_metadata.clone(),
    };
    let body = serde_json::to_vec(&manifest)
        .map_err(|e| StorageError::other("upload manifest").with_source(e))?;
    blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|e| io_error("creating upload", e))?;
        std::fs::write(dir.join("manifest.json"), body).map_err(|e| io_error("creating upload", e))
    })
    .await?;
    Ok(upload_id)
}

pub(super) async fn upload_part(
    local: &LocalRegion,
    upload_id: &str,
    part_number: i32,
    body: Bytes,
    checks: &PartChecks,
) -> Result<CompletedPart, StorageError> {
    local.check_up()?;
    if !(1..=10_000).contains(&part_number) {
        return Err(StorageError::invalid(format!("part number {part_number}")));
    }
    let dir = upload_dir(local, upload_id)?;
    let checks = checks.clone();
    let upload_id = upload_id.to_string();
    blocking(move || {
        if !dir.is_dir() {
            return Err(StorageError::not_found(format!(
                "NoSuchUpload: {upload_id:?}"
            )));
        }
        let actual = md5_base64(&body);
        if actual != checks.content_md5 {
            return Err(StorageError::bad_digest(format!(
                "part {part_number}: Content-MD5 {} but the body's MD5 is {actual}",
                checks.content_md5
            )));
        }
        if let Some(crc64) = checks.crc64 {
            let actual = Crc64::of(&body);
            if actual != crc64 {
                return Err(StorageError::bad_digest(format!(
                    "part {part_number}: CRC-64/NVME {crc64:016x} but the body's is {actual:016x}"
                )));
            }
        }
        let etag = format!("\"{}\"", hex::encode(Md5::digest(&body)));
        std::fs::write(dir.join(format!("part-{part_number:05}")), &body)
            .map_err(|e| io_error("writing part", e))?;
        Ok(CompletedPart {
            part_number,
            etag,
            crc64: checks.crc64,
        })
    })
    .await
}

pub(super) async fn complete(
    local: &LocalRegion,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[CompletedPart],
    if_none_match: bool,
    crc64: Option<u64>,
) -> Result<(), StorageError> {
    let bucket_root = local.existing_bucket(bucket)?;
    let dir = upload_dir(local, upload_id)?;
    let this = local.clone();
    let key = key.to_string();
    let parts = parts.to_vec();
    blocking(move || {
        let what = format!("completing {key} in {}", this.region);
        let manifest: UploadManifest = std::fs::read(dir.join("manifest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| StorageError::not_found(format!("{what}: NoSuchUpload")))?;
        if manifest.key != key {
            return Err(StorageError::invalid(format!(
                "{what}: upload is for {}",
                manifest.key
            )));
        }
        if if_none_match && path_of(&bucket_root, &key).exists() {
            return Err(StorageError::precondition_failed(format!("{what}: exists")));
        }
        let tmp = this.tmp_dir();
        std::fs::create_dir_all(&tmp).map_err(|e| io_error(&what, e))?;
        let temporary = tmp.join(format!(".tmp-{:016x}", rand::random::<u64>()));
        let mut out = std::fs::File::create(&temporary).map_err(|e| io_error(&what, e))?;
        let mut digests = Vec::new();
        let mut whole = Crc64::new();
        let mut part_size = None;
        for (index, part) in parts.iter().enumerate() {
            if part.part_number != index as i32 + 1 {
                let _ = std::fs::remove_file(&temporary);
                return Err(StorageError::invalid(format!("{what}: parts out of order")));
            }
            let body = std::fs::read(dir.join(format!("part-{:05}", part.part_number)))
                .map_err(|e| io_error(&what, e))?;
            let digest = Md5::digest(&body);
            if format!("\"{}\"", hex::encode(digest)) != part.etag {
                let _ = std::fs::remove_file(&temporary);
                return Err(StorageError::invalid(format!(
                    "{what}: InvalidPart {index}"
                )));
            }
            digests.extend_from_slice(&digest);
            whole.update(&body);
            part_size.get_or_insert(body.len() as u64);
            out.write_all(&body).map_err(|e| io_error(&what, e))?;
        }
        // As S3 does with a full-object checksum: parts that do not make the object
        // given are not completed.
        let actual = whole.finalize();
        if let Some(expected) = crc64.filter(|expected| *expected != actual) {
            let _ = std::fs::remove_file(&temporary);
            return Err(StorageError::bad_digest(format!(
                "{what}: the parts' CRC-64/NVME is {actual:016x}, not {expected:016x}"
            )));
        }
        out.sync_data().map_err(|e| io_error(&what, e))?;
        drop(out);
        let sidecar = Sidecar {
            etag: format!("\"{}-{}\"", hex::encode(Md5::digest(&digests)), parts.len()),
            user_metadata: manifest.user_metadata,
            part_size,
        };
        commit(
            &this,
            &bucket_root,
            &key,
            &temporary,
            &sidecar,
            if_none_match,
        )?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await
}

pub(super) async fn abort(local: &LocalRegion, upload_id: &str) -> Result<(), StorageError> {
    let dir = upload_dir(local, upload_id)?;
    match tokio::fs::remove_dir_all(&dir).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("aborting upload", e)),
    }
}

#[cfg(test)]
mod tests {
    use crate::digest::Crc64;
    use crate::storage::error::ErrorKind;
    use crate::storage::local::LocalRegion;
    use crate::storage::{PartChecks, RegionStore};

    fn checks(body: &[u8], crc64: Option<u64>) -> PartChecks {
        PartChecks {
            content_md5: super::md5_base64(body),
            crc64,
        }
    }

    // As S3 does with a full-object CRC-64/NVME: a part that does not match its CRC is
    // refused, and parts that do not make the whole object given are not completed.
    #[tokio::test]
    async fn parts_and_the_whole_are_checked_against_their_crcs() {
        let dir = tempfile::tempdir().unwrap();
        let region = LocalRegion::new(dir.path(), "r");
        region.create_bucket("b").unwrap();
        let first = vec![7u8; 5 << 20];
        let second = b"the rest".to_vec();
        let whole = Crc64::of([first.clone(), second.clone()].concat());
        let metadata = Default::default();
        let id = region
            .create_multipart_upload("b", "k", &metadata, true)
            .await
            .unwrap();
        let wrong = region
            .upload_part(
                "b",
                "k",
                &id,
                1,
                first.clone().into(),
                &checks(&first, Some(1)),
            )
            .await
            .unwrap_err();
        assert_eq!(wrong.kind(), ErrorKind::BadDigest, "{wrong}");
        let mut parts = Vec::new();
        for (number, body) in [(1, &first), (2, &second)] {
            let crc = Some(Crc64::of(body));
            let part = region
                .upload_part(
                    "b",
                    "k",
                    &id,
                    number,
                    body.clone().into(),
                    &checks(body, crc),
                )
                .await
                .unwrap();
            assert_eq!(part.crc64, crc);
            parts.push(part);
        }
        let refused = region
            .complete_multipart_upload("b", "k", &id, &parts, true, Some(whole ^ 1))
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::BadDigest, "{refused}");
        assert!(region.head_object("b", "k").await.is_err(), "nothing kept");
        region
            .complete_multipart_upload("b", "k", &id, &parts, true, Some(whole))
            .await
            .unwrap();
        let info = region.head_object("b", "k").await.unwrap();
        assert_eq!(info.size, (first.len() + second.len()) as u64);
        assert!(info.etag.unwrap().ends_with("-2\""));
    }
}
