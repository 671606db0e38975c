//! What a mount's staging folder reports (`status.json`), and `close(2)` with its errno:
//! what the write-side tests look at.

use std::os::fd::IntoRawFd;

use super::mount::Mount;

/// `close(2)` of a file, with its errno (Rust's own drop ignores it).
pub fn close(file: std::fs::File) -> Result<(), i32> {
    let fd = file.into_raw_fd();
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// `STAGING_DIR/status.json` of the mount.
pub fn status(mount: &Mount) -> serde_json::Value {
    let text = std::fs::read_to_string(mount.staging_dir().join("status.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The entry of `status.json` for a version.
pub fn status_of(mount: &Mount, project: &str, version: &str) -> Option<serde_json::Value> {
    status(mount)["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["project"] == project && e["version"] == version)
        .cloned()
}
