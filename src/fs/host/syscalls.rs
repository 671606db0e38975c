//! The Linux calls the private folder rests on, each with its error as an
//! `io::Error`: names checked to be one name inside a folder, `openat` that never
//! follows a link, `fstat` and `fstatat` without following one.

use std::ffi::{CString, OsStr};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

pub(super) fn daemon_user() -> u32 {
    unsafe { libc::geteuid() }
}

pub(super) fn last_error<T>() -> std::io::Result<T> {
    Err(std::io::Error::last_os_error())
}

/// One name inside a folder: never empty, `.`, `..`, or with a `/` in it.
pub(super) fn c_name(name: &OsStr) -> std::io::Result<CString> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{name:?} is not a name inside a folder"),
        ));
    }
    CString::new(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

pub(super) fn open_at(
    dir: RawFd,
    name: &CString,
    flags: i32,
    mode: libc::mode_t,
) -> std::io::Result<OwnedFd> {
    let fd = unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            libc::c_uint::from(mode),
        )
    };
    if fd < 0 {
        return last_error();
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(super) fn stat_of(fd: RawFd) -> std::io::Result<libc::stat> {
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return last_error();
    }
    Ok(stat)
}

pub(super) fn stat_at(dir: RawFd, name: &CString) -> std::io::Result<libc::stat> {
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatat(dir, name.as_ptr(), &mut stat, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return last_error();
    }
    Ok(stat)
}

pub(super) fn is_kind(stat: &libc::stat, kind: libc::mode_t) -> bool {
    stat.st_mode & libc::S_IFMT == kind
}
