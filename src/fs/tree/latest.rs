//! `latest` as a symlink: reading it, and moving it the ways `ln -sfn` and
//! `rm` + `ln -s` do (`symlink`, `rename` onto `latest`, `unlink`), which moves it in
//! every region.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{parse_version_name, ArtifactFs};
use crate::fs::attr::Entry;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::inode::Node;
use crate::fs::lock;

/// How long after `rm latest` a new `latest` symlink is taken as its replacement.
const UNLINKED_LATEST_GRACE: Duration = Duration::from_secs(10);

/// Moves of `latest` under way: the symlinks made to be renamed over it, and the
/// projects whose `latest` was just unlinked, to be replaced by a symlink.
#[derive(Default)]
pub(super) struct LatestMoves {
    /// (project, name) -> version.
    pending_links: Mutex<HashMap<(String, String), String>>,
    unlinked_latest: Mutex<HashMap<String, Instant>>,
}

impl LatestMoves {
    /// Where the pending symlink `name` of `project` points, if there is one.
    fn pending(&self, project: &str, name: &str) -> Option<String> {
        lock(&self.pending_links)
            .get(&(project.to_string(), name.to_string()))
            .cloned()
    }

    pub(super) fn is_pending(&self, project: &str, name: &str) -> bool {
        lock(&self.pending_links).contains_key(&(project.to_string(), name.to_string()))
    }

    fn add_pending(&self, project: &str, name: &str, version: String) {
        lock(&self.pending_links).insert((project.to_string(), name.to_string()), version);
    }

    /// Forgets a pending symlink; whether there was one.
    fn remove_pending(&self, project: &str, name: &str) -> bool {
        lock(&self.pending_links)
            .remove(&(project.to_string(), name.to_string()))
            .is_some()
    }

    fn mark_unlinked(&self, project: String) {
        lock(&self.unlinked_latest).insert(project, Instant::now());
    }

    /// Whether `latest` of `project` was just unlinked; it no longer counts as such.
    fn take_unlinked(&self, project: &str) -> bool {
        lock(&self.unlinked_latest)
            .remove(project)
            .is_some_and(|at| at.elapsed() < UNLINKED_LATEST_GRACE)
    }

    /// Whether `latest` of `project` was just unlinked and awaits its replacement.
    pub(super) fn being_replaced(&self, project: &str) -> bool {
        lock(&self.unlinked_latest)
            .get(project)
            .is_some_and(|at| at.elapsed() < UNLINKED_LATEST_GRACE)
    }
}

impl ArtifactFs {
    pub async fn readlink(&self, inode: u64) -> FsResult<String> {
        match self.node(inode)? {
            Node::Latest(project) => Ok(self.latest_of(&project).await?.to_string()),
            Node::PendingLink(project, name) => self.pending_target(&project, &name).await,
            _ => Err(FsError::new(FsErrorKind::Invalid, "not a symlink")),
        }
    }

    /// Where a pending symlink points; once renamed onto `latest` (the kernel then
    /// knows its inode as `latest`), where `latest` points.
    pub(super) async fn pending_target(&self, project: &str, name: &str) -> FsResult<String> {
        match self.latest_moves.pending(project, name) {
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
            if !self.latest_moves.take_unlinked(&project) {
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
        self.latest_moves.add_pending(&project, name, version);
        self.entry(Node::PendingLink(project, name.to_string()))
            .await
    }

    /// `rename(2)` by thread `pid`: a symlink made by `symlink` onto `latest` in its
    /// project folder, or the staging file within its version.
    pub async fn rename(
        &self,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
        pid: u32,
    ) -> FsResult<()> {
        let (Node::Project(project), Node::Project(new_project)) =
            (self.node(parent)?, self.node(new_parent)?)
        else {
            return self
                .rename_in_version(parent, name, new_parent, new_name, pid)
                .await;
        };
        let Some(version) = self.latest_moves.pending(&project, name) else {
            return Err(self.refuse_change("renaming"));
        };
        if project != new_project || new_name != "latest" {
            return Err(FsError::new(
                FsErrorKind::Invalid,
                format!("a symlink in {project}/ can only be renamed onto {project}/latest"),
            ));
        }
        self.move_latest(&project, &version).await?;
        self.latest_moves.remove_pending(&project, name);
        Ok(())
    }

    /// `unlink(2)` by thread `pid`: `latest` (to be replaced at once by a symlink), a
    /// pending symlink, or what `unlink_in_version` removes.
    pub async fn unlink(&self, parent: u64, name: &str, pid: u32) -> FsResult<()> {
        let Node::Project(project) = self.node(parent)? else {
            return self.unlink_in_version(parent, name, pid).await;
        };
        if self.options.read_only {
            return Err(self.refuse_change("removing a file"));
        }
        if name == "latest" {
            // `latest` cannot be absent; it stays as it is until the symlink that
            // replaces it arrives.
            self.latest_moves.mark_unlinked(project);
            return Ok(());
        }
        if self.latest_moves.remove_pending(&project, name) {
            return Ok(());
        }
        Err(self.refuse_change("removing a file"))
    }
}
