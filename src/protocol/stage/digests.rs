//! Hashing the file to stage, once: its MD5, and the layout and Content-MD5 of each
//! multipart part, either read from the file or trusted from digests computed while it
//! was written (`writer::DigestWriter`).

use std::path::Path;

use crate::digest::{Beside, Crc64, Md5, PartHashes};
use base64::Engine;
use bytes::Bytes;

use super::options::StageOptions;
use crate::protocol::error::Error;

/// S3's smallest part (but the last) and its most parts.
pub const MIN_PART_SIZE: u64 = 5 << 20;
pub const MAX_PARTS: u64 = 10_000;

/// Files staged in one request are held in memory up to this size, and streamed from
/// disk above it (each region reading the file at its own pace), so memory stays small
/// whatever `StageOptions::multipart_threshold` allows.
pub const IN_MEMORY_LIMIT: u64 = 16 << 20;

/// The file to stage, hashed once.
pub(super) struct Prepared {
    pub(super) path: std::path::PathBuf,
    pub(super) size: u64,
    pub(super) md5_hex: String,
    pub(super) md5_base64: String,
    /// The whole file's CRC, taken in the same pass as its MD5: a body streamed from the
    /// file is checked against it as it is sent.
    pub(super) crc64: u64,
    /// Staged in one request (from `whole` when it holds the bytes, else from the file).
    pub(super) one_request: bool,
    /// The whole body, for small files staged in one request.
    pub(super) whole: Option<Bytes>,
    /// The parts, for files staged in parts.
    pub(super) parts: Vec<PlannedPart>,
}

/// One part of a file staged in parts, as it was hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PlannedPart {
    pub(super) offset: u64,
    pub(super) length: u64,
    /// Its Content-MD5.
    pub(super) md5: String,
    /// Its CRC, taken in the same pass: the part is checked against it when it is read
    /// again to be sent.
    pub(super) crc64: u64,
}

pub(super) fn base64_of(digest: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// The part size for a file: at least the asked size and 5 MiB, raised to fit 10,000.
pub fn part_size_for(size: u64, asked: u64) -> u64 {
    let at_least = size.div_ceil(MAX_PARTS).next_multiple_of(1 << 20);
    asked.max(MIN_PART_SIZE).max(at_least)
}

/// The digests of a file, computed while it was written (see `DigestWriter`), so that
/// staging need not read a large file twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigests {
    pub size: u64,
    pub md5: [u8; 16],
    /// CRC-64/NVME of the whole file, taken in the same pass as `md5`.
    pub crc64: u64,
    pub part_size: u64,
    /// The MD5 and CRC of each `part_size` piece, the last one shorter; empty when the
    /// parts were not hashed (the stage then hashes them if it needs them).
    pub parts: Vec<([u8; 16], u64)>,
}

/// The parts of a file of `size` bytes from the digests of its `part_size` pieces;
/// `None` when they do not cover it.
fn planned_parts(
    size: u64,
    part_size: u64,
    digests: &[([u8; 16], u64)],
) -> Option<Vec<PlannedPart>> {
    if digests.len() as u64 != size.div_ceil(part_size) {
        return None;
    }
    let parts = digests
        .iter()
        .enumerate()
        .map(|(i, (md5, crc64))| {
            let offset = i as u64 * part_size;
            PlannedPart {
                offset,
                length: part_size.min(size - offset),
                md5: base64_of(md5),
                crc64: *crc64,
            }
        })
        .collect();
    Some(parts)
}

/// Trusts digests computed while the file was written when they fit its size and the
/// part size this stage uses.
pub(super) fn prepared_from_digests(
    path: &Path,
    size: u64,
    part_size: u64,
    known: &FileDigests,
) -> Option<Prepared> {
    if known.size != size || known.part_size != part_size {
        return None;
    }
    Some(Prepared {
        path: path.to_path_buf(),
        size,
        md5_hex: hex::encode(known.md5),
        md5_base64: base64_of(&known.md5),
        crc64: known.crc64,
        one_request: false,
        whole: None,
        parts: planned_parts(size, part_size, &known.parts)?,
    })
}

/// A file sent whole from the spool, from the digests taken while it was written
/// (`one_request`: under the threshold; else above it, with no region taking parts).
fn prepared_whole(path: &Path, known: &FileDigests, one_request: bool) -> Prepared {
    Prepared {
        path: path.to_path_buf(),
        size: known.size,
        md5_hex: hex::encode(known.md5),
        md5_base64: base64_of(&known.md5),
        crc64: known.crc64,
        one_request,
        whole: None,
        parts: Vec::new(),
    }
}

/// Hashes the file on a blocking thread, so the read does not hold up the runtime.
/// `parts_needed`: some region will take the file in parts, so digests taken while it
/// was written without its parts' do not do.
pub(super) async fn prepare(
    path: &Path,
    options: &StageOptions,
    known: Option<FileDigests>,
    parts_needed: bool,
) -> Result<Prepared, Error> {
    let path = path.to_path_buf();
    let options = options.clone();
    tokio::task::spawn_blocking(move || {
        read_and_hash(&path, &options, known.as_ref(), parts_needed)
    })
    .await
    .map_err(|e| Error::Internal(format!("hashing task failed: {e}")))?
}

