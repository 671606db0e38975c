//! `getattr`: the kind, mode, size and owner of every kind of node, and how long the
//! kernel may keep each (see the table of nodes in docs/SEMANTICS.md).

use std::time::Duration;

use super::fixture::{errno, Fixture, CURRENT_BYTES, NEW_BYTES, NEW_FILE, OLD_BYTES, PROJECT};
use crate::fs::{Entry, FileKind, FsOptions, ROOT_INODE};

async fn attributes(f: &Fixture, path: &str) -> Entry {
    let inode = f.inode(path).await;
    f.fs.getattr(inode).await.unwrap()
}

#[tokio::test]
async fn the_root_and_projects_are_writable_folders_on_a_writable_mount() {
    let f = Fixture::new().await;
    let root = f.fs.getattr(ROOT_INODE).await.unwrap();
    assert_eq!(
        (root.attr.kind, root.attr.perm),
        (FileKind::Directory, 0o755)
    );
    let project = attributes(&f, PROJECT).await;
    assert_eq!(
        (project.attr.kind, project.attr.perm, project.attr.size),
        (FileKind::Directory, 0o755, 0)
    );
}

#[tokio::test]
async fn the_root_and_projects_are_read_only_folders_on_a_read_only_mount() {
    let f = Fixture::read_only().await;
    assert_eq!(f.fs.getattr(ROOT_INODE).await.unwrap().attr.perm, 0o555);
    assert_eq!(attributes(&f, PROJECT).await.attr.perm, 0o555);
}

#[tokio::test]
async fn a_version_is_a_read_only_folder_of_size_zero() {
    let f = Fixture::new().await;
    let version = attributes(&f, "SugarWater/1.0.0").await;
    assert_eq!(
        (version.attr.kind, version.attr.perm, version.attr.size),
        (FileKind::Directory, 0o555, 0)
    );
}

#[tokio::test]
async fn a_file_is_read_only_with_the_size_that_was_staged() {
    let f = Fixture::new().await;
    let current = attributes(&f, "SugarWater/1.0.0/dist.txt").await;
    assert_eq!(
        (current.attr.kind, current.attr.perm, current.attr.size),
        (FileKind::RegularFile, 0o444, CURRENT_BYTES.len() as u64)
    );
    let old = attributes(&f, "SugarWater/0.9.0/SugarWater@0.9.0").await;
    assert_eq!(old.attr.size, OLD_BYTES.len() as u64);
}

#[tokio::test]
async fn latest_is_a_symlink_as_long_as_its_target() {
    let f = Fixture::new().await;
    let latest = attributes(&f, "SugarWater/latest").await;
    assert_eq!(
        (latest.attr.kind, latest.attr.perm, latest.attr.size),
        (FileKind::Symlink, 0o777, "1.0.0".len() as u64)
    );
}

#[tokio::test]
async fn staging_folders_and_files_are_writable_and_show_what_was_written() {
    let f = Fixture::new().await;
    let handle = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    let folder = attributes(&f, "SugarWater/1.1.0").await;
    assert_eq!(
        (folder.attr.kind, folder.attr.perm),
        (FileKind::Directory, 0o755)
    );
    let file = attributes(&f, "SugarWater/1.1.0/app.tar").await;
    assert_eq!(
        (file.attr.kind, file.attr.perm, file.attr.size),
        (FileKind::RegularFile, 0o644, NEW_BYTES.len() as u64)
    );
    f.fs.release(handle);
}

#[tokio::test]
async fn every_node_belongs_to_the_mounts_owner() {
    let f = Fixture::new().await;
    for path in [
        PROJECT,
        "SugarWater/latest",
        "SugarWater/1.0.0",
        "SugarWater/1.0.0/dist.txt",
    ] {
        let entry = attributes(&f, path).await;
        assert_eq!(
            (entry.attr.uid, entry.attr.gid),
            (f.caller.uid, f.caller.gid),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_kernel_keeps_versions_a_day_listings_for_the_ttl_and_staging_not_at_all() {
    let f = Fixture::new().await;
    let options = FsOptions::default();
    for path in ["SugarWater/1.0.0", "SugarWater/1.0.0/dist.txt"] {
        assert_eq!(
            attributes(&f, path).await.ttl,
            options.immutable_ttl,
            "{path}"
        );
    }
    assert_eq!(attributes(&f, PROJECT).await.ttl, options.metadata_ttl);
    // The name `latest` is kept for what is left of the TTL; the symlink it leads to
    // (one per target) never changes, so its attributes are kept a day.
    let latest = f.lookup("SugarWater/latest").await.unwrap();
    assert!(latest.ttl <= options.metadata_ttl && !latest.ttl.is_zero());
    assert_eq!(
        attributes(&f, "SugarWater/latest").await.ttl,
        options.immutable_ttl
    );
    let handle = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    for path in ["SugarWater/1.1.0", "SugarWater/1.1.0/app.tar"] {
        assert_eq!(attributes(&f, path).await.ttl, Duration::ZERO, "{path}");
    }
    f.fs.release(handle);
}

#[tokio::test]
async fn getattr_of_an_inode_never_handed_out_is_enoent() {
    let f = Fixture::new().await;
    assert_eq!(errno(f.fs.getattr(9999).await), libc::ENOENT);
}
