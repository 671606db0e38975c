//! The temporary file a repair copies a single-part object through. The bytes may be
//! anyone's artifact, and the temporary folder (`TMPDIR`, else `/tmp`) is shared: so the
//! file lives in a folder of its own, made by `mkdtemp` (mode `0700`, a new name that
//! nothing else can have planted or linked), and is created in it with `O_CREAT |
//! O_EXCL | O_NOFOLLOW`, mode `0600`. Both go when the `Scratch` is dropped: on success,
//! on every error returned early, and when the copy's future is dropped half way.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The prefix of the folder's name in the temporary folder.
const PREFIX: &str = "startifact-repair-";
/// The file's name inside it.
const FILE_NAME: &str = "object";

/// A private folder holding one temporary file; both removed when dropped.
#[derive(Debug)]
pub(super) struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Makes the folder in `parent` and the empty file in it, open for writing.
    pub fn new_in(parent: &Path) -> std::io::Result<(Scratch, File)> {
        let mut template = parent
            .join(format!("{PREFIX}XXXXXX"))
            .into_os_string()
            .into_vec();
        template.push(0);
        // SAFETY: `template` is a NUL-terminated buffer mkdtemp may rewrite in place.
        if unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) }.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        template.pop();
        let scratch = Scratch {
            dir: PathBuf::from(std::ffi::OsString::from_vec(template)),
        };
        // mkdtemp asks for 0700; a umask may only have taken from it.
        let folder = std::fs::metadata(&scratch.dir)?;
        if std::os::unix::fs::PermissionsExt::mode(&folder.permissions()) & 0o777 != 0o700 {
            std::fs::set_permissions(
                &scratch.dir,
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            )?;
        }
        let file = create_private(&scratch.path())?;
        Ok((scratch, file))
    }

    /// Makes them in the temporary folder (`TMPDIR`, else `/tmp`).
    pub fn new() -> std::io::Result<(Scratch, File)> {
        Self::new_in(&std::env::temp_dir())
    }

    /// The file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            tracing::warn!("cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// A new file at `path`, `0600`, never through a link and never one that existed.
fn create_private(path: &Path) -> std::io::Result<File> {
    let name = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `name` is a valid C string; the descriptor returned is owned below.
    let fd = unsafe {
        libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600 as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor just opened and owned by nobody else.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // A umask may have taken the owner's read: the upload reads the file by its path.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn the_file_is_0600_in_a_0700_folder_and_both_go_when_dropped() {
        let parent = tempfile::tempdir().unwrap();
        let (scratch, mut file) = Scratch::new_in(parent.path()).unwrap();
        file.write_all(b"someone's artifact").unwrap();
        let dir = scratch.path().parent().unwrap().to_path_buf();
        assert!(dir.starts_with(parent.path()));
        assert!(dir
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(PREFIX));
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&scratch.path()), 0o600);
        assert_eq!(
            std::fs::read(scratch.path()).unwrap(),
            b"someone's artifact"
        );
        drop(file);
        drop(scratch);
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_error_returned_half_way_leaves_nothing() {
        let parent = tempfile::tempdir().unwrap();
        let copy = || -> std::io::Result<()> {
            let (_scratch, mut file) = Scratch::new_in(parent.path())?;
            file.write_all(b"half")?;
            Err(std::io::Error::other("the source went away"))
        };
        assert!(copy().is_err());
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
    }

    #[test]
    fn two_at_once_get_folders_of_their_own() {
        let parent = tempfile::tempdir().unwrap();
        let (a, _) = Scratch::new_in(parent.path()).unwrap();
        let (b, _) = Scratch::new_in(parent.path()).unwrap();
        assert_ne!(a.path(), b.path());
    }

    #[test]
    fn a_missing_parent_is_an_error_not_a_panic() {
        let parent = tempfile::tempdir().unwrap();
        assert!(Scratch::new_in(&parent.path().join("gone")).is_err());
    }
}
