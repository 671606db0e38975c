//! The namespace wing: what the regions say exists, and what this mount keeps of it.
//! It owns the inode numbers, the project and version listings, what `latest` points
//! at, the pinned versions and the names found missing, each kept as the module
//! comment of `crate::fs` says (listings, `latest` and missing names for
//! `metadata_ttl`, in bounded maps; pinned versions for the life of the mount).
//!
//! Nobody else touches these caches: the calls ask through methods, and the write side
//! tells it what changed (`staged`, `yanked`, `project_made`, ...), so that each rule
//! of forgetting is written once, here.

mod missing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use semver::Version;

use crate::protocol::{list_projects, read_latest, Session};

use super::bounded::Bounded;
use super::cache::DiskCache;
use super::error::{FsError, FsErrorKind, FsResult};
use super::inode::{InodeTable, Node};
use super::pinned::PinnedVersion;
use super::stat::DirEntry;
use super::sync::lock;
use super::xattr;
use missing::MissingNames;

/// How many projects' version listings are kept (each for `metadata_ttl`), the least
/// recently used dropped first. Any user can look up as many project names as they
/// like, and each lookup of a missing one lists it (an empty listing, ~300 bytes):
/// unbounded, 200,000 such names grew the daemon by 41 MiB. 256 covers the projects
/// one tool walks within the TTL; the empty listings of missing names then cost under
/// 100 KiB, and real listings (~100 bytes a version) what the store holds.
pub const VERSION_LISTINGS: usize = 256;

/// How many projects' `latest` are kept (each trusted for `metadata_ttl`): only
/// projects that exist have one, each ~400 bytes at the longest name, so ~1.6 MiB.
/// One dropped is read again; the kernel keeps the name `latest` no longer than what
/// was left of the TTL when it was told (each target is a symlink of its own, see
/// `Node::Latest`), so a change it misses is one the TTL already allows.
pub const LATEST_VERSIONS: usize = 4_096;

/// Called with a folder's inode and a name in it that the kernel must forget at once
/// (`latest` of a project, when this mount learns that it moved).
pub type Invalidator = Box<dyn Fn(u64, &str) + Send + Sync>;

/// A project's versions as listed, and the folder entries made of them (built at the
/// first `readdir` that needs them, then shared while the listing is fresh and
/// `latest` points at the same version).
pub struct VersionListing {
    pub versions: Vec<Version>,
    entries: Mutex<Option<(u64, Arc<[DirEntry]>)>>,
}

impl VersionListing {
    fn new(versions: Vec<Version>) -> Self {
        VersionListing {
            versions,
            entries: Mutex::new(None),
        }
    }

    /// The folder entries, `latest` as inode `latest`: those built before for the same
    /// inode, else `build`'s.
    pub fn entries(&self, latest: u64, build: impl FnOnce() -> Arc<[DirEntry]>) -> Arc<[DirEntry]> {
        let mut kept = lock(&self.entries);
        match kept.as_ref() {
            Some((inode, entries)) if *inode == latest => Arc::clone(entries),
            _ => {
                let entries = build();
                *kept = Some((latest, Arc::clone(&entries)));
                entries
            }
        }
    }
}

/// Something cached since `at`.
struct Timed<T> {
    at: Instant,
    value: T,
}

/// A version folder name: the canonical form of a semver version, nothing else.
pub fn parse_version_name(name: &str) -> Option<Version> {
    Version::parse(name).ok().filter(|v| v.to_string() == name)
}

pub struct Namespace {
    session: Session,
    ttl: Duration,
    inodes: InodeTable,
    pinned: Mutex<HashMap<(String, String), Arc<PinnedVersion>>>,
    /// Names found missing, and when: (project, version), or (project, "") for a project.
    missing: MissingNames,
    versions: Bounded<String, Arc<VersionListing>>,
    latest: Bounded<String, Version>,
    projects: Mutex<Option<Timed<Vec<String>>>>,
    invalidator: OnceLock<Invalidator>,
    /// Where pinned versions and projects are found when no region answers.
    cache: Option<Arc<DiskCache>>,
}

impl Namespace {
    /// What `session`'s regions hold, each listing, `latest` and missing name trusted
    /// for `ttl`.
    pub fn new(session: Session, ttl: Duration) -> Self {
        Namespace {
            session,
            ttl,
            inodes: InodeTable::default(),
            pinned: Mutex::new(HashMap::new()),
            missing: MissingNames::new(ttl),
            versions: Bounded::new(VERSION_LISTINGS, ttl),
            latest: Bounded::new(LATEST_VERSIONS, ttl),
            projects: Mutex::new(None),
            invalidator: OnceLock::new(),
            cache: None,
        }
    }

