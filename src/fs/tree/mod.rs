//! `ArtifactFs`, the filesystem over a `Session`: its state and how it is built.
//! Each submodule answers one family of calls; see the module comment of `crate::fs`
//! for the layout and the caching rules.
//!
//! - `namespace`: `lookup`, `readdir`, and the listings and `latest` they keep for
//!   `metadata_ttl`; `missing`: the bounded cache of names found missing;
//! - `bounded`: the bounded, expiring map behind every map users can grow;
//! - `attributes`: the pinned version behind a node, `getattr`, `statfs`;
//! - `latest`: `latest` as a symlink, read and moved (`readlink`, `symlink`,
//!   `rename`, `unlink`);
//! - `open_files`: `open`, `read`, `release` and the table of handles;
//! - `extended_attributes`: `getxattr`, `listxattr`.
//!
//! Writes to staging versions are in `crate::fs::writes`.

mod attributes;
mod bounded;
mod extended_attributes;
mod latest;
mod missing;
mod namespace;
mod open_files;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use semver::Version;

use crate::protocol::Session;

use super::attr::Ownership;
use super::disk_cache::DiskCache;
use super::error::{FsError, FsErrorKind, FsResult};
use super::inode::{InodeTable, Node};
use super::pinned::PinnedVersion;
use super::read::{ReadOptions, ReadShared};
use super::staging::{Staging, VersionView};
use bounded::Bounded;
use missing::MissingNames;

pub use attributes::StatFs;
#[cfg(test)]
pub(super) use latest::PENDING_LINKS;
pub use open_files::Opened;
pub(super) use open_files::{OpenFile, SpooledHandle};

use latest::LatestMoves;
use open_files::OpenFiles;

/// How the mount behaves.
#[derive(Debug, Clone)]
pub struct FsOptions {
    pub read_only: bool,
    pub uid: u32,
    pub gid: u32,
    /// Folders that take changes are writable by this group too (`--stagers`).
    pub stagers: Option<u32>,
    /// How long listings, `latest` and missing names are trusted.
    pub metadata_ttl: Duration,
    /// How long the kernel may keep entries of immutable versions.
    pub immutable_ttl: Duration,
    pub read: ReadOptions,
    /// `rm -r MOUNT/P/V` yanks a staged version from every region.
    pub allow_delete: bool,
    /// Opens of whole, checked cached artifacts offer their cache file, for the kernel
    /// to read directly (FUSE passthrough); off with `--no-passthrough`.
    pub passthrough: bool,
}

/// How long listings, `latest` and names found missing are trusted by default (the
/// mount's `--metadata-ttl`): a version staged elsewhere shows within it.
pub const DEFAULT_METADATA_TTL: Duration = Duration::from_secs(10);

impl Default for FsOptions {
    fn default() -> Self {
        FsOptions {
            read_only: false,
            uid: 0,
            gid: 0,
            stagers: None,
            metadata_ttl: DEFAULT_METADATA_TTL,
            immutable_ttl: Duration::from_secs(24 * 3600),
            read: ReadOptions::default(),
            allow_delete: false,
            passthrough: true,
        }
    }
}

/// Something cached until `at + ttl`.
pub(super) struct Timed<T> {
    at: Instant,
    value: T,
}

/// How many projects' version listings are kept (each for `metadata_ttl`), the least
/// recently used dropped first. Any user can look up as many project names as they
/// like, and each lookup of a missing one lists it (an empty listing, ~300 bytes):
/// unbounded, 200,000 such names grew the daemon by 41 MiB. 256 covers the projects
/// one tool walks within the TTL; the empty listings of missing names then cost under
/// 100 KiB, and real listings (~100 bytes a version) what the store holds.
pub(super) const VERSION_LISTINGS: usize = 256;

/// How many projects' `latest` are kept (each trusted for `metadata_ttl`): only
/// projects that exist have one, each ~400 bytes at the longest name, so ~1.6 MiB.
/// One dropped is read again; the kernel's copy of the symlink lives no longer than
/// the same TTL, so a change it misses is one the TTL already allows.
pub(super) const LATEST_VERSIONS: usize = 4_096;

/// A project's versions as listed, and the folder entries made of them (built at the
/// first `readdir` that needs them, then shared while the listing is fresh).
pub(super) struct VersionListing {
    pub(super) versions: Vec<Version>,
    pub(super) entries: OnceLock<Arc<[crate::fs::attr::DirEntry]>>,
}

/// Called with the inode of a `latest` whose target changed, so the kernel drops it.
pub type Invalidator = Box<dyn Fn(u64) + Send + Sync>;

