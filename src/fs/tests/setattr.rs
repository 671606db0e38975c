//! `setattr` (`truncate`, `touch`, `chmod`): the staging file takes a new size and time;
//! folders take times and modes without keeping them; a staged file takes nothing.

use std::time::{Duration, SystemTime};

use super::fixture::{errno, Fixture, NEW_BYTES, NEW_FILE, PROJECT};
use crate::fs::{AttrChange, ROOT_INODE};

const TOUCH: AttrChange = AttrChange {
    size: None,
    mtime: Some(SystemTime::UNIX_EPOCH),
    other: false,
};
const CHMOD: AttrChange = AttrChange {
    size: None,
    mtime: None,
    other: true,
};

fn truncate(size: u64) -> AttrChange {
    AttrChange {
        size: Some(size),
        ..AttrChange::default()
    }
}

#[tokio::test]
async fn truncate_and_touch_of_the_staging_file_are_kept() {
    let f = Fixture::new().await;
    let handle = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    let inode = f.inode("SugarWater/1.1.0/app.tar").await;
    let entry = f.fs.setattr(inode, truncate(4), f.pid()).await.unwrap();
    assert_eq!(entry.attr.size, 4);
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let change = AttrChange {
        mtime: Some(when),
        ..AttrChange::default()
    };
    assert_eq!(
        f.fs.setattr(inode, change, f.pid())
            .await
            .unwrap()
            .attr
            .mtime,
        when
    );
    f.close(handle).await.unwrap();
    assert_eq!(
        f.read_all("SugarWater/1.1.0/app.tar").await,
        &NEW_BYTES[..4]
    );
}

#[tokio::test]
async fn truncate_past_the_staging_size_is_enospc() {
    let f = Fixture::with_staging_limit(64).await;
    let handle = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    let inode = f.inode("SugarWater/1.1.0/app.tar").await;
    assert_eq!(
        errno(f.fs.setattr(inode, truncate(65), f.pid()).await),
        libc::ENOSPC
    );
    f.fs.release(handle);
}

#[tokio::test]
async fn any_change_to_a_staged_file_is_eperm() {
    let f = Fixture::new().await;
    let inode = f.inode("SugarWater/1.0.0/dist.txt").await;
    for change in [truncate(0), TOUCH, CHMOD] {
        assert_eq!(
            errno(f.fs.setattr(inode, change, f.pid()).await),
            libc::EPERM,
            "{change:?}"
        );
    }
}

#[tokio::test]
async fn touch_and_chmod_of_a_file_this_mount_staged_are_accepted() {
    let f = Fixture::new().await;
    f.cp("1.1.0", NEW_FILE, NEW_BYTES).await.unwrap();
    let inode = f.inode("SugarWater/1.1.0/app.tar").await;
    let entry = f.fs.setattr(inode, TOUCH, f.pid()).await.unwrap();
    assert_ne!(
        entry.attr.mtime,
        SystemTime::UNIX_EPOCH,
        "accepted, not kept"
    );
    f.fs.setattr(inode, CHMOD, f.pid()).await.unwrap();
    assert_eq!(
        errno(f.fs.setattr(inode, truncate(0), f.pid()).await),
        libc::EPERM
    );
}

#[tokio::test]
async fn folders_take_times_and_modes_without_keeping_them() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let staging = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    let version = f.inode("SugarWater/1.0.0").await;
    for inode in [ROOT_INODE, project, version, staging] {
        for change in [TOUCH, CHMOD] {
            let entry = f.fs.setattr(inode, change, f.pid()).await.unwrap();
            assert_ne!(entry.attr.mtime, SystemTime::UNIX_EPOCH, "inode {inode}");
        }
    }
    assert_eq!(f.fs.getattr(version).await.unwrap().attr.perm, 0o555);
}

#[tokio::test]
async fn truncate_of_a_folder_is_eperm() {
    let f = Fixture::new().await;
    let version = f.inode("SugarWater/1.0.0").await;
    assert_eq!(
        errno(f.fs.setattr(version, truncate(0), f.pid()).await),
        libc::EPERM
    );
}

#[tokio::test]
async fn setattr_of_latest_is_eperm() {
    let f = Fixture::new().await;
    let latest = f.inode("SugarWater/latest").await;
    assert_eq!(
        errno(f.fs.setattr(latest, TOUCH, f.pid()).await),
        libc::EPERM
    );
}

#[tokio::test]
async fn setattr_on_a_read_only_mount_is_erofs() {
    let f = Fixture::read_only().await;
    let version = f.inode("SugarWater/1.0.0").await;
    assert_eq!(
        errno(f.fs.setattr(version, TOUCH, f.pid()).await),
        libc::EROFS
    );
}
