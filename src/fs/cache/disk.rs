//! The on-disk cache of whole artifacts (`--cache-dir`, `--cache-size`).
//!
//! When a cached mount opens a file, the artifact is fetched whole from the regions that
//! hold it (`Copies::read`: each asked for its own copy's ETag, the next one taking over
//! where one fails) into `{dir}/{entry}.part`; readers are served from that file as soon as the
//! bytes they ask for have arrived, so a cold `cat` runs at the speed of one download.
//! Once complete and verified (its checksum when it carries one, see `crate::checksum`,
//! else its size) the file is renamed `{entry}.data` and a record `{entry}.json` beside
//! it keeps what the mount pinned (size, ETag, metadata...), so a cached version stays
//! readable when every region is down, across restarts too. Entries are evicted least
//! recently used beyond the size limit; an artifact larger than the limit is not cached.
//!
//! What is on disk is never trusted on its own word. The folder is private
//! (`PrivateDir`: `0700`, files `0600`, nothing opened through a link), and before a
//! cached copy is first used in a daemon's life its bytes are checked against the
//! version the mount pinned from the regions: its size, and its checksum (our recorded
//! CRC-64/NVME, the server's CRC, the MD5) or else its multipart ETag. A copy that
//! fails, or that the store gives nothing to check against, is dropped and fetched
//! again, never served. Only when no region answers does the pinned version itself come
//! from the record (that is what lets a cached version outlive the regions); the folder
//! being private is then what keeps the record honest.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::checksum::{Checksum, Running};
use crate::digest::Md5;
use lru::LruCache;
use semver::Version;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::protocol::copies::Copies;
use crate::protocol::Session;

use super::check::matches_store;
use super::error::CacheError;
use crate::fs::error::{FsError, FsResult};
use crate::fs::host::private_dir::{Access, PrivateDir};
use crate::fs::pinned::PinnedVersion;

/// What `{entry}.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    project: String,
    version: String,
    key: String,
    size: u64,
    etag: Option<String>,
    md5: Option<String>,
    /// `crc64nvme:…` (see `Checksum::to_text`); records written before it have none.
    #[serde(default)]
    check: Option<String>,
    mtime_seconds: u64,
    region: String,
    bucket: String,
    metadata: crate::protocol::Metadata,
    /// Records written before it existed have none.
    #[serde(default)]
    metadata_withheld: Option<String>,
    file_name: String,
}

impl Record {
    fn of(pinned: &PinnedVersion) -> Self {
        Record {
            project: pinned.project.clone(),
            version: pinned.version.to_string(),
            key: pinned.copies.key.clone(),
            size: pinned.copies.size,
            etag: pinned.copies.etag.clone(),
            md5: pinned.copies.md5.clone(),
            check: pinned.copies.check.map(|check| check.to_text()),
            mtime_seconds: pinned
                .mtime
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            region: pinned.copies.region.clone(),
            bucket: pinned.copies.bucket.clone(),
            metadata: pinned.metadata.clone(),
            metadata_withheld: pinned.metadata_withheld.clone(),
            file_name: pinned.file_name.clone(),
        }
    }

    /// Whether the record is of the object the mount pinned.
    fn describes(&self, pinned: &PinnedVersion) -> bool {
        let same_bytes = match (&self.md5, &pinned.copies.md5) {
            // One content may carry several ETags: the MD5 says when it is the same.
            (Some(ours), Some(theirs)) => ours == theirs,
            _ => self.etag == pinned.copies.etag,
        };
        let same_check = match (self.check.as_deref(), pinned.copies.check) {
            (Some(ours), Some(theirs)) => Checksum::from_text(ours) == Some(theirs),
            _ => true,
        };
        self.key == pinned.copies.key && self.size == pinned.copies.size && same_bytes && same_check
    }

    fn pinned(&self) -> Option<PinnedVersion> {
        Some(PinnedVersion {
            project: self.project.clone(),
            version: Version::parse(&self.version).ok()?,
            copies: Copies {
                key: self.key.clone(),
                size: self.size,
                etag: self.etag.clone(),
                md5: self.md5.clone(),
                check: self.check.as_deref().and_then(Checksum::from_text),
                region: self.region.clone(),
                bucket: self.bucket.clone(),
                holders: Vec::new(),
                suspects: Default::default(),
            },
            mtime: SystemTime::UNIX_EPOCH + Duration::from_secs(self.mtime_seconds),
            metadata: self.metadata.clone(),
            metadata_withheld: self.metadata_withheld.clone(),
            file_name: self.file_name.clone(),
        })
    }
}

/// How far a fetch into the cache has come.
#[derive(Debug, Clone)]
enum Progress {
    Bytes(u64),
    Done,
    /// Shared by every reader of the entry.
    Failed(Arc<CacheError>),
}

