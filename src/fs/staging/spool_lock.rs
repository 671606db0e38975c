//! The lock that keeps a staging folder to one daemon. Two daemons on one spool would
//! each take up the other's files: mark a file being written as abandoned, resume or
//! repair a stage into their own store. So the spool holds `flock(LOCK_EX | LOCK_NB)` on
//! its lock file for as long as it is open (the daemon's life; the kernel lets go when
//! the process ends, however it ends), and writes its PID into it for whoever is
//! refused.
//!
//! The lock file is `@lock` at the spool's top: `@` is no character of a project
//! name, so no staging project can ever take the name.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;

use crate::fs::host::private_dir::{Access, PrivateDir};

/// The lock file's name at the spool's top.
pub const LOCK_FILE: &str = "@lock";

/// A held lock on a spool; let go when dropped.
#[derive(Debug)]
pub struct SpoolLock {
    _file: File,
}

impl SpoolLock {
    /// Takes the lock of `root`, or says which process holds it (an error of kind
    /// `WouldBlock` whose message names its PID, as far as the holder wrote it).
    pub fn take(root: &PrivateDir) -> std::io::Result<SpoolLock> {
        let mut file = root.open_file(LOCK_FILE, Access::ReadWriteCreate)?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(e);
            }
            let holder = match holder_pid(&mut file) {
                Some(pid) => format!("PID {pid}"),
                None => "a process that has not written its PID yet".to_string(),
            };
            return Err(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!(
                    "it is in use by another startifact-fs ({holder}, see {}): one daemon at a time \
                     may use a staging folder",
                    root.path().join(LOCK_FILE).display()
                ),
            ));
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
        Ok(SpoolLock { _file: file })
    }
}

/// The PID the holder wrote, if it did.
fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(64).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let scratch = tempfile::tempdir().unwrap();
        let root = PrivateDir::open(&scratch.path().join("spool")).unwrap();
        let first = SpoolLock::take(&root).unwrap();
        let path = root.path().join(LOCK_FILE);
        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(written, format!("{}\n", std::process::id()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        // flock locks belong to an open file: a second open, even in this process, is
        // refused, as another daemon would be.
        let e = SpoolLock::take(&root).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
        let said = e.to_string();
        assert!(
            said.contains(&format!("PID {}", std::process::id())),
            "{said}"
        );
        assert!(said.contains("@lock"), "{said}");

        drop(first);
        let _again = SpoolLock::take(&root).unwrap();
    }

    #[test]
    fn a_lock_file_that_is_a_link_is_refused() {
        let scratch = tempfile::tempdir().unwrap();
        let target = scratch.path().join("target");
        std::fs::write(&target, b"precious").unwrap();
        let root = PrivateDir::open(&scratch.path().join("spool")).unwrap();
        std::os::unix::fs::symlink(&target, root.path().join(LOCK_FILE)).unwrap();
        assert!(SpoolLock::take(&root).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    }
}
