//! `unlink` in a version folder: the staging file is discarded; a staged file is EPERM,
//! or with `--allow-delete` yanked from every region. (`unlink` of `latest` and of
//! pending symlinks is in `latest`.)

use super::fixture::{errno, Fixture, NEW_BYTES, NEW_FILE, PROJECT};
use crate::fs::ROOT_INODE;

#[tokio::test]
async fn unlink_of_the_staging_file_discards_it() {
    let f = Fixture::new().await;
    let handle = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    f.fs.release(handle);
    let folder = f.inode("SugarWater/1.1.0").await;
    f.fs.unlink(folder, NEW_FILE, f.pid()).await.unwrap();
    assert_eq!(
        errno(f.lookup("SugarWater/1.1.0/app.tar").await),
        libc::ENOENT
    );
    let project = f.inode(PROJECT).await;
    f.fs.rmdir(project, "1.1.0").await.unwrap();
}

#[tokio::test]
async fn after_unlink_a_new_file_can_be_written_and_staged() {
    let f = Fixture::new().await;
    let handle = f.start_writing("1.1.0", "first.tar", b"half").await;
    f.fs.release(handle);
    let folder = f.inode("SugarWater/1.1.0").await;
    f.fs.unlink(folder, "first.tar", f.pid()).await.unwrap();
    let (_, handle) = f.fs.create(folder, NEW_FILE, &f.caller).await.unwrap();
    f.fs.write(handle, 0, NEW_BYTES, f.pid()).await.unwrap();
    f.close(handle).await.unwrap();
    assert_eq!(f.read_all("SugarWater/1.1.0/app.tar").await, NEW_BYTES);
}

#[tokio::test]
async fn unlink_of_a_name_the_staging_version_does_not_hold_is_enoent() {
    let f = Fixture::new().await;
    let handle = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    f.fs.release(handle);
    let folder = f.inode("SugarWater/1.1.0").await;
    assert_eq!(
        errno(f.fs.unlink(folder, "other.tar", f.pid()).await),
        libc::ENOENT
    );
}

#[tokio::test]
async fn unlink_of_a_staged_file_is_eperm() {
    let f = Fixture::new().await;
    let version = f.inode("SugarWater/1.0.0").await;
    assert_eq!(
        errno(f.fs.unlink(version, "dist.txt", f.pid()).await),
        libc::EPERM
    );
    assert_eq!(f.regions_holding("SugarWater@1.0.0").await.len(), 3);
}

#[tokio::test]
async fn unlink_in_the_root_or_of_another_name_in_a_project_is_eperm() {
    let f = Fixture::new().await;
    assert_eq!(
        errno(f.fs.unlink(ROOT_INODE, PROJECT, f.pid()).await),
        libc::EPERM
    );
    let project = f.inode(PROJECT).await;
    assert_eq!(
        errno(f.fs.unlink(project, "1.0.0", f.pid()).await),
        libc::EPERM
    );
}

#[tokio::test]
async fn unlink_on_a_read_only_mount_is_erofs() {
    let f = Fixture::read_only().await;
    let version = f.inode("SugarWater/1.0.0").await;
    assert_eq!(
        errno(f.fs.unlink(version, "dist.txt", f.pid()).await),
        libc::EROFS
    );
}

#[tokio::test]
async fn with_allow_delete_unlink_yanks_from_every_region_and_latest_moves_back() {
    let f = Fixture::allowing_delete().await;
    let version = f.inode("SugarWater/1.0.0").await;
    f.fs.unlink(version, "dist.txt", f.pid()).await.unwrap();
    assert!(f.regions_holding("SugarWater@1.0.0").await.is_empty());
    let latest = f.inode("SugarWater/latest").await;
    assert_eq!(f.fs.readlink(latest).await.unwrap(), "0.9.0");
    let project = f.inode(PROJECT).await;
    let listed: Vec<String> =
        f.fs.readdir(project)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
    assert_eq!(listed, ["latest", "0.9.0"]);
}

#[tokio::test]
async fn with_allow_delete_unlink_of_another_name_in_a_version_is_enoent() {
    let f = Fixture::allowing_delete().await;
    let version = f.inode("SugarWater/1.0.0").await;
    assert_eq!(
        errno(f.fs.unlink(version, "other.txt", f.pid()).await),
        libc::ENOENT
    );
    assert_eq!(f.regions_holding("SugarWater@1.0.0").await.len(), 3);
}
