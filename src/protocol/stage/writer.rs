//! Hashing a file as it is written through the mount (`DigestWriter`), so that its
//! stage need not read it again: the whole file's MD5 and CRC, and each part's while
//! some region may take the file in parts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::digest::{Beside, Crc64, Md5};

use super::digests::{FileDigests, IN_MEMORY_LIMIT};
use crate::digest::PartHashes;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::stage::digests::{prepared_from_digests, MIN_PART_SIZE};
    use std::path::Path;

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
}
