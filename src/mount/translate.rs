//! Translations between fuser's types and the model's, for the adapter in `fuse`:
//! attributes, the names the kernel passes (UTF-8, at most 255 bytes), errnos (logged
//! once, here) and the replies of the common shapes.

use std::ffi::OsStr;

use fuser::{Errno, FileAttr, FileType, FopenFlags, Generation, INodeNo, ReplyEmpty, ReplyEntry};

use crate::fs::{Attr, Entry, FileKind, FsError, FsErrorKind};

pub(super) fn errno(operation: &str, error: &FsError) -> Errno {
    let errno = error.errno();
    match error.level() {
        tracing::Level::WARN => tracing::warn!("{operation}: {error} (errno {errno})"),
        tracing::Level::INFO => tracing::info!("{operation}: {error} (errno {errno})"),
        _ => tracing::debug!("{operation}: {error} (errno {errno})"),
    }
    Errno::from_i32(error.errno())
}

/// Answers a call that makes or finds an entry.
pub(super) fn answer_entry(reply: ReplyEntry, operation: &str, result: Result<Entry, FsError>) {
    match result {
        Ok(entry) => reply.entry(&entry.ttl, &file_attr(&entry.attr), Generation(0)),
        Err(e) => reply.error(errno(operation, &e)),
    }
}

/// Answers a call that returns nothing but success or an errno.
pub(super) fn answer_empty(reply: ReplyEmpty, operation: &str, result: Result<(), FsError>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(operation, &e)),
    }
}

pub(super) fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::Directory => FileType::Directory,
        FileKind::RegularFile => FileType::RegularFile,
        FileKind::Symlink => FileType::Symlink,
    }
}

pub(super) fn file_attr(attr: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(attr.inode),
        size: attr.size,
        blocks: attr.size.div_ceil(512),
        atime: attr.mtime,
        mtime: attr.mtime,
        ctime: attr.mtime,
        crtime: attr.mtime,
        kind: file_type(attr.kind),
        perm: attr.perm,
        nlink: attr.nlink,
        uid: attr.uid,
        gid: attr.gid,
        rdev: 0,
        blksize: 128 * 1024,
        flags: 0,
    }
}

/// The longest name a folder of the mount holds (what `statfs` says, as on most Linux
/// filesystems); FUSE itself passes names of up to 1,024 bytes.
const NAME_MAX: usize = 255;

/// ENAMETOOLONG before anything else: no region is asked about such a name, and none
/// is made (a longer file name could not be shown back under the same name).
pub(super) fn short_enough(name: &OsStr) -> Result<(), FsError> {
    if name.len() > NAME_MAX {
        return Err(FsError::new(
            FsErrorKind::NameTooLong,
            format!("a name of {} bytes (at most {NAME_MAX})", name.len()),
        ));
    }
    Ok(())
}

/// Names the kernel passes are bytes; ours are UTF-8, so others cannot exist.
pub(super) fn utf8(name: &OsStr) -> Result<String, FsError> {
    short_enough(name)?;
    name.to_str()
        .map(str::to_string)
        .ok_or_else(|| FsError::not_found("a name that is not UTF-8"))
}

/// A new name must be UTF-8 (it becomes an S3 key or a metadata value).
pub(super) fn utf8_new(name: &OsStr) -> Result<String, FsError> {
    short_enough(name)?;
    name.to_str()
        .map(str::to_string)
        .ok_or_else(|| FsError::new(FsErrorKind::Invalid, "names must be UTF-8"))
}

/// An attribute name to set: UTF-8, else of no namespace we keep.
pub(super) fn attribute_name(name: &OsStr) -> Result<String, FsError> {
    name.to_str().map(str::to_string).ok_or_else(|| {
        FsError::new(
            FsErrorKind::Unsupported,
            "an attribute name that is not UTF-8",
        )
    })
}

/// Staged versions never change: the kernel may keep their pages (once what is read
/// of them is known to be what was staged). Staging files change.
pub(super) fn open_flags(keep_pages: bool) -> FopenFlags {
    if keep_pages {
        FopenFlags::FOPEN_KEEP_CACHE
    } else {
        FopenFlags::empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn a_name_over_255_bytes_is_enametoolong_before_the_model_sees_it() {
        let longest = "v".repeat(NAME_MAX);
        assert_eq!(utf8(OsStr::new(&longest)).unwrap(), longest);
        let long = "v".repeat(NAME_MAX + 1);
        let long = OsStr::new(&long);
        for checked in [utf8(long), utf8_new(long)] {
            assert_eq!(checked.unwrap_err().errno(), libc::ENAMETOOLONG);
        }
        // Counted in bytes: 128 two-byte characters are 256 bytes.
        let wide = "é".repeat(128);
        assert_eq!(
            utf8_new(OsStr::new(&wide)).unwrap_err().errno(),
            libc::ENAMETOOLONG
        );
    }

    #[test]
    fn a_name_that_is_not_utf8_is_enoent_to_find_and_einval_to_make() {
        let latin1 = OsStr::from_bytes(b"caf\xe9");
        assert_eq!(utf8(latin1).unwrap_err().errno(), libc::ENOENT);
        assert_eq!(utf8_new(latin1).unwrap_err().errno(), libc::EINVAL);
    }
}
