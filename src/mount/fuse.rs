//! The FUSE adapter: translates fuser's calls into calls on `ArtifactFs` and its
//! answers back, nothing more. Calls that may touch the network are spawned on the tokio
//! runtime and answered from there, so the session threads never wait on a region.
//! Errnos come from `FsError::errno`; failures worth a line are logged here, once.
//! Every change is checked against `Access` (who may change this mount) before it
//! reaches the model, whatever the kernel checked already.

use std::ffi::OsStr;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use fuser::{
    AccessFlags, FileHandle, FileType, Filesystem, Generation, INodeNo, KernelConfig, LockOwner,
    OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
    WriteFlags,
};

use tracing::Instrument;

use super::access::Access;
use super::folders::Folders;
use super::invalidations::Invalidations;
use super::passthrough::Passthrough;
use super::translate::{
    answer_empty, answer_entry, attribute_name, errno, file_attr, file_type, open_flags, utf8,
    utf8_new,
};
use crate::fs::{ArtifactFs, AttrChange, Caller, FsError, FsErrorKind, SetMode, XattrReply};

pub struct FuseAdapter {
    fs: Arc<ArtifactFs>,
    runtime: tokio::runtime::Handle,
    access: Access,
    passthrough: Arc<Passthrough>,
    folders: Arc<Folders>,
    invalidations: Arc<Invalidations>,
}

impl FuseAdapter {
    pub fn new(
        fs: Arc<ArtifactFs>,
        runtime: tokio::runtime::Handle,
        access: Access,
        invalidations: Arc<Invalidations>,
    ) -> Self {
        FuseAdapter {
            fs,
            runtime,
            access,
            passthrough: Arc::new(Passthrough::new()),
            folders: Arc::new(Folders::new()),
            invalidations,
        }
    }

    /// The caller of a change, once `Access` allowed it (EACCES, logged, otherwise).
    fn changer(&self, req: &Request, what: &str) -> Result<Caller, FsError> {
        let caller = Caller::new(req.uid(), req.gid(), req.pid());
        self.access.check(&caller, what)?;
        Ok(caller)
    }

    /// The same check on the hot path of `write` (no `/proc` read for an owner).
    fn may_write(&self, req: &Request) -> Result<(), FsError> {
        let caller = Caller::new(req.uid(), req.gid(), req.pid());
        self.access.check(&caller, "writing")
    }

    fn spawn<F>(&self, work: impl FnOnce(Arc<ArtifactFs>) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.runtime.spawn(work(Arc::clone(&self.fs)));
    }

    /// Like `spawn`, for a change: every line it logs names the caller (who staged,
    /// moved `latest`, set metadata or yanked).
    fn spawn_as<F>(&self, caller: Caller, work: impl FnOnce(Arc<ArtifactFs>) -> F + Send + 'static)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let fs = Arc::clone(&self.fs);
        self.runtime.spawn(async move {
            // The caller's command is read here, on the runtime, not the session thread.
            let span = tracing::info_span!("change", by = %caller.named());
            work(fs).instrument(span).await
        });
    }
}

/// The caller of a change, or the reply's errno and return when `Access` refuses it.
macro_rules! allowed {
    ($adapter:expr, $req:expr, $reply:expr, $operation:expr) => {
        match $adapter.changer($req, $operation) {
            Ok(caller) => caller,
            Err(e) => return $reply.error(errno($operation, &e)),
        }
    };
}

