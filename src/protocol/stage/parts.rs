//! The parts of a file staged in parts, read from disk once and shared by every region.
//!
//! Every region uploads the same parts, at about the same pace. A part read for one
//! region is handed to the others while any region still holds it (its upload is in
//! flight) or while it is among the last few parts read. A region that falls further
//! behind reads its part again, so one slow region costs a second read, never unbounded
//! memory. The parts in memory share one budget (`StageOptions::memory_budget`), so it
//! holds whatever the part size: when it is spent, the parts kept only for regions
//! behind give way, then a read waits for an upload to finish. Each read is checked
//! against the CRC taken with the part's Content-MD5: a file changed behind the
//! stager's back fails the part, whatever the server checks.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use crate::digest::Crc64;
use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::storage::{ErrorKind, PartChecks, StorageError};

use super::digests::PlannedPart;

/// One part's bytes, and the share of the memory budget they hold until dropped.
struct Part {
    bytes: Vec<u8>,
    _budget: OwnedSemaphorePermit,
}

/// A part, shared: `Bytes` over it keep it alive, the cache only watches it.
struct Shared(Arc<Part>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0.bytes
    }
}

/// The budget is counted in permits of this many bytes.
const BUDGET_UNIT: u64 = 1 << 20;

#[derive(Default)]
struct Kept {
    /// Parts some region still holds, by index.
    alive: HashMap<usize, Weak<Part>>,
    /// The last parts read, kept for regions a little behind.
    recent: VecDeque<(usize, Arc<Part>)>,
    /// How many times a part was read from disk.
    reads: usize,
}

pub(super) struct SharedParts {
    path: PathBuf,
    layout: Vec<PlannedPart>,
    /// One lock per part: regions asking for one part at once wait for a single read.
    reading: Vec<tokio::sync::Mutex<()>>,
    kept: Mutex<Kept>,
    /// How many of the last parts read are kept when no region holds them.
    window: usize,
    /// Bytes of parts in memory, in `BUDGET_UNIT`s.
    budget: Arc<Semaphore>,
    budget_units: u32,
}

impl SharedParts {
    /// `budget`: bytes of parts that may be in memory at once (at least one part's
    /// worth is always allowed, however large the part).
    pub(super) fn new(path: &Path, layout: &[PlannedPart], window: usize, budget: u64) -> Self {
        let budget_units = (budget / BUDGET_UNIT).clamp(1, u32::MAX as u64 >> 4) as u32;
        SharedParts {
            path: path.to_path_buf(),
            layout: layout.to_vec(),
            reading: layout.iter().map(|_| tokio::sync::Mutex::new(())).collect(),
            kept: Mutex::new(Kept::default()),
            window,
            budget: Arc::new(Semaphore::new(budget_units as usize)),
            budget_units,
        }
    }

    /// The parts, as (index, part number, length, checks: the Content-MD5 and CRC each
    /// was hashed with).
    pub(super) fn numbered(&self) -> Vec<(usize, i32, u64, PartChecks)> {
        self.layout
            .iter()
            .enumerate()
            .map(|(index, part)| {
                let checks = PartChecks {
                    content_md5: part.md5.clone(),
                    crc64: Some(part.crc64),
                };
                (index, index as i32 + 1, part.length, checks)
            })
            .collect()
    }

