//! What the CLI keeps between runs, in `$XDG_STATE_HOME/startifact-fs/`, else
//! `~/.local/state/startifact-fs/` (in memory only when neither is set): how each
//! region took large files (`sending.json`, see `protocol::stage::sending`), and the ids
//! of failed stages that left objects behind (`stages.json`, see `protocol::Stager`),
//! so that a retry of the version takes them up as its own.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::protocol::SendingCosts;

/// How many versions `stages.json` remembers, and how many ids for each.
const KEPT_VERSIONS: usize = 1000;
const KEPT_IDS: usize = 16;

/// A file of the state folder, when the environment names one.
fn state_file(name: &str) -> Option<PathBuf> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    let folder = absolute("XDG_STATE_HOME")
        .map(|state| state.join("startifact-fs"))
        .or_else(|| absolute("HOME").map(|home| home.join(".local/state/startifact-fs")))?;
    Some(folder.join(name))
}

fn sending_file() -> Option<PathBuf> {
    state_file("sending.json")
}

/// Failed stages that left objects behind, by `PROJECT@VERSION`.
fn stages() -> (Option<PathBuf>, BTreeMap<String, Vec<String>>) {
    let Some(file) = state_file("stages.json") else {
        return (None, BTreeMap::new());
    };
    let kept = match read_small_file(&file) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(file = %file.display(), "ignoring the earlier stages: {e}");
            BTreeMap::new()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => {
            tracing::warn!(file = %file.display(), "ignoring the earlier stages: {e}");
            BTreeMap::new()
        }
    };
    (Some(file), kept)
}

/// The ids of the earlier stages of `version` (`PROJECT@VERSION`) that failed and left
/// objects behind: a retry takes up what carries them.
pub fn earlier_stages(version: &str) -> Vec<String> {
    stages().1.remove(version).unwrap_or_default()
}

/// Remembers `ids` as the failed stages of `version` that left objects behind (none:
/// forgets the version); a failure is logged, never the stage's.
pub fn keep_earlier_stages(version: &str, ids: &[String]) {
    let (Some(file), mut kept) = stages() else {
        return;
    };
    let before = kept.get(version).cloned().unwrap_or_default();
    if ids.is_empty() {
        kept.remove(version);
    } else if kept.len() < KEPT_VERSIONS || kept.contains_key(version) {
        let newest = &ids[ids.len().saturating_sub(KEPT_IDS)..];
        kept.insert(version.to_string(), newest.to_vec());
    }
    if kept.get(version).cloned().unwrap_or_default() == before {
        return;
    }
    let written = serde_json::to_vec_pretty(&kept)
        .map_err(std::io::Error::other)
        .and_then(|bytes| write_replacing(&file, &bytes));
    if let Err(e) = written {
        tracing::warn!(file = %file.display(), "cannot keep the earlier stages: {e}");
    }
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
