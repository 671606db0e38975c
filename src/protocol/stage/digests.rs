//! Hashing the file to stage, once: its MD5, and the layout and Content-MD5 of each
//! multipart part, either read from the file or trusted from digests computed while it
//! was written (`DigestWriter`).

use std::path::Path;

use crate::digest::Md5;
use base64::Engine;
use bytes::Bytes;

use super::StageOptions;
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
    /// Staged in one request (from `whole` when it holds the bytes, else from the file).
    pub(super) one_request: bool,
    /// The whole body, for small files staged in one request.
    pub(super) whole: Option<Bytes>,
    /// (offset, length, Content-MD5) of each part, for files staged in parts.
    pub(super) parts: Vec<(u64, u64, String)>,
}

pub(super) fn base64_of(digest: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// The part size for a file: at least the asked size and 5 MiB, raised to fit 10,000.
pub fn part_size_for(size: u64, asked: u64) -> u64 {
    let at_least = size.div_ceil(MAX_PARTS).next_multiple_of(1 << 20);
    asked.max(MIN_PART_SIZE).max(at_least)
}

/// The MD5s of a file, computed while it was written (see `DigestWriter`), so that
/// staging need not read a large file twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigests {
    pub size: u64,
    pub md5: [u8; 16],
    pub part_size: u64,
    /// One per `part_size` piece, the last one shorter.
    pub parts: Vec<[u8; 16]>,
}

/// Hashes a file as it is written front to back: the whole of it, and each piece of
/// `part_size` (the multipart upload's Content-MD5s). A write anywhere but at the end
/// gives up; the stage then reads the file again.
#[derive(Clone)]
pub struct DigestWriter {
    part_size: u64,
    whole: Md5,
    part: Md5,
    part_len: u64,
    parts: Vec<[u8; 16]>,
    size: u64,
    broken: bool,
}

impl DigestWriter {
    pub fn new(part_size: u64) -> Self {
        DigestWriter {
            part_size: part_size.max(1),
            whole: Md5::new(),
            part: Md5::new(),
            part_len: 0,
            parts: Vec::new(),
            size: 0,
            broken: false,
        }
    }

    /// Takes the bytes written at `offset`.
    pub fn write(&mut self, offset: u64, mut data: &[u8]) {
        if self.broken {
            return;
        }
        if offset != self.size {
            self.broken = true;
            return;
        }
        self.whole.update(data);
        self.size += data.len() as u64;
        while !data.is_empty() {
            let room = (self.part_size - self.part_len) as usize;
            let (now, rest) = data.split_at(room.min(data.len()));
            self.part.update(now);
            self.part_len += now.len() as u64;
            if self.part_len == self.part_size {
                self.parts.push(self.part.finalize_reset());
                self.part_len = 0;
            }
            data = rest;
        }
    }

    /// Gives up: the bytes were written when nothing was hashing them (before a
    /// restart of the daemon, say).
    pub fn forget(&mut self) {
        self.broken = true;
    }

    /// Follows a truncation: to zero starts again, elsewhere gives up.
    pub fn truncate(&mut self, size: u64) {
        if size == 0 {
            *self = DigestWriter::new(self.part_size);
        } else if size != self.size {
            self.broken = true;
        }
    }

    /// The digests, unless a write out of order made them unknown.
    pub fn finish(&self) -> Option<FileDigests> {
        if self.broken {
            return None;
        }
        let mut parts = self.parts.clone();
        if self.part_len > 0 {
            parts.push(self.part.clone().finalize());
        }
        Some(FileDigests {
            size: self.size,
            md5: self.whole.clone().finalize(),
            part_size: self.part_size,
            parts,
        })
    }
}

/// Trusts digests computed while the file was written when they fit its size and the
/// part size this stage uses.
fn prepared_from_digests(
    path: &Path,
    size: u64,
    part_size: u64,
    known: &FileDigests,
) -> Option<Prepared> {
    if known.size != size || known.part_size != part_size {
        return None;
    }
    let parts: Vec<(u64, u64, String)> = known
        .parts
        .iter()
        .enumerate()
        .map(|(i, md5)| {
            let offset = i as u64 * part_size;
            (offset, part_size.min(size - offset), base64_of(md5))
        })
        .collect();
    if parts.len() as u64 != size.div_ceil(part_size) {
        return None;
    }
    Some(Prepared {
        path: path.to_path_buf(),
        size,
        md5_hex: hex::encode(known.md5),
        md5_base64: base64_of(&known.md5),
        one_request: false,
        whole: None,
        parts,
    })
}

/// Hashes the file on a blocking thread, so the read does not hold up the runtime.
pub(super) async fn prepare(
    path: &Path,
    options: &StageOptions,
    known: Option<FileDigests>,
) -> Result<Prepared, Error> {
    let path = path.to_path_buf();
    let options = options.clone();
    tokio::task::spawn_blocking(move || read_and_hash(&path, &options, known.as_ref()))
        .await
        .map_err(|e| Error::Internal(format!("hashing task failed: {e}")))?
}

