//! The parts of a file staged in parts, read from disk once and shared by every region.
//!
//! Every region uploads the same parts, at about the same pace. A part read for one
//! region is handed to the others while any region still holds it (its upload is in
//! flight) or while it is among the last few parts read. A region that falls further
//! behind reads its part again, so one slow region costs a second read, never unbounded
//! memory. Each read is checked against the Content-MD5 the part was planned with: a
//! file changed behind the stager's back fails the part, whatever the server checks.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use crate::digest::Md5;
use bytes::Bytes;

use crate::storage::StorageError;

use super::digests::base64_of;

/// One part's bytes, shared: `Bytes` over it keep it alive, the cache only watches it.
struct Shared(Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[derive(Default)]
struct Kept {
    /// Parts some region still holds, by index.
    alive: HashMap<usize, Weak<Vec<u8>>>,
    /// The last parts read, kept for regions a little behind.
    recent: VecDeque<(usize, Arc<Vec<u8>>)>,
    /// How many times a part was read from disk.
    reads: usize,
}

pub(super) struct SharedParts {
    path: PathBuf,
    /// (offset, length, Content-MD5) of each part.
    layout: Vec<(u64, u64, String)>,
    /// One lock per part: regions asking for one part at once wait for a single read.
    reading: Vec<tokio::sync::Mutex<()>>,
    kept: Mutex<Kept>,
    /// How many of the last parts read are kept when no region holds them.
    window: usize,
}

impl SharedParts {
    pub(super) fn new(path: &Path, layout: &[(u64, u64, String)], window: usize) -> Self {
        SharedParts {
            path: path.to_path_buf(),
            layout: layout.to_vec(),
            reading: layout.iter().map(|_| tokio::sync::Mutex::new(())).collect(),
            kept: Mutex::new(Kept::default()),
            window,
        }
    }

    /// The parts, as (index, part number, length, Content-MD5).
    pub(super) fn numbered(&self) -> Vec<(usize, i32, u64, String)> {
        self.layout
            .iter()
            .enumerate()
            .map(|(index, (_, length, md5))| (index, index as i32 + 1, *length, md5.clone()))
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
        let (offset, length, md5) = self
            .layout
            .get(index)
            .ok_or_else(|| StorageError::Other(format!("no part {index} was planned")))?;
        let _reading = self.reading[index].lock().await;
        if let Some(bytes) = self.cached(index) {
            return Ok(bytes);
        }
        let part = Arc::new(read_part(&self.path, *offset, *length, md5).await?);
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
}

/// Reads one part and checks it against the Content-MD5 it was planned with (taken
/// while the file was written, or when it was hashed).
async fn read_part(
    path: &Path,
    offset: u64,
    length: u64,
    md5: &str,
) -> Result<Vec<u8>, StorageError> {
    let (path, md5) = (path.to_path_buf(), md5.to_string());
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let failed = |e: std::io::Error| StorageError::Other(format!("reading {}: {e}", path.display()));
        let file = std::fs::File::open(&path).map_err(failed)?;
        let mut body = vec![0u8; length as usize];
        file.read_exact_at(&mut body, offset).map_err(failed)?;
        let read = base64_of(&Md5::digest(&body));
        if read != md5 {
            return Err(StorageError::Other(format!(
                "{}: the part at {offset} changed since it was hashed (Content-MD5 {md5}, now {read}); not staged",
                path.display()
            )));
        }
        Ok(body)
    })
    .await
    .map_err(|e| StorageError::Other(format!("read task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout_of(data: &[u8], part: usize) -> Vec<(u64, u64, String)> {
        data.chunks(part)
            .enumerate()
            .map(|(i, chunk)| {
                let md5 = base64_of(&Md5::digest(chunk));
                ((i * part) as u64, chunk.len() as u64, md5)
            })
            .collect()
    }

    #[tokio::test]
    async fn regions_asking_for_a_part_together_share_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let parts = SharedParts::new(&path, &layout_of(&data, 30_000), 1);

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
        let parts = SharedParts::new(&path, &layout_of(&data, 20_000), 2);
        let mut changed = data.clone();
        changed[20_001] = 8;
        std::fs::write(&path, &changed).unwrap();
        assert!(parts.get(0).await.is_ok());
        let err = parts.get(1).await.unwrap_err().to_string();
        assert!(err.contains("changed since it was hashed"), "{err}");
    }
}
