//! What the process that closes a file is doing, from `/proc`: whether it is the process
//! that opened it (a child closing an inherited copy, at `exec` or exit, is not the
//! writer), whether it still holds another descriptor of the file (so this close is not
//! its last), and whether it is exiting, killed by a signal or with a failure status (so
//! what it wrote may be cut short). Linux keeps an exiting task's flags and exit code in
//! `/proc/PID/stat` while it closes its descriptors, which is when FUSE sends the last
//! `flush`. It also says whether a process is in the tree of the one that opened a file
//! (only that tree may write it).
//!
//! Reading `/proc/PID/stat` of a task in the middle of `execve` waits for the exec to
//! finish, and the exec waits for the `flush` of its close-on-exec descriptors: callers
//! read with a timeout (see `ArtifactFs::flush`).

use std::path::Path;

/// `PF_EXITING` in the flags of `/proc/PID/stat`.
const PF_EXITING: u64 = 0x4;

/// How the closing process stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closer {
    /// Running, and still holding another descriptor of the file.
    StillHolding,
    /// Running (an ordinary `close`), or exiting with status 0.
    Finished,
    /// Exiting by a signal or with a non-zero status: what it wrote may be incomplete.
    Failed(WriterFailed),
    /// Gone or unreadable: nothing to go by.
    Unknown,
}

/// How the writer of a file ended, when what it wrote may be cut short.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriterFailed {
    #[error("its writer (pid {pid}) was killed by signal {signal}")]
    Killed { pid: u32, signal: i32 },
    #[error("its writer (pid {pid}) exited with status {status}")]
    Exited { pid: u32, status: i32 },
}

/// The process (thread group) of a thread.
pub fn process_of(tid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Tgid:"))
        .and_then(|tgid| tgid.trim().parse().ok())
}

/// Whether thread `tid` belongs to process `tgid` (a directory lookup, which never waits
/// on the thread).
pub fn is_thread_of(tgid: u32, tid: u32) -> bool {
    Path::new(&format!("/proc/{tgid}/task/{tid}")).exists()
}

/// Whether thread `tid` belongs to process `opener` or to one of its descendants (a
/// child that inherited the descriptor): the only writers a file being written takes.
/// A process whose ancestry cannot be read is not in the tree.
pub fn is_in_tree_of(opener: u32, tid: u32) -> bool {
    if is_thread_of(opener, tid) {
        return true;
    }
    let mut pid = match process_of(tid) {
        Some(pid) => pid,
        None => return false,
    };
    // Bounded: a chain of ancestors deeper than this is not a build tool's.
    for _ in 0..64 {
        if pid == opener {
            return true;
        }
        match parent_of(pid) {
            Some(parent) if parent > 1 => pid = parent,
            _ => return false,
        }
    }
    false
}

fn parent_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("PPid:"))
        .and_then(|ppid| ppid.trim().parse().ok())
}

