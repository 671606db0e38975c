//! Hashing the file to stage, once: its MD5, and the layout and Content-MD5 of each
//! multipart part, either read from the file or trusted from digests computed while it
//! was written (`DigestWriter`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::digest::{Beside, Crc64, Md5};
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

/// Bytes hashed in the write path before the hashing moves to a thread beside it.
const HASH_BESIDE_AFTER: u64 = 4 << 20;

/// Writes the hashing thread may be behind (each at most the mount's largest write, 1 MiB).
const WRITES_BEHIND: usize = 8;

/// Hashes a file as it is written front to back: the whole of it, and each piece of
/// `part_size` (the multipart upload's Content-MD5s). A write anywhere but at the end
/// gives up; the stage then reads the file again. Once the file proves large, the
/// hashing runs on a thread beside the writes (MD5 is slower than a write to the spool).
pub struct DigestWriter {
    part_size: u64,
    with_parts: bool,
    multipart_threshold: u64,
    /// Whether some region would take a file of a size in parts (`with_parts_rule`).
    parts_rule: Option<PartsRule>,
    /// Cleared once the file's size is one no region takes in parts: the parts are
    /// then no longer hashed (read by the hashes, wherever they run).
    parts_wanted: Arc<AtomicBool>,
    /// The size at which the rule is asked next.
    next_check: u64,
    size: u64,
    broken: bool,
    hashing: Hashing,
}

/// Whether some region would take a file of a given size in parts.
pub type PartsRule = Arc<dyn Fn(u64) -> bool + Send + Sync>;

/// How often, in bytes written, the parts rule is asked again as the file grows.
const PARTS_CHECK_EVERY: u64 = 16 << 20;

enum Hashing {
    Here(Box<Hashes>),
    Beside(Beside<Hashes>),
    /// Given up (see `DigestWriter::broken`), or between the two above.
    Gone,
}

impl DigestWriter {
    /// Parts are hashed as the file is written when `multipart_threshold` is at most
    /// `IN_MEMORY_LIMIT` (the usual case: large files go in parts). A higher threshold
    /// asks for large files in one request, which needs only the whole file's digests;
    /// a file that grows past it anyway has its parts hashed by the stage.
    pub fn new(part_size: u64, multipart_threshold: u64) -> Self {
        let part_size = part_size.max(1);
        let with_parts = multipart_threshold <= IN_MEMORY_LIMIT;
        let parts_wanted = Arc::new(AtomicBool::new(true));
        DigestWriter {
            part_size,
            with_parts,
            multipart_threshold,
            parts_rule: None,
            next_check: 0,
            size: 0,
            broken: false,
            hashing: Hashing::Here(Box::new(Hashes::new(
                part_size,
                with_parts,
                Arc::clone(&parts_wanted),
            ))),
            parts_wanted,
        }
    }

    /// Stops hashing the parts once the file is above the threshold and `rule` says no
    /// region takes a file of its size in parts (asked every 16 MiB as it grows). A
    /// file that then grows to a size some region takes in parts has them hashed by
    /// the stage, from the file.
    pub fn with_parts_rule(mut self, rule: Option<PartsRule>) -> Self {
        self.parts_rule = rule;
        self
    }

    /// Asks the parts rule, when it is due, whether the parts are still wanted.
    fn check_parts(&mut self) {
        let Some(rule) = &self.parts_rule else {
            return;
        };
        if !self.with_parts
            || self.size <= self.multipart_threshold
            || self.size < self.next_check
            || !self.parts_wanted.load(Ordering::Relaxed)
        {
            return;
        }
        self.next_check = self.size.saturating_add(PARTS_CHECK_EVERY);
        if !rule(self.size) {
            tracing::debug!(
                size = self.size,
                "no region takes a file of this size in parts: its parts are not hashed"
            );
            self.parts_wanted.store(false, Ordering::Relaxed);
        }
    }

