//! Inode numbers: each name the mount has shown gets a number for the life of the
//! mount, the same every time it is looked up again (so `find`, `rsync` and `tar` see
//! stable inodes). Nodes that exist in the regions are never forgotten: one entry per
//! project, version and file seen is small, bounded by what the store holds, and a
//! stable number is worth more than the memory. Only a symlink made beside `latest`,
//! which any user can make as many of as they like, is forgotten when it goes (see
//! `calls::latest`); numbers are never reused, so a forgotten one reads as ENOENT.

use std::collections::HashMap;
use std::sync::Mutex;

/// The root folder's inode, as FUSE expects.
pub const ROOT_INODE: u64 = 1;

/// What an inode is, in the user's words.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    Root,
    /// `MOUNT/{project}/`
    Project(String),
    /// `MOUNT/{project}/latest` while it points at a version: (project, version). Each
    /// target is a symlink of its own, as `ln -sfn` makes on a local disk, so what the
    /// kernel keeps of one (its target, its size) never changes; when `latest` moves,
    /// the name leads to another. `None`: the name listed before its target was read
    /// (only ever a listing's inode number, never a lookup's answer).
    Latest(String, Option<String>),
    /// `MOUNT/{project}/{version}/`
    Version(String, String),
    /// The artifact file in `MOUNT/{project}/{version}/`.
    File(String, String),
    /// A symlink `ln -sfn` made beside `latest` to rename over it: (project, name).
    PendingLink(String, String),
    /// A hidden folder in a staging version (rsync's `.~tmp~`): (project, version, name).
    Subfolder(String, String, String),
}

#[derive(Debug)]
pub struct InodeTable {
    inner: Mutex<Tables>,
}

#[derive(Debug)]
struct Tables {
    by_inode: HashMap<u64, Node>,
    by_node: HashMap<Node, u64>,
    next: u64,
}

impl Default for InodeTable {
    fn default() -> Self {
        let mut by_inode = HashMap::new();
        let mut by_node = HashMap::new();
        by_inode.insert(ROOT_INODE, Node::Root);
        by_node.insert(Node::Root, ROOT_INODE);
        InodeTable {
            inner: Mutex::new(Tables {
                by_inode,
                by_node,
                next: ROOT_INODE + 1,
            }),
        }
    }
}

impl InodeTable {
    /// The inode of a node, allocated on first sight.
    pub fn inode_of(&self, node: &Node) -> u64 {
        let mut tables = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(inode) = tables.by_node.get(node) {
            return *inode;
        }
        let inode = tables.next;
        tables.next += 1;
        tables.by_inode.insert(inode, node.clone());
        tables.by_node.insert(node.clone(), inode);
        inode
    }

    /// Drops a node that no longer exists; its number is not given out again.
    pub fn forget(&self, node: &Node) {
        let mut tables = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(inode) = tables.by_node.remove(node) {
            tables.by_inode.remove(&inode);
        }
    }

    pub fn node_of(&self, inode: u64) -> Option<Node> {
        let tables = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        tables.by_inode.get(&inode).cloned()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|t| t.by_inode.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inodes_are_stable_and_distinct() {
        let table = InodeTable::default();
        let a = table.inode_of(&Node::Project("a".into()));
        let b = table.inode_of(&Node::Version("a".into(), "1.0.0".into()));
        assert_ne!(a, b);
        assert_ne!(a, ROOT_INODE);
        assert_eq!(table.inode_of(&Node::Project("a".into())), a);
        assert_eq!(
            table.node_of(b),
            Some(Node::Version("a".into(), "1.0.0".into()))
        );
        assert_eq!(table.node_of(ROOT_INODE), Some(Node::Root));
        assert_eq!(table.node_of(999), None);
    }

    #[test]
    fn a_forgotten_node_is_gone_and_its_number_never_comes_back() {
        let table = InodeTable::default();
        let link = Node::PendingLink("a".into(), "tmp".into());
        let first = table.inode_of(&link);
        table.forget(&link);
        assert_eq!(table.node_of(first), None);
        assert_eq!(table.len(), 1, "only the root");
        assert_ne!(table.inode_of(&link), first);
    }
}
