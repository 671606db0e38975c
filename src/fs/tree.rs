//! `ArtifactFs`: the namespace (lookups, attributes, listings, `latest`), open handles
//! and extended attributes, over a `Session`. See the module comment of `crate::fs`
//! for the layout and the caching rules.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use semver::Version;

use crate::protocol::{list_projects, read_latest, validate_project_name, Session};

use super::attr::{DirEntry, Entry, FileKind, Ownership};
use super::disk_cache::{CachedFile, DiskCache};
use super::error::{FsError, FsErrorKind, FsResult};
use super::inode::{InodeTable, Node};
use super::lock;
use super::pinned::PinnedVersion;
use super::read::{FileReader, ReadOptions, ReadShared};
use super::staging::{Staging, VersionView};
use super::xattr::{self, XattrReply};

/// How the mount behaves.
#[derive(Debug, Clone)]
pub struct FsOptions {
    pub read_only: bool,
    pub uid: u32,
    pub gid: u32,
    /// How long listings, `latest` and missing names are trusted.
    pub metadata_ttl: Duration,
    /// How long the kernel may keep entries of immutable versions.
    pub immutable_ttl: Duration,
    pub read: ReadOptions,
    /// `rm -r MOUNT/P/V` yanks a staged version from every region.
    pub allow_delete: bool,
}

impl Default for FsOptions {
    fn default() -> Self {
        FsOptions {
            read_only: false,
            uid: 0,
            gid: 0,
            metadata_ttl: Duration::from_secs(10),
            immutable_ttl: Duration::from_secs(24 * 3600),
            read: ReadOptions::default(),
            allow_delete: false,
        }
    }
}

/// What `statfs` reports.
#[derive(Debug, Clone, Copy)]
pub struct StatFs {
    pub blocks: u64,
    pub files: u64,
    pub block_size: u32,
    pub name_max: u32,
}

/// Something cached until `at + ttl`.
pub(super) struct Timed<T> {
    at: Instant,
    value: T,
}

/// An open file: streamed from the regions, served from the on-disk cache, or a
/// staging file in the spool.
pub(super) enum OpenFile {
    Streamed(tokio::sync::Mutex<FileReader>),
    Cached(Arc<CachedFile>),
    Spooled(SpooledHandle),
}

/// An opened file: its handle, and whether its content can never change (the kernel
/// may then keep its pages).
#[derive(Debug, Clone, Copy)]
pub struct Opened {
    pub handle: u64,
    pub immutable: bool,
}

/// A handle on a staging file.
pub(super) struct SpooledHandle {
    pub project: String,
    pub version: String,
    pub inode: u64,
    pub file: Arc<std::fs::File>,
    pub write: bool,
    /// Its last close was seen (it no longer counts as a writer).
    pub closed: std::sync::atomic::AtomicBool,
    /// Why a write through it failed: what it wrote is incomplete, never staged.
    pub write_failed: Mutex<Option<FsError>>,
    /// The process that opened it (0 when unknown): only its closes are the writer's.
    pub opener: u32,
}

pub(super) type Handle = Arc<OpenFile>;

/// How long after `rm latest` a new `latest` symlink is taken as its replacement.
const UNLINKED_LATEST_GRACE: Duration = Duration::from_secs(10);

/// Called with the inode of a `latest` whose target changed, so the kernel drops it.
pub type Invalidator = Box<dyn Fn(u64) + Send + Sync>;