fn read_and_hash(
    path: &Path,
    options: &StageOptions,
    known: Option<&FileDigests>,
    parts_needed: bool,
) -> Result<Prepared, Error> {
    use std::io::Read;
    let what = format!("reading {}", path.display());
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(what.clone(), e))?;
    let size = file
        .metadata()
        .map_err(|e| Error::io(what.clone(), e))?
        .len();
    let changed = |what: &str, expected: String, actual: String| Error::Changed {
        path: path.display().to_string(),
        what: what.to_string(),
        expected,
        actual,
    };
    if let Some(known) = known.filter(|known| known.size != size) {
        return Err(changed(
            "its size",
            format!("{} bytes", known.size),
            format!("{size} bytes"),
        ));
    }
    let multipart = size > options.multipart_threshold;
    let in_memory = !multipart && size <= IN_MEMORY_LIMIT;
    let part_size = part_size_for(size, options.part_size);
    match known {
        Some(known) if multipart => {
            if let Some(prepared) = prepared_from_digests(path, size, part_size, known) {
                return Ok(prepared);
            }
            if !parts_needed {
                // Above the threshold, but every region takes it in one request: no
                // parts (`RegionPlan::method` then sends it whole everywhere).
                return Ok(prepared_whole(path, known, false));
            }
        }
        // Streamed in one request: the MD5 is all it needs (checked as it is sent).
        Some(known) if !in_memory => return Ok(prepared_whole(path, known, true)),
        _ => {}
    }
    let mut whole_md5 = Md5::new();
    let mut whole_crc = Crc64::new();
    let mut whole = Vec::new();
    let mut offset = 0u64;
    // The parts are hashed on a thread of their own, beside the whole: MD5 is slower
    // than reading a cached file, and the two hashes take one core each.
    let mut parts_beside = if multipart {
        let beside = Beside::spawn(
            "stage-parts",
            PartHashes::new(part_size),
            16,
            PartHashes::update,
        );
        Some(beside.ok_or_else(|| Error::Internal("no thread to hash the parts".into()))?)
    } else {
        None
    };
    loop {
        let mut buffer = Vec::with_capacity(1 << 20);
        let n = (&mut file)
            .take(1 << 20)
            .read_to_end(&mut buffer)
            .map_err(|e| Error::io(what.clone(), e))?;
        if n == 0 {
            break;
        }
        whole_md5.update(&buffer);
        whole_crc.update(&buffer);
        offset += n as u64;
        if let Some(beside) = &parts_beside {
            if !beside.send(Bytes::from(buffer)) {
                break; // The parts' thread died: its finish says so.
            }
        } else if in_memory {
            whole.extend_from_slice(&buffer);
        }
    }
    let part_digests = match parts_beside.take().map(Beside::finish) {
        None => Vec::new(),
        Some(Some(hashes)) => hashes.finish(),
        Some(None) => return Err(Error::Internal("the hashing of the parts failed".into())),
    };
    if offset != size {
        return Err(Error::io(
            what,
            std::io::Error::other(format!(
                "the file changed size while read ({size} then {offset} bytes)"
            )),
        ));
    }
    let digest: [u8; 16] = whole_md5.finalize();
    if let Some(known) = known.filter(|known| known.md5 != digest) {
        return Err(changed(
            "the file",
            hex::encode(known.md5),
            hex::encode(digest),
        ));
    }
    let parts = if multipart {
        planned_parts(size, part_size, &part_digests)
            .ok_or_else(|| Error::Internal("the parts hashed do not cover the file".into()))?
    } else {
        Vec::new()
    };
    Ok(Prepared {
        path: path.to_path_buf(),
        size,
        md5_hex: hex::encode(digest),
        md5_base64: base64_of(&digest),
        crc64: whole_crc.finalize(),
        one_request: !multipart,
        whole: in_memory.then(|| Bytes::from(whole)),
        parts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_reads_the_parts_written_without_them_only_when_a_region_needs_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 239) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let known = FileDigests {
            size: data.len() as u64,
            md5: Md5::digest(&data),
            crc64: Crc64::of(&data),
            part_size: 8 << 20,
            parts: Vec::new(),
        };
        let options = StageOptions::default();
        // No region takes parts: the digests do, and there are no parts to send.
        let prepared = read_and_hash(&path, &options, Some(&known), false).unwrap();
        assert!(!prepared.one_request);
        assert!(prepared.parts.is_empty());
        assert_eq!(prepared.md5_hex, hex::encode(known.md5));
        // One does: the file is read again for them.
        let prepared = read_and_hash(&path, &options, Some(&known), true).unwrap();
        assert_eq!(prepared.parts.len(), 3);
        assert_eq!(
            prepared.parts[2].md5,
            base64_of(&Md5::digest(&data[16 << 20..]))
        );
        assert_eq!(prepared.md5_hex, hex::encode(known.md5));
    }

    #[test]
    fn part_size_respects_s3_limits() {
        assert_eq!(part_size_for(100 << 20, 1 << 20), MIN_PART_SIZE);
        assert_eq!(part_size_for(100 << 20, 8 << 20), 8 << 20);
        let huge = 200u64 << 30;
        let size = part_size_for(huge, 8 << 20);
        assert!(huge.div_ceil(size) <= MAX_PARTS);
    }
}
