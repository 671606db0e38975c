//! What the kernel may keep of each folder's listing. Every `opendir` answers with
//! `FOPEN_CACHE_DIR`, so the kernel keeps the entries it reads; it may keep what it
//! kept before (`FOPEN_KEEP_CACHE`) only when the folder lists exactly what it listed at
//! the previous `opendir`. So a warm `ls` of a project of 10,000 versions is answered by
//! the kernel without a `readdir` to the daemon, and a listing that changed (a version
//! staged by another tool, seen when the model's listing expires; anything done through
//! this mount, which the kernel also notices by itself) is read again.
//!
//! A listing is recognised by a fingerprint of its entries (inode, name, kind). The
//! model shares one listing per fetch of a project's versions; its fingerprint is
//! computed once and remembered with a weak pointer to it, which keeps the allocation
//! (so its address cannot be reused by another listing) without keeping the entries.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use fuser::FopenFlags;

use crate::fs::{DirEntry, FileKind};

/// A folder's last listing given to the kernel.
struct Seen {
    listing: Weak<[DirEntry]>,
    fingerprint: u64,
}

#[derive(Default)]
pub struct Folders {
    seen: Mutex<HashMap<u64, Seen>>,
}

impl Folders {
    pub fn new() -> Self {
        Folders::default()
    }

    /// The flags of an `opendir` of `inode`, whose listing is now `listing`.
    pub fn open_flags(&self, inode: u64, listing: &Arc<[DirEntry]>) -> FopenFlags {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let known = seen
            .get(&inode)
            .filter(|s| {
                s.listing
                    .upgrade()
                    .is_some_and(|l| Arc::ptr_eq(&l, listing))
            })
            .map(|s| s.fingerprint);
        let fingerprint = known.unwrap_or_else(|| fingerprint(listing));
        let unchanged = seen
            .get(&inode)
            .is_some_and(|s| s.fingerprint == fingerprint);
        seen.insert(
            inode,
            Seen {
                listing: Arc::downgrade(listing),
                fingerprint,
            },
        );
        if unchanged {
            FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE
        } else {
            FopenFlags::FOPEN_CACHE_DIR
        }
    }
}

fn fingerprint(listing: &[DirEntry]) -> u64 {
    let mut hasher = DefaultHasher::new();
    listing.len().hash(&mut hasher);
    for entry in listing {
        entry.inode.hash(&mut hasher);
        entry.name.hash(&mut hasher);
        let kind: u8 = match entry.kind {
            FileKind::Directory => 0,
            FileKind::RegularFile => 1,
            FileKind::Symlink => 2,
        };
        kind.hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(names: &[&str]) -> Arc<[DirEntry]> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| DirEntry {
                inode: 10 + i as u64,
                name: name.to_string(),
                kind: FileKind::Directory,
            })
            .collect()
    }

    const KEEP: FopenFlags = FopenFlags::FOPEN_CACHE_DIR.union(FopenFlags::FOPEN_KEEP_CACHE);

    #[test]
    fn the_kernel_keeps_a_listing_only_while_it_lists_the_same_entries() {
        let folders = Folders::new();
        let first = listing(&["1.0.0", "latest"]);
        // First open: the kernel caches what it reads, but nothing from before.
        assert_eq!(folders.open_flags(1, &first), FopenFlags::FOPEN_CACHE_DIR);
        // The same shared listing, and the same entries fetched again: kept.
        assert_eq!(folders.open_flags(1, &first), KEEP);
        assert_eq!(folders.open_flags(1, &listing(&["1.0.0", "latest"])), KEEP);
        // A version more: read again, then kept.
        let second = listing(&["1.0.0", "1.1.0", "latest"]);
        assert_eq!(folders.open_flags(1, &second), FopenFlags::FOPEN_CACHE_DIR);
        assert_eq!(folders.open_flags(1, &second), KEEP);
        // Another folder has its own record.
        assert_eq!(folders.open_flags(2, &second), FopenFlags::FOPEN_CACHE_DIR);
    }

    #[test]
    fn a_changed_inode_name_or_kind_changes_the_fingerprint() {
        let base = listing(&["a", "b"]);
        let mut renamed = base.to_vec();
        renamed[1].name = "c".into();
        let mut renumbered = base.to_vec();
        renumbered[0].inode = 99;
        let mut retyped = base.to_vec();
        retyped[0].kind = FileKind::Symlink;
        for changed in [renamed, renumbered, retyped] {
            assert_ne!(fingerprint(&base), fingerprint(&changed));
        }
        assert_ne!(fingerprint(&base), fingerprint(&base[..1]));
    }
}