    /// Answers from this on-disk cache what no region can.
    pub fn set_cache(&mut self, cache: Arc<DiskCache>) {
        self.cache = Some(cache);
    }

    /// Sets what is told when a `latest` changes (the FUSE adapter's notifier).
    pub fn set_invalidator(&self, invalidator: Invalidator) {
        let _ = self.invalidator.set(invalidator);
    }

    // ---- inodes ----

    /// The inode of a node, given at first sight.
    pub fn inode_of(&self, node: &Node) -> u64 {
        self.inodes.inode_of(node)
    }

    pub fn node_of(&self, inode: u64) -> FsResult<Node> {
        self.inodes
            .node_of(inode)
            .ok_or_else(|| FsError::not_found(format!("no inode {inode}")))
    }

    /// A node gone for good: its number reads as ENOENT from now on.
    pub fn forget_node(&self, node: &Node) {
        self.inodes.forget(node);
    }

    /// How many inodes are handed out.
    pub fn inodes(&self) -> usize {
        self.inodes.len()
    }

    // ---- projects ----

    /// The projects the regions list, kept for the TTL.
    pub async fn projects(&self) -> FsResult<Vec<String>> {
        if let Some(cached) = lock(&self.projects).as_ref().filter(|c| self.fresh(c)) {
            return Ok(cached.value.clone());
        }
        let listing = list_projects(&self.session).await?;
        if !listing.failures.is_empty() {
            tracing::debug!(
                "project listing incomplete: {}",
                listing.failures.join("; ")
            );
        }
        *lock(&self.projects) = Some(Timed {
            at: Instant::now(),
            value: listing.projects.clone(),
        });
        Ok(listing.projects)
    }

    /// Whether the project is in a listing still fresh.
    pub fn listed(&self, project: &str) -> bool {
        lock(&self.projects)
            .as_ref()
            .is_some_and(|c| self.fresh(c) && c.value.iter().any(|p| p == project))
    }

    /// Whether a project exists in the regions (or, when none answers, in the cache);
    /// a project found missing is trusted missing for the TTL.
    pub async fn project_found(&self, project: &str) -> FsResult<()> {
        let missing_key = (project.to_string(), String::new());
        if self.missing.recently(&missing_key) {
            return Err(FsError::not_found(format!("no project {project}")));
        }
        let found = self.ask_project(project).await;
        if found
            .as_ref()
            .is_err_and(|e| e.kind == FsErrorKind::NotFound)
        {
            self.missing.found(missing_key);
        }
        found
    }

    async fn ask_project(&self, project: &str) -> FsResult<()> {
        match self.latest_of(project).await {
            Ok(_) => Ok(()),
            Err(e)
                if e.kind == FsErrorKind::Unavailable
                    && self.cache.as_ref().is_some_and(|c| c.has_project(project)) =>
            {
                tracing::warn!("{e}: showing {project} from the cache");
                Ok(())
            }
            Err(e) if e.kind == FsErrorKind::NotFound => {
                // Staged by a tool that never moved `latest`? Its versions still count.
                if self
                    .versions_of(project)
                    .await
                    .is_ok_and(|l| !l.versions.is_empty())
                {
                    Ok(())
                } else {
                    Err(FsError::not_found(format!("no project {project}")))
                }
            }
            Err(e) => Err(e),
        }
    }

    // ---- latest ----

    /// What `latest` of a project points at, read by the quorum, kept for the TTL.
    pub async fn latest_of(&self, project: &str) -> FsResult<Version> {
        Ok(self.latest_for(project).await?.0)
    }

    /// What `latest` of a project points at, and how much longer that is trusted: what
    /// the kernel may keep the name for, so that it asks again when this mount does.
    pub async fn latest_for(&self, project: &str) -> FsResult<(Version, Duration)> {
        if let Some(kept) = self.latest.fresh_for(project) {
            return Ok(kept);
        }
        let version = read_latest(&self.session, project).await?.version;
        self.remember_latest(project, &version);
        Ok((version, self.ttl))
    }

    /// What `latest` was last seen pointing at, however long ago (no region asked).
    pub fn latest_known(&self, project: &str) -> Option<Version> {
        self.latest.peek(project)
    }

    /// Keeps what `latest` points at; when that changed, the kernel forgets the name.
    pub fn remember_latest(&self, project: &str, version: &Version) {
        let previous = self
            .latest
            .insert(project.to_string(), version.clone())
            .previous;
        if previous.is_some_and(|p| p != *version) {
            self.invalidate_latest(project);
        }
    }

    /// `latest` moved by this mount's `symlink` or `rename`: the kernel made the new
    /// name itself, so it is not told to forget it.
    pub fn latest_moved_here(&self, project: &str, version: &Version) {
        self.latest.insert(project.to_string(), version.clone());
    }

