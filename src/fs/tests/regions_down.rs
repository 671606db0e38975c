//! Regions that are down (their folder in the local store removed): with one of three
//! gone, lookups, listings, reads and stages answer from the majority (a name the two
//! others say is absent is ENOENT); with two gone, a name the store cannot vouch for is
//! EIO, never ENOENT, and no change is made.

use std::time::Duration;

use super::fixture::{errno, Fixture, CURRENT_BYTES, NEW_BYTES, NEW_FILE, PROJECT, REGIONS};
use crate::fs::{FsOptions, ROOT_INODE};

#[tokio::test]
async fn with_one_region_down_lookups_and_reads_answer_from_the_others() {
    let f = Fixture::new().await;
    f.take_down(REGIONS[0]);
    f.lookup("SugarWater/latest").await.unwrap();
    assert_eq!(f.read_all("SugarWater/1.0.0/dist.txt").await, CURRENT_BYTES);
    let latest = f.inode("SugarWater/latest").await;
    assert_eq!(f.fs.readlink(latest).await.unwrap(), "1.0.0");
}

#[tokio::test]
async fn with_one_region_down_listings_are_complete() {
    let f = Fixture::new().await;
    f.take_down(REGIONS[1]);
    let projects = f.fs.readdir(ROOT_INODE).await.unwrap();
    assert_eq!(projects.len(), 1);
    let project = f.inode(PROJECT).await;
    let listed: Vec<String> =
        f.fs.readdir(project)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
    assert_eq!(listed, ["latest", "1.0.0", "0.9.0"]);
}

#[tokio::test]
async fn a_read_fails_over_when_the_region_it_was_pinned_from_goes_down() {
    let f = Fixture::new().await;
    let inode = f.inode("SugarWater/1.0.0/dist.txt").await;
    let opened = f.fs.open(inode, false, false, &f.caller).await.unwrap();
    f.take_down(REGIONS[0]);
    let bytes = f.fs.read(opened.handle, 0, 100).await.unwrap();
    assert_eq!(&bytes[..], CURRENT_BYTES);
}

#[tokio::test]
async fn with_one_region_down_a_missing_project_is_still_enoent() {
    let f = Fixture::new().await;
    f.take_down(REGIONS[2]);
    assert_eq!(errno(f.lookup("NoSuchProject").await), libc::ENOENT);
}

/// A version is ENOENT when a majority of all regions says it is absent
/// (docs/SEMANTICS.md, "One version, one content"): one region that cannot answer
/// changes nothing, and `mkdir` of the new version arrives (issue 8, defect 1).
#[tokio::test]
async fn with_one_region_down_a_missing_version_is_enoent_and_mkdir_makes_it() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    f.take_down(REGIONS[2]);
    assert_eq!(errno(f.fs.lookup(project, "2.0.0").await), libc::ENOENT);
    f.fs.mkdir(project, "2.0.0").await.unwrap();
    assert_eq!(errno(f.fs.lookup(project, "2.0.1").await), libc::ENOENT);
}

#[tokio::test]
async fn with_one_region_down_a_stage_reaches_the_others_and_succeeds() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    f.take_down(REGIONS[2]);
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    let (_, handle) = f.fs.create(folder, NEW_FILE, &f.caller).await.unwrap();
    f.fs.write(handle, 0, NEW_BYTES, f.pid()).await.unwrap();
    f.close(handle).await.unwrap();
    assert_eq!(f.regions_holding("SugarWater@1.1.0").await, &REGIONS[..2]);
    assert_eq!(f.read_all("SugarWater/1.1.0/app.tar").await, NEW_BYTES);
}

#[tokio::test]
async fn with_two_regions_down_a_missing_project_is_eio() {
    let f = Fixture::new().await;
    f.take_down(REGIONS[1]);
    f.take_down(REGIONS[2]);
    assert_eq!(errno(f.lookup("NoSuchProject").await), libc::EIO);
}

#[tokio::test]
async fn with_two_regions_down_a_missing_version_is_eio() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    f.take_down(REGIONS[0]);
    f.take_down(REGIONS[1]);
    assert_eq!(errno(f.fs.lookup(project, "2.0.0").await), libc::EIO);
}

/// `latest` is a quorum read: one region of three cannot say it.
#[tokio::test]
async fn with_two_regions_down_latest_is_eio() {
    let options = FsOptions {
        metadata_ttl: Duration::ZERO,
        ..FsOptions::default()
    };
    let f = Fixture::with(options, None).await;
    f.inode("SugarWater/latest").await;
    f.take_down(REGIONS[1]);
    f.take_down(REGIONS[2]);
    assert_eq!(errno(f.lookup("SugarWater/latest").await), libc::EIO);
}

#[tokio::test]
async fn with_two_regions_down_a_stage_is_eio_and_the_file_is_kept() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    f.take_down(REGIONS[0]);
    f.take_down(REGIONS[2]);
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    let (_, handle) = f.fs.create(folder, NEW_FILE, &f.caller).await.unwrap();
    f.fs.write(handle, 0, NEW_BYTES, f.pid()).await.unwrap();
    assert_eq!(errno(f.close(handle).await), libc::EIO);
    let kept = f.lookup("SugarWater/1.1.0/app.tar").await.unwrap();
    assert_eq!(
        (kept.attr.perm, kept.attr.size),
        (0o644, NEW_BYTES.len() as u64)
    );
}

#[tokio::test]
async fn with_two_regions_down_moving_latest_is_eio() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    f.inode("SugarWater/0.9.0").await;
    f.take_down(REGIONS[1]);
    f.take_down(REGIONS[2]);
    f.fs.symlink(project, "latest.tmp", "0.9.0").await.unwrap();
    assert_eq!(
        errno(
            f.fs.rename(project, "latest.tmp", project, "latest", f.pid())
                .await
        ),
        libc::EIO
    );
}
