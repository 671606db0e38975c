//! A private folder: one that only the daemon's user can change or read, opened once
//! and then used only through its descriptor, so that no name in it is resolved through
//! a link or through a folder someone else could move.
//!
//! The daemon usually runs as root. A folder another user can write to lets that user
//! plant a link at a name the daemon is about to write (root then overwrites the link's
//! target), or move a folder away between two uses of its path. So the folder is
//! created `0700` where missing, refused at start unless it passes `folder_checks`
//! (only its user can change it or move it), and tightened to `0700`.
//!
//! Then every name is opened relative to the folder's descriptor with
//! `O_NOFOLLOW` (`openat`, `mkdirat`, `renameat`, `unlinkat`); new files get `O_CREAT |
//! O_EXCL` and mode `0600`. A file opened is refused unless it is a regular file of the
//! daemon's user linked nowhere else, and is tightened to `0600`: this is how the files
//! an older daemon left readable are tightened, by the module that knows its names.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

pub use super::folder_checks::PrivateDirError;
use super::folder_checks::{open_checked, FOLDER_MODE};
use super::syscalls::{c_name, daemon_user, is_kind, last_error, open_at, stat_at, stat_of};

const FILE_MODE: libc::mode_t = 0o600;

/// How an existing file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
    /// Read and write, creating the file (`0600`) when it is missing.
    ReadWriteCreate,
}

/// A name found in a private folder.
#[derive(Debug, Clone)]
pub struct Found {
    pub name: OsString,
    pub is_folder: bool,
}

/// A folder only the daemon's user can change, used through its descriptor.
#[derive(Debug)]
pub struct PrivateDir {
    fd: OwnedFd,
    path: PathBuf,
}

fn tighten(fd: RawFd, stat: &libc::stat, mode: libc::mode_t) -> std::io::Result<()> {
    if stat.st_mode & 0o7777 != mode && unsafe { libc::fchmod(fd, mode) } != 0 {
        return last_error();
    }
    Ok(())
}

/// A file of the daemon's own: a regular file, its user's, linked only here.
fn check_own_file(file: &File, mode: libc::mode_t) -> std::io::Result<()> {
    let stat = stat_of(file.as_raw_fd())?;
    let refuse = |why: &str| {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            why,
        ))
    };
    if !is_kind(&stat, libc::S_IFREG) {
        return refuse("not a regular file");
    }
    if stat.st_uid != daemon_user() {
        return refuse("owned by another user");
    }
    if stat.st_nlink != 1 {
        return refuse("hard-linked from elsewhere");
    }
    tighten(file.as_raw_fd(), &stat, mode)?;
    // Opened with O_NONBLOCK so that a planted FIFO could not block the open.
    let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
    if flags >= 0 {
        unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) };
    }
    Ok(())
}

/// Opens a file by its full path for appending, the way the daemon's log is opened:
/// never through a link, created `0600`, refused unless the daemon's user owns it.
pub fn open_append_only(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            // ELOOP, or EACCES where the kernel protects links in sticky folders.
            let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink());
            if is_link || e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::new(
                    e.kind(),
                    "it is a link, and the daemon never writes through one",
                )
            } else {
                e
            }
        })?;
    check_own_file(&file, FILE_MODE)?;
    Ok(file)
}

