//! `latest` as a symlink: reading it, and moving it the ways `ln -sfn` and
//! `rm` + `ln -s` do (`symlink`, `rename` onto `latest`, `unlink`), which moves it in
//! every region.

use super::filesystem::ArtifactFs;
use super::latest_moves::{Link, Seen};
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::inode::Node;
use crate::fs::namespace::parse_version_name;
use crate::fs::stat::Entry;

#[cfg(test)]
pub(in crate::fs) use super::latest_moves::PENDING_LINKS;

impl ArtifactFs {
    /// The version a pending symlink points at, if `name` is one; one past its time is
    /// forgotten with its inode.
    pub(super) fn pending_link(&self, project: &str, name: &str) -> Option<String> {
        match self.latest_moves.seen(project, name) {
            Seen::Link(Link::Pending(version)) => Some(version),
            Seen::Link(Link::Renamed) | Seen::Unknown => None,
            Seen::Expired => {
                self.forget_link(project.to_string(), name.to_string());
                None
            }
        }
    }

    fn keep_link(&self, project: &str, name: &str, link: Link) {
        if let Some((project, name)) = self.latest_moves.keep(project, name, link) {
            tracing::debug!(project, name, "a symlink beside latest dropped (too many)");
            self.forget_link(project, name);
        }
    }

    #[cfg(test)]
    pub(in crate::fs) fn latest_moves_len(&self) -> usize {
        self.latest_moves.len()
    }

    /// A symlink gone: its inode too (numbers are never reused, so the kernel's copy
    /// of it reads as ENOENT, never as another node).
    fn forget_link(&self, project: String, name: String) {
        self.latest_moves.drop_link(&project, &name);
        self.namespace
            .forget_node(&Node::PendingLink(project, name));
    }

    pub async fn readlink(&self, inode: u64) -> FsResult<String> {
        match self.node(inode)? {
            Node::Latest(_, Some(target)) => Ok(target),
            Node::Latest(project, None) => {
                Ok(self.namespace.latest_of(&project).await?.to_string())
            }
            Node::PendingLink(project, name) => self.pending_target(&project, &name).await,
            _ => Err(FsError::new(FsErrorKind::Invalid, "not a symlink")),
        }
    }

    /// Where a pending symlink points; once renamed onto `latest` (the kernel then
    /// knows its inode as `latest`), where `latest` points.
    pub(super) async fn pending_target(&self, project: &str, name: &str) -> FsResult<String> {
        match self.latest_moves.seen(project, name) {
            Seen::Link(Link::Pending(target)) => Ok(target),
            Seen::Link(Link::Renamed) => Ok(self.namespace.latest_of(project).await?.to_string()),
            Seen::Expired => {
                self.forget_link(project.to_string(), name.to_string());
                Err(FsError::not_found(format!("{project}/{name} expired")))
            }
            Seen::Unknown => Err(FsError::not_found(format!("no {project}/{name}"))),
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
        self.namespace.pinned(project, name).await?;
        Ok(name.to_string())
    }

    /// Moves `latest` in every region and tells the kernel.
    async fn move_latest(&self, project: &str, version: &str) -> FsResult<()> {
        let version = parse_version_name(version).ok_or_else(|| {
            FsError::new(FsErrorKind::Invalid, format!("{version:?} is no version"))
        })?;
        let report = self
            .session
            .set_latest(project, &version)
            .await
            .map_err(|e| match e {
                crate::protocol::Error::ReadOnly => self.refuse_change("moving latest"),
                other => FsError::from(other),
            })?;
        tracing::info!(project, %version, "latest moved through the mount");
        if report.moved() < report.regions.len() {
            if let Some(staging) = &self.staging {
                staging.align_latest_later(project);
            }
        }
        self.namespace.latest_moved_here(project, &version);
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
            return self.latest_entry(project).await;
        }
        if parse_version_name(name).is_some() {
            return Err(FsError::new(
                FsErrorKind::Exists,
                format!("{name} is a version name"),
            ));
        }
        self.keep_link(&project, name, Link::Pending(version));
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
        let Some(version) = self.pending_link(&project, name) else {
            return Err(self.refuse_change("renaming"));
        };
        if project != new_project || new_name != "latest" {
            return Err(FsError::new(
                FsErrorKind::Invalid,
                format!("a symlink in {project}/ can only be renamed onto {project}/latest"),
            ));
        }
        self.move_latest(&project, &version).await?;
        self.keep_link(&project, name, Link::Renamed);
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
        if self.pending_link(&project, name).is_some() {
            self.forget_link(project, name.to_string());
            return Ok(());
        }
        Err(self.refuse_change("removing a file"))
    }
}