/// Looks at process `pid` closing the file with inode `inode` named `name`, in the
/// staging version `folder` (`{project}/{version}`).
pub fn closer(pid: u32, inode: u64, folder: &str, name: &str) -> Closer {
    if pid == 0 {
        return Closer::Unknown;
    }
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return Closer::Unknown;
    };
    match exit_of(&stat) {
        Some(Exit::Signal(signal)) => return Closer::Failed(WriterFailed::Killed { pid, signal }),
        Some(Exit::Status(status)) if status != 0 => {
            return Closer::Failed(WriterFailed::Exited { pid, status })
        }
        Some(Exit::Status(_)) => return Closer::Finished,
        None => {}
    }
    if holds(&proc_dir, inode, folder, name) {
        Closer::StillHolding
    } else {
        Closer::Finished
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Exit {
    Signal(i32),
    Status(i32),
}

/// The exit of a task that is exiting, from the text of `/proc/PID/stat`.
fn exit_of(stat: &str) -> Option<Exit> {
    // The command name (field 2) may hold spaces and parentheses: fields are counted
    // from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 9 is the flags, field 52 the exit code; `fields[0]` is field 3.
    let flags: u64 = fields.get(9 - 3)?.parse().ok()?;
    if flags & PF_EXITING == 0 {
        return None;
    }
    let code: i32 = fields.get(52 - 3)?.parse().ok()?;
    let signal = code & 0x7f;
    Some(if signal != 0 {
        Exit::Signal(signal)
    } else {
        Exit::Status((code >> 8) & 0xff)
    })
}

/// Whether the process has a descriptor open on the file: its path is in the version's
/// folder and ends in the file's name, and its inode is the file's. (Another mount's
/// inode numbers may be the same: the folder tells them apart.)
fn holds(proc_dir: &Path, inode: u64, folder: &str, name: &str) -> bool {
    let Ok(fds) = std::fs::read_dir(proc_dir.join("fd")) else {
        return false;
    };
    let (within, suffix) = (format!("/{folder}/"), format!("/{name}"));
    fds.flatten().any(|fd| {
        let points_here = std::fs::read_link(fd.path())
            .map(|target| {
                let target = target.to_string_lossy();
                let names_it = |t: &str| t.ends_with(&suffix) && t.contains(&within);
                // The kernel marks a name it dropped from its cache. A file created
                // while another process looks the same name up gets one: FUSE creates
                // in two steps (LOOKUP, then CREATE), between them the name is a stale
                // negative entry, the other lookup drops it, and CREATE fills the
                // dropped entry (seen with `exec 3>F` racing a `stat F` loop). The
                // descriptor is still the file's, as its inode says. (A file may be
                // named so too.)
                names_it(&target) || target.strip_suffix(" (deleted)").is_some_and(names_it)
            })
            .unwrap_or(false);
        points_here
            && std::fs::read_to_string(proc_dir.join("fdinfo").join(fd.file_name()))
                .map(|info| {
                    info.lines().any(|line| {
                        line.strip_prefix("ino:").map(str::trim) == Some(&inode.to_string())
                    })
                })
                .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_with(flags: u64, exit_code: i32) -> String {
        let mut fields = vec!["0".to_string(); 50];
        fields[0] = "R".into();
        fields[9 - 3] = flags.to_string();
        fields[52 - 3] = exit_code.to_string();
        format!("123 (a (strange) name) {}", fields.join(" "))
    }

    /// A `/proc/PID` of one descriptor, fd 3, pointing at `target` with inode `ino`.
    fn proc_with_fd(target: &str, ino: u64) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("fd")).unwrap();
        std::fs::create_dir(dir.path().join("fdinfo")).unwrap();
        std::os::unix::fs::symlink(target, dir.path().join("fd/3")).unwrap();
        let info = format!("pos:\t5\nflags:\t0100001\nmnt_id:\t55\nino:\t{ino}\n");
        std::fs::write(dir.path().join("fdinfo/3"), info).unwrap();
        dir
    }

    #[test]
    fn a_descriptor_whose_name_the_kernel_dropped_still_holds_the_file() {
        let held = "/mnt/P/2.0.0/dist.tar.gz (deleted)";
        let proc_dir = proc_with_fd(held, 4);
        assert!(holds(proc_dir.path(), 4, "P/2.0.0", "dist.tar.gz"));
    }

    #[test]
    fn a_file_named_with_the_kernels_suffix_is_still_held() {
        let proc_dir = proc_with_fd("/mnt/P/2.0.0/a (deleted)", 4);
        assert!(holds(proc_dir.path(), 4, "P/2.0.0", "a (deleted)"));
    }

    #[test]
    fn a_descriptor_of_another_inode_or_folder_does_not_hold_the_file() {
        let proc_dir = proc_with_fd("/mnt/P/2.0.0/dist.tar.gz", 5);
        assert!(!holds(proc_dir.path(), 4, "P/2.0.0", "dist.tar.gz"));
        let proc_dir = proc_with_fd("/mnt/Q/2.0.0/dist.tar.gz", 4);
        assert!(!holds(proc_dir.path(), 4, "P/2.0.0", "dist.tar.gz"));
    }

    #[test]
    fn exits_are_read_from_stat() {
        assert_eq!(exit_of(&stat_with(0x400000, 0)), None);
        assert_eq!(exit_of(&stat_with(0x400004, 9)), Some(Exit::Signal(9)));
        assert_eq!(exit_of(&stat_with(0x4, 2)), Some(Exit::Signal(2)));
        assert_eq!(exit_of(&stat_with(0x4, 1 << 8)), Some(Exit::Status(1)));
        assert_eq!(exit_of(&stat_with(0x4, 0)), Some(Exit::Status(0)));
    }

    #[test]
    fn a_running_process_is_not_exiting() {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert_eq!(exit_of(&stat), None);
        let me = std::process::id();
        assert_eq!(process_of(me), Some(me));
        assert!(is_thread_of(me, me));
        assert!(!is_thread_of(me, 1));
    }

    #[test]
    fn children_are_in_their_parents_tree_and_others_are_not() {
        let me = std::process::id();
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(is_in_tree_of(me, child.id()));
        assert!(is_in_tree_of(me, me));
        assert!(!is_in_tree_of(child.id(), me));
        assert!(!is_in_tree_of(me, 1));
        let _ = child.kill();
        let _ = child.wait();
    }
}
