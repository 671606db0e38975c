//! `readdir`: the root, a project (with `latest`, its versions and its staging
//! versions), a version folder, a staging version and its hidden folders.

use super::fixture::{errno, Fixture, NEW_BYTES, NEW_FILE, PROJECT};
use crate::fs::{DirEntry, FileKind, ROOT_INODE};

fn names(entries: &[DirEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.name.as_str()).collect()
}

#[tokio::test]
async fn the_root_lists_every_project() {
    let f = Fixture::new().await;
    let entries = f.fs.readdir(ROOT_INODE).await.unwrap();
    assert_eq!(names(&entries), ["SugarWater"]);
    assert_eq!(entries[0].kind, FileKind::Directory);
}

#[tokio::test]
async fn the_root_lists_staging_projects_of_this_mount() {
    let f = Fixture::new().await;
    f.fs.mkdir(ROOT_INODE, "Lemonade").await.unwrap();
    let entries = f.fs.readdir(ROOT_INODE).await.unwrap();
    assert_eq!(names(&entries), ["Lemonade", "SugarWater"]);
}

#[tokio::test]
async fn a_project_lists_latest_then_its_versions_highest_first() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let entries = f.fs.readdir(project).await.unwrap();
    assert_eq!(names(&entries), ["latest", "1.0.0", "0.9.0"]);
    let kinds: Vec<FileKind> = entries.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [FileKind::Symlink, FileKind::Directory, FileKind::Directory]
    );
}

#[tokio::test]
async fn a_project_lists_its_staging_versions_among_the_staged_ones() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    f.fs.mkdir(project, "1.1.0").await.unwrap();
    f.fs.mkdir(project, "0.9.5").await.unwrap();
    let entries = f.fs.readdir(project).await.unwrap();
    assert_eq!(
        names(&entries),
        ["latest", "1.1.0", "1.0.0", "0.9.5", "0.9.0"]
    );
}

#[tokio::test]
async fn a_staging_project_lists_no_latest() {
    let f = Fixture::new().await;
    let project = f.fs.mkdir(ROOT_INODE, "Lemonade").await.unwrap();
    f.fs.mkdir(project.attr.inode, "0.1.0").await.unwrap();
    let entries = f.fs.readdir(project.attr.inode).await.unwrap();
    assert_eq!(names(&entries), ["0.1.0"]);
}

#[tokio::test]
async fn a_version_folder_lists_its_one_file() {
    let f = Fixture::new().await;
    let version = f.inode("SugarWater/1.0.0").await;
    let entries = f.fs.readdir(version).await.unwrap();
    assert_eq!(names(&entries), ["dist.txt"]);
    assert_eq!(entries[0].kind, FileKind::RegularFile);
}

#[tokio::test]
async fn listed_inodes_are_those_lookup_answers() {
    let f = Fixture::new().await;
    let version = f.inode("SugarWater/1.0.0").await;
    let listed = f.fs.readdir(version).await.unwrap();
    assert_eq!(listed[0].inode, f.inode("SugarWater/1.0.0/dist.txt").await);
}

#[tokio::test]
async fn an_empty_staging_version_lists_nothing() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap();
    assert!(f.fs.readdir(folder.attr.inode).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_staging_version_lists_its_hidden_folders_and_its_file() {
    let f = Fixture::new().await;
    let handle = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    let folder = f.inode("SugarWater/1.1.0").await;
    f.fs.mkdir(folder, ".~tmp~").await.unwrap();
    let entries = f.fs.readdir(folder).await.unwrap();
    assert_eq!(names(&entries), [".~tmp~", NEW_FILE]);
    f.fs.release(handle);
}

#[tokio::test]
async fn a_hidden_folder_lists_the_file_written_in_it() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    let hidden = f.fs.mkdir(folder, ".~tmp~").await.unwrap().attr.inode;
    let (_, handle) = f.fs.create(hidden, NEW_FILE, &f.caller).await.unwrap();
    assert_eq!(names(&f.fs.readdir(hidden).await.unwrap()), [NEW_FILE]);
    assert_eq!(names(&f.fs.readdir(folder).await.unwrap()), [".~tmp~"]);
    f.fs.release(handle);
}

#[tokio::test]
async fn enotdir_for_a_listing_of_a_file_or_of_latest() {
    let f = Fixture::new().await;
    let file = f.inode("SugarWater/1.0.0/dist.txt").await;
    assert_eq!(errno(f.fs.readdir(file).await), libc::ENOTDIR);
    let latest = f.inode("SugarWater/latest").await;
    assert_eq!(errno(f.fs.readdir(latest).await), libc::ENOTDIR);
}

#[tokio::test]
async fn a_project_listing_is_built_once_and_shared_while_fresh() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let first = f.fs.listing(project).await.unwrap();
    let again = f.fs.listing(project).await.unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first, &again),
        "the kernel's readdir of each page shares one listing"
    );
    assert_eq!(names(&first), ["latest", "1.0.0", "0.9.0"]);
    // A staging version of this mount is merged in at each call.
    f.fs.mkdir(project, "1.1.0").await.unwrap();
    let merged = f.fs.listing(project).await.unwrap();
    assert_eq!(names(&merged), ["latest", "1.1.0", "1.0.0", "0.9.0"]);
}
