//! The attributes the mount shows, built in one place: read-only modes on everything
//! staged, sizes and times pinned from the first region that answered; writable modes on
//! staging folders and files.

use std::time::{Duration, SystemTime};

/// What kind of file a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    RegularFile,
    Symlink,
}

/// A node's attributes, free of FUSE types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub inode: u64,
    pub kind: FileKind,
    pub size: u64,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: SystemTime,
}

/// A looked-up entry and how long the kernel may keep it.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub attr: Attr,
    pub ttl: Duration,
}

/// One name in a folder listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub inode: u64,
    pub name: String,
    pub kind: FileKind,
}

/// Owner and modes of everything the mount shows. With `--stagers`, the group is the
/// stagers' and the folders that take changes are writable by it, so that the kernel's
/// own check (`default_permissions`) lets them in as the daemon does.
#[derive(Debug, Clone, Copy)]
pub struct Ownership {
    pub uid: u32,
    pub gid: u32,
    pub group_writes: bool,
}

impl Ownership {
    pub fn directory(&self, inode: u64, mtime: SystemTime) -> Attr {
        Attr {
            inode,
            kind: FileKind::Directory,
            size: 0,
            perm: 0o555,
            nlink: 2,
            uid: self.uid,
            gid: self.gid,
            mtime,
        }
    }

    /// A folder that takes changes: the root and projects of a writable mount, and
    /// staging folders.
    pub fn writable_directory(&self, inode: u64, mtime: SystemTime) -> Attr {
        Attr {
            perm: if self.group_writes { 0o775 } else { 0o755 },
            ..self.directory(inode, mtime)
        }
    }

    /// A staging file, still being written.
    pub fn staging_file(&self, inode: u64, size: u64, mtime: SystemTime) -> Attr {
        Attr {
            perm: 0o644,
            ..self.file(inode, size, mtime)
        }
    }

    pub fn file(&self, inode: u64, size: u64, mtime: SystemTime) -> Attr {
        Attr {
            inode,
            kind: FileKind::RegularFile,
            size,
            perm: 0o444,
            nlink: 1,
            uid: self.uid,
            gid: self.gid,
            mtime,
        }
    }

    pub fn symlink(&self, inode: u64, target_len: u64, mtime: SystemTime) -> Attr {
        Attr {
            inode,
            kind: FileKind::Symlink,
            size: target_len,
            perm: 0o777,
            nlink: 1,
            uid: self.uid,
            gid: self.gid,
            mtime,
        }
    }
}
