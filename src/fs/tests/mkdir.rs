//! `mkdir`: staging projects and versions, hidden folders in a staging version, and the
//! errno of every name that is refused.

use super::fixture::{errno, Fixture, PROJECT};
use crate::fs::{FileKind, ROOT_INODE};

#[tokio::test]
async fn mkdir_of_a_new_version_makes_a_writable_staging_folder() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let made = f.fs.mkdir(project, "1.1.0").await.unwrap();
    assert_eq!(
        (made.attr.kind, made.attr.perm),
        (FileKind::Directory, 0o755)
    );
    assert_eq!(f.inode("SugarWater/1.1.0").await, made.attr.inode);
}

#[tokio::test]
async fn mkdir_of_a_new_project_makes_a_staging_project() {
    let f = Fixture::new().await;
    let made = f.fs.mkdir(ROOT_INODE, "Lemonade").await.unwrap();
    let version = f.fs.mkdir(made.attr.inode, "0.1.0").await.unwrap();
    assert_eq!(f.inode("Lemonade/0.1.0").await, version.attr.inode);
}

#[tokio::test]
async fn mkdir_of_a_staged_version_is_eexist() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    assert_eq!(errno(f.fs.mkdir(project, "1.0.0").await), libc::EEXIST);
}

#[tokio::test]
async fn mkdir_of_latest_is_eexist() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    assert_eq!(errno(f.fs.mkdir(project, "latest").await), libc::EEXIST);
}

#[tokio::test]
async fn mkdir_of_a_version_staging_here_is_eexist() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    f.fs.mkdir(project, "1.1.0").await.unwrap();
    assert_eq!(errno(f.fs.mkdir(project, "1.1.0").await), libc::EEXIST);
}

#[tokio::test]
async fn mkdir_of_an_existing_project_is_eexist() {
    let f = Fixture::new().await;
    assert_eq!(errno(f.fs.mkdir(ROOT_INODE, PROJECT).await), libc::EEXIST);
}

#[tokio::test]
async fn mkdir_of_a_version_that_is_not_canonical_semver_is_einval() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    for name in ["1.1", "v1.1.0", "01.1.0", "1.1.0 ", "notes"] {
        assert_eq!(
            errno(f.fs.mkdir(project, name).await),
            libc::EINVAL,
            "{name:?}"
        );
    }
}

#[tokio::test]
async fn mkdir_of_a_bad_project_name_is_einval() {
    let f = Fixture::new().await;
    for name in ["bad name", "a:b", "..", "é"] {
        assert_eq!(
            errno(f.fs.mkdir(ROOT_INODE, name).await),
            libc::EINVAL,
            "{name:?}"
        );
    }
}

#[tokio::test]
async fn mkdir_of_a_hidden_folder_in_a_staging_version_makes_it_once() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    let hidden = f.fs.mkdir(folder, ".~tmp~").await.unwrap();
    assert_eq!(hidden.attr.kind, FileKind::Directory);
    assert_eq!(errno(f.fs.mkdir(folder, ".~tmp~").await), libc::EEXIST);
}

#[tokio::test]
async fn mkdir_of_a_folder_that_is_not_hidden_in_a_staging_version_is_eperm() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    assert_eq!(errno(f.fs.mkdir(folder, "docs").await), libc::EPERM);
}

#[tokio::test]
async fn mkdir_in_a_staged_version_or_in_a_hidden_folder_is_eperm() {
    let f = Fixture::new().await;
    let version = f.inode("SugarWater/1.0.0").await;
    assert_eq!(errno(f.fs.mkdir(version, ".~tmp~").await), libc::EPERM);
    let project = f.inode(PROJECT).await;
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    let hidden = f.fs.mkdir(folder, ".~tmp~").await.unwrap().attr.inode;
    assert_eq!(errno(f.fs.mkdir(hidden, ".inner").await), libc::EPERM);
}

#[tokio::test]
async fn mkdir_on_a_read_only_mount_is_erofs() {
    let f = Fixture::read_only().await;
    let project = f.inode(PROJECT).await;
    assert_eq!(errno(f.fs.mkdir(project, "1.1.0").await), libc::EROFS);
    assert_eq!(errno(f.fs.mkdir(ROOT_INODE, "Lemonade").await), libc::EROFS);
}
