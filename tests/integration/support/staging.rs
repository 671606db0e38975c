//! Versions staged for the mount tests to look at, and what they look at: `close(2)`
//! with its errno, the staging folder's `status.json`, folder listings, and what the
//! store holds (through the protocol library and through each region's storage layer).

use std::os::fd::IntoRawFd;
use std::path::Path;

use futures::StreamExt;
use semver::Version;
use startifact::protocol::names::latest_parameter_name;

use super::files::project;
use super::mount::Mount;
use super::world::{run_ok, World};

pub fn v(text: &str) -> Version {
    Version::parse(text).unwrap()
}

/// Stages `bytes` as `project` `version` with the `startifact` CLI (`args` after the
/// file: `--filename`, `--metadata K=V`...).
pub fn cli_stage(world: &World, project: &str, version: &str, bytes: &[u8], args: &[&str]) {
    let file = world.file(&format!("{project}-{version}"), bytes);
    run_ok(
        world
            .cli()
            .args([project, version, "--stage"])
            .arg(&file)
            .args(args),
    );
}

/// A project `{base}-{id}` with two versions staged by the CLI: 1.0.0 holds `content`
/// saved as `dist.bin` with the metadata `lang=rust` and `ключ=значение`; 1.1.0 holds
/// `second version` under its key's name (`{project}@1.1.0`). Returns the project.
pub fn two_versions(world: &World, base: &str, content: &[u8]) -> String {
    let p = project(world, base);
    let file = world.file("dist.bin", content);
    run_ok(world.cli().args([&p, "1.0.0", "--stage"]).arg(&file).args([
        "--filename",
        "--metadata",
        "lang=rust",
        "--metadata",
        "ключ=значение",
    ]));
    cli_stage(world, &p, "1.1.0", b"second version", &[]);
    p
}

/// `close(2)` of a file, with its errno (Rust's own drop ignores it).
pub fn close(file: std::fs::File) -> Result<(), i32> {
    let fd = file.into_raw_fd();
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// The mount's `status.json`.
pub fn status(mount: &Mount) -> serde_json::Value {
    let text = std::fs::read_to_string(mount.staging_dir().join("status.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// How many versions `status.json` reports (staging, failed, kept...).
pub fn status_len(mount: &Mount) -> usize {
    status(mount)["versions"].as_array().unwrap().len()
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

/// The names in a folder, sorted.
pub fn names_in(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The artifact as the protocol library downloads it (MD5 checked), and its metadata.
pub async fn downloaded(
    world: &World,
    project: &str,
    version: &str,
) -> (Vec<u8>, Vec<(String, String)>) {
    let session = world.session(true);
    let artifact = session.get(project, Some(&v(version))).await.unwrap();
    let path = world.scratch.path().join(format!("dl-{project}-{version}"));
    artifact.download_to_path(&path).await.unwrap();
    let metadata = artifact
        .metadata()
        .await
        .unwrap()
        .clone()
        .into_iter()
        .collect();
    (std::fs::read(&path).unwrap(), metadata)
}

/// The metadata of a staged version, as the protocol library reads it.
pub async fn staged_metadata(
    world: &World,
    project: &str,
    version: &str,
) -> startifact::protocol::Metadata {
    let session = world.session(true);
    let artifact = session.get(project, Some(&v(version))).await.unwrap();
    artifact.metadata().await.unwrap().clone()
}

/// Whether the protocol library finds the version staged.
pub async fn is_staged(world: &World, project: &str, version: &str) -> bool {
    let session = world.session(true);
    let artifact = session.get(project, Some(&v(version))).await.unwrap();
    artifact.locate().await.is_ok()
}

/// Every region holds the artifact.
pub async fn in_every_region(world: &World, key: &str) -> bool {
    for (region, bucket) in &world.buckets {
        let store = world.raw_store(region);
        if store.head_object(bucket, key).await.is_err() {
            return false;
        }
    }
    true
}

/// The project's `latest` parameter as each region holds it, read directly.
pub async fn latest_in_each_region(world: &World, project: &str) -> Vec<(String, Option<String>)> {
    let name = latest_parameter_name(&world.configuration.parameter_name_prefix, project);
    let mut found = Vec::new();
    for region in world.buckets.keys() {
        let value = match world.raw_store(region).get_parameter(&name).await {
            Ok(value) => Some(value),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("reading {name} in {region}: {e}"),
        };
        found.push((region.clone(), value));
    }
    found
}

/// Asserts that every region's `latest` parameter of the project is `version`.
pub async fn assert_latest_everywhere(world: &World, project: &str, version: &str) {
    let found = latest_in_each_region(world, project).await;
    assert_eq!(found.len(), world.buckets.len());
    for (region, value) in found {
        assert_eq!(
            value.as_deref(),
            Some(version),
            "latest of {project} in {region}"
        );
    }
}

/// The whole object `key` in `region`, or None when the region does not hold it.
pub async fn object_in(world: &World, region: &str, key: &str) -> Option<Vec<u8>> {
    let store = world.raw_store(region);
    let mut object = store
        .get_object(&world.buckets[region], key, None, None)
        .await
        .ok()?;
    let mut bytes = Vec::new();
    while let Some(chunk) = object.body.next().await {
        bytes.extend_from_slice(&chunk.expect("object body"));
    }
    Some(bytes)
}

/// Whether some region holds `key`.
pub async fn in_any_region(world: &World, key: &str) -> bool {
    for (region, bucket) in &world.buckets {
        if world
            .raw_store(region)
            .head_object(bucket, key)
            .await
            .is_ok()
        {
            return true;
        }
    }
    false
}
