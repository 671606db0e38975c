//! Who asks for a change: the uid, gid and pid the kernel sends with each request, and,
//! read from `/proc` only when needed, the caller's command and supplementary groups.
//! Every change the mount makes to the store (a stage, a move of `latest`, a metadata
//! change, a yank) is logged with its caller, and `status.json` keeps the stager's.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The process behind one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
    /// The command (`/proc/PID/comm`), when the process could still be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

impl Caller {
    /// A caller as the kernel names it, without reading `/proc` (this runs on the FUSE
    /// session threads, for every close); see `named`.
    pub fn new(uid: u32, gid: u32, pid: u32) -> Self {
        Caller {
            uid,
            gid,
            pid,
            command: None,
        }
    }

    /// The same caller with its command read from `/proc/PID/comm`, off the session
    /// threads, before the change it asked for is logged or recorded.
    pub fn named(mut self) -> Self {
        if self.command.is_none() {
            self.command = command_of(self.pid);
        }
        self
    }

    /// The daemon itself (work it resumes on its own, tests without a kernel).
    pub fn daemon() -> Self {
        // SAFETY: getuid, getgid and getpid cannot fail.
        let (uid, gid, pid) = unsafe { (libc::getuid(), libc::getgid(), libc::getpid()) };
        Caller {
            uid,
            gid,
            pid: pid as u32,
            command: Some("startifact-fs".to_string()),
        }
    }

    /// Whether the caller is in group `gid`: its own group, or one of its supplementary
    /// groups (the kernel sends only the first; the rest come from `/proc/PID/status`).
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || supplementary_groups(self.pid).contains(&gid)
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "uid {} gid {} pid {}", self.uid, self.gid, self.pid)?;
        if let Some(command) = &self.command {
            write!(f, " ({command})")?;
        }
        Ok(())
    }
}

fn command_of(pid: u32) -> Option<String> {
    if pid == 0 {
        return None;
    }
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let comm = comm.trim_end_matches('\n');
    (!comm.is_empty()).then(|| comm.to_string())
}

/// The `Groups:` line of `/proc/PID/status`; none when the process is gone (a caller
/// that cannot be looked at is not given a group it may not have).
fn supplementary_groups(pid: u32) -> Vec<u32> {
    if pid == 0 {
        return Vec::new();
    }
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("Groups:"))
        .map(|groups| {
            groups
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_in_its_own_groups_and_named() {
        let me = Caller::daemon();
        let caller = Caller::new(me.uid, me.gid, me.pid);
        assert!(caller.in_group(me.gid));
        assert!(caller.command.is_none(), "no /proc read until named");
        let caller = caller.named();
        assert!(caller.command.is_some());
        let shown = caller.to_string();
        assert!(shown.starts_with(&format!("uid {} gid {} pid {}", me.uid, me.gid, me.pid)));
    }

    #[test]
    fn a_gone_process_has_no_supplementary_groups() {
        let gone = Caller::new(12345, 12345, u32::MAX - 1).named();
        assert!(gone.command.is_none());
        assert!(!gone.in_group(0));
        assert!(gone.in_group(12345));
    }
}
