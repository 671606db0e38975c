//! Who may change what through the mount. Everyone the kernel lets in may read; only
//! the daemon's owner (the user it runs as, the owner shown with `--uid`, and root) and
//! the members of the `--stagers` group may make a change: create, write, set
//! attributes, move `latest` or yank. The kernel checks the modes the mount shows
//! (`default_permissions`, always on with `--allow-other`); the adapter checks again here
//! for every change, so no change depends on the kernel alone.

use crate::fs::{Caller, FsError, FsErrorKind};

#[derive(Debug, Clone)]
pub struct Access {
    /// Users who may change anything.
    owners: Vec<u32>,
    /// The group whose members may change anything too.
    stagers: Option<u32>,
}

impl Access {
    /// `daemon_uid` runs the daemon, `shown_uid` is the owner the mount shows.
    pub fn new(daemon_uid: u32, shown_uid: u32, stagers: Option<u32>) -> Self {
        let mut owners = vec![0, daemon_uid, shown_uid];
        owners.sort_unstable();
        owners.dedup();
        Access { owners, stagers }
    }

    /// Whether the caller may change things; reads `/proc` only for a caller who is not
    /// an owner, to see its supplementary groups.
    pub fn permits(&self, caller: &Caller) -> bool {
        self.owners.contains(&caller.uid) || self.stagers.is_some_and(|g| caller.in_group(g))
    }

    /// The check before a change: EACCES, logged with who asked, for a caller who may not.
    pub fn check(&self, caller: &Caller, what: &str) -> Result<(), FsError> {
        if self.permits(caller) {
            return Ok(());
        }
        let who = match self.stagers {
            Some(gid) => format!("the daemon's owner and the stagers (group {gid})"),
            None => "the daemon's owner (see --stagers)".to_string(),
        };
        Err(FsError::new(
            FsErrorKind::AccessDenied,
            format!("{what} refused to {caller}: only {who} may change this mount"),
        ))
    }
}

/// A group named by `--stagers`: a name from the group database, or a number.
pub fn group_id(name: &str) -> Result<u32, String> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    let c_name = std::ffi::CString::new(name)
        .map_err(|_| format!("stagers={name:?}: a group name has no NUL byte"))?;
    let mut group: libc::group = unsafe { std::mem::zeroed() };
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and the buffer outlives it.
    let rc = unsafe {
        libc::getgrnam_r(
            c_name.as_ptr(),
            &mut group,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(format!("stagers={name:?}: no such group"));
    }
    Ok(group.gr_gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(uid: u32, gid: u32) -> Caller {
        Caller {
            uid,
            gid,
            pid: 0,
            command: None,
        }
    }

    #[test]
    fn owners_and_root_may_change_others_may_not() {
        let access = Access::new(1000, 1001, None);
        assert!(access.permits(&caller(0, 0)));
        assert!(access.permits(&caller(1000, 5)));
        assert!(access.permits(&caller(1001, 5)));
        let refused = access.check(&caller(2000, 2000), "mkdir").unwrap_err();
        assert_eq!(refused.errno(), libc::EACCES);
        assert!(refused.message.contains("uid 2000"), "{}", refused.message);
    }

    #[test]
    fn members_of_the_stagers_group_may_change() {
        let access = Access::new(0, 0, Some(3000));
        assert!(access.permits(&caller(2000, 3000)));
        assert!(!access.permits(&caller(2000, 2000)));
    }

    #[test]
    fn groups_by_name_or_number() {
        assert_eq!(group_id("42").unwrap(), 42);
        assert_eq!(group_id("root").unwrap(), 0);
        assert!(group_id("no-such-group-here").is_err());
    }
}
