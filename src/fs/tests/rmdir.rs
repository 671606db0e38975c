//! `rmdir`: empty staging folders go; anything holding something is ENOTEMPTY, and
//! anything staged EPERM (ENOTEMPTY with `--allow-delete`, until it is yanked).

use super::fixture::{errno, Fixture, NEW_BYTES, NEW_FILE, PROJECT};
use crate::fs::ROOT_INODE;

#[tokio::test]
async fn rmdir_of_an_empty_staging_version_removes_it() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    f.fs.mkdir(project, "1.1.0").await.unwrap();
    f.fs.rmdir(project, "1.1.0").await.unwrap();
    assert_eq!(errno(f.lookup("SugarWater/1.1.0").await), libc::ENOENT);
}

#[tokio::test]
async fn rmdir_of_a_staging_version_holding_its_file_is_enotempty() {
    let f = Fixture::new().await;
    let handle = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    f.fs.release(handle);
    let project = f.inode(PROJECT).await;
    assert_eq!(errno(f.fs.rmdir(project, "1.1.0").await), libc::ENOTEMPTY);
}

#[tokio::test]
async fn rmdir_of_a_staging_version_holding_a_hidden_folder_is_enotempty() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    f.fs.mkdir(folder, ".~tmp~").await.unwrap();
    assert_eq!(errno(f.fs.rmdir(project, "1.1.0").await), libc::ENOTEMPTY);
    f.fs.rmdir(folder, ".~tmp~").await.unwrap();
    f.fs.rmdir(project, "1.1.0").await.unwrap();
}

#[tokio::test]
async fn rmdir_of_a_hidden_folder_holding_the_file_is_enotempty() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    let hidden = f.fs.mkdir(folder, ".~tmp~").await.unwrap().attr.inode;
    let (_, handle) = f.fs.create(hidden, NEW_FILE, &f.caller).await.unwrap();
    f.fs.release(handle);
    assert_eq!(errno(f.fs.rmdir(folder, ".~tmp~").await), libc::ENOTEMPTY);
}

#[tokio::test]
async fn rmdir_of_a_staged_version_is_eperm() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    assert_eq!(errno(f.fs.rmdir(project, "1.0.0").await), libc::EPERM);
    f.lookup("SugarWater/1.0.0").await.unwrap();
}

#[tokio::test]
async fn rmdir_of_a_staged_version_with_allow_delete_is_enotempty_until_yanked() {
    let f = Fixture::allowing_delete().await;
    let project = f.inode(PROJECT).await;
    assert_eq!(errno(f.fs.rmdir(project, "1.0.0").await), libc::ENOTEMPTY);
    let version = f.inode("SugarWater/1.0.0").await;
    f.fs.unlink(version, "dist.txt", f.pid()).await.unwrap();
    f.fs.rmdir(project, "1.0.0").await.unwrap();
}

#[tokio::test]
async fn a_version_staged_again_after_its_yank_is_enotempty_again() {
    let f = Fixture::allowing_delete().await;
    let project = f.inode(PROJECT).await;
    let version = f.inode("SugarWater/1.0.0").await;
    f.fs.unlink(version, "dist.txt", f.pid()).await.unwrap();
    f.fs.rmdir(project, "1.0.0").await.unwrap();
    f.cp("1.0.0", NEW_FILE, NEW_BYTES).await.unwrap();
    // Staged again: `rmdir` no longer answers for the yank.
    assert_eq!(errno(f.fs.rmdir(project, "1.0.0").await), libc::ENOTEMPTY);
    assert_eq!(
        f.read_all(&format!("SugarWater/1.0.0/{NEW_FILE}")).await,
        NEW_BYTES
    );
}

#[tokio::test]
async fn rmdir_of_a_staging_project_is_enotempty_while_it_holds_versions() {
    let f = Fixture::new().await;
    let project = f.fs.mkdir(ROOT_INODE, "Lemonade").await.unwrap().attr.inode;
    f.fs.mkdir(project, "0.1.0").await.unwrap();
    assert_eq!(
        errno(f.fs.rmdir(ROOT_INODE, "Lemonade").await),
        libc::ENOTEMPTY
    );
    f.fs.rmdir(project, "0.1.0").await.unwrap();
    f.fs.rmdir(ROOT_INODE, "Lemonade").await.unwrap();
    assert_eq!(errno(f.lookup("Lemonade").await), libc::ENOENT);
}

#[tokio::test]
async fn rmdir_of_a_staged_project_is_eperm() {
    let f = Fixture::new().await;
    assert_eq!(errno(f.fs.rmdir(ROOT_INODE, PROJECT).await), libc::EPERM);
}

#[tokio::test]
async fn rmdir_on_a_read_only_mount_is_erofs() {
    let f = Fixture::read_only().await;
    let project = f.inode(PROJECT).await;
    assert_eq!(errno(f.fs.rmdir(project, "1.0.0").await), libc::EROFS);
}
