//! A local region's SSM parameters: one file per parameter under `parameters/`, named
//! by `layout` as keys are, written through a temporary file so a reader never sees
//! half a value.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use super::files::{blocking, io_error, place, walk};
use super::layout::{name_of, path_of};
use super::region::LocalRegion;
use crate::storage::error::StorageError;

fn parameters_root(local: &LocalRegion) -> PathBuf {
    local.root.join("parameters")
}

pub(super) async fn get(local: &LocalRegion, name: &str) -> Result<String, StorageError> {
    local.counters.get_parameter.fetch_add(1, Ordering::Relaxed);
    local.check_up()?;
    let path = path_of(&parameters_root(local), name);
    let what = format!("parameter {name} in {}", local.region);
    let value = tokio::fs::read_to_string(&path)
        .await
        .map_err(|e| io_error(&what, e))?;
    Ok(value)
}

pub(super) async fn put(local: &LocalRegion, name: &str, value: &str) -> Result<(), StorageError> {
    local.check_up()?;
    let this = local.clone();
    let (name, value) = (name.to_string(), value.to_string());
    blocking(move || {
        let what = format!("writing parameter {name} in {}", this.region);
        write(&this, &name, &value).map_err(|e| io_error(&what, e))
    })
    .await
}

fn write(local: &LocalRegion, name: &str, value: &str) -> io::Result<()> {
    let temporary = local.write_temporary(value.as_bytes())?;
    place(&temporary, &path_of(&parameters_root(local), name), false)
}

pub(super) async fn delete(local: &LocalRegion, name: &str) -> Result<(), StorageError> {
    local.check_up()?;
    let path = path_of(&parameters_root(local), name);
    match tokio::fs::remove_file(&path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(&format!("deleting parameter {name}"), e)),
    }
}

pub(super) async fn list(
    local: &LocalRegion,
    path: &str,
) -> Result<Vec<(String, String)>, StorageError> {
    local.check_up()?;
    let root = parameters_root(local);
    let under = if path.ends_with('/') {
        path.to_string()
    } else {
        format!("{path}/")
    };
    blocking(move || {
        let mut files = Vec::new();
        walk(&root, &mut files).map_err(|e| io_error("listing parameters", e))?;
        let mut found = Vec::new();
        for file in files {
            let Some(name) = name_of(&root, &file) else {
                continue;
            };
            if name.starts_with(&under) {
                let value = std::fs::read_to_string(&file)
                    .map_err(|e| io_error(&format!("reading parameter {name}"), e))?;
                found.push((name, value));
            }
        }
        found.sort();
        Ok(found)
    })
    .await
}