    fn invalidate_latest(&self, project: &str) {
        if let Some(invalidate) = self.invalidator.get() {
            invalidate(
                self.inodes.inode_of(&Node::Project(project.to_string())),
                "latest",
            );
        }
    }

    // ---- versions ----

    /// A project's versions as listed, kept for the TTL.
    pub async fn versions_of(&self, project: &str) -> FsResult<Arc<VersionListing>> {
        if let Some(cached) = self.versions.get(project) {
            return Ok(cached);
        }
        let versions = match self.session.list_versions(project).await {
            Ok(versions) => versions,
            // A reader without s3:ListBucket sees the versions it names, not a listing.
            Err(e) if e.is_denied_everywhere() => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let listing = Arc::new(VersionListing::new(versions));
        self.versions
            .insert(project.to_string(), Arc::clone(&listing));
        Ok(listing)
    }

    /// How many projects' listings and `latest` are kept.
    #[cfg(test)]
    pub fn kept(&self) -> (usize, usize) {
        (self.versions.len(), self.latest.len())
    }

    /// The TTL passes for a project: its listings and `latest` are read again (what
    /// is pinned stays pinned).
    #[cfg(test)]
    pub fn ttl_passes(&self, project: &str) {
        self.versions.remove(project);
        self.latest.remove(project);
        self.projects_changed();
    }

    /// A version, pinned on first sight for the life of the mount (versions are
    /// immutable); the on-disk cache's copy when no region answers.
    pub async fn pinned(&self, project: &str, version_name: &str) -> FsResult<Arc<PinnedVersion>> {
        let key = (project.to_string(), version_name.to_string());
        if let Some(pinned) = lock(&self.pinned).get(&key) {
            return Ok(Arc::clone(pinned));
        }
        if self.missing.recently(&key) {
            return Err(FsError::not_found(format!(
                "{project}@{version_name} is not staged"
            )));
        }
        let version = parse_version_name(version_name)
            .ok_or_else(|| FsError::not_found(format!("{version_name:?} cannot be a version")))?;
        let resolved = match PinnedVersion::resolve(&self.session, project, &version).await {
            Err(e) if e.kind == FsErrorKind::Unavailable => {
                match self
                    .cache
                    .as_ref()
                    .and_then(|c| c.pinned(project, version_name))
                {
                    Some(cached) => {
                        tracing::warn!("{e}: serving {project}@{version_name} from the cache");
                        Ok(cached)
                    }
                    None => Err(e),
                }
            }
            other => other,
        };
        match resolved {
            Ok(pinned) => {
                let mut table = lock(&self.pinned);
                // Another lookup may have pinned it meanwhile: the first pin wins.
                let kept = table.entry(key).or_insert_with(|| {
                    // Once per version and mount, not at every `listxattr`.
                    xattr::log_unlisted(&pinned);
                    Arc::new(pinned)
                });
                Ok(Arc::clone(kept))
            }
            Err(e) => {
                if e.kind == FsErrorKind::NotFound {
                    self.missing.found(key);
                }
                Err(e)
            }
        }
    }

    // ---- what the write side tells ----

    /// A project folder made here (`mkdir P`): no longer missing, and the root's
    /// listing read again.
    pub fn project_made(&self, project: &str) {
        self.missing.forget(&(project.to_string(), String::new()));
        *lock(&self.projects) = None;
    }

    /// A project folder removed here (or made elsewhere): the root's listing is read again.
    pub fn projects_changed(&self) {
        *lock(&self.projects) = None;
    }

    /// A staging version made here: its name is no longer missing.
    pub fn version_made(&self, project: &str, version: &str) {
        self.missing
            .forget(&(project.to_string(), version.to_string()));
    }

    /// A version staged through this mount: listings, `latest` and names found missing
    /// of its project are read again, and the version is pinned anew at its next sight.
    pub fn staged(&self, project: &str, version: &str) {
        self.forget_version(project, version);
    }

    /// A version yanked through this mount: forgotten as when staged, then known
    /// missing for the TTL.
    pub fn yanked(&self, project: &str, version: &str) {
        self.forget_version(project, version);
        self.missing
            .found((project.to_string(), version.to_string()));
    }

    fn forget_version(&self, project: &str, version: &str) {
        self.missing
            .forget(&(project.to_string(), version.to_string()));
        self.missing.forget(&(project.to_string(), String::new()));
        self.versions.remove(project);
        *lock(&self.projects) = None;
        lock(&self.pinned).remove(&(project.to_string(), version.to_string()));
        // The kernel may keep the name longer than this mount kept its target (one
        // pushed out by the bound): it is told either way.
        self.latest.remove(project);
        self.invalidate_latest(project);
    }

    fn fresh<T>(&self, timed: &Timed<T>) -> bool {
        timed.at.elapsed() < self.ttl
    }
}
