//! `ArtifactFs`, the filesystem over a `Session`, as the FUSE adapter sees it: its
//! options, the wings it is made of and how it is built. Each sibling module answers
//! one family of calls over them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::protocol::Session;

use super::handles::OpenFiles;
use super::latest_moves::LatestMoves;
use crate::fs::cache::DiskCache;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::inode::Node;
use crate::fs::namespace::{Invalidator, Namespace};
use crate::fs::read::{ReadOptions, ReadShared};
use crate::fs::staging::{Staging, VersionView};
use crate::fs::stat::Ownership;

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

pub struct ArtifactFs {
    pub(super) session: Session,
    pub(super) options: FsOptions,
    pub(super) ownership: Ownership,
    /// What exists, and what the mount keeps of it (see `crate::fs::namespace`).
    pub(in crate::fs) namespace: Namespace,
    pub(super) open_files: OpenFiles,
    pub(super) read_shared: Arc<ReadShared>,
    pub(super) cache: Option<Arc<DiskCache>>,
    pub(super) latest_moves: LatestMoves,
    pub(super) mounted_at: SystemTime,
    /// Staging through the mount (none on a read-only mount).
    pub(super) staging: Option<Arc<Staging>>,
    /// Versions this mount staged: `utimes`/`chmod` that rsync sends after the close
    /// that staged them are accepted (and ignored).
    pub(super) staged_here: Mutex<HashSet<(String, String)>>,
    /// Versions this mount yanked: `rmdir` of their folder (the end of `rm -r`) succeeds.
    pub(super) yanked_here: Mutex<HashSet<(String, String)>>,
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
            namespace: Namespace::new(session.clone(), options.metadata_ttl),
            session,
            options,
            open_files: OpenFiles::default(),
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
        self.namespace.set_cache(Arc::clone(&cache));
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
        self.namespace.set_invalidator(invalidator);
    }

    pub(super) fn node(&self, inode: u64) -> FsResult<Node> {
        self.namespace.node_of(inode)
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
