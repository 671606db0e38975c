//! The checks a folder must pass to be the daemon's private folder, made while walking
//! to it from `/` one folder at a time, each opened without following a link and
//! checked before anything in it is used:
//!
//! - a folder on the way must be owned by root or the daemon's user, and not writable
//!   by its group or others unless it has the sticky bit (`/tmp` is fine, a `0777`
//!   folder is not): whoever can write there can move what follows away and put their
//!   own in its place;
//! - a link on the way is followed only when root or the daemon's user made it (the
//!   folder holding it passed the check above), so nobody else can point the daemon
//!   at a folder of their choosing, such as `/etc`;
//! - the folder itself must be the daemon's user's, and not writable by its group or
//!   others (someone may have planted links in it already): it is refused, not
//!   repaired. Missing folders are created `0700`.

use std::collections::VecDeque;
use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use super::syscalls::{c_name, daemon_user, is_kind, last_error, open_at, stat_at, stat_of};

/// The mode a private folder is made with, and tightened to.
pub(super) const FOLDER_MODE: libc::mode_t = 0o700;

/// Why a folder cannot be the daemon's private folder.
#[derive(Debug, thiserror::Error)]
pub enum PrivateDirError {
    #[error("{path} is owned by user {owner}, not by the daemon's user {daemon}: it must be a folder only the daemon's user can change")]
    NotOwned {
        path: PathBuf,
        owner: u32,
        daemon: u32,
    },
    #[error("{path} is writable by its group or others (mode {mode:04o}): anyone who can write there can plant links the daemon would write through; use a folder only the daemon's user can write to (chmod 700)")]
    Writable { path: PathBuf, mode: u32 },
    #[error("{path} is inside {parent}, which {reason}: whoever can write there can move the folder away and put another in its place")]
    UnsafeParent {
        path: PathBuf,
        parent: PathBuf,
        reason: String,
    },
    #[error("{path} is a link owned by user {owner}: the daemon follows only links made by root or its own user")]
    ForeignLink { path: PathBuf, owner: u32 },
    #[error("{path} is not a folder")]
    NotAFolder { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<PrivateDirError> for std::io::Error {
    fn from(e: PrivateDirError) -> Self {
        let kind = match &e {
            PrivateDirError::Io { source, .. } => source.kind(),
            _ => std::io::ErrorKind::PermissionDenied,
        };
        std::io::Error::new(kind, e)
    }
}

/// Why a folder above a private folder would let someone else replace it, if it does.
fn unsafe_parent(stat: &libc::stat) -> Option<String> {
    let owner = stat.st_uid;
    if owner != 0 && owner != daemon_user() {
        return Some(format!("is owned by user {owner}"));
    }
    let mode = stat.st_mode & 0o7777;
    if mode & 0o022 != 0 && mode & libc::S_ISVTX == 0 {
        return Some(format!(
            "is writable by its group or others without the sticky bit (mode {mode:04o})"
        ));
    }
    None
}

fn read_link_at(dir: RawFd, name: &CString) -> std::io::Result<OsString> {
    let mut buffer = vec![0u8; libc::PATH_MAX as usize];
    let n =
        unsafe { libc::readlinkat(dir, name.as_ptr(), buffer.as_mut_ptr().cast(), buffer.len()) };
    if n < 0 {
        return last_error();
    }
    buffer.truncate(n as usize);
    Ok(OsString::from_vec(buffer))
}

/// The names of a path, `.` and `..` kept as names.
fn names_of(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// How many links one path may go through, as the kernel allows.
const MAX_LINKS: usize = 40;

/// Walks to the folder at `path` (creating what is missing) and checks it and every
/// folder on the way; returns it opened, its `stat`, and its path without links.
pub(super) fn open_checked(path: &Path) -> Result<(OwnedFd, libc::stat, PathBuf), PrivateDirError> {
    let io = |at: &Path| {
        let at = at.to_path_buf();
        move |source| PrivateDirError::Io { path: at, source }
    };
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_err(io(path))?.join(path)
    };
    let root = CString::new("/").expect("no NUL");
    let fd = unsafe {
        libc::open(
            root.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io(Path::new("/"))(std::io::Error::last_os_error()));
    }
    // The folders walked so far, `/` first: `..` goes back one.
    let mut walked: Vec<(OwnedFd, PathBuf)> =
        vec![(unsafe { OwnedFd::from_raw_fd(fd) }, PathBuf::from("/"))];
    let mut pending: VecDeque<OsString> = names_of(&absolute).into();
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            if walked.len() > 1 {
                walked.pop();
            }
            continue;
        }
        let (parent, parent_path) = walked.last().expect("/ stays");
        let stat = stat_of(parent.as_raw_fd()).map_err(io(parent_path))?;
        if let Some(reason) = unsafe_parent(&stat) {
            return Err(PrivateDirError::UnsafeParent {
                path: absolute,
                parent: parent_path.clone(),
                reason,
            });
        }
        let c = c_name(&name).map_err(io(parent_path))?;
        let at = parent_path.join(&name);
        let flags = libc::O_RDONLY | libc::O_DIRECTORY;
        let opened = match open_at(parent.as_raw_fd(), &c, flags, 0) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                if unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), FOLDER_MODE) } != 0 {
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EEXIST) {
                        return Err(io(&at)(e));
                    }
                }
                open_at(parent.as_raw_fd(), &c, flags, 0)
            }
            other => other,
        };
        match opened {
            Ok(fd) => walked.push((fd, at)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                let stat = stat_at(parent.as_raw_fd(), &c).map_err(io(&at))?;
                if !is_kind(&stat, libc::S_IFLNK) {
                    return Err(PrivateDirError::NotAFolder { path: at });
                }
                if stat.st_uid != 0 && stat.st_uid != daemon_user() {
                    return Err(PrivateDirError::ForeignLink {
                        path: at,
                        owner: stat.st_uid,
                    });
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(io(&at)(std::io::Error::from_raw_os_error(libc::ELOOP)));
                }
                let target = PathBuf::from(read_link_at(parent.as_raw_fd(), &c).map_err(io(&at))?);
                if target.is_absolute() {
                    walked.truncate(1);
                }
                for name in names_of(&target).into_iter().rev() {
                    pending.push_front(name);
                }
            }
            Err(e) => return Err(io(&at)(e)),
        }
    }
    if walked.len() == 1 {
        return Err(PrivateDirError::NotAFolder {
            path: PathBuf::from("/"),
        });
    }
    let (fd, at) = walked.pop().expect("more than /");
    let stat = stat_of(fd.as_raw_fd()).map_err(io(&at))?;
    if stat.st_uid != daemon_user() {
        return Err(PrivateDirError::NotOwned {
            path: at,
            owner: stat.st_uid,
            daemon: daemon_user(),
        });
    }
    if stat.st_mode & 0o022 != 0 {
        return Err(PrivateDirError::Writable {
            path: at,
            mode: stat.st_mode & 0o7777,
        });
    }
    Ok((fd, stat, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use crate::fs::host::private_dir::PrivateDir;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn folders_writable_by_others_are_refused() {
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("shared");
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o770)).unwrap();
        let e = PrivateDir::open(&path).unwrap_err();
        assert!(matches!(e, PrivateDirError::Writable { .. }), "{e}");
        assert!(
            e.to_string().contains("writable by its group or others"),
            "{e}"
        );
        // Inside a folder others may write to without the sticky bit.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = PrivateDir::open(&path.join("inner")).unwrap_err();
        assert!(matches!(e, PrivateDirError::UnsafeParent { .. }), "{e}");
        assert!(!path.join("inner").exists(), "nothing is created there");
        // With the sticky bit (like /tmp) a private folder inside is fine.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o1777)).unwrap();
        PrivateDir::open(&path.join("inner")).unwrap();
    }

    #[test]
    fn links_on_the_way_are_followed_only_when_root_or_the_daemon_made_them() {
        let scratch = tempfile::tempdir().unwrap();
        let real = scratch.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = scratch.path().join("link");
        std::os::unix::fs::symlink("real", &link).unwrap();
        let dir = PrivateDir::open(&link.join("cache")).unwrap();
        assert_eq!(dir.path(), real.join("cache"));
        assert_eq!(mode(&real.join("cache")), 0o700);
        if daemon_user() == 0 {
            // A link another user made is never followed.
            let c = CString::new(link.as_os_str().as_bytes()).unwrap();
            assert_eq!(unsafe { libc::lchown(c.as_ptr(), 65534, 65534) }, 0);
            let e = PrivateDir::open(&link.join("cache")).unwrap_err();
            assert!(matches!(e, PrivateDirError::ForeignLink { .. }), "{e}");
        }
    }
}
