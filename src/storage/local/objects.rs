//! A local region's objects and their sidecars: one file per object under
//! `buckets/{bucket}/`, named by `layout`, and beside it a sidecar holding the ETag and
//! user metadata S3 would keep. Heads, ranged reads streamed in chunks, whole-object
//! writes (Content-MD5, `If-None-Match: *` and `If-Match` honoured), listings and
//! deletes (`If-Match` honoured).

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::digest::Md5;
use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::files::{blocking, io_error, place, walk};
use super::layout::{name_of, path_of, sidecar_of};
use super::region::LocalRegion;
use crate::storage::error::StorageError;
use crate::storage::store::{ObjectInfo, ObjectStream, ObjectSummary, PutOptions};

const READ_CHUNK: usize = 1 << 20;

/// What S3 keeps about an object besides its bytes.
#[derive(Debug, Serialize, Deserialize, Default)]
pub(super) struct Sidecar {
    pub(super) etag: String,
    #[serde(default)]
    pub(super) user_metadata: HashMap<String, String>,
    /// A multipart object's first part length (S3 answers it to `partNumber=1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) part_size: Option<u64>,
}

fn read_sidecar(file: &Path) -> Sidecar {
    std::fs::read(sidecar_of(file))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn write_sidecar(local: &LocalRegion, file: &Path, sidecar: &Sidecar) -> io::Result<()> {
    let body = serde_json::to_vec(sidecar).map_err(io::Error::other)?;
    let temporary = local.write_temporary(&body)?;
    place(&temporary, &sidecar_of(file), false)
}

fn info_of(file: &Path) -> io::Result<ObjectInfo> {
    let metadata = std::fs::metadata(file)?;
    if !metadata.is_file() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "not an object"));
    }
    let sidecar = read_sidecar(file);
    Ok(ObjectInfo {
        size: metadata.len(),
        etag: (!sidecar.etag.is_empty()).then_some(sidecar.etag),
        last_modified: metadata.modified().ok(),
        user_metadata: sidecar.user_metadata,
        server_side_encryption: None,
        customer_key_encrypted: false,
        server_checksum: None,
    })
}

/// `BadDigest` when the request's `Content-MD5` is not the body's, as S3 answers.
fn check_content_md5(what: &str, digest: &[u8], options: &PutOptions) -> Result<(), StorageError> {
    if let Some(sent) = &options.content_md5 {
        let actual = base64::engine::general_purpose::STANDARD.encode(digest);
        if *sent != actual {
            return Err(StorageError::bad_digest(format!(
                "{what}: Content-MD5 {sent} but the body's MD5 is {actual}"
            )));
        }
    }
    Ok(())
}

/// `If-None-Match: *` and `If-Match` as S3 answers them (checked, not atomic: the local
/// store serves one machine).
fn check_preconditions(what: &str, file: &Path, options: &PutOptions) -> Result<(), StorageError> {
    if options.if_none_match && file.exists() {
        return Err(StorageError::precondition_failed(format!("{what} exists")));
    }
    match &options.if_match {
        Some(etag) => check_etag(what, file, etag),
        None => Ok(()),
    }
}

/// `If-Match`: `NotFound` when the object is gone, `PreconditionFailed` when its ETag
/// is another (quotes do not count, as in S3).
fn check_etag(what: &str, file: &Path, etag: &str) -> Result<(), StorageError> {
    let info = info_of(file).map_err(|e| io_error(what, e))?;
    let theirs = info.etag.unwrap_or_default();
    if theirs.trim_matches('"') != etag.trim_matches('"') {
        return Err(StorageError::precondition_failed(format!(
            "{what}: its ETag is {theirs}, not {etag}"
        )));
    }
    Ok(())
}

/// The sidecar of an object written in one request: its ETag is the body's MD5.
fn whole_object_sidecar(digest: &[u8], options: &PutOptions) -> Sidecar {
    Sidecar {
        etag: format!("\"{}\"", hex::encode(digest)),
        user_metadata: options.user_metadata.clone(),
        part_size: None,
    }
}

/// Stores a complete temporary file as `key`, with its sidecar.
pub(super) fn commit(
    local: &LocalRegion,
    bucket_root: &Path,
    key: &str,
    temporary: &Path,
    sidecar: &Sidecar,
    exclusive: bool,
) -> Result<(), StorageError> {
    let dest = path_of(bucket_root, key);
    let what = format!("storing {key} in {}", local.region);
    place(temporary, &dest, exclusive).map_err(|e| io_error(&what, e))?;
    write_sidecar(local, &dest, sidecar).map_err(|e| io_error(&what, e))
}

pub(super) async fn head(
    local: &LocalRegion,
    bucket: &str,
    key: &str,
) -> Result<ObjectInfo, StorageError> {
    local.counters.head_object.fetch_add(1, Ordering::Relaxed);
    let file = path_of(&local.existing_bucket(bucket)?, key);
    let what = format!("s3://{bucket}/{key} in {}", local.region);
    blocking(move || info_of(&file).map_err(|e| io_error(&what, e))).await
}

