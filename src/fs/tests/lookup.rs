//! `lookup`: projects, versions, their files and `latest`; names that are missing, and
//! names that cannot exist (answered without asking any region).

use super::fixture::{errno, Fixture, PROJECT, REGIONS};
use crate::fs::namespace::VERSION_LISTINGS;
use crate::fs::FsOptions;
use crate::fs::{FileKind, ROOT_INODE};

#[tokio::test]
async fn a_project_is_a_folder_of_the_root() {
    let f = Fixture::new().await;
    let entry = f.lookup(PROJECT).await.unwrap();
    assert_eq!(entry.attr.kind, FileKind::Directory);
}

#[tokio::test]
async fn a_staged_version_is_a_folder_holding_its_file_under_the_saved_name() {
    let f = Fixture::new().await;
    let version = f.lookup("SugarWater/1.0.0").await.unwrap();
    assert_eq!(version.attr.kind, FileKind::Directory);
    let file = f.lookup("SugarWater/1.0.0/dist.txt").await.unwrap();
    assert_eq!(file.attr.kind, FileKind::RegularFile);
}

#[tokio::test]
async fn a_version_staged_without_a_file_name_holds_project_at_version() {
    let f = Fixture::new().await;
    let file = f.lookup("SugarWater/0.9.0/SugarWater@0.9.0").await.unwrap();
    assert_eq!(file.attr.kind, FileKind::RegularFile);
}

#[tokio::test]
async fn latest_is_a_symlink() {
    let f = Fixture::new().await;
    let latest = f.lookup("SugarWater/latest").await.unwrap();
    assert_eq!(latest.attr.kind, FileKind::Symlink);
}

#[tokio::test]
async fn the_same_name_keeps_its_inode() {
    let f = Fixture::new().await;
    let first = f.inode("SugarWater/1.0.0/dist.txt").await;
    assert_eq!(f.inode("SugarWater/1.0.0/dist.txt").await, first);
    assert_ne!(f.inode("SugarWater/1.0.0").await, first);
}

#[tokio::test]
async fn enoent_for_a_project_that_does_not_exist() {
    let f = Fixture::new().await;
    assert_eq!(errno(f.lookup("NoSuchProject").await), libc::ENOENT);
}

#[tokio::test]
async fn enoent_for_a_version_no_region_holds() {
    let f = Fixture::new().await;
    assert_eq!(errno(f.lookup("SugarWater/2.0.0").await), libc::ENOENT);
}

#[tokio::test]
async fn enoent_for_any_other_name_in_a_version_folder() {
    let f = Fixture::new().await;
    assert_eq!(
        errno(f.lookup("SugarWater/1.0.0/other.txt").await),
        libc::ENOENT
    );
    assert_eq!(
        errno(f.lookup("SugarWater/1.0.0/SugarWater@1.0.0").await),
        libc::ENOENT
    );
}

/// With every region down, a name that reached a region would answer EIO: ENOENT proves
/// it was answered from the name alone.
#[tokio::test]
async fn enoent_without_any_request_for_names_that_cannot_exist() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    for region in REGIONS {
        f.take_down(region);
    }
    for name in ["bad name", "a/b", "", ".."] {
        assert_eq!(
            errno(f.fs.lookup(ROOT_INODE, name).await),
            libc::ENOENT,
            "{name:?}"
        );
    }
    for name in ["v1.0", "1.0", "v1.0.0", "01.0.0", "1.0.0 "] {
        assert_eq!(
            errno(f.fs.lookup(project, name).await),
            libc::ENOENT,
            "{name:?}"
        );
    }
}

/// The model answers a 256-byte version name ENOENT (it cannot be canonical SemVer);
/// ENAMETOOLONG for every name over 255 bytes is the adapter's, before the model is
/// called: see `crate::mount::translate`.
#[tokio::test]
async fn a_version_name_over_255_bytes_is_enoent_without_any_request() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    for region in REGIONS {
        f.take_down(region);
    }
    let long = "v".repeat(256);
    assert_eq!(errno(f.fs.lookup(project, &long).await), libc::ENOENT);
}

#[tokio::test]
async fn a_name_found_missing_is_not_asked_again_within_the_metadata_ttl() {
    let f = Fixture::new().await;
    assert_eq!(errno(f.lookup("NoSuchProject").await), libc::ENOENT);
    assert_eq!(errno(f.lookup("SugarWater/2.0.0").await), libc::ENOENT);
    for region in REGIONS {
        f.take_down(region);
    }
    assert_eq!(errno(f.lookup("NoSuchProject").await), libc::ENOENT);
    assert_eq!(errno(f.lookup("SugarWater/2.0.0").await), libc::ENOENT);
}

#[tokio::test]
async fn enotdir_for_a_name_looked_up_in_a_file_or_in_latest() {
    let f = Fixture::new().await;
    let file = f.inode("SugarWater/1.0.0/dist.txt").await;
    assert_eq!(errno(f.fs.lookup(file, "x").await), libc::ENOTDIR);
    let latest = f.inode("SugarWater/latest").await;
    assert_eq!(errno(f.fs.lookup(latest, "dist.txt").await), libc::ENOTDIR);
}

#[tokio::test]
async fn enoent_for_an_inode_the_mount_never_handed_out() {
    let f = Fixture::new().await;
    assert_eq!(errno(f.fs.lookup(9999, "x").await), libc::ENOENT);
}

#[tokio::test]
async fn listings_kept_for_missing_projects_are_bounded_and_one_dropped_is_asked_again() {
    let options = FsOptions {
        metadata_ttl: std::time::Duration::from_secs(60),
        ..FsOptions::default()
    };
    let f = Fixture::with(options, None).await;
    let project = f.inode(PROJECT).await;
    let listed =
        |entries: Vec<crate::fs::DirEntry>| entries.into_iter().map(|e| e.name).collect::<Vec<_>>();
    assert_eq!(
        listed(f.fs.readdir(project).await.unwrap()),
        ["latest", "1.0.0", "0.9.0"]
    );
    for n in 0..VERSION_LISTINGS + 300 {
        assert_eq!(errno(f.lookup(&format!("Ghost{n}")).await), libc::ENOENT);
        assert!(f.fs.namespace.kept().0 <= VERSION_LISTINGS);
    }
    // SugarWater's listing was dropped: a second session stages 2.0.0, and the
    // listing asked again shows it (kept, it would still show the old one).
    f.stage_elsewhere(&semver::Version::new(2, 0, 0), b"two")
        .await;
    assert_eq!(
        listed(f.fs.readdir(project).await.unwrap()),
        ["latest", "2.0.0", "1.0.0", "0.9.0"]
    );
    // A missing name whose listing went is still missing (its negative entry stays).
    assert_eq!(errno(f.lookup("Ghost0").await), libc::ENOENT);
}