/// One cached artifact, complete or arriving.
pub struct CachedFile {
    file: std::fs::File,
    size: u64,
    progress: watch::Receiver<Progress>,
}

impl CachedFile {
    /// Whether the whole artifact is here and passed its check.
    pub fn is_checked(&self) -> bool {
        matches!(*self.progress.borrow(), Progress::Done)
    }

    /// A descriptor of the cache file for the kernel to read this artifact from
    /// directly (FUSE passthrough), once the whole artifact is here and passed its
    /// check; `None` while it arrives, or failed, so that those reads go through
    /// `read`, which waits for the bytes and for the check.
    ///
    /// The descriptor is of the file's inode, not its name: when the cache later
    /// evicts or replaces the entry, the name goes but the inode and its bytes stay
    /// until the last descriptor on it closes, so a reader already passed through
    /// reads on the same checked bytes to the end (as one served by `read` does).
    pub fn backing(&self) -> Option<std::fs::File> {
        if !self.is_checked() {
            return None;
        }
        match self.file.try_clone() {
            Ok(file) => Some(file),
            Err(e) => {
                tracing::debug!("no passthrough: the cache file's descriptor: {e}");
                None
            }
        }
    }

    /// Reads `size` bytes at `offset`, waiting for them to arrive if need be. The read
    /// that reaches the end of the file also waits for the check of the whole: whoever
    /// reads it all learns of bytes that fail it (EIO) rather than ending well.
    pub async fn read(&self, offset: u64, size: u32) -> FsResult<bytes::Bytes> {
        if offset >= self.size {
            return Ok(bytes::Bytes::new());
        }
        let end = (offset + u64::from(size)).min(self.size);
        let mut progress = self.progress.clone();
        loop {
            match &*progress.borrow_and_update() {
                Progress::Done => break,
                Progress::Bytes(have) if *have >= end && end < self.size => break,
                Progress::Failed(reason) => {
                    return Err(FsError::unavailable(reason.to_string())
                        .with_shared_source(Arc::clone(reason) as _))
                }
                Progress::Bytes(_) => {}
            }
            if progress.changed().await.is_err() {
                return Err(FsError::unavailable("the fetch into the cache stopped"));
            }
        }
        let mut buffer = vec![0u8; (end - offset) as usize];
        self.file
            .read_exact_at(&mut buffer, offset)
            .map_err(|e| FsError::unavailable(format!("reading the cache: {e}")).with_source(e))?;
        Ok(bytes::Bytes::from(buffer))
    }
}

struct Entries {
    /// Complete entries by name, least recently used first, with their sizes.
    lru: LruCache<String, u64>,
    records: HashMap<String, Record>,
    verified: std::collections::HashSet<String>,
    arriving: HashMap<String, Arc<CachedFile>>,
}

pub struct DiskCache {
    dir: Arc<PrivateDir>,
    capacity: u64,
    entries: Mutex<Entries>,
}

fn entry_name(key: &str, content: &str) -> String {
    let mut hasher = Md5::new();
    hasher.update(key.as_bytes());
    hasher.update([0]);
    hasher.update(content.as_bytes());
    hex::encode(hasher.finalize())
}

/// What names the pinned bytes: their MD5 when known (the same whichever region's copy
/// was pinned, whatever its ETag), else the pinned ETag.
fn content_id(pinned: &PinnedVersion) -> String {
    match &pinned.copies.md5 {
        Some(md5) => format!("md5:{md5}"),
        None => pinned.copies.etag.clone().unwrap_or_default(),
    }
}