    /// Takes the bytes written at `offset`.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if self.broken {
            return;
        }
        if offset != self.size {
            self.broken = true;
            return;
        }
        self.size += data.len() as u64;
        self.check_parts();
        match &mut self.hashing {
            Hashing::Here(hashes) => {
                hashes.update(data);
                if self.size >= HASH_BESIDE_AFTER {
                    self.hashing = match std::mem::replace(&mut self.hashing, Hashing::Gone) {
                        Hashing::Here(hashes) => {
                            Beside::spawn("stage-hash", *hashes, WRITES_BEHIND, Hashes::update)
                                .map_or(Hashing::Gone, Hashing::Beside)
                        }
                        other => other,
                    };
                }
            }
            Hashing::Beside(beside) => {
                if !beside.send(Bytes::copy_from_slice(data)) {
                    self.broken = true;
                }
            }
            Hashing::Gone => self.broken = true,
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
            let rule = self.parts_rule.take();
            *self =
                DigestWriter::new(self.part_size, self.multipart_threshold).with_parts_rule(rule);
        } else if size != self.size {
            self.broken = true;
        }
    }

    /// The digests, unless a write out of order made them unknown. Waits for the
    /// thread beside, if any, to hash what it was sent.
    pub fn finish(&mut self) -> Option<FileDigests> {
        if self.broken {
            return None;
        }
        self.hashing = match std::mem::replace(&mut self.hashing, Hashing::Gone) {
            Hashing::Beside(beside) => beside
                .finish()
                .map_or(Hashing::Gone, |hashes| Hashing::Here(Box::new(hashes))),
            other => other,
        };
        let Hashing::Here(hashes) = &self.hashing else {
            self.broken = true;
            return None;
        };
        Some(FileDigests {
            size: self.size,
            md5: hashes.whole.clone().finalize(),
            crc64: hashes.crc.finalize(),
            part_size: self.part_size,
            parts: hashes
                .parts
                .as_ref()
                .map(PartHashes::finish)
                .unwrap_or_default(),
        })
    }
}

/// The running hashes of a file written from its start.
struct Hashes {
    whole: Md5,
    crc: Crc64,
    parts: Option<PartHashes>,
    parts_wanted: Arc<AtomicBool>,
}

impl Hashes {
    fn new(part_size: u64, with_parts: bool, parts_wanted: Arc<AtomicBool>) -> Self {
        Hashes {
            whole: Md5::new(),
            crc: Crc64::new(),
            parts: with_parts.then(|| PartHashes::new(part_size)),
            parts_wanted,
        }
    }

    fn update(&mut self, data: &[u8]) {
        self.whole.update(data);
        self.crc.update(data);
        if self.parts.is_some() && !self.parts_wanted.load(Ordering::Relaxed) {
            self.parts = None;
        }
        if let Some(parts) = self.parts.as_mut() {
            parts.update(data);
        }
    }
}

/// The MD5 and CRC of each `part_size` piece of the bytes, taken in order.
struct PartHashes {
    part_size: u64,
    md5: Md5,
    crc: Crc64,
    len: u64,
    done: Vec<([u8; 16], u64)>,
}

impl PartHashes {
    fn new(part_size: u64) -> Self {
        PartHashes {
            part_size,
            md5: Md5::new(),
            crc: Crc64::new(),
            len: 0,
            done: Vec::new(),
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = (self.part_size - self.len) as usize;
            let (now, rest) = data.split_at(room.min(data.len()));
            self.md5.update(now);
            self.crc.update(now);
            self.len += now.len() as u64;
            if self.len == self.part_size {
                self.done
                    .push((self.md5.finalize_reset(), self.crc.finalize()));
                self.crc = Crc64::new();
                self.len = 0;
            }
            data = rest;
        }
    }

