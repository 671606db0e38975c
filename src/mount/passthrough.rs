//! FUSE passthrough: opens the model offers a checked cache file for (`Opened::backing`)
//! are answered so that the kernel reads that file itself, at local-disk speed, and
//! their reads never reach the daemon. Everything else, and every open when the kernel
//! did not grant passthrough at `init` or refused the file, is answered as before.
//!
//! The kernel allows one way of reading per inode at a time: while a handle of an inode
//! is passed through, every other open of it must be passed through to the same backing
//! file, and one opened through the page cache keeps passthrough out until it closes
//! (a wrong answer is EIO to the opener). So `Opens` keeps, per inode, the backing in
//! use and how many handles read through the page cache: an open that may be passed
//! through joins the backing in use, or starts one when no cached handle is open. A
//! reader the model offers no file for (the cache evicted the file and fetches it again)
//! joins the backing in use too: an inode is one version, whose bytes never change, and
//! the backing holds them checked. A writer beside a backing is refused (EBUSY) rather
//! than passed through to a cache file. A backing lives as long as the handles passed
//! through to it: the last `release` closes it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use fuser::{BackingId, FileHandle, FopenFlags, InitFlags, KernelConfig, ReplyOpen};

use super::translate::open_flags;
use crate::fs::Opened;

/// How one handle was opened.
#[derive(Debug)]
enum Mode<B> {
    /// The kernel reads the backing file.
    Passthrough(Arc<B>),
    /// Reads reach the daemon; the kernel may keep pages.
    Cached,
}

#[derive(Debug)]
struct InodeOpens<B> {
    backing: Weak<B>,
    cached: usize,
}

/// The handles open per inode, and how each was opened. `B` is the kernel's backing
/// (a `BackingId`; a stand-in in the tests).
#[derive(Debug)]
struct Opens<B> {
    handles: HashMap<u64, (u64, Mode<B>)>,
    inodes: HashMap<u64, InodeOpens<B>>,
}

impl<B> Default for Opens<B> {
    fn default() -> Self {
        Opens {
            handles: HashMap::new(),
            inodes: HashMap::new(),
        }
    }
}

impl<B> Opens<B> {
    /// Records how `handle` of `inode` is opened: passed through when `offered` (the
    /// model offers a backing file and the kernel granted passthrough) and the kernel
    /// will allow it, `start` making the backing when none is in use (`None`: it could
    /// not, and the handle reads through the daemon). `None` for a writer beside a
    /// backing in use, which the kernel would refuse.
    fn open(
        &mut self,
        handle: u64,
        inode: u64,
        offered: bool,
        write: bool,
        start: impl FnOnce() -> Option<B>,
    ) -> Option<&Mode<B>> {
        let opens = self.inodes.entry(inode).or_insert(InodeOpens {
            backing: Weak::new(),
            cached: 0,
        });
        let in_use = opens.backing.upgrade();
        let mode = match in_use {
            Some(_) if write => return None,
            Some(backing) => Mode::Passthrough(backing),
            None if offered && opens.cached == 0 => match start() {
                Some(backing) => {
                    let backing = Arc::new(backing);
                    opens.backing = Arc::downgrade(&backing);
                    Mode::Passthrough(backing)
                }
                None => Mode::Cached,
            },
            None => Mode::Cached,
        };
        if matches!(mode, Mode::Cached) {
            opens.cached += 1;
        }
        self.handles.insert(handle, (inode, mode));
        Some(&self.handles[&handle].1)
    }

    /// Forgets a released handle; the last handle passed through to a backing drops it.
    fn release(&mut self, handle: u64) {
        let Some((inode, mode)) = self.handles.remove(&handle) else {
            return;
        };
        let Some(opens) = self.inodes.get_mut(&inode) else {
            return;
        };
        if matches!(mode, Mode::Cached) {
            opens.cached = opens.cached.saturating_sub(1);
        }
        drop(mode);
        if opens.cached == 0 && opens.backing.strong_count() == 0 {
            self.inodes.remove(&inode);
        }
    }
}

/// Passthrough for one mount: whether it is on, and the handles it answered.
pub(super) struct Passthrough {
    /// The model may offer backing files, and the kernel granted passthrough.
    on: AtomicBool,
    /// Why a backing file was refused is logged once.
    refused: AtomicBool,
    opens: Mutex<Opens<BackingId>>,
}

impl Passthrough {
    pub(super) fn new() -> Self {
        Passthrough {
            on: AtomicBool::new(false),
            refused: AtomicBool::new(false),
            opens: Mutex::new(Opens::default()),
        }
    }

