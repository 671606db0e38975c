//! The namespace: which projects, versions and names exist. Answers `lookup` and
//! `readdir`, and keeps what the regions said for `metadata_ttl`: the project and
//! version listings, what `latest` points at, and names found missing.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use semver::Version;

use crate::protocol::{list_projects, read_latest, validate_project_name};

use super::{parse_version_name, ArtifactFs, Timed, VersionListing};
use crate::fs::attr::{DirEntry, Entry, FileKind};
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::inode::Node;
use crate::fs::lock;
use crate::fs::staging::VersionView;

impl ArtifactFs {
    fn fresh<T>(&self, timed: &Timed<T>) -> bool {
        timed.at.elapsed() < self.options.metadata_ttl
    }

    /// Whether a name was found missing within the metadata TTL.
    pub(super) fn recently_missing(&self, key: &(String, String)) -> bool {
        self.missing.recently(key)
    }

    /// Notes that a name was found missing, now.
    pub(super) fn found_missing(&self, key: (String, String)) {
        self.missing.found(key);
    }

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

    pub(super) async fn latest_of(&self, project: &str) -> FsResult<Version> {
        if let Some(cached) = self.latest.fresh(project) {
            return Ok(cached);
        }
        let version = read_latest(&self.session, project).await?.version;
        self.remember_latest(project, &version);
        Ok(version)
    }

    /// Keeps what `latest` points at; when that changed, the kernel forgets its copy.
    pub(super) fn remember_latest(&self, project: &str, version: &Version) {
        let previous = self
            .latest
            .insert(project.to_string(), version.clone())
            .previous;
        if previous.is_some_and(|p| p != *version) {
            if let Some(invalidate) = self.invalidator.get() {
                invalidate(self.inodes.inode_of(&Node::Latest(project.to_string())));
            }
        }
    }

    async fn versions_of(&self, project: &str) -> FsResult<Arc<VersionListing>> {
        if let Some(cached) = self.versions.get(project) {
            return Ok(cached);
        }
        let versions = match self.session.list_versions(project).await {
            Ok(versions) => versions,
            // A reader without s3:ListBucket sees the versions it names, not a listing.
            Err(e) if e.is_denied_everywhere() => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let listing = Arc::new(VersionListing {
            versions,
            entries: OnceLock::new(),
        });
        self.versions
            .insert(project.to_string(), Arc::clone(&listing));
        Ok(listing)
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
            self.found_missing(missing_key);
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

    pub async fn lookup(&self, parent: u64, name: &str) -> FsResult<Entry> {
        let node = match self.node(parent)? {
            Node::Root => {
                self.project_exists(name).await?;
                Node::Project(name.to_string())
            }
            Node::Project(project) if name == "latest" => {
                // Just unlinked, to be replaced: gone until the new symlink arrives.
                if self.latest_moves.being_replaced(&project) {
                    return Err(FsError::not_found(format!(
                        "{project}/latest is being replaced"
                    )));
                }
                Node::Latest(project)
            }
            Node::Project(project) if self.pending_link(&project, name).is_some() => {
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

    /// A project folder's entries: `latest` when it has one, then the versions.
    fn project_entries(
        &self,
        project: &str,
        has_latest: bool,
        versions: impl ExactSizeIterator<Item = Version>,
    ) -> Arc<[DirEntry]> {
        let mut entries = Vec::with_capacity(versions.len() + 1);
        if has_latest {
            entries.push(DirEntry {
                inode: self.inodes.inode_of(&Node::Latest(project.to_string())),
                name: "latest".into(),
                kind: FileKind::Symlink,
            });
        }
        for version in versions {
            let name = version.to_string();
            entries.push(DirEntry {
                inode: self
                    .inodes
                    .inode_of(&Node::Version(project.to_string(), name.clone())),
                name,
                kind: FileKind::Directory,
            });
        }
        entries.into()
    }

    /// Every entry of a folder, without `.` and `..`.
    pub async fn readdir(&self, inode: u64) -> FsResult<Vec<DirEntry>> {
        Ok(self.listing(inode).await?.to_vec())
    }

    /// Every entry of a folder, without `.` and `..`, shared: a project's is built once
    /// per version listing, so that the kernel's many `readdir` calls for one `ls` of a
    /// project of 10,000 versions (a page each) cost a copy of their page, not of the
    /// whole listing, nor a name and an inode lookup per version.
    pub async fn listing(&self, inode: u64) -> FsResult<Arc<[DirEntry]>> {
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
                let listing = self.versions_of(&project).await?;
                let staging_versions: Vec<Version> = self
                    .staging
                    .as_ref()
                    .map(|staging| {
                        staging
                            .versions_of(&project)
                            .iter()
                            .filter_map(|v| parse_version_name(v))
                            .collect()
                    })
                    .unwrap_or_default();
                if staging_versions.is_empty() && !listing.versions.is_empty() {
                    let entries = listing.entries.get_or_init(|| {
                        self.project_entries(&project, true, listing.versions.iter().cloned())
                    });
                    return Ok(Arc::clone(entries));
                }
                let has_latest =
                    !listing.versions.is_empty() || self.latest_of(&project).await.is_ok();
                let mut versions = listing.versions.clone();
                versions.extend(staging_versions);
                crate::protocol::sort_versions(&mut versions);
                Ok(self.project_entries(&project, has_latest, versions.into_iter()))
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
                    return Ok(entries.into());
                }
                let pinned = self.pinned(&project, &version).await?;
                Ok(Arc::from([entry(
                    Node::File(project, version),
                    pinned.file_name.clone(),
                    FileKind::RegularFile,
                )]))
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
}
