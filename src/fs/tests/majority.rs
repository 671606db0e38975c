//! One version, one content, decided by a majority of all regions (docs/SEMANTICS.md):
//! present when more than half hold the same bytes, served only from those; absent
//! (ENOENT) when more than half say so; else EIO. `latest` follows the same rule.

use std::time::Duration;

use super::fixture::{errno, Fixture, CURRENT_BYTES, PROJECT, REGIONS};
use crate::fs::FsOptions;

const KEY: &str = "SugarWater@1.0.0";
const OTHER_BYTES: &[u8] = b"a racing stager's other bytes\n";

#[tokio::test]
async fn a_version_held_in_one_region_of_three_is_enoent() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    f.delete(REGIONS[1], KEY).await;
    f.delete(REGIONS[2], KEY).await;
    assert_eq!(errno(f.fs.lookup(project, "1.0.0").await), libc::ENOENT);
}

#[tokio::test]
async fn held_in_one_absent_in_one_and_one_down_is_eio() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    f.delete(REGIONS[1], KEY).await;
    f.take_down(REGIONS[2]);
    assert_eq!(errno(f.fs.lookup(project, "1.0.0").await), libc::EIO);
}

#[tokio::test]
async fn other_bytes_in_the_first_region_are_never_served() {
    let f = Fixture::new().await;
    f.plant(REGIONS[0], KEY, OTHER_BYTES).await;
    let entry = f.lookup("SugarWater/1.0.0/dist.txt").await.unwrap();
    assert_eq!(entry.attr.size, CURRENT_BYTES.len() as u64);
    assert_eq!(f.read_all("SugarWater/1.0.0/dist.txt").await, CURRENT_BYTES);
}

#[tokio::test]
async fn the_download_skips_a_region_with_other_bytes() {
    let f = Fixture::new().await;
    f.plant(REGIONS[0], KEY, OTHER_BYTES).await;
    let session = f.other_session().await;
    let version = semver::Version::new(1, 0, 0);
    let artifact = session.get(PROJECT, Some(&version)).await.unwrap();
    let mut out = Vec::new();
    let download = artifact.download_to_writer(&mut out).await.unwrap();
    assert_eq!(out, CURRENT_BYTES);
    assert_ne!(download.region, REGIONS[0]);
}

#[tokio::test]
async fn metadata_comes_from_the_majority() {
    let f = Fixture::new().await;
    f.plant(REGIONS[0], KEY, OTHER_BYTES).await;
    f.plant(
        REGIONS[0],
        "SugarWater@1.0.0/metadata",
        br#"{"lang": "python"}"#,
    )
    .await;
    let session = f.other_session().await;
    let version = semver::Version::new(1, 0, 0);
    let artifact = session.get(PROJECT, Some(&version)).await.unwrap();
    let metadata = artifact.metadata().await.unwrap();
    assert_eq!(metadata.get("lang").map(String::as_str), Some("rust"));
}

#[tokio::test]
async fn three_regions_with_three_contents_is_eio() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    f.plant(REGIONS[0], KEY, OTHER_BYTES).await;
    f.plant(REGIONS[1], KEY, b"yet other bytes\n").await;
    assert_eq!(errno(f.fs.lookup(project, "1.0.0").await), libc::EIO);
}

fn no_ttl() -> FsOptions {
    FsOptions {
        metadata_ttl: Duration::ZERO,
        ..FsOptions::default()
    }
}

#[tokio::test]
async fn latest_in_one_region_with_two_not_answering_is_eio() {
    let f = Fixture::with(no_ttl(), None).await;
    let project = f.inode(PROJECT).await;
    f.take_down(REGIONS[0]);
    f.take_down(REGIONS[1]);
    assert_eq!(
        errno(f.fs.lookup(project, "latest").await.map(|_| ())),
        libc::EIO
    );
}

#[tokio::test]
async fn latest_missing_in_two_regions_of_three_is_enoent() {
    let f = Fixture::with(no_ttl(), None).await;
    let latest = f.inode("SugarWater/latest").await;
    for region in &REGIONS[..2] {
        std::fs::remove_file(f.parameter_file(region, "/SugarWater/latest")).unwrap();
    }
    assert_eq!(errno(f.lookup("SugarWater/latest").await), libc::ENOENT);
    // The symlink looked up before keeps its target (the kernel asks for the name again).
    assert_eq!(f.fs.readlink(latest).await.unwrap(), "1.0.0");
}

#[tokio::test]
async fn the_root_lists_a_project_only_a_majority_of_regions_list() {
    let f = Fixture::new().await;
    f.plant(REGIONS[0], "Stray@1.0.0", b"a stage that failed half way")
        .await;
    f.plant(REGIONS[0], "Pair@1.0.0", b"held by two of three")
        .await;
    f.plant(REGIONS[1], "Pair@1.0.0", b"held by two of three")
        .await;
    let listed = |entries: Vec<crate::fs::DirEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.name).collect()
    };
    let names = listed(f.fs.readdir(crate::fs::ROOT_INODE).await.unwrap());
    assert!(names.contains(&"Pair".to_string()), "{names:?}");
    assert!(names.contains(&PROJECT.to_string()), "{names:?}");
    assert!(!names.contains(&"Stray".to_string()), "{names:?}");
}

#[tokio::test]
async fn the_root_lists_the_majoritys_projects_with_the_first_region_down() {
    let f = Fixture::new().await;
    f.take_down(REGIONS[0]);
    let names: Vec<String> =
        f.fs.readdir(crate::fs::ROOT_INODE)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
    assert!(names.contains(&PROJECT.to_string()), "{names:?}");
}