    /// Asks the kernel for passthrough when the model may use it (`wanted`).
    pub(super) fn init(&self, config: &mut KernelConfig, wanted: bool) {
        if !wanted {
            return;
        }
        // Depth 1: the cache folder is on a disk filesystem (not overlayfs), and this
        // mount may still be a lower layer of an overlayfs.
        let granted = config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(1).is_ok();
        if granted {
            tracing::debug!("the kernel grants FUSE passthrough: cached artifacts are read from the cache folder directly");
        } else {
            tracing::info!("the kernel offers no FUSE passthrough: cached artifacts are read through the daemon");
        }
        self.on.store(granted, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Opens<BackingId>> {
        self.opens.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers an open of `inode`: passed through to `opened.backing` when it may be.
    /// False when it refused the open: the caller releases the model's handle.
    pub(super) fn answer(&self, reply: ReplyOpen, inode: u64, opened: Opened, write: bool) -> bool {
        let handle = FileHandle(opened.handle);
        let flags = open_flags(opened.keep_pages);
        let offered = opened.backing.is_some() && self.on.load(Ordering::Relaxed);
        let mut opens = self.lock();
        let mode = opens.open(opened.handle, inode, offered, write, || {
            let file = opened.backing.as_ref()?;
            match reply.open_backing(file) {
                Ok(backing) => Some(backing),
                Err(e) => {
                    if !self.refused.swap(true, Ordering::Relaxed) {
                        tracing::info!("FUSE passthrough refused the cache file ({e}): cached artifacts are read through the daemon when so");
                    }
                    None
                }
            }
        });
        match mode {
            None => {
                tracing::debug!(inode, "refused a writer beside readers passed through");
                reply.error(fuser::Errno::EBUSY);
                return false;
            }
            Some(Mode::Passthrough(backing)) => {
                tracing::debug!(inode, handle = opened.handle, "opened with passthrough");
                // The kernel refuses (EIO) a passthrough open with FOPEN_KEEP_CACHE: the
                // pages are the backing file's, never the mount's.
                reply.opened_passthrough(handle, FopenFlags::empty(), backing)
            }
            Some(Mode::Cached) => reply.opened(handle, flags),
        }
        true
    }

    /// A handle opened by `create`: read through the page cache.
    pub(super) fn created(&self, handle: u64, inode: u64) {
        self.lock().open(handle, inode, false, true, || None);
    }

    pub(super) fn release(&self, handle: u64) {
        self.lock().release(handle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Backings are numbers here: which one a handle was passed through to.
    fn opens() -> Opens<u32> {
        Opens::default()
    }

    fn passed(mode: Option<&Mode<u32>>) -> Option<u32> {
        match mode {
            Some(Mode::Passthrough(backing)) => Some(**backing),
            _ => None,
        }
    }

    fn cached(mode: Option<&Mode<u32>>) -> bool {
        matches!(mode, Some(Mode::Cached))
    }

    #[test]
    fn opens_of_one_inode_share_one_backing_which_goes_with_the_last() {
        let mut o = opens();
        assert_eq!(passed(o.open(1, 7, true, false, || Some(10))), Some(10));
        // A second backing would be refused by the kernel: the first is joined.
        assert_eq!(passed(o.open(2, 7, true, false, || Some(11))), Some(10));
        o.release(1);
        assert_eq!(passed(o.open(3, 7, true, false, || Some(12))), Some(10));
        o.release(2);
        o.release(3);
        assert!(o.inodes.is_empty(), "{o:?}");
        assert_eq!(passed(o.open(4, 7, true, false, || Some(13))), Some(13));
    }

    #[test]
    fn a_handle_read_through_the_page_cache_keeps_passthrough_out_until_released() {
        let mut o = opens();
        assert!(cached(o.open(1, 7, false, false, || Some(10))));
        assert!(cached(o.open(2, 7, true, false, || Some(10))));
        o.release(1);
        assert!(cached(o.open(3, 7, true, false, || Some(10))));
        o.release(2);
        o.release(3);
        assert_eq!(passed(o.open(4, 7, true, false, || Some(10))), Some(10));
    }

    #[test]
    fn beside_a_backing_a_reader_joins_it_and_a_writer_is_refused() {
        let mut o = opens();
        assert_eq!(passed(o.open(1, 7, true, false, || Some(10))), Some(10));
        // The model offers nothing (the file is fetched again): the same bytes.
        assert_eq!(passed(o.open(2, 7, false, false, || None)), Some(10));
        assert!(o.open(3, 7, false, true, || None).is_none());
        // Another inode is another story.
        assert!(cached(o.open(4, 8, false, true, || None)));
        for handle in 1..=4 {
            o.release(handle);
        }
        assert!(o.inodes.is_empty() && o.handles.is_empty(), "{o:?}");
    }

    #[test]
    fn a_backing_the_kernel_refuses_falls_back_to_the_daemon() {
        let mut o = opens();
        assert!(cached(o.open(1, 7, true, false, || None)));
        o.release(1);
        o.release(1);
        assert!(o.inodes.is_empty());
        assert_eq!(passed(o.open(2, 7, true, false, || Some(10))), Some(10));
    }
}
