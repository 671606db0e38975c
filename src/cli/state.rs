//! What the CLI keeps between runs: how each region took large files (see
//! `protocol::stage::sending`), in `$XDG_STATE_HOME/startifact-fs/sending.json`, else
//! `~/.local/state/startifact-fs/sending.json`; in memory only when neither is set.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::protocol::SendingCosts;

/// The file, when the environment names a state folder.
fn sending_file() -> Option<PathBuf> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    let folder = absolute("XDG_STATE_HOME")
        .map(|state| state.join("startifact-fs"))
        .or_else(|| absolute("HOME").map(|home| home.join(".local/state/startifact-fs")))?;
    Some(folder.join("sending.json"))
}

/// The figures earlier runs kept (none when there are none, or they cannot be read:
/// then with a warning).
pub fn sending_costs() -> SendingCosts {
    let costs = SendingCosts::in_memory();
    if let Some(file) = sending_file() {
        match read_small_file(&file) {
            Ok(bytes) => costs.take_up(&bytes, &file.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = %file.display(), "ignoring the sending figures: {e}"),
        }
    }
    costs
}

/// Keeps the figures for the next run when something was learned; a failure is logged, never the stage's.
pub fn keep_sending_costs(costs: &SendingCosts) {
    if let (Some(file), Some(bytes)) = (sending_file(), costs.changes()) {
        if let Err(e) = write_replacing(&file, &bytes) {
            tracing::warn!(file = %file.display(), "cannot keep the sending figures: {e}");
        }
    }
}

/// The file's bytes: a regular file of at most 1 MiB, never followed through a link
/// (nor waited on, were it a FIFO).
fn read_small_file(file: &Path) -> std::io::Result<Vec<u8>> {
    const LIMIT: u64 = 1 << 20;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(file)?;
    let metadata = opened.metadata()?;
    if !metadata.is_file() || metadata.len() > LIMIT {
        return Err(std::io::Error::other("not a regular file of at most 1 MiB"));
    }
    let mut bytes = Vec::new();
    opened.take(LIMIT).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Writes `file` as a temporary file (`0600`) renamed over it, creating its folder
/// (`0700`).
fn write_replacing(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(folder) = file.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(folder)?;
    }
    let temporary = file.with_extension(format!("{}.new", std::process::id()));
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temporary)?;
    let written = out.write_all(bytes).and_then(|()| out.sync_all());
    let renamed = written.and_then(|()| std::fs::rename(&temporary, file));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    renamed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_private_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state/sending.json");
        write_replacing(&file, b"{\"regions\": {}}").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let folder = std::fs::metadata(file.parent().unwrap()).unwrap();
        assert_eq!(folder.permissions().mode() & 0o777, 0o700);
        assert_eq!(read_small_file(&file).unwrap(), b"{\"regions\": {}}");

        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(read_small_file(&link).is_err(), "a link is never followed");
    }
}