fn read_and_hash(
    path: &Path,
    options: &StageOptions,
    known: Option<&FileDigests>,
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
        }
        // Streamed in one request: the MD5 is all it needs (checked as it is sent).
        Some(known) if !in_memory => {
            return Ok(Prepared {
                path: path.to_path_buf(),
                size,
                md5_hex: hex::encode(known.md5),
                md5_base64: base64_of(&known.md5),
                one_request: true,
                whole: None,
                parts: Vec::new(),
            })
        }
        _ => {}
    }
    let mut whole_hasher = Md5::new();
    let mut whole = Vec::new();
    let mut offset = 0u64;
    // The parts are hashed on a thread of their own, beside the whole: MD5 is slower
    // than reading a cached file, and the two hashes take one core each.
    let parts = std::thread::scope(|scope| -> Result<Vec<(u64, u64, String)>, Error> {
        let (to_parts, chunks) = std::sync::mpsc::sync_channel::<Bytes>(16);
        let parts_hasher = multipart.then(|| scope.spawn(move || hash_parts(chunks, part_size)));
        loop {
            let mut buffer = Vec::with_capacity(1 << 20);
            let n = (&mut file)
                .take(1 << 20)
                .read_to_end(&mut buffer)
                .map_err(|e| Error::io(what.clone(), e))?;
            if n == 0 {
                break;
            }
            whole_hasher.update(&buffer);
            offset += n as u64;
            if multipart {
                if to_parts.send(Bytes::from(buffer)).is_err() {
                    break; // The parts' thread died: its join says so.
                }
            } else if in_memory {
                whole.extend_from_slice(&buffer);
            }
        }
        drop(to_parts);
        match parts_hasher.map(|hasher| hasher.join()) {
            None => Ok(Vec::new()),
            Some(Ok(parts)) => Ok(parts),
            Some(Err(_)) => Err(Error::Internal("the hashing of the parts failed".into())),
        }
    })?;
    if offset != size {
        return Err(Error::io(
            what,
            std::io::Error::other(format!(
                "the file changed size while read ({size} then {offset} bytes)"
            )),
        ));
    }
    let digest: [u8; 16] = whole_hasher.finalize();
    if let Some(known) = known.filter(|known| known.md5 != digest) {
        return Err(changed(
            "the file",
            hex::encode(known.md5),
            hex::encode(digest),
        ));
    }
    Ok(Prepared {
        path: path.to_path_buf(),
        size,
        md5_hex: hex::encode(digest),
        md5_base64: base64_of(&digest),
        one_request: !multipart,
        whole: in_memory.then(|| Bytes::from(whole)),
        parts,
    })
}

/// (offset, length, Content-MD5) of each `part_size` piece of the chunks, in order.
fn hash_parts(chunks: std::sync::mpsc::Receiver<Bytes>, part_size: u64) -> Vec<(u64, u64, String)> {
    let mut parts = Vec::new();
    let mut hasher = Md5::new();
    let (mut start, mut len) = (0u64, 0u64);
    for chunk in chunks {
        let mut data = &chunk[..];
        while !data.is_empty() {
            let room = (part_size - len) as usize;
            let (now, rest) = data.split_at(room.min(data.len()));
            hasher.update(now);
            len += now.len() as u64;
            if len == part_size {
                parts.push((start, len, base64_of(&hasher.finalize_reset())));
                start += len;
                len = 0;
            }
            data = rest;
        }
    }
    if len > 0 {
        parts.push((start, len, base64_of(&hasher.finalize())));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_while_writing_match_a_second_read() {
        let data: Vec<u8> = (0..(11u32 << 20)).map(|i| (i % 251) as u8).collect();
        let part_size = MIN_PART_SIZE;
        let mut writer = DigestWriter::new(part_size);
        for (i, chunk) in data.chunks(131_072 + 17).enumerate() {
            writer.write((i * (131_072 + 17)) as u64, chunk);
        }
        let digests = writer.finish().unwrap();
        assert_eq!(digests.size, data.len() as u64);
        assert_eq!(digests.md5, Md5::digest(&data));
        assert_eq!(digests.parts.len(), 3);
        for (i, part) in data.chunks(part_size as usize).enumerate() {
            assert_eq!(digests.parts[i], Md5::digest(part));
        }
        // Out of order: unknown. Truncated to zero: starts again.
        writer.write(5, b"x");
        assert!(writer.finish().is_none());
        writer.truncate(0);
        writer.write(0, b"abc");
        assert_eq!(writer.finish().unwrap().md5, Md5::digest(b"abc"));
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