pub(super) async fn get(
    local: &LocalRegion,
    bucket: &str,
    key: &str,
    range: Option<Range<u64>>,
    if_match: Option<&str>,
) -> Result<ObjectStream, StorageError> {
    local.counters.get_object.fetch_add(1, Ordering::Relaxed);
    let file_path = path_of(&local.existing_bucket(bucket)?, key);
    let what = format!("s3://{bucket}/{key} in {}", local.region);
    let if_match = if_match.map(str::to_string);
    let (info, file, range) = {
        let what = what.clone();
        blocking(move || {
            let info = info_of(&file_path).map_err(|e| io_error(&what, e))?;
            if let Some(expected) = &if_match {
                if info.etag.as_deref() != Some(expected.as_str()) {
                    return Err(StorageError::precondition_failed(format!(
                        "{what}: ETag is {:?}, not {expected}",
                        info.etag
                    )));
                }
            }
            let range = match range {
                None => 0..info.size,
                Some(r) if r.start >= info.size || r.is_empty() => {
                    return Err(StorageError::invalid(format!(
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
    let counters = Arc::clone(&local.counters);
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
                    Err(StorageError::other(format!(
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

pub(super) async fn put(
    local: &LocalRegion,
    bucket: &str,
    key: &str,
    body: Bytes,
    options: &PutOptions,
) -> Result<(), StorageError> {
    put_with(local, bucket, key, options, move |this, what| {
        let temporary = this.write_temporary(&body).map_err(|e| io_error(what, e))?;
        Ok((temporary, Md5::digest(&body)))
    })
    .await
}

/// The sidecar of an existing object.
pub(super) async fn head_sidecar(
    local: &LocalRegion,
    bucket: &str,
    key: &str,
) -> Result<Sidecar, StorageError> {
    let file = path_of(&local.existing_bucket(bucket)?, key);
    let what = format!("s3://{bucket}/{key} in {}", local.region);
    blocking(move || {
        info_of(&file).map_err(|e| io_error(&what, e))?;
        Ok(read_sidecar(&file))
    })
    .await
}

/// `put` from a file: copied in chunks to a temporary file while its MD5 is computed.
pub(super) async fn put_file(
    local: &LocalRegion,
    bucket: &str,
    key: &str,
    source: &Path,
    options: &PutOptions,
) -> Result<(), StorageError> {
    let source = source.to_path_buf();
    put_with(local, bucket, key, options, move |this, what| {
        let temporary = this.write_temporary(&[]).map_err(|e| io_error(what, e))?;
        let copied = (|| -> io::Result<_> {
            let mut input = std::fs::File::open(&source)?;
            let mut output = std::fs::OpenOptions::new().append(true).open(&temporary)?;
            let mut hasher = Md5::new();
            let mut chunk = vec![0u8; READ_CHUNK];
            loop {
                let n = input.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                hasher.update(&chunk[..n]);
                io::Write::write_all(&mut output, &chunk[..n])?;
            }
            output.sync_data()?;
            Ok(hasher.finalize())
        })();
        match copied {
            Ok(digest) => Ok((temporary, digest)),
            Err(e) => {
                let _ = std::fs::remove_file(&temporary);
                Err(io_error(what, e))
            }
        }
    })
    .await
}

/// Both puts: `write` makes the temporary file holding the body and answers it with the
/// body's MD5; then the body is checked as S3 checks it (Content-MD5, `If-None-Match`,
/// `If-Match`), and stored, or the temporary file removed.
async fn put_with(
    local: &LocalRegion,
    bucket: &str,
    key: &str,
    options: &PutOptions,
    write: impl FnOnce(&LocalRegion, &str) -> Result<(PathBuf, [u8; 16]), StorageError> + Send + 'static,
) -> Result<(), StorageError> {
    local.counters.put_object.fetch_add(1, Ordering::Relaxed);
    let bucket_root = local.existing_bucket(bucket)?;
    let this = local.clone();
    let key = key.to_string();
    let options = options.clone();
    blocking(move || {
        let what = format!("s3://{}/{key} in {}", bucket_root.display(), this.region);
        let (temporary, digest) = write(&this, &what)?;
        let checked = check_content_md5(&what, &digest, &options)
            .and_then(|()| check_preconditions(&what, &path_of(&bucket_root, &key), &options));
        if let Err(e) = checked {
            let _ = std::fs::remove_file(&temporary);
            return Err(e);
        }
        let sidecar = whole_object_sidecar(&digest, &options);
        commit(
            &this,
            &bucket_root,
            &key,
            &temporary,
            &sidecar,
            options.if_none_match,
        )
    })
    .await
}

pub(super) async fn list(
    local: &LocalRegion,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<ObjectSummary>, StorageError> {
    local.counters.list_objects.fetch_add(1, Ordering::Relaxed);
    let bucket_root = local.existing_bucket(bucket)?;
    let prefix = prefix.to_string();
    blocking(move || {
        let mut files = Vec::new();
        walk(&bucket_root, &mut files).map_err(|e| io_error("listing objects", e))?;
        let mut found = Vec::new();
        for file in files {
            let Some(key) = name_of(&bucket_root, &file) else {
                continue;
            };
            if !key.starts_with(&prefix) {
                continue;
            }
            // An object may vanish between the walk and its head.
            if let Ok(info) = info_of(&file) {
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

pub(super) async fn delete(
    local: &LocalRegion,
    bucket: &str,
    key: &str,
    if_match: Option<&str>,
) -> Result<(), StorageError> {
    let file = path_of(&local.existing_bucket(bucket)?, key);
    if let Some(etag) = if_match {
        check_etag(
            &format!("s3://{bucket}/{key} in {}", local.region),
            &file,
            etag,
        )?;
    }
    for path in [sidecar_of(&file), file] {
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&format!("deleting {key}"), e)),
        }
    }
    Ok(())
}