impl DiskCache {
    /// Opens (creating) the cache folder, refusing one that is not private (see
    /// `PrivateDir`), and reads the records already there (tightening them to `0600`).
    pub fn open(dir: &Path, capacity: u64) -> std::io::Result<DiskCache> {
        let dir = PrivateDir::open(dir)?;
        let mut found: Vec<(SystemTime, String, Record)> = Vec::new();
        for entry in dir.entries()? {
            let Some(name) = entry.name.to_str() else {
                continue;
            };
            // Fetches the daemon did not finish, and records it did not finish writing.
            if name.ends_with(".part") || name.ends_with(".new") {
                let _ = dir.remove_file(name);
                continue;
            }
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            let data = format!("{stem}.data");
            let record = read_record(&dir, name);
            let size = dir
                .open_file(&data, Access::Read)
                .and_then(|file| file.metadata());
            match (record, size) {
                (Some(record), Ok(meta)) if meta.len() == record.size => {
                    found.push((
                        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        stem.to_string(),
                        record,
                    ));
                }
                _ => {
                    let _ = dir.remove_file(name);
                    let _ = dir.remove_file(&data);
                }
            }
        }
        found.sort_by_key(|(time, _, _)| *time);
        let mut entries = Entries {
            lru: LruCache::unbounded(),
            records: HashMap::new(),
            verified: Default::default(),
            arriving: HashMap::new(),
        };
        for (_, name, record) in found {
            entries.lru.put(name.clone(), record.size);
            entries.records.insert(name, record);
        }
        Ok(DiskCache {
            dir: Arc::new(dir),
            capacity,
            entries: Mutex::new(entries),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an artifact of this size may be cached at all.
    pub fn fits(&self, size: u64) -> bool {
        size <= self.capacity
    }

    /// A cached version's pinned view, for when no region can answer.
    pub fn pinned(&self, project: &str, version: &str) -> Option<PinnedVersion> {
        let entries = self.lock();
        entries
            .records
            .values()
            .find(|r| r.project == project && r.version == version)
            .and_then(Record::pinned)
    }

    /// Whether anything of `project` is cached.
    pub fn has_project(&self, project: &str) -> bool {
        self.lock().records.values().any(|r| r.project == project)
    }

    /// The cached file of a pinned version, fetching it first when it is not cached
    /// or when the cached copy fails its check.
    pub async fn open_file(
        self: &Arc<Self>,
        pinned: &Arc<PinnedVersion>,
        session: &Session,
    ) -> FsResult<Arc<CachedFile>> {
        let name = entry_name(&pinned.copies.key, &content_id(pinned));
        let found = {
            let mut entries = self.lock();
            if let Some(arriving) = entries.arriving.get(&name) {
                return Ok(Arc::clone(arriving));
            }
            entries.lru.get(&name).is_some().then(|| {
                (
                    entries.records.get(&name).cloned(),
                    entries.verified.contains(&name),
                )
            })
        };
        if let Some((record, verified)) = found {
            match self.open_complete(&name, pinned, record, verified).await {
                Ok(file) => {
                    self.lock().verified.insert(name);
                    let (_, progress) = watch::channel(Progress::Done);
                    return Ok(Arc::new(CachedFile {
                        file,
                        size: pinned.copies.size,
                        progress,
                    }));
                }
                Err(reason) => {
                    tracing::warn!(key = %pinned.copies.key, "the cached copy failed its check ({reason}): fetching it again");
                    self.forget(&name);
                }
            }
        }
        self.start_fetch(name, pinned, session)
    }

    /// Opens a complete entry, checked against what the mount pinned unless it was
    /// already in this daemon's life. The bytes checked are those of the descriptor
    /// then served.
    async fn open_complete(
        &self,
        name: &str,
        pinned: &Arc<PinnedVersion>,
        record: Option<Record>,
        verified: bool,
    ) -> Result<std::fs::File, CacheError> {
        match record {
            Some(record) if record.describes(pinned) => {}
            Some(_) => return Err(CacheError::RecordOfAnother),
            None => return Err(CacheError::NoRecord),
        }
        let dir = Arc::clone(&self.dir);
        let data = format!("{name}.data");
        let pinned = Arc::clone(pinned);
        tokio::task::spawn_blocking(move || {
            let file = dir
                .open_file(&data, Access::Read)
                .map_err(|source| CacheError::Open {
                    path: dir.path().join(&data),
                    source,
                })?;
            if !verified {
                matches_store(&file, &pinned)?;
            }
            Ok(file)
        })
        .await
        .map_err(|source| CacheError::CheckStopped { source })?
    }

    fn forget(&self, name: &str) {
        let mut entries = self.lock();
        entries.lru.pop(name);
        entries.records.remove(name);
        entries.verified.remove(name);
        for suffix in ["data", "json"] {
            let _ = self.dir.remove_file(format!("{name}.{suffix}"));
        }
    }

    fn start_fetch(
        self: &Arc<Self>,
        name: String,
        pinned: &Arc<PinnedVersion>,
        session: &Session,
    ) -> FsResult<Arc<CachedFile>> {
        let part = format!("{name}.part");
        let mut entries = self.lock();
        // Another open may have started the same fetch since this one looked.
        if let Some(arriving) = entries.arriving.get(&name) {
            return Ok(Arc::clone(arriving));
        }
        let unavailable = |what: &str, e: std::io::Error| {
            FsError::unavailable(format!(
                "{what} {}: {e}",
                self.dir.path().join(&part).display()
            ))
            .with_source(e)
        };
        let writer = self
            .dir
            .create_new(&part)
            .map_err(|e| unavailable("creating", e))?;
        let reader = writer.try_clone().map_err(|e| unavailable("opening", e))?;
        let (sender, progress) = watch::channel(Progress::Bytes(0));
        let cached = Arc::new(CachedFile {
            file: reader,
            size: pinned.copies.size,
            progress,
        });
        entries.arriving.insert(name.clone(), Arc::clone(&cached));
        drop(entries);
        let fetch = Fetch {
            dir: Arc::clone(&self.dir),
            name,
            pinned: Arc::clone(pinned),
            session: session.clone(),
        };
        let cache = Arc::clone(self);
        tokio::spawn(async move {
            match fetch.run(writer, &sender).await {
                Ok(()) => {
                    cache.admit(&fetch.pinned);
                    let _ = sender.send(Progress::Done);
                }
                Err(reason) => {
                    tracing::warn!(key = %fetch.pinned.copies.key, "fetching into the cache failed: {reason}");
                    let _ = fetch.dir.remove_file(format!("{}.part", fetch.name));
                    cache.abandon(&fetch.pinned);
                    let _ = sender.send(Progress::Failed(Arc::new(reason)));
                }
            }
        });
        Ok(cached)
    }

    /// Files a finished fetch: the LRU takes it, and older entries go past the limit.
    fn admit(&self, pinned: &PinnedVersion) {
        let name = entry_name(&pinned.copies.key, &content_id(pinned));
        let mut entries = self.lock();
        entries.arriving.remove(&name);
        if !matches!(self.dir.file_size(format!("{name}.data")), Ok(Some(_))) {
            return;
        }
        entries.lru.put(name.clone(), pinned.copies.size);
        entries.records.insert(name.clone(), Record::of(pinned));
        entries.verified.insert(name);
        let mut total: u64 = entries.lru.iter().map(|(_, size)| *size).sum();
        while total > self.capacity {
            let Some((old, size)) = entries.lru.pop_lru() else {
                break;
            };
            entries.records.remove(&old);
            entries.verified.remove(&old);
            for suffix in ["data", "json"] {
                let _ = self.dir.remove_file(format!("{old}.{suffix}"));
            }
            tracing::debug!("evicted {old} ({size} bytes) from the cache");
            total -= size;
        }
    }

    /// Drops a fetch that failed, so the next open tries again.
    fn abandon(&self, pinned: &PinnedVersion) {
        let name = entry_name(&pinned.copies.key, &content_id(pinned));
        self.lock().arriving.remove(&name);
    }

    /// The bytes cached, for tests and the log.
    pub fn used(&self) -> u64 {
        self.lock().lru.iter().map(|(_, size)| *size).sum()
    }
}

fn read_record(dir: &PrivateDir, name: &str) -> Option<Record> {
    let mut bytes = Vec::new();
    dir.open_file(name, Access::Read)
        .ok()?
        .read_to_end(&mut bytes)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// One whole-artifact fetch into `{name}.part`.
struct Fetch {
    dir: Arc<PrivateDir>,
    name: String,
    pinned: Arc<PinnedVersion>,
    session: Session,
}

impl Fetch {
    async fn run(
        &self,
        mut writer: std::fs::File,
        progress: &watch::Sender<Progress>,
    ) -> Result<(), CacheError> {
        let pinned = &self.pinned;
        let expected = pinned.copies.check;
        let mut running = expected.map(|check| Running::new(check.algorithm()));
        let mut read = pinned.copies.read(&self.session, None);
        while let Some(piece) = read.next().await {
            let piece = piece?;
            writer
                .write_all(&piece.bytes)
                .map_err(|source| CacheError::Write { source })?;
            if let Some(running) = &mut running {
                running.update(&piece.bytes);
            }
            let _ = progress.send(Progress::Bytes(read.position()));
        }
        let served = read.served().to_vec();
        if let (Some(expected), Some(got)) = (expected, running.map(Running::finish)) {
            if expected != got {
                // The next open fetches from the other regions of the majority first.
                pinned.copies.suspects.add(&served);
                return Err(CacheError::Arrived {
                    key: pinned.copies.key.clone(),
                    expected,
                    got,
                    served,
                });
            }
        }
        writer
            .sync_all()
            .map_err(|source| CacheError::Write { source })?;
        let record = serde_json::to_vec(&Record::of(pinned))
            .map_err(|source| CacheError::EncodeRecord { source })?;
        let json = format!("{}.json", self.name);
        self.dir
            .replace(&json, &record)
            .map_err(|source| CacheError::WriteRecord {
                path: self.dir.path().join(&json),
                source,
            })?;
        self.dir
            .rename(format!("{}.part", self.name), format!("{}.data", self.name))
            .and_then(|()| self.dir.sync())
            .map_err(|source| CacheError::File { source })?;
        Ok(())
    }
}
