//! `lookup` and `readdir`: what the namespace says exists (see `crate::fs::namespace`,
//! which keeps it), merged with what is staging in this mount.

use std::sync::Arc;

use semver::Version;

use crate::protocol::{list_projects, validate_project_name};

use super::filesystem::ArtifactFs;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::inode::Node;
use crate::fs::namespace::parse_version_name;
use crate::fs::staging::VersionView;
use crate::fs::stat::{DirEntry, Entry, FileKind};

impl ArtifactFs {
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

    async fn project_exists(&self, project: &str) -> FsResult<()> {
        if validate_project_name(project).is_err() {
            return Err(FsError::not_found(format!(
                "{project:?} cannot be a project"
            )));
        }
        if self.namespace.listed(project)
            || self
                .staging
                .as_ref()
                .is_some_and(|s| s.has_project(project))
        {
            return Ok(());
        }
        self.namespace.project_found(project).await
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
                return self.latest_entry(project).await;
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
                let pinned = self.namespace.pinned(&project, &version).await?;
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
            Node::Latest(..) | Node::File(..) | Node::PendingLink(..) => {
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

    /// The inode a listing gives `latest`: the symlink of the target this mount last
    /// saw, else the name's own (no region is asked for it).
    fn listed_latest(&self, project: &str) -> u64 {
        let target = self.namespace.latest_known(project).map(|v| v.to_string());
        self.namespace
            .inode_of(&Node::Latest(project.to_string(), target))
    }

    /// A project folder's entries: `latest` (as inode `latest`) when it has one, then
    /// the versions.
    fn project_entries(
        &self,
        project: &str,
        latest: Option<u64>,
        versions: impl ExactSizeIterator<Item = Version>,
    ) -> Arc<[DirEntry]> {
        let mut entries = Vec::with_capacity(versions.len() + 1);
        if let Some(inode) = latest {
            entries.push(DirEntry {
                inode,
                name: "latest".into(),
                kind: FileKind::Symlink,
            });
        }
        for version in versions {
            let name = version.to_string();
            entries.push(DirEntry {
                inode: self
                    .namespace
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
            inode: self.namespace.inode_of(&node),
            name,
            kind,
        };
        match self.node(inode)? {
            Node::Root => {
                let mut projects = self.namespace.projects().await?;
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
                let listing = self.namespace.versions_of(&project).await?;
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
                    let latest = self.listed_latest(&project);
                    return Ok(listing.entries(latest, || {
                        self.project_entries(
                            &project,
                            Some(latest),
                            listing.versions.iter().cloned(),
                        )
                    }));
                }
                let has_latest = !listing.versions.is_empty()
                    || self.namespace.latest_of(&project).await.is_ok();
                let latest = has_latest.then(|| self.listed_latest(&project));
                let mut versions = listing.versions.clone();
                versions.extend(staging_versions);
                crate::protocol::sort_versions(&mut versions);
                Ok(self.project_entries(&project, latest, versions.into_iter()))
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
                let pinned = self.namespace.pinned(&project, &version).await?;
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
            Node::Latest(..) | Node::File(..) | Node::PendingLink(..) => {
                Err(FsError::new(FsErrorKind::NotDirectory, "not a folder"))
            }
        }
    }
}
