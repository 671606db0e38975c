//! A node's stat attributes (`getattr`, the entries `lookup` returns with their
//! TTLs) and `statfs`.

use std::time::{Duration, SystemTime};

use super::filesystem::ArtifactFs;
use crate::fs::error::{FsError, FsResult};
use crate::fs::inode::Node;
use crate::fs::stat::{Attr, Entry};

/// What `statfs` reports: the staging folder's room, in blocks of `block_size` (what
/// can still be written through the mount), and the inodes handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFs {
    /// The staging limit (`--staging-size`); 0 on a mount that takes no writes.
    pub blocks: u64,
    /// What may still be written: the limit less what the spool holds, and never more
    /// than the disk under the staging folder has free.
    pub free_blocks: u64,
    pub available_blocks: u64,
    pub files: u64,
    pub block_size: u32,
    pub name_max: u32,
}

/// The block size `statfs` counts in.
pub const STATFS_BLOCK_SIZE: u32 = 4096;

impl ArtifactFs {
    fn entry_for(&self, node: &Node, attr: Attr) -> Entry {
        let ttl = match node {
            // Staging nodes change under the mount's own hand: asked every time. So is
            // a symlink made to be renamed over `latest`: once renamed, the kernel asks
            // for `latest` again at once, and finds the symlink of its new target.
            Node::Subfolder(..) | Node::PendingLink(..) => Duration::ZERO,
            Node::Version(p, v) | Node::File(p, v) if self.is_staging(p, v) => Duration::ZERO,
            // A `latest` of a known target never changes (when `latest` moves, the name
            // leads to another symlink: see `latest_entry` for how long the name holds).
            Node::Version(..) | Node::File(..) | Node::Latest(_, Some(_)) => {
                self.options.immutable_ttl
            }
            _ => self.options.metadata_ttl,
        };
        Entry { attr, ttl }
    }

    /// The entry of the name `latest` of a project: the symlink of its current target,
    /// which the kernel may keep for as long as this mount trusts that target (so it asks
    /// again when the mount reads it again: a move by another tool or mount shows within
    /// `metadata_ttl`).
    pub(in crate::fs) async fn latest_entry(&self, project: String) -> FsResult<Entry> {
        let (version, left) = self.namespace.latest_for(&project).await?;
        let mut entry = self
            .entry(Node::Latest(project, Some(version.to_string())))
            .await?;
        entry.ttl = left;
        Ok(entry)
    }

    pub(in crate::fs) async fn entry(&self, node: Node) -> FsResult<Entry> {
        // The inode is given only once the node is found: a name that is not there
        // (any user may look up as many as they like) costs no entry in the table.
        let inode = 0;
        let mut attr = match &node {
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
            Node::Latest(_, Some(target)) => {
                self.ownership
                    .symlink(inode, target.len() as u64, self.mounted_at)
            }
            Node::Latest(project, None) => {
                let target = self.namespace.latest_of(project).await?.to_string();
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
                    let pinned = self.namespace.pinned(project, version).await?;
                    self.ownership.directory(inode, pinned.mtime)
                }
            },
            Node::File(project, version) => match self.staging_view(project, version) {
                Some(view) => {
                    let file = view
                        .file
                        .ok_or_else(|| FsError::not_found("the staging file is gone"))?;
                    let mut attr = self.ownership.staging_file(inode, file.size, file.mtime);
                    // Shown as its writer's, so that the writer's own `chmod` and
                    // `touch` (rsync, cp -p) pass the kernel's check.
                    if let Some(by) = &file.by {
                        attr.uid = by.uid;
                    }
                    attr
                }
                None => {
                    let pinned = self.namespace.pinned(project, version).await?;
                    self.ownership.file(inode, pinned.copies.size, pinned.mtime)
                }
            },
        };
        attr.inode = self.namespace.inode_of(&node);
        Ok(self.entry_for(&node, attr))
    }

    pub async fn getattr(&self, inode: u64) -> FsResult<Entry> {
        self.entry(self.node(inode)?).await
    }

    pub fn statfs(&self) -> StatFs {
        let block = u64::from(STATFS_BLOCK_SIZE);
        let (blocks, free_blocks) = match &self.staging {
            Some(staging) => {
                let room = staging.room();
                (room.limit / block, room.writable() / block)
            }
            None => (0, 0),
        };
        StatFs {
            blocks,
            free_blocks,
            available_blocks: free_blocks,
            files: self.namespace.inodes() as u64,
            block_size: STATFS_BLOCK_SIZE,
            name_max: 255,
        }
    }
}