    /// Every part's digests so far, the last one shorter.
    fn finish(&self) -> Vec<([u8; 16], u64)> {
        let mut done = self.done.clone();
        if self.len > 0 {
            done.push((self.md5.clone().finalize(), self.crc.finalize()));
        }
        done
    }
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
fn prepared_from_digests(
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
                return Ok(Prepared {
                    path: path.to_path_buf(),
                    size,
                    md5_hex: hex::encode(known.md5),
                    md5_base64: base64_of(&known.md5),
                    crc64: known.crc64,
                    one_request: false,
                    whole: None,
                    parts: Vec::new(),
                });
            }
        }
        // Streamed in one request: the MD5 is all it needs (checked as it is sent).
        Some(known) if !in_memory => {
            return Ok(Prepared {
                path: path.to_path_buf(),
                size,
                md5_hex: hex::encode(known.md5),
                md5_base64: base64_of(&known.md5),
                crc64: known.crc64,
                one_request: true,
                whole: None,
                parts: Vec::new(),
            })
        }
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
    fn digests_while_writing_match_a_second_read() {
        let data: Vec<u8> = (0..(11u32 << 20)).map(|i| (i % 251) as u8).collect();
        let part_size = MIN_PART_SIZE;
        let mut writer = DigestWriter::new(part_size, 8 << 20);
        for (i, chunk) in data.chunks(131_072 + 17).enumerate() {
            writer.write((i * (131_072 + 17)) as u64, chunk);
        }
        // Past HASH_BESIDE_AFTER: the hashing ran on a thread of its own.
        assert!(matches!(writer.hashing, Hashing::Beside(_)));
        let digests = writer.finish().unwrap();
        assert_eq!(digests.size, data.len() as u64);
        assert_eq!(digests.md5, Md5::digest(&data));
        assert_eq!(digests.crc64, Crc64::of(&data));
        assert_eq!(digests.parts.len(), 3);
        for (i, part) in data.chunks(part_size as usize).enumerate() {
            assert_eq!(digests.parts[i], (Md5::digest(part), Crc64::of(part)));
        }
        // Finished twice, or written on after: the same digests as one pass.
        assert_eq!(writer.finish().unwrap(), digests);
        writer.write(data.len() as u64, b"more");
        let mut longer = data.clone();
        longer.extend_from_slice(b"more");
        assert_eq!(writer.finish().unwrap().md5, Md5::digest(&longer));
        // Out of order: unknown. Truncated to zero: starts again.
        writer.write(5, b"x");
        assert!(writer.finish().is_none());
        writer.truncate(0);
        writer.write(0, b"abc");
        assert_eq!(writer.finish().unwrap().md5, Md5::digest(b"abc"));
    }

    #[test]
    fn with_a_threshold_above_the_memory_limit_parts_are_left_to_the_stage() {
        let data: Vec<u8> = (0..(6u32 << 20)).map(|i| (i % 253) as u8).collect();
        let mut writer = DigestWriter::new(MIN_PART_SIZE, 5 << 30);
        writer.write(0, &data);
        let digests = writer.finish().unwrap();
        assert_eq!(digests.md5, Md5::digest(&data));
        assert!(digests.parts.is_empty());
        // Staged in parts anyway (a lower threshold at the stage): the parts are not
        // trusted from the writer, they are hashed from the file.
        assert!(
            prepared_from_digests(Path::new("f"), data.len() as u64, MIN_PART_SIZE, &digests)
                .is_none()
        );
    }

    #[test]
    fn parts_stop_being_hashed_once_no_region_takes_the_size_in_parts() {
        // Regions that take files under 40 MiB in parts, larger ones in one request.
        let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let rule: PartsRule = {
            let asked = Arc::clone(&asked);
            Arc::new(move |size| {
                asked.lock().unwrap().push(size);
                size < (40 << 20)
            })
        };
        let write = |size: u64, rule: Option<PartsRule>| {
            let data: Vec<u8> = (0..size).map(|i| (i % 241) as u8).collect();
            let mut writer = DigestWriter::new(MIN_PART_SIZE, 16 << 20).with_parts_rule(rule);
            for (i, chunk) in data.chunks(1 << 20).enumerate() {
                writer.write((i as u64) << 20, chunk);
            }
            (writer.finish().unwrap(), data)
        };
        // 30 MiB: taken in parts, so they are hashed.
        let (digests, data) = write(30 << 20, Some(Arc::clone(&rule)));
        assert_eq!(digests.parts.len(), 6);
        assert_eq!(digests.md5, Md5::digest(&data));
        // Asked above the threshold only, then every 16 MiB.
        assert_eq!(*asked.lock().unwrap(), vec![17 << 20]);
        // 64 MiB: no region takes it in parts from 40 MiB on: the parts are dropped,
        // the whole file's digests stay right, and the rule is not asked again.
        asked.lock().unwrap().clear();
        let (digests, data) = write(64 << 20, Some(rule));
        assert!(digests.parts.is_empty());
        assert_eq!(digests.md5, Md5::digest(&data));
        assert_eq!(digests.crc64, Crc64::of(&data));
        assert_eq!(*asked.lock().unwrap(), vec![17 << 20, 33 << 20, 49 << 20]);
        // So the stage reads the file again for them if a region wants them after all.
        assert!(
            prepared_from_digests(Path::new("f"), data.len() as u64, MIN_PART_SIZE, &digests)
                .is_none()
        );
        // Without a rule, parts are always hashed.
        assert_eq!(write(64 << 20, None).0.parts.len(), 13);
    }

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