    /// How many times a part was read from disk (for tests and the stage's log).
    pub(super) fn reads(&self) -> usize {
        self.kept().reads
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached(&self, index: usize) -> Option<Bytes> {
        let kept = self.kept();
        let part = kept.alive.get(&index)?.upgrade()?;
        Some(Bytes::from_owner(Shared(part)))
    }

    /// The bytes of part `index`, read from disk unless another region has them.
    pub(super) async fn get(&self, index: usize) -> Result<Bytes, StorageError> {
        let planned = self
            .layout
            .get(index)
            .ok_or_else(|| StorageError::other(format!("no part {index} was planned")))?;
        let _reading = self.reading[index].lock().await;
        if let Some(bytes) = self.cached(index) {
            return Ok(bytes);
        }
        let budget = self.reserve(planned.length).await?;
        let bytes = read_part(&self.path, planned).await?;
        let part = Arc::new(Part {
            bytes,
            _budget: budget,
        });
        let mut kept = self.kept();
        kept.reads += 1;
        kept.alive.retain(|_, part| part.strong_count() > 0);
        kept.alive.insert(index, Arc::downgrade(&part));
        kept.recent.push_back((index, Arc::clone(&part)));
        while kept.recent.len() > self.window {
            kept.recent.pop_front();
        }
        Ok(Bytes::from_owner(Shared(part)))
    }

    /// The budget for a part of `length` bytes: parts kept only for regions behind give
    /// way first; then it waits for uploads in flight to drop theirs.
    async fn reserve(&self, length: u64) -> Result<OwnedSemaphorePermit, StorageError> {
        let units = (length.div_ceil(BUDGET_UNIT) as u32).clamp(1, self.budget_units);
        loop {
            match Arc::clone(&self.budget).try_acquire_many_owned(units) {
                Ok(permit) => return Ok(permit),
                Err(TryAcquireError::NoPermits) if self.kept().recent.pop_front().is_some() => {}
                Err(_) => break,
            }
        }
        Arc::clone(&self.budget)
            .acquire_many_owned(units)
            .await
            .map_err(|e| StorageError::other("staging memory budget").with_source(e))
    }

    /// How many bytes of the budget are in use (for tests).
    #[cfg(test)]
    fn budget_in_use(&self) -> u64 {
        (self.budget_units as u64 - self.budget.available_permits() as u64) * BUDGET_UNIT
    }
}

/// Reads one part and checks it against the CRC taken with its Content-MD5 (while the
/// file was written, or when it was hashed).
async fn read_part(path: &Path, planned: &PlannedPart) -> Result<Vec<u8>, StorageError> {
    let (path, planned) = (path.to_path_buf(), planned.clone());
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let failed = |e: std::io::Error| StorageError::new(ErrorKind::Io, format!("reading {}", path.display())).with_source(e);
        let file = std::fs::File::open(&path).map_err(failed)?;
        let mut body = vec![0u8; planned.length as usize];
        file.read_exact_at(&mut body, planned.offset).map_err(failed)?;
        let read = Crc64::of(&body);
        if read != planned.crc64 {
            return Err(StorageError::other(format!(
                "{}: the part at {} changed since it was hashed (Content-MD5 {}; CRC-64 {:016x}, now {read:016x}); not staged",
                path.display(),
                planned.offset,
                planned.md5,
                planned.crc64,
            )));
        }
        Ok(body)
    })
    .await
    .map_err(|e| StorageError::other("read task failed").with_source(e))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout_of(data: &[u8], part: usize) -> Vec<PlannedPart> {
        data.chunks(part)
            .enumerate()
            .map(|(i, chunk)| PlannedPart {
                offset: (i * part) as u64,
                length: chunk.len() as u64,
                md5: super::super::digests::base64_of(&crate::digest::Md5::digest(chunk)),
                crc64: Crc64::of(chunk),
            })
            .collect()
    }

    #[tokio::test]
    async fn regions_asking_for_a_part_together_share_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let parts = SharedParts::new(&path, &layout_of(&data, 30_000), 1, 64 << 20);

        // Three regions at once: one read per part.
        for index in 0..4 {
            let got = futures::future::join_all((0..3).map(|_| parts.get(index))).await;
            for bytes in got {
                let bytes = bytes.unwrap();
                let start = index * 30_000;
                assert_eq!(&bytes[..], &data[start..(start + 30_000).min(data.len())]);
            }
        }
        assert_eq!(parts.reads(), 4);

        // Held by one region: shared. Out of the window and held by none: read again.
        let held = parts.get(0).await.unwrap();
        assert_eq!(parts.reads(), 5);
        let _ = parts.get(1).await.unwrap();
        assert_eq!(parts.get(0).await.unwrap(), held);
        assert_eq!(parts.reads(), 6, "part 0 was held, part 1 was read");
        drop(held);
        let _ = parts.get(2).await.unwrap();
        let _ = parts.get(0).await.unwrap();
        assert_eq!(
            parts.reads(),
            8,
            "part 0 was held by none and out of the window"
        );
    }

    #[tokio::test]
    async fn a_part_changed_since_it_was_hashed_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let data = vec![7u8; 50_000];
        std::fs::write(&path, &data).unwrap();
        let parts = SharedParts::new(&path, &layout_of(&data, 20_000), 2, 64 << 20);
        let mut changed = data.clone();
        changed[20_001] = 8;
        std::fs::write(&path, &changed).unwrap();
        assert!(parts.get(0).await.is_ok());
        let err = parts.get(1).await.unwrap_err().to_string();
        assert!(err.contains("changed since it was hashed"), "{err}");
    }

    #[tokio::test]
    async fn parts_in_memory_stay_within_the_budget_whatever_their_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let part = 3 << 20;
        let data: Vec<u8> = (0..(4 * part) as u32).map(|i| (i % 249) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        // Room for two 3 MiB parts; a window of three.
        let parts = SharedParts::new(&path, &layout_of(&data, part), 3, 6 << 20);
        let first = parts.get(0).await.unwrap();
        let second = parts.get(1).await.unwrap();
        assert_eq!(parts.budget_in_use(), 6 << 20);
        // Both held: a third waits until one is dropped.
        let third = tokio::time::timeout(std::time::Duration::from_millis(200), parts.get(2)).await;
        assert!(third.is_err(), "a third part was read beyond the budget");
        drop(first);
        // Part 0 is still kept for regions behind; it gives way to part 2.
        let third = parts.get(2).await.unwrap();
        assert_eq!(&third[..], &data[2 * part..3 * part]);
        assert_eq!(parts.budget_in_use(), 6 << 20);
        drop((second, third));

        // A part larger than the whole budget is still read, alone.
        let parts = SharedParts::new(&path, &layout_of(&data, 2 * part), 1, 1 << 20);
        let big = parts.get(0).await.unwrap();
        assert_eq!(big.len(), 2 * part);
        assert_eq!(parts.budget_in_use(), 1 << 20);
    }
}