impl Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Let the kernel read ahead as far as it will; we stream behind it.
        let _ = config
            .set_max_readahead(u32::MAX)
            .or_else(|max| config.set_max_readahead(max));
        let _ = config.set_max_background(64);
        // Large writes: fewer round trips when `cp` stages a big file.
        let _ = config
            .set_max_write(1 << 20)
            .or_else(|max| config.set_max_write(max));
        self.passthrough.init(config, self.fs.may_pass_through());
        // The kernel keeps each symlink's target: a `latest` is a symlink per target
        // (see `crate::fs::Node::Latest`), so what it keeps never goes stale.
        if config
            .add_capabilities(fuser::InitFlags::FUSE_CACHE_SYMLINKS)
            .is_err()
        {
            tracing::debug!("the kernel does not keep symlink targets: each readlink asks");
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        tracing::debug!(parent = parent.0, ?name, "lookup");
        let name = utf8(name);
        self.spawn(|fs| async move {
            let result = async { fs.lookup(parent.0, &name?).await }.await;
            answer_entry(reply, "lookup", result);
        });
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        tracing::debug!(inode = ino.0, "getattr");
        self.spawn(|fs| async move {
            match fs.getattr(ino.0).await {
                Ok(entry) => reply.attr(&entry.ttl, &file_attr(&entry.attr)),
                Err(e) => reply.error(errno("getattr", &e)),
            }
        });
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = AttrChange {
            size,
            mtime: mtime.map(|t| match t {
                TimeOrNow::SpecificTime(time) => time,
                TimeOrNow::Now => SystemTime::now(),
            }),
            other: mode.is_some() || uid.is_some() || gid.is_some() || atime.is_some(),
        };
        let caller = if change.size.is_some() || change.mtime.is_some() || change.other {
            Some(allowed!(self, req, reply, "setattr"))
        } else {
            None
        };
        let pid = req.pid();
        let work = move |fs: Arc<ArtifactFs>| async move {
            match fs.setattr(ino.0, change, pid).await {
                Ok(entry) => reply.attr(&entry.ttl, &file_attr(&entry.attr)),
                Err(e) => reply.error(errno("setattr", &e)),
            }
        };
        match caller {
            Some(caller) => self.spawn_as(caller, work),
            None => self.spawn(work),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        tracing::debug!(inode = ino.0, "readlink");
        self.spawn(|fs| async move {
            match fs.readlink(ino.0).await {
                Ok(target) => reply.data(target.as_bytes()),
                Err(e) => reply.error(errno("readlink", &e)),
            }
        });
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let caller = allowed!(self, req, reply, "mknod");
        // GNU tar makes regular files with mknod when it will set their attributes:
        // that is a create; devices, FIFOs and sockets have no place in a version.
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(errno("mknod", &self.fs.refuse_change("creating a node")));
        }
        let name = utf8_new(name);
        self.spawn_as(caller.clone(), move |fs| async move {
            let result = async { fs.mknod_file(parent.0, &name?, &caller).await }.await;
            answer_entry(reply, "mknod", result);
        });
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let caller = allowed!(self, req, reply, "mkdir");
        let name = utf8_new(name);
        self.spawn_as(caller, move |fs| async move {
            let result = async { fs.mkdir(parent.0, &name?).await }.await;
            answer_entry(reply, "mkdir", result);
        });
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let caller = allowed!(self, req, reply, "unlink");
        let (name, pid) = (utf8(name), req.pid());
        let invalidations = Arc::clone(&self.invalidations);
        self.spawn_as(caller, move |fs| async move {
            let since = invalidations.queued();
            let result = async { fs.unlink(parent.0, &name?, pid).await }.await;
            // A yank of the latest version moved `latest` back.
            invalidations.told_since(since).await;
            answer_empty(reply, "unlink", result);
        });
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let caller = allowed!(self, req, reply, "rmdir");
        let name = utf8(name);
        self.spawn_as(caller, move |fs| async move {
            let result = async { fs.rmdir(parent.0, &name?).await }.await;
            answer_empty(reply, "rmdir", result);
        });
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let caller = allowed!(self, req, reply, "symlink");
        let names = utf8(link_name).and_then(|name| Ok((name, utf8(target.as_os_str())?)));
        self.spawn_as(caller, move |fs| async move {
            let result = async {
                let (name, target) = names?;
                fs.symlink(parent.0, &name, &target).await
            }
            .await;
            answer_entry(reply, "symlink", result);
        });
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let caller = allowed!(self, req, reply, "rename");
        let names = utf8(name).and_then(|name| Ok((name, utf8(newname)?)));
        let pid = req.pid();
        let invalidations = Arc::clone(&self.invalidations);
        self.spawn_as(caller, move |fs| async move {
            let since = invalidations.queued();
            let result = async {
                let (name, newname) = names?;
                fs.rename(parent.0, &name, newparent.0, &newname, pid).await
            }
            .await;
            // The rename that stages a file (rsync's) may move `latest`; one over
            // `latest` itself tells nothing (the kernel moves the name by itself).
            invalidations.told_since(since).await;
            answer_empty(reply, "rename", result);
        });
    }

    fn link(
        &self,
        req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        allowed!(self, req, reply, "link");
        reply.error(errno("link", &self.fs.refuse_change("linking")));
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let truncate = flags.0 & libc::O_TRUNC != 0;
        let write = flags.acc_mode() != OpenAccMode::O_RDONLY || truncate;
        let passthrough = Arc::clone(&self.passthrough);
        if !write {
            // A reader: no /proc read, no attribution.
            let reader = Caller::new(req.uid(), req.gid(), req.pid());
            return self.spawn(|fs| async move {
                match fs.open(ino.0, false, false, &reader).await {
                    Ok(opened) => {
                        let handle = opened.handle;
                        if !passthrough.answer(reply, ino.0, opened, false) {
                            fs.release(handle);
                        }
                    }
                    Err(e) => reply.error(errno("open", &e)),
                }
            });
        }
        let caller = allowed!(self, req, reply, "open for writing");
        self.spawn_as(caller.clone(), move |fs| async move {
            match fs.open(ino.0, true, truncate, &caller).await {
                Ok(opened) => {
                    let handle = opened.handle;
                    if !passthrough.answer(reply, ino.0, opened, true) {
                        fs.release(handle);
                    }
                }
                Err(e) => reply.error(errno("open", &e)),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.spawn(|fs| async move {
            let started = std::time::Instant::now();
            let result = fs.read(fh.0, offset, size).await;
            tracing::trace!(
                offset,
                size,
                elapsed_us = started.elapsed().as_micros() as u64,
                "read"
            );
            match result {
                Ok(bytes) => reply.data(&bytes),
                Err(e) => reply.error(errno("read", &e)),
            }
        });
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        if let Err(e) = self.may_write(req) {
            return reply.error(errno("write", &e));
        }
        let (data, pid) = (data.to_vec(), req.pid());
        self.spawn(|fs| async move {
            match fs.write(fh.0, offset, &data, pid).await {
                Ok(written) => reply.written(written),
                Err(e) => reply.error(errno("write", &e)),
            }
        });
    }

    fn flush(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // The errno of the stage that runs here is what close() returns.
        let caller = Caller::new(req.uid(), req.gid(), req.pid());
        let pid = caller.pid;
        let invalidations = Arc::clone(&self.invalidations);
        self.spawn_as(caller, move |fs| async move {
            let since = invalidations.queued();
            let result = fs.flush(fh.0, pid).await;
            // A stage moves `latest`: the caller's next readlink sees it.
            invalidations.told_since(since).await;
            answer_empty(reply, "close", result);
        });
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.fs.release(fh.0);
        self.passthrough.release(fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.spawn(|fs| async move {
            answer_empty(reply, "fsync", fs.fsync(fh.0).await);
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // The listing fetched here (when the model's has expired) serves the `readdir`s
        // that follow; `Folders` says whether the kernel may keep what it read before.
        // A listing that cannot be made fails the open with its errno (EIO when too few
        // regions answer), as the `readdir` would, without asking the regions twice.
        let folders = Arc::clone(&self.folders);
        self.spawn(|fs| async move {
            match fs.listing(ino.0).await {
                Ok(listing) => reply.opened(FileHandle(0), folders.open_flags(ino.0, &listing)),
                Err(e) => reply.error(errno("opendir", &e)),
            }
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        tracing::debug!(inode = ino.0, offset, "readdir");
        self.spawn(|fs| async move {
            // The shared listing: each call (a page of `offset..`) copies only its page.
            let entries = match fs.listing(ino.0).await {
                Ok(entries) => entries,
                Err(e) => return reply.error(errno("readdir", &e)),
            };
            let dots = [
                (ino.0, ".", FileType::Directory),
                (ino.0, "..", FileType::Directory),
            ];
            let all = dots.into_iter().chain(
                entries
                    .iter()
                    .map(|e| (e.inode, e.name.as_str(), file_type(e.kind))),
            );
            for (index, (inode, name, kind)) in all.enumerate().skip(offset as usize) {
                if reply.add(INodeNo(inode), index as u64 + 1, kind, name) {
                    break;
                }
            }
            reply.ok();
        });
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let stat = self.fs.statfs();
        reply.statfs(
            stat.blocks,
            stat.free_blocks,
            stat.available_blocks,
            stat.files,
            0,
            stat.block_size,
            stat.name_max,
            stat.block_size,
        );
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let caller = allowed!(self, req, reply, "setxattr");
        let name = attribute_name(name);
        let value = value.to_vec();
        let mode = if flags & libc::XATTR_CREATE != 0 {
            SetMode::Create
        } else if flags & libc::XATTR_REPLACE != 0 {
            SetMode::Replace
        } else {
            SetMode::Any
        };
        let pid = req.pid();
        self.spawn_as(caller, move |fs| async move {
            let result = async { fs.setxattr(ino.0, &name?, &value, mode, pid).await }.await;
            answer_empty(reply, "setxattr", result);
        });
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let name = utf8(name);
        self.spawn(|fs| async move {
            let result = match name {
                Ok(name) => fs.getxattr(ino.0, &name, size).await,
                Err(_) => Err(FsError::new(
                    FsErrorKind::NoAttribute,
                    "a name that is not UTF-8",
                )),
            };
            match result {
                Ok(XattrReply::Size(size)) => reply.size(size),
                Ok(XattrReply::Data(data)) => reply.data(&data),
                Err(e) => reply.error(errno("getxattr", &e)),
            }
        });
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.spawn(|fs| async move {
            match fs.listxattr(ino.0, size).await {
                Ok(XattrReply::Size(size)) => reply.size(size),
                Ok(XattrReply::Data(data)) => reply.data(&data),
                Err(e) => reply.error(errno("listxattr", &e)),
            }
        });
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let caller = allowed!(self, req, reply, "removexattr");
        let (name, pid) = (attribute_name(name), req.pid());
        self.spawn_as(caller, move |fs| async move {
            let result = async { fs.removexattr(ino.0, &name?, pid).await }.await;
            answer_empty(reply, "removexattr", result);
        });
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let caller = allowed!(self, req, reply, "create");
        let name = utf8_new(name);
        let passthrough = Arc::clone(&self.passthrough);
        self.spawn_as(caller.clone(), move |fs| async move {
            let result = async { fs.create(parent.0, &name?, &caller).await }.await;
            if let Ok((entry, handle)) = &result {
                passthrough.created(*handle, entry.attr.inode);
            }
            match result {
                Ok((entry, handle)) => reply.created(
                    &entry.ttl,
                    &file_attr(&entry.attr),
                    Generation(0),
                    FileHandle(handle),
                    open_flags(false),
                ),
                Err(e) => reply.error(errno("create", &e)),
            }
        });
    }
}