pub struct ArtifactFs {
    pub(super) session: Session,
    pub(super) options: FsOptions,
    pub(super) ownership: Ownership,
    pub(super) inodes: InodeTable,
    pub(super) pinned: Mutex<HashMap<(String, String), Arc<PinnedVersion>>>,
    /// Names found missing, and when: (project, version), or (project, "") for a project.
    pub(super) missing: Mutex<HashMap<(String, String), Instant>>,
    pub(super) versions: Mutex<HashMap<String, Timed<Vec<Version>>>>,
    pub(super) latest: Mutex<HashMap<String, Timed<Version>>>,
    pub(super) projects: Mutex<Option<Timed<Vec<String>>>>,
    pub(super) handles: Mutex<HashMap<u64, Handle>>,
    pub(super) next_handle: AtomicU64,
    read_shared: Arc<ReadShared>,
    pub(super) invalidator: OnceLock<Invalidator>,
    cache: Option<Arc<DiskCache>>,
    /// Symlinks made to be renamed over `latest`: (project, name) -> version.
    pending_links: Mutex<HashMap<(String, String), String>>,
    /// Projects whose `latest` was just unlinked, to be replaced by a symlink.
    unlinked_latest: Mutex<HashMap<String, Instant>>,
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
                gid: options.gid,
            },
            read_shared: Arc::new(ReadShared::new(options.read.clone())),
            session,
            options,
            inodes: InodeTable::default(),
            pinned: Mutex::new(HashMap::new()),
            missing: Mutex::new(HashMap::new()),
            versions: Mutex::new(HashMap::new()),
            latest: Mutex::new(HashMap::new()),
            projects: Mutex::new(None),
            handles: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            invalidator: OnceLock::new(),
            cache: None,
            pending_links: Mutex::new(HashMap::new()),
            unlinked_latest: Mutex::new(HashMap::new()),
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

    fn fresh<T>(&self, timed: &Timed<T>) -> bool {
        timed.at.elapsed() < self.options.metadata_ttl
    }

    /// Whether a name was found missing within the metadata TTL.
    fn recently_missing(&self, key: &(String, String)) -> bool {
        lock(&self.missing)
            .get(key)
            .is_some_and(|at| at.elapsed() < self.options.metadata_ttl)
    }

    pub(super) fn node(&self, inode: u64) -> FsResult<Node> {
        self.inodes
            .node_of(inode)
            .ok_or_else(|| FsError::not_found(format!("no inode {inode}")))
    }

    // ---- the namespace ----

    /// Checks, at mount time, what the granted permissions can list; returns one-line
    /// hints for the log.
    pub async fn listing_hints(&self) -> Vec<String> {
        match list_projects(&self.session).await {
            Ok(listing) if listing.complete => Vec::new(),
            Ok(listing) => vec![format!(
                "the root folder lists only what the granted permissions can list \
                 (grant ssm:GetParametersByPath and s3:ListBucket to list every project): {}",
                listing.failures.join("; ")
            )],
            Err(e) => vec![format!("cannot list projects: {e}")],
        }
    }

    async fn projects(&self) -> FsResult<Vec<String>> {
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

    async fn latest_of(&self, project: &str) -> FsResult<Version> {
        if let Some(cached) = lock(&self.latest).get(project).filter(|c| self.fresh(c)) {
            return Ok(cached.value.clone());
        }
        let version = read_latest(&self.session, project).await?.version;
        self.remember_latest(project, &version);
        Ok(version)
    }

    /// Keeps what `latest` points at; when that changed, the kernel forgets its copy.
    fn remember_latest(&self, project: &str, version: &Version) {
        let previous = lock(&self.latest).insert(
            project.to_string(),
            Timed {
                at: Instant::now(),
                value: version.clone(),
            },
        );
        if previous.is_some_and(|p| p.value != *version) {
            if let Some(invalidate) = self.invalidator.get() {
                invalidate(self.inodes.inode_of(&Node::Latest(project.to_string())));
            }
        }
    }

    async fn versions_of(&self, project: &str) -> FsResult<Vec<Version>> {
        if let Some(cached) = lock(&self.versions).get(project).filter(|c| self.fresh(c)) {
            return Ok(cached.value.clone());
        }
        let versions = match self.session.list_versions(project).await {
            Ok(versions) => versions,
            // A reader without s3:ListBucket sees the versions it names, not a listing.
            Err(e) if e.is_denied_everywhere() => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        lock(&self.versions).insert(
            project.to_string(),
            Timed {
                at: Instant::now(),
                value: versions.clone(),
            },
        );
        Ok(versions)
    }

    async fn project_exists(&self, project: &str) -> FsResult<()> {
        if validate_project_name(project).is_err() {
            return Err(FsError::not_found(format!(
                "{project:?} cannot be a project"
            )));
        }
        if lock(&self.projects)
            .as_ref()
            .is_some_and(|c| self.fresh(c) && c.value.iter().any(|p| p == project))
            || self
                .staging
                .as_ref()
                .is_some_and(|s| s.has_project(project))
        {
            return Ok(());
        }
        // Names found missing are trusted for the metadata TTL, like listings.
        let missing_key = (project.to_string(), String::new());
        if self.recently_missing(&missing_key) {
            return Err(FsError::not_found(format!("no project {project}")));
        }
        let found = self.project_found(project).await;
        if found
            .as_ref()
            .is_err_and(|e| e.kind == FsErrorKind::NotFound)
        {
            lock(&self.missing).insert(missing_key, Instant::now());
        }
        found
    }

    async fn project_found(&self, project: &str) -> FsResult<()> {
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
                if self.versions_of(project).await.is_ok_and(|v| !v.is_empty()) {
                    Ok(())
                } else {
                    Err(FsError::not_found(format!("no project {project}")))
                }
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn pinned(
        &self,
        project: &str,
        version_name: &str,
    ) -> FsResult<Arc<PinnedVersion>> {
        let key = (project.to_string(), version_name.to_string());
        if let Some(pinned) = lock(&self.pinned).get(&key) {
            return Ok(Arc::clone(pinned));
        }
        if self.recently_missing(&key) {
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
                let pinned = Arc::new(pinned);
                let mut table = lock(&self.pinned);
                // Another lookup may have pinned it meanwhile: the first pin wins.
                let kept = table.entry(key).or_insert(pinned);
                Ok(Arc::clone(kept))
            }
            Err(e) => {
                if e.kind == FsErrorKind::NotFound {
                    lock(&self.missing).insert(key, Instant::now());
                }
                Err(e)
            }
        }
    }

    fn entry_for(&self, node: &Node, attr: super::Attr) -> Entry {
        let ttl = match node {
            // Staging nodes change under the mount's own hand: asked every time.
            Node::Subfolder(..) => Duration::ZERO,
            Node::Version(p, v) | Node::File(p, v) if self.is_staging(p, v) => Duration::ZERO,
            Node::Version(..) | Node::File(..) => self.options.immutable_ttl,
            _ => self.options.metadata_ttl,
        };
        Entry { attr, ttl }
    }

    pub(super) async fn entry(&self, node: Node) -> FsResult<Entry> {
        let inode = self.inodes.inode_of(&node);
        let attr = match &node {
            Node::Root | Node::Project(_) if self.staging.is_some() => {
                self.ownership.writable_directory(inode, self.mounted_at)
            }
            Node::Root | Node::Project(_) => self.ownership.directory(inode, self.mounted_at),
            Node::Subfolder(project, version, name) => {
                let view = self
                    .staging_view(project, version)
                    .filter(|view| view.subfolders.contains(name))
                    .ok_or_else(|| FsError::not_found(format!("no folder {name}")))?;
                self.ownership.writable_directory(inode, view.created)
            }
            Node::Latest(project) => {
                let target = self.latest_of(project).await?.to_string();
                self.ownership
                    .symlink(inode, target.len() as u64, self.mounted_at)
            }
            Node::PendingLink(project, name) => {
                let target = self.pending_target(project, name).await?;
                self.ownership
                    .symlink(inode, target.len() as u64, SystemTime::now())
            }
            Node::Version(project, version) => match self.staging_view(project, version) {
                Some(view) => self.ownership.writable_directory(inode, view.created),
                None => {
                    let pinned = self.pinned(project, version).await?;
                    self.ownership.directory(inode, pinned.mtime)
                }
            },
            Node::File(project, version) => match self.staging_view(project, version) {
                Some(view) => {
                    let file = view
                        .file
                        .ok_or_else(|| FsError::not_found("the staging file is gone"))?;
                    self.ownership.staging_file(inode, file.size, file.mtime)
                }
                None => {
                    let pinned = self.pinned(project, version).await?;
                    self.ownership.file(inode, pinned.size, pinned.mtime)
                }
            },
        };
        Ok(self.entry_for(&node, attr))
    }

    pub async fn lookup(&self, parent: u64, name: &str) -> FsResult<Entry> {
        let node = match self.node(parent)? {
            Node::Root => {
                self.project_exists(name).await?;
                Node::Project(name.to_string())
            }
            Node::Project(project) if name == "latest" => {
                // Just unlinked, to be replaced: gone until the new symlink arrives.
                if lock(&self.unlinked_latest)
                    .get(&project)
                    .is_some_and(|at| at.elapsed() < UNLINKED_LATEST_GRACE)
                {
                    return Err(FsError::not_found(format!(
                        "{project}/latest is being replaced"
                    )));
                }
                Node::Latest(project)
            }
            Node::Project(project)
                if lock(&self.pending_links).contains_key(&(project.clone(), name.to_string())) =>
            {
                Node::PendingLink(project, name.to_string())
            }
            Node::Project(project) => {
                parse_version_name(name)
                    .ok_or_else(|| FsError::not_found(format!("{name:?} cannot be a version")))?;
                Node::Version(project, name.to_string())
            }
            Node::Version(project, version) => {
                if let Some(view) = self.staging_view(&project, &version) {
                    return self
                        .lookup_staging(view, project, version, None, name)
                        .await;
                }
                let pinned = self.pinned(&project, &version).await?;
                if pinned.file_name != name {
                    return Err(FsError::not_found(format!(
                        "{project}@{version} holds no {name:?}"
                    )));
                }
                Node::File(project, version)
            }
            Node::Subfolder(project, version, folder) => {
                let view = self
                    .staging_view(&project, &version)
                    .ok_or_else(|| FsError::not_found(format!("no folder {folder}")))?;
                return self
                    .lookup_staging(view, project, version, Some(folder), name)
                    .await;
            }
            Node::Latest(_) | Node::File(..) | Node::PendingLink(..) => {
                return Err(FsError::new(FsErrorKind::NotDirectory, "not a folder"))
            }
        };
        self.entry(node).await
    }

    /// A name in a staging version folder (or its subfolder `folder`).
    async fn lookup_staging(
        &self,
        view: VersionView,
        project: String,
        version: String,
        folder: Option<String>,
        name: &str,
    ) -> FsResult<Entry> {
        if view
            .file
            .as_ref()
            .is_some_and(|f| f.name == name && f.folder == folder)
        {
            return self.entry(Node::File(project, version)).await;
        }
        if folder.is_none() && view.subfolders.iter().any(|s| s == name) {
            return self
                .entry(Node::Subfolder(project, version, name.to_string()))
                .await;
        }
        Err(FsError::not_found(format!(
            "{project}/{version} holds no {name:?}"
        )))
    }

    pub async fn getattr(&self, inode: u64) -> FsResult<Entry> {
        self.entry(self.node(inode)?).await
    }

    /// Every entry of a folder, without `.` and `..`.
    pub async fn readdir(&self, inode: u64) -> FsResult<Vec<DirEntry>> {
        let entry = |node: Node, name: String, kind: FileKind| DirEntry {
            inode: self.inodes.inode_of(&node),
            name,
            kind,
        };
        match self.node(inode)? {
            Node::Root => {
                let mut projects = self.projects().await?;
                if let Some(staging) = &self.staging {
                    projects.extend(staging.projects());
                    projects.sort();
                    projects.dedup();
                }
                Ok(projects
                    .into_iter()
                    .map(|p| entry(Node::Project(p.clone()), p, FileKind::Directory))
                    .collect())
            }
            Node::Project(project) => {
                let mut versions = self.versions_of(&project).await?;
                let has_latest = !versions.is_empty() || self.latest_of(&project).await.is_ok();
                if let Some(staging) = &self.staging {
                    versions.extend(
                        staging
                            .versions_of(&project)
                            .iter()
                            .filter_map(|v| parse_version_name(v)),
                    );
                    crate::protocol::sort_versions(&mut versions);
                }
                let mut entries = Vec::with_capacity(versions.len() + 1);
                if has_latest {
                    entries.push(entry(
                        Node::Latest(project.clone()),
                        "latest".into(),
                        FileKind::Symlink,
                    ));
                }
                for version in versions {
                    let name = version.to_string();
                    entries.push(entry(
                        Node::Version(project.clone(), name.clone()),
                        name,
                        FileKind::Directory,
                    ));
                }
                Ok(entries)
            }
            Node::Version(project, version) => {
                if let Some(view) = self.staging_view(&project, &version) {
                    let mut entries: Vec<DirEntry> = view
                        .subfolders
                        .iter()
                        .map(|name| {
                            entry(
                                Node::Subfolder(project.clone(), version.clone(), name.clone()),
                                name.clone(),
                                FileKind::Directory,
                            )
                        })
                        .collect();
                    if let Some(file) = view.file.filter(|f| f.folder.is_none()) {
                        entries.push(entry(
                            Node::File(project, version),
                            file.name,
                            FileKind::RegularFile,
                        ));
                    }
                    return Ok(entries);
                }
                let pinned = self.pinned(&project, &version).await?;
                Ok(vec![entry(
                    Node::File(project, version),
                    pinned.file_name.clone(),
                    FileKind::RegularFile,
                )])
            }
            Node::Subfolder(project, version, folder) => {
                let view = self
                    .staging_view(&project, &version)
                    .ok_or_else(|| FsError::not_found(format!("no folder {folder}")))?;
                Ok(view
                    .file
                    .filter(|f| f.folder.as_deref() == Some(folder.as_str()))
                    .map(|f| entry(Node::File(project, version), f.name, FileKind::RegularFile))
                    .into_iter()
                    .collect())
            }
            Node::Latest(_) | Node::File(..) | Node::PendingLink(..) => {
                Err(FsError::new(FsErrorKind::NotDirectory, "not a folder"))
            }
        }
    }

    pub async fn readlink(&self, inode: u64) -> FsResult<String> {
        match self.node(inode)? {
            Node::Latest(project) => Ok(self.latest_of(&project).await?.to_string()),
            Node::PendingLink(project, name) => self.pending_target(&project, &name).await,
            _ => Err(FsError::new(FsErrorKind::Invalid, "not a symlink")),
        }
    }

    // ---- moving `latest` (ln -sfn VERSION MOUNT/PROJECT/latest) ----

    /// Where a pending symlink points; once renamed onto `latest` (the kernel then
    /// knows its inode as `latest`), where `latest` points.
    async fn pending_target(&self, project: &str, name: &str) -> FsResult<String> {
        let pending = lock(&self.pending_links)
            .get(&(project.to_string(), name.to_string()))
            .cloned();
        match pending {
            Some(target) => Ok(target),
            None => Ok(self.latest_of(project).await?.to_string()),
        }
    }

    /// The version a symlink made in a project folder may point at: a staged version
    /// of that project, by its folder name.
    async fn link_target(&self, project: &str, target: &str) -> FsResult<String> {
        let name = target.trim_start_matches("./").trim_end_matches('/');
        if parse_version_name(name).is_none() {
            return Err(FsError::new(
                FsErrorKind::Invalid,
                format!("{project}/latest can only point at a version folder of {project}, not {target:?}"),
            ));
        }
        self.pinned(project, name).await?;
        Ok(name.to_string())
    }

    /// Moves `latest` in every region and tells the kernel.
    async fn move_latest(&self, project: &str, version: &str) -> FsResult<()> {
        let version = parse_version_name(version).ok_or_else(|| {
            FsError::new(FsErrorKind::Invalid, format!("{version:?} is no version"))
        })?;
        self.session
            .set_latest(project, &version)
            .await
            .map_err(|e| match e {
                crate::protocol::Error::ReadOnly => self.refuse_change("moving latest"),
                other => FsError::from(other),
            })?;
        tracing::info!(project, %version, "latest moved through the mount");
        self.remember_latest(project, &version);
        Ok(())
    }

    /// `symlink(2)` in a project folder: `latest` itself right after it was unlinked
    /// (the unlink-then-symlink form), or a temporary name to be renamed over it (the
    /// form of GNU `ln -sfn`).
    pub async fn symlink(&self, parent: u64, name: &str, target: &str) -> FsResult<Entry> {
        let Node::Project(project) = self.node(parent)? else {
            return Err(self.refuse_change("creating a symlink"));
        };
        if self.options.read_only {
            return Err(self.refuse_change("creating a symlink"));
        }
        let version = self.link_target(&project, target).await?;
        if name == "latest" {
            let unlinked = lock(&self.unlinked_latest)
                .remove(&project)
                .is_some_and(|at| at.elapsed() < UNLINKED_LATEST_GRACE);
            if !unlinked {
                return Err(FsError::new(
                    FsErrorKind::Exists,
                    format!("{project}/latest exists"),
                ));
            }
            self.move_latest(&project, &version).await?;
            return self.entry(Node::Latest(project)).await;
        }
        if parse_version_name(name).is_some() {
            return Err(FsError::new(
                FsErrorKind::Exists,
                format!("{name} is a version name"),
            ));
        }
        lock(&self.pending_links).insert((project.clone(), name.to_string()), version);
        self.entry(Node::PendingLink(project, name.to_string()))
            .await
    }

    /// `rename(2)`: only a symlink made by `symlink` onto `latest` in its project folder.
    pub async fn rename(
        &self,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
    ) -> FsResult<()> {
        let (Node::Project(project), Node::Project(new_project)) =
            (self.node(parent)?, self.node(new_parent)?)
        else {
            return self
                .rename_in_version(parent, name, new_parent, new_name)
                .await;
        };
        let key = (project.clone(), name.to_string());
        let Some(version) = lock(&self.pending_links).get(&key).cloned() else {
            return Err(self.refuse_change("renaming"));
        };
        if project != new_project || new_name != "latest" {
            return Err(FsError::new(
                FsErrorKind::Invalid,
                format!("a symlink in {project}/ can only be renamed onto {project}/latest"),
            ));
        }
        self.move_latest(&project, &version).await?;
        lock(&self.pending_links).remove(&key);
        Ok(())
    }

    /// `unlink(2)`: `latest` (to be replaced at once by a symlink), or a pending symlink.
    pub async fn unlink(&self, parent: u64, name: &str) -> FsResult<()> {
        let Node::Project(project) = self.node(parent)? else {
            return self.unlink_in_version(parent, name).await;
        };
        if self.options.read_only {
            return Err(self.refuse_change("removing a file"));
        }
        if name == "latest" {
            // `latest` cannot be absent; it stays as it is until the symlink that
            // replaces it arrives.
            lock(&self.unlinked_latest).insert(project, Instant::now());
            return Ok(());
        }
        if lock(&self.pending_links)
            .remove(&(project, name.to_string()))
            .is_some()
        {
            return Ok(());
        }
        Err(self.refuse_change("removing a file"))
    }

    // ---- refusals ----

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

    // ---- open files ----

    /// Opens a file for process `pid`; `write` for any access that may change it,
    /// `truncate` for O_TRUNC.
    pub async fn open(
        &self,
        inode: u64,
        write: bool,
        truncate: bool,
        pid: u32,
    ) -> FsResult<Opened> {
        let (project, version) = match self.node(inode)? {
            Node::File(project, version) => (project, version),
            Node::Root | Node::Project(_) | Node::Version(..) | Node::Subfolder(..) => {
                return Err(FsError::new(FsErrorKind::IsDirectory, "a folder"))
            }
            Node::Latest(_) | Node::PendingLink(..) => {
                return Err(FsError::new(FsErrorKind::Invalid, "a symlink"))
            }
        };
        if self.is_staging(&project, &version) {
            let handle = self.open_spooled(inode, project, version, write, truncate, pid)?;
            return Ok(Opened {
                handle,
                immutable: false,
            });
        }
        if write {
            return Err(self.refuse_change(&format!("opening {project}@{version} for writing")));
        }
        let pinned = self.pinned(&project, &version).await?;
        let file = match self.cache.as_ref().filter(|c| c.fits(pinned.size)) {
            Some(cache) => OpenFile::Cached(cache.open_file(&pinned, &self.session).await?),
            None => {
                let reader =
                    FileReader::new(pinned, self.session.clone(), Arc::clone(&self.read_shared));
                OpenFile::Streamed(tokio::sync::Mutex::new(reader))
            }
        };
        Ok(Opened {
            handle: self.add_handle(file),
            immutable: true,
        })
    }

    pub(super) fn add_handle(&self, file: OpenFile) -> u64 {
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        lock(&self.handles).insert(handle, Arc::new(file));
        handle
    }

    pub(super) fn handle(&self, handle: u64) -> FsResult<Handle> {
        lock(&self.handles)
            .get(&handle)
            .cloned()
            .ok_or_else(|| FsError::new(FsErrorKind::BadHandle, format!("no handle {handle}")))
    }

    pub async fn read(&self, handle: u64, offset: u64, size: u32) -> FsResult<Bytes> {
        let file = self.handle(handle)?;
        match file.as_ref() {
            OpenFile::Streamed(reader) => reader.lock().await.read(offset, size).await,
            OpenFile::Cached(cached) => cached.read(offset, size).await,
            OpenFile::Spooled(spooled) => spooled_read(&spooled.file, offset, size),
        }
    }

    pub fn release(&self, handle: u64) {
        let Some(file) = lock(&self.handles).remove(&handle) else {
            return;
        };
        if let OpenFile::Spooled(spooled) = file.as_ref() {
            self.writer_closed(spooled);
        }
    }

    // ---- extended attributes ----

    async fn attributes_of(&self, inode: u64) -> FsResult<Vec<(String, Vec<u8>)>> {
        if let Some(attributes) = self.staging_attributes(&self.node(inode)?) {
            return Ok(attributes
                .into_iter()
                .map(|(k, v)| (format!("user.{k}"), v.into_bytes()))
                .collect());
        }
        match self.node(inode)? {
            Node::Version(project, version) | Node::File(project, version) => {
                let pinned = self.pinned(&project, &version).await?;
                Ok(xattr::attributes(&pinned))
            }
            _ => Ok(Vec::new()),
        }
    }

    pub async fn getxattr(&self, inode: u64, name: &str, size: u32) -> FsResult<XattrReply> {
        if xattr::is_foreign_namespace(name) {
            return Err(FsError::new(FsErrorKind::NoAttribute, format!("no {name}")));
        }
        let value = self
            .attributes_of(inode)
            .await?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| FsError::new(FsErrorKind::NoAttribute, format!("no {name}")))?;
        xattr::reply_for(value, size)
    }

    pub async fn listxattr(&self, inode: u64, size: u32) -> FsResult<XattrReply> {
        let names = self.attributes_of(inode).await?.into_iter().map(|(n, _)| n);
        xattr::reply_for(xattr::name_list(names), size)
    }

    pub fn statfs(&self) -> StatFs {
        StatFs {
            blocks: 0,
            files: self.inodes.len() as u64,
            block_size: 4096,
            name_max: 255,
        }
    }
}

/// Reads a staging file from the spool.
fn spooled_read(file: &std::fs::File, offset: u64, size: u32) -> FsResult<Bytes> {
    use std::os::unix::fs::FileExt;
    let mut buffer = vec![0u8; size as usize];
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FsError::unavailable(format!("reading the spool: {e}"))),
        }
    }
    buffer.truncate(filled);
    Ok(Bytes::from(buffer))
}
