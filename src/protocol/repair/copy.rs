//! Copying one object from one region to another so that the copy has the source's
//! ETag (readers group regions by size and ETag): a single-part source in one
//! `PutObject`, a multipart source ("…-N" ETag) in parts of the source's own part size.
//! Memory is bounded: a single-part object goes through a temporary file (private,
//! and removed on every way out: `scratch`), a multipart one is read and sent one part
//! at a time. Every write says `If-None-Match: *`, and the copy's ETag is checked
//! against the source's afterwards.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::checksum::{Algorithm, Checksum, Running};
use crate::digest::{Crc64, Md5};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::scratch::Scratch;
use crate::storage::{
    CompletedPart, ObjectInfo, PartChecks, PutOptions, RegionStore, StorageError,
};

/// One end of a copy.
pub(super) struct End<'a> {
    pub store: &'a dyn RegionStore,
    pub bucket: &'a str,
}

/// How a copy ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Copied {
    /// Written; the target now has the source's ETag.
    Written,
    /// Someone else wrote the same bytes first.
    AlreadyThere,
}

/// Why a copy failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum CopyError {
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// The target took other bytes meanwhile (a racing stager): a conflict.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The bytes read or written are not the source's: our own check, said in words.
    #[error("{0}")]
    Failed(String),
    #[error("cannot make a temporary file in {}: {source}", .dir.display())]
    Scratch {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Copies `key` from `from` to `to`, expecting the source to have `etag`.
pub(super) async fn copy_object(
    from: End<'_>,
    to: End<'_>,
    key: &str,
    etag: Option<&str>,
) -> Result<Copied, CopyError> {
    let info = from.store.head_object(from.bucket, key).await?;
    if etag.is_some() && info.etag.as_deref() != etag {
        return Err(CopyError::Failed(format!(
            "{key} in {} changed since it was listed (ETag {:?}, listed {etag:?})",
            from.store.region(),
            info.etag
        )));
    }
    let parts = info
        .etag
        .as_deref()
        .and_then(|e| e.trim_matches('"').rsplit_once('-'))
        .and_then(|(_, n)| n.parse::<u64>().ok());
    let written = match parts {
        Some(parts) => copy_in_parts(&from, &to, key, &info, parts).await,
        None => copy_whole(&from, &to, key, &info).await,
    };
    match written {
        Ok(()) => {}
        Err(CopyError::Storage(e)) if e.is_precondition_failed() => {
            let there = to.store.head_object(to.bucket, key).await?;
            return if there.etag == info.etag && there.size == info.size {
                Ok(Copied::AlreadyThere)
            } else {
                Err(CopyError::Conflict(format!(
                    "{key} appeared in {} meanwhile with other bytes (ETag {:?}); left as it is",
                    to.store.region(),
                    there.etag
                )))
            };
        }
        Err(e) => return Err(e),
    }
    let copy = to.store.head_object(to.bucket, key).await?;
    if copy.etag != info.etag || copy.size != info.size {
        // Written under If-None-Match, so the object is this copy's own: take it back
        // rather than leave a second content under the key.
        let _ = to.store.delete_object(to.bucket, key, None).await;
        return Err(CopyError::Failed(format!(
            "the copy of {key} in {} has ETag {:?} and {} bytes, not {:?} and {}; removed",
            to.store.region(),
            copy.etag,
            copy.size,
            info.etag,
            info.size
        )));
    }
    Ok(Copied::Written)
}

/// Through a temporary file, checking the MD5 where it is known, then one `PutObject`.
async fn copy_whole(
    from: &End<'_>,
    to: &End<'_>,
    key: &str,
    info: &ObjectInfo,
) -> Result<(), CopyError> {
    let (scratch, file) = Scratch::new().map_err(|source| CopyError::Scratch {
        dir: std::env::temp_dir(),
        source,
    })?;
    let path = scratch.path();
    let io = |source: std::io::Error| CopyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = tokio::fs::File::from_std(file);
    let mut stream = from
        .store
        .get_object(from.bucket, key, None, info.etag.as_deref())
        .await?;
    let mut hasher = Md5::new();
    let mut crc = Crc64::new();
    // The check the object carries, computed apart unless it is one of the two taken
    // anyway.
    let algorithm = info.check().map(|c| c.algorithm());
    let mut other = algorithm
        .filter(|a| !matches!(a, Algorithm::Md5 | Algorithm::Crc64Nvme))
        .map(Running::new);
    let mut size = 0u64;
    while let Some(chunk) = stream.body.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        crc.update(&chunk);
        if let Some(other) = &mut other {
            other.update(&chunk);
        }
        size += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    drop(file);
    let digest = hasher.finalize();
    let got = match algorithm {
        Some(Algorithm::Md5) => Some(Checksum::Md5(digest)),
        Some(Algorithm::Crc64Nvme) => Some(Checksum::Crc64Nvme(crc.finalize())),
        _ => other.map(Running::finish),
    };
    check_read(from, key, info, size, got)?;
    let options = PutOptions {
        content_md5: Some(base64::engine::general_purpose::STANDARD.encode(digest)),
        body_crc64: Some(crc.finalize()),
        if_none_match: true,
        if_match: None,
        user_metadata: info.user_metadata.clone(),
    };
    to.store
        .put_object_from_file(to.bucket, key, &path, &options)
        .await?;
    drop(scratch);
    Ok(())
}

/// The source's size and, where it carries one, its checksum (`ObjectInfo::check`) must
/// match what was read (`got`: the same algorithm's, over every byte).
fn check_read(
    from: &End<'_>,
    key: &str,
    info: &ObjectInfo,
    size: u64,
    got: Option<Checksum>,
) -> Result<(), CopyError> {
    if size != info.size {
        return Err(CopyError::Failed(format!(
            "read {size} bytes of {key} from {}, expected {}",
            from.store.region(),
            info.size
        )));
    }
    if let (Some(expected), Some(got)) = (info.check(), got) {
        if expected != got {
            return Err(CopyError::Failed(format!(
                "{key} read from {} has {got}, expected {expected}",
                from.store.region()
            )));
        }
    }
    Ok(())
}

/// The part layout of a multipart object of `size` bytes in `parts` parts whose first
/// part is `first` bytes: every part that size but the last. `None` when that layout
/// does not give `parts` parts.
pub(super) fn part_ranges(size: u64, parts: u64, first: u64) -> Option<Vec<(u64, u64)>> {
    if first == 0 || parts == 0 || size.div_ceil(first) != parts {
        return None;
    }
    Some(
        (0..parts)
            .map(|i| (i * first, ((i + 1) * first).min(size)))
            .collect(),
    )
}

/// In parts of the source's part size, one part in memory at a time.
async fn copy_in_parts(
    from: &End<'_>,
    to: &End<'_>,
    key: &str,
    info: &ObjectInfo,
    parts: u64,
) -> Result<(), CopyError> {
    let first = from
        .store
        .first_part_size(from.bucket, key)
        .await?
        .ok_or_else(|| {
            CopyError::Failed(format!(
                "{} cannot tell the part size of {key}, so its ETag cannot be repeated",
                from.store.region()
            ))
        })?;
    let ranges = part_ranges(info.size, parts, first).ok_or_else(|| {
        CopyError::Failed(format!(
            "{key} ({} bytes, {parts} parts, the first of {first}) is not in parts of one size; its ETag cannot be repeated",
            info.size
        ))
    })?;
    // Multipart sources keep our stager's record of the whole MD5 (and CRC); carry it
    // over. A source whose CRC-64/NVME is known has the copy checked by S3 as a whole.
    let metadata: HashMap<String, String> = info.user_metadata.clone();
    let full_crc64 = match info.check() {
        Some(Checksum::Crc64Nvme(crc)) => Some(crc),
        _ => None,
    };
    let upload_id = to
        .store
        .create_multipart_upload(to.bucket, key, &metadata, full_crc64.is_some())
        .await?;
    let result = upload_parts(
        from,
        to,
        key,
        info,
        &upload_id,
        &ranges,
        full_crc64.is_some(),
    )
    .await;
    let completed = match result {
        Ok(completed) => completed,
        Err(e) => {
            let _ = to
                .store
                .abort_multipart_upload(to.bucket, key, &upload_id)
                .await;
            return Err(e);
        }
    };
    to.store
        .complete_multipart_upload(to.bucket, key, &upload_id, &completed, true, full_crc64)
        .await?;
    Ok(())
}

async fn upload_parts(
    from: &End<'_>,
    to: &End<'_>,
    key: &str,
    info: &ObjectInfo,
    upload_id: &str,
    ranges: &[(u64, u64)],
    with_crc64: bool,
) -> Result<Vec<CompletedPart>, CopyError> {
    let mut whole = info.check().map(|c| Running::new(c.algorithm()));
    let mut completed = Vec::with_capacity(ranges.len());
    for (index, (start, end)) in ranges.iter().enumerate() {
        let mut stream = from
            .store
            .get_object(from.bucket, key, Some(*start..*end), info.etag.as_deref())
            .await?;
        let mut body = BytesMut::with_capacity((end - start) as usize);
        while let Some(chunk) = stream.body.next().await {
            body.extend_from_slice(&chunk?);
        }
        if body.len() as u64 != end - start {
            return Err(CopyError::Failed(format!(
                "read {} bytes of part {} of {key} from {}, expected {}",
                body.len(),
                index + 1,
                from.store.region(),
                end - start
            )));
        }
        if let Some(whole) = &mut whole {
            whole.update(&body);
        }
        let checks = PartChecks {
            content_md5: base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body)),
            crc64: with_crc64.then(|| Crc64::of(&body)),
        };
        let body: Bytes = body.freeze();
        let part = to
            .store
            .upload_part(to.bucket, key, upload_id, index as i32 + 1, body, &checks)
            .await?;
        completed.push(part);
    }
    check_read(
        from,
        key,
        info,
        ranges.last().map_or(0, |r| r.1),
        whole.map(Running::finish),
    )?;
    Ok(completed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_all_the_first_ones_size_but_the_last() {
        assert_eq!(
            part_ranges(25, 3, 10),
            Some(vec![(0, 10), (10, 20), (20, 25)])
        );
        assert_eq!(part_ranges(20, 2, 10), Some(vec![(0, 10), (10, 20)]));
        assert_eq!(part_ranges(25, 2, 10), None);
        assert_eq!(part_ranges(25, 3, 0), None);
    }
}
