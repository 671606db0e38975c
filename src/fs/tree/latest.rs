//! `latest` as a symlink: reading it, and moving it the ways `ln -sfn` and
//! `rm` + `ln -s` do (`symlink`, `rename` onto `latest`, `unlink`), which moves it in
//! every region.

use std::time::Duration;

use super::bounded::Bounded;
use super::{parse_version_name, ArtifactFs};
use crate::fs::attr::Entry;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::inode::Node;

/// How long after `rm latest` a new `latest` symlink is taken as its replacement.
const UNLINKED_LATEST_GRACE: Duration = Duration::from_secs(10);

/// How many symlinks made beside `latest` the mount keeps at once, the least recently
/// used dropped first (with its inode). `ln -sfn` keeps one for a moment; 1,024 is far
/// more than deploys moving `latest` of different projects at once, and any local user
/// may make as many as they like: an entry is two names and a version, and its inode
/// two more copies of the names, ~300 bytes at usual names and ~2 KiB at the longest
/// (255 bytes each), so at most ~2 MiB.
pub(in crate::fs) const PENDING_LINKS: usize = 1_024;

/// How long such a symlink lasts: ample for `ln -s V tmp` then `mv -T tmp latest` by
/// hand or from a slow script; after that it is gone (ENOENT), as if removed.
const PENDING_LINK_TTL: Duration = Duration::from_secs(3600);

/// How many projects may have an unlinked `latest` awaiting its symlink at once (each
/// entry a project name: ~64 KiB at most); an older one only loses its grace.
const UNLINKED_LATEST: usize = 256;

/// A symlink made in a project folder, other than `latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Link {
    /// Waiting to be renamed over `latest`: the version it points at.
    Pending(String),
    /// Renamed over `latest`: the kernel knows `latest` by this link's inode until it
    /// looks the name up again, so the inode reads as `latest` for as long as kept.
    Renamed,
}

/// Moves of `latest` under way: the symlinks made to be renamed over it, and the
/// projects whose `latest` was just unlinked, to be replaced by a symlink.
pub(super) struct LatestMoves {
    /// (project, name) -> the link.
    links: Bounded<(String, String), Link>,
    unlinked_latest: Bounded<String, ()>,
}

impl Default for LatestMoves {
    fn default() -> Self {
        LatestMoves {
            links: Bounded::new(PENDING_LINKS, PENDING_LINK_TTL),
            unlinked_latest: Bounded::new(UNLINKED_LATEST, UNLINKED_LATEST_GRACE),
        }
    }
}

/// What is known of a symlink's name in a project folder.
enum Seen {
    Link(Link),
    /// Never made, or dropped by the bound (its inode already forgotten).
    Unknown,
    /// Past its time: dropped now, its inode to be forgotten.
    Expired,
}

impl LatestMoves {
    fn seen(&self, project: &str, name: &str) -> Seen {
        match self
            .links
            .get_or_expired(&(project.to_string(), name.to_string()))
        {
            Ok(Some(link)) => Seen::Link(link),
            Ok(None) => Seen::Unknown,
            Err(_) => Seen::Expired,
        }
    }

    fn mark_unlinked(&self, project: String) {
        self.unlinked_latest.insert(project, ());
    }

    /// Whether `latest` of `project` was just unlinked; it no longer counts as such.
    fn take_unlinked(&self, project: &str) -> bool {
        let unlinked = self.being_replaced(project);
        self.unlinked_latest.remove(project);
        unlinked
    }

    /// Whether `latest` of `project` was just unlinked and awaits its replacement.
    pub(super) fn being_replaced(&self, project: &str) -> bool {
        self.unlinked_latest.get(project).is_some()
    }
}

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
        let pushed = self
            .latest_moves
            .links
            .insert((project.to_string(), name.to_string()), link);
        if let Some(((project, name), _)) = pushed.evicted {
            tracing::debug!(project, name, "a symlink beside latest dropped (too many)");
            self.forget_link(project, name);
        }
    }

    #[cfg(test)]
    pub(in crate::fs) fn latest_moves_len(&self) -> usize {
        self.latest_moves.links.len()
    }

    /// A symlink gone: its inode too (numbers are never reused, so the kernel's copy
    /// of it reads as ENOENT, never as another node).
    fn forget_link(&self, project: String, name: String) {
        self.latest_moves
            .links
            .remove(&(project.clone(), name.clone()));
        self.inodes.forget(&Node::PendingLink(project, name));
    }

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
        match self.latest_moves.seen(project, name) {
            Seen::Link(Link::Pending(target)) => Ok(target),
            Seen::Link(Link::Renamed) => Ok(self.latest_of(project).await?.to_string()),
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
        self.pinned(project, name).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_awaiting_a_new_latest_are_bounded_and_one_dropped_loses_its_grace() {
        let moves = LatestMoves::default();
        for n in 0..UNLINKED_LATEST * 4 {
            moves.mark_unlinked(format!("P{n}"));
            assert!(moves.unlinked_latest.len() <= UNLINKED_LATEST);
        }
        assert!(
            !moves.being_replaced("P0"),
            "dropped: latest is shown again"
        );
        assert!(moves.take_unlinked(&format!("P{}", UNLINKED_LATEST * 4 - 1)));
    }
}