impl PrivateDir {
    /// Opens the folder at `path`, creating it where missing, after the checks of
    /// `folder_checks`; an existing folder is tightened to `0700`.
    pub fn open(path: &Path) -> Result<PrivateDir, PrivateDirError> {
        let (fd, stat, path) = open_checked(path)?;
        tighten(fd.as_raw_fd(), &stat, FOLDER_MODE).map_err(|source| PrivateDirError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(PrivateDir { fd, path })
    }

    /// What the user sees this folder as, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The subfolder `name`, created `0700` when asked and missing.
    pub fn folder(&self, name: impl AsRef<OsStr>, create: bool) -> std::io::Result<PrivateDir> {
        let name = name.as_ref();
        if create {
            let c = c_name(name)?;
            if unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), FOLDER_MODE) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(e);
                }
            }
        }
        self.open_folder(name)
    }

    fn open_folder(&self, name: &OsStr) -> std::io::Result<PrivateDir> {
        let fd = open_at(
            self.fd.as_raw_fd(),
            &c_name(name)?,
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        )?;
        let stat = stat_of(fd.as_raw_fd())?;
        if stat.st_uid != daemon_user() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "owned by another user",
            ));
        }
        tighten(fd.as_raw_fd(), &stat, FOLDER_MODE)?;
        Ok(PrivateDir {
            fd,
            path: self.path.join(name),
        })
    }

    /// What the folder holds (not `.` and `..`), never following a link.
    pub fn entries(&self) -> std::io::Result<Vec<Found>> {
        let fd = open_at(
            self.fd.as_raw_fd(),
            &CString::new(".").expect("no NUL"),
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        )?;
        let stream = unsafe { libc::fdopendir(fd.as_raw_fd()) };
        if stream.is_null() {
            return last_error();
        }
        // The stream owns the descriptor now.
        std::mem::forget(fd);
        let mut names = Vec::new();
        loop {
            let entry = unsafe { libc::readdir(stream) };
            if entry.is_null() {
                break;
            }
            let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) };
            let bytes = name.to_bytes();
            if bytes != b"." && bytes != b".." {
                names.push(OsString::from_vec(bytes.to_vec()));
            }
        }
        unsafe { libc::closedir(stream) };
        let mut found = Vec::with_capacity(names.len());
        for name in names {
            let stat = match stat_at(self.fd.as_raw_fd(), &c_name(&name)?) {
                Ok(stat) => stat,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            found.push(Found {
                name,
                is_folder: is_kind(&stat, libc::S_IFDIR),
            });
        }
        Ok(found)
    }

    /// The size of the regular file `name`, `None` when there is none.
    pub fn file_size(&self, name: impl AsRef<OsStr>) -> std::io::Result<Option<u64>> {
        match stat_at(self.fd.as_raw_fd(), &c_name(name.as_ref())?) {
            Ok(stat) if is_kind(&stat, libc::S_IFREG) => Ok(Some(stat.st_size as u64)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens the file `name`; a link, a file that is not the daemon's user's own or one
    /// hard-linked from elsewhere is refused.
    pub fn open_file(&self, name: impl AsRef<OsStr>, access: Access) -> std::io::Result<File> {
        let flags = match access {
            Access::Read => libc::O_RDONLY,
            Access::ReadWrite => libc::O_RDWR,
            Access::ReadWriteCreate => libc::O_RDWR | libc::O_CREAT,
        };
        let fd = open_at(
            self.fd.as_raw_fd(),
            &c_name(name.as_ref())?,
            flags | libc::O_NONBLOCK,
            FILE_MODE,
        )?;
        let file = File::from(fd);
        check_own_file(&file, FILE_MODE)?;
        Ok(file)
    }

    /// Creates `name` afresh (read and write, `0600`): whatever had that name is
    /// removed first, and the create refuses any name that appears meanwhile.
    pub fn create_new(&self, name: impl AsRef<OsStr>) -> std::io::Result<File> {
        let name = name.as_ref();
        match self.remove_file(name) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let fd = open_at(
            self.fd.as_raw_fd(),
            &c_name(name)?,
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
            FILE_MODE,
        )?;
        let file = File::from(fd);
        // The umask may have taken more than it should; never less than 0600 matters
        // less than never more.
        check_own_file(&file, FILE_MODE)?;
        Ok(file)
    }

    /// Replaces `name` atomically and durably: `{name}.new` written and synced, renamed
    /// over `name`, the folder synced. Callers writing the same name at once must take
    /// turns (they share `{name}.new`).
    pub fn replace(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let temporary = format!("{name}.new");
        let mut file = self.create_new(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        self.rename(&temporary, name)?;
        self.sync()
    }

    /// Renames `from` to `to` inside this folder.
    pub fn rename(&self, from: impl AsRef<OsStr>, to: impl AsRef<OsStr>) -> std::io::Result<()> {
        let (from, to) = (c_name(from.as_ref())?, c_name(to.as_ref())?);
        let fd = self.fd.as_raw_fd();
        if unsafe { libc::renameat(fd, from.as_ptr(), fd, to.as_ptr()) } != 0 {
            return last_error();
        }
        Ok(())
    }

    /// Removes the name `name` (a link itself, never what it points to).
    pub fn remove_file(&self, name: impl AsRef<OsStr>) -> std::io::Result<()> {
        let name = c_name(name.as_ref())?;
        if unsafe { libc::unlinkat(self.fd.as_raw_fd(), name.as_ptr(), 0) } != 0 {
            return last_error();
        }
        Ok(())
    }

    /// Removes the empty subfolder `name`.
    pub fn remove_folder(&self, name: impl AsRef<OsStr>) -> std::io::Result<()> {
        let name = c_name(name.as_ref())?;
        if unsafe { libc::unlinkat(self.fd.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) } != 0 {
            return last_error();
        }
        Ok(())
    }

    /// Removes the subfolder `name` and everything in it, never following a link.
    pub fn remove_all(&self, name: impl AsRef<OsStr>) -> std::io::Result<()> {
        let name = name.as_ref();
        let folder = match self.open_folder(name) {
            Ok(folder) => folder,
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return self.remove_file(name),
            Err(e) => return Err(e),
        };
        for found in folder.entries()? {
            if found.is_folder {
                folder.remove_all(&found.name)?;
            } else {
                folder.remove_file(&found.name)?;
            }
        }
        self.remove_folder(name)
    }

    /// Makes the folder's own changes (creates, renames) durable.
    pub fn sync(&self) -> std::io::Result<()> {
        if unsafe { libc::fsync(self.fd.as_raw_fd()) } != 0 {
            return last_error();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn folders_are_created_private_and_existing_ones_tightened() {
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("a/b");
        let dir = PrivateDir::open(&path).unwrap();
        assert_eq!(mode(&scratch.path().join("a")), 0o700);
        assert_eq!(mode(&path), 0o700);
        dir.folder("sub", true).unwrap();
        dir.open_file("f", Access::ReadWriteCreate).unwrap();
        assert_eq!(mode(&path.join("sub")), 0o700);
        assert_eq!(mode(&path.join("f")), 0o600);
        for (name, bits) in [("", 0o755), ("sub", 0o755), ("f", 0o644)] {
            let p = path.join(name);
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(bits)).unwrap();
        }
        drop(dir);
        let dir = PrivateDir::open(&path).unwrap();
        assert_eq!(mode(&path), 0o700);
        dir.folder("sub", false).unwrap();
        dir.open_file("f", Access::Read).unwrap();
        assert_eq!(mode(&path.join("sub")), 0o700);
        assert_eq!(mode(&path.join("f")), 0o600);
    }

    #[test]
    fn links_are_never_followed() {
        let scratch = tempfile::tempdir().unwrap();
        let target = scratch.path().join("target");
        std::fs::write(&target, b"precious").unwrap();
        let path = scratch.path().join("private");
        let dir = PrivateDir::open(&path).unwrap();
        for name in ["data", "state.json.new", "sub"] {
            std::os::unix::fs::symlink(&target, path.join(name)).unwrap();
        }
        assert_eq!(
            dir.open_file("data", Access::ReadWriteCreate)
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ELOOP)
        );
        dir.replace("state.json", b"{}").unwrap();
        assert!(dir.folder("sub", true).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        assert_eq!(std::fs::read(path.join("state.json")).unwrap(), b"{}");
        // Hard links to files elsewhere are refused, and left as they were.
        std::fs::remove_file(path.join("data")).unwrap();
        std::fs::hard_link(&target, path.join("data")).unwrap();
        assert!(dir.open_file("data", Access::ReadWrite).is_err());
        assert_eq!(mode(&target), 0o644);
    }

    #[test]
    fn log_files_are_opened_without_following_links() {
        let scratch = tempfile::tempdir().unwrap();
        let target = scratch.path().join("target");
        std::fs::write(&target, b"precious").unwrap();
        let log = scratch.path().join("log");
        std::os::unix::fs::symlink(&target, &log).unwrap();
        let e = open_append_only(&log).unwrap_err();
        assert!(e.to_string().contains("link"), "{e}");
        std::fs::remove_file(&log).unwrap();
        let mut file = open_append_only(&log).unwrap();
        file.write_all(b"line\n").unwrap();
        assert_eq!(mode(&log), 0o600);
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    }
}
