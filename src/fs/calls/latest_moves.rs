//! Moves of `latest` under way: the symlinks made beside `latest` to be renamed over
//! it (`ln -sfn`, or `ln -s` then `mv -T`), and the projects whose `latest` was just
//! unlinked, to be replaced by a symlink. Each is a bounded map any user can fill.

use std::time::Duration;

use crate::fs::bounded::Bounded;

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
pub(super) enum Link {
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
pub(super) enum Seen {
    Link(Link),
    /// Never made, or dropped by the bound (its inode already forgotten).
    Unknown,
    /// Past its time: dropped now, its inode to be forgotten.
    Expired,
}

impl LatestMoves {
    pub(super) fn seen(&self, project: &str, name: &str) -> Seen {
        match self
            .links
            .get_or_expired(&(project.to_string(), name.to_string()))
        {
            Ok(Some(link)) => Seen::Link(link),
            Ok(None) => Seen::Unknown,
            Err(_) => Seen::Expired,
        }
    }

    pub(super) fn mark_unlinked(&self, project: String) {
        self.unlinked_latest.insert(project, ());
    }

    /// Whether `latest` of `project` was just unlinked; it no longer counts as such.
    pub(super) fn take_unlinked(&self, project: &str) -> bool {
        let unlinked = self.being_replaced(project);
        self.unlinked_latest.remove(project);
        unlinked
    }

    /// Whether `latest` of `project` was just unlinked and awaits its replacement.
    pub(super) fn being_replaced(&self, project: &str) -> bool {
        self.unlinked_latest.get(project).is_some()
    }

    /// Keeps a link; returns the one dropped to make room, if any.
    pub(super) fn keep(&self, project: &str, name: &str, link: Link) -> Option<(String, String)> {
        self.links
            .insert((project.to_string(), name.to_string()), link)
            .evicted
            .map(|(key, _)| key)
    }

    pub(super) fn drop_link(&self, project: &str, name: &str) {
        self.links.remove(&(project.to_string(), name.to_string()));
    }

    /// How many links are kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.links.len()
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