pub struct ArtifactFs {
    pub(super) session: Session,
    pub(super) options: FsOptions,
    pub(super) ownership: Ownership,
    pub(super) inodes: InodeTable,
    pub(super) pinned: Mutex<HashMap<(String, String), Arc<PinnedVersion>>>,
    /// Names found missing, and when: (project, version), or (project, "") for a project.
    pub(super) missing: MissingNames,
    pub(super) versions: Bounded<String, Arc<VersionListing>>,
    pub(super) latest: Bounded<String, Version>,
    pub(super) projects: Mutex<Option<Timed<Vec<String>>>>,
    pub(super) open_files: OpenFiles,
    read_shared: Arc<ReadShared>,
    pub(super) invalidator: OnceLock<Invalidator>,
    cache: Option<Arc<DiskCache>>,
    latest_moves: LatestMoves,
    pub(super) mounted_at: SystemTime,
    /// Staging through the mount (none on a read-only mount).
    pub(super) staging: Option<Arc<Staging>>,
    /// Versions this mount staged: `utimes`/`chmod` that rsync sends after the close
    /// that staged them are accepted (and ignored).
    pub(super) staged_here: Mutex<HashSet<(String, String)>>,
    /// Versions this mount yanked: `rmdir` of their folder (the end of `rm -r`) succeeds.
    pub(super) yanked_here: Mutex<HashSet<(String, String)>>,
}

/// A version folder name: the canonical form of a semver version, nothing else.
pub(super) fn parse_version_name(name: &str) -> Option<Version> {
    Version::parse(name).ok().filter(|v| v.to_string() == name)
}

impl ArtifactFs {
    pub fn new(session: Session, options: FsOptions) -> Self {
        ArtifactFs {
            ownership: Ownership {
                uid: options.uid,
                gid: options.stagers.unwrap_or(options.gid),
                group_writes: options.stagers.is_some(),
            },
            read_shared: Arc::new(ReadShared::new(options.read.clone())),
            missing: MissingNames::new(options.metadata_ttl),
            versions: Bounded::new(VERSION_LISTINGS, options.metadata_ttl),
            latest: Bounded::new(LATEST_VERSIONS, options.metadata_ttl),
            session,
            options,
            inodes: InodeTable::default(),
            pinned: Mutex::new(HashMap::new()),
            projects: Mutex::new(None),
            open_files: OpenFiles::default(),
            invalidator: OnceLock::new(),
            cache: None,
            latest_moves: LatestMoves::default(),
            mounted_at: SystemTime::now(),
            staging: None,
            staged_here: Mutex::new(HashSet::new()),
            yanked_here: Mutex::new(HashSet::new()),
        }
    }

    /// Takes writes: staging folders and files kept in this spool.
    pub fn with_staging(mut self, staging: Arc<Staging>) -> Self {
        self.staging = Some(staging);
        self
    }

    /// Whether a version is staging in this mount (unpublished), without copying it.
    pub(super) fn is_staging(&self, project: &str, version: &str) -> bool {
        self.staging
            .as_ref()
            .is_some_and(|s| s.is_staging(project, version))
    }

    /// A staging version of this mount, unless published.
    pub(super) fn staging_view(&self, project: &str, version: &str) -> Option<VersionView> {
        self.staging.as_ref()?.view(project, version)
    }

    /// Serves artifacts through an on-disk cache (and cached ones when no region can).
    pub fn with_cache(mut self, cache: Arc<DiskCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Whether an open may ever offer a file to read directly (see `Opened::backing`):
    /// with a disk cache, unless `--no-passthrough`.
    pub fn may_pass_through(&self) -> bool {
        self.options.passthrough && self.cache.is_some()
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn options(&self) -> &FsOptions {
        &self.options
    }

    /// Sets what is told when a `latest` changes (the FUSE adapter's notifier).
    pub fn set_invalidator(&self, invalidator: Invalidator) {
        let _ = self.invalidator.set(invalidator);
    }

    pub(super) fn node(&self, inode: u64) -> FsResult<Node> {
        self.inodes
            .node_of(inode)
            .ok_or_else(|| FsError::not_found(format!("no inode {inode}")))
    }

    /// The errno of any change to what is staged: EROFS on a read-only mount, else
    /// EPERM (staged versions are immutable).
    pub fn refuse_change(&self, what: &str) -> FsError {
        if self.options.read_only {
            FsError::new(
                FsErrorKind::ReadOnly,
                format!("{what}: the mount is read-only"),
            )
        } else {
            FsError::new(
                FsErrorKind::Immutable,
                format!("{what}: staged versions are immutable"),
            )
        }
    }
}
