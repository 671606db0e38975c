//! `statfs`: the staging limit as the size, what may still be written as the free space
//! (never more than the disk under the staging folder has), 4096-byte blocks, names up
//! to 255 bytes, and as files the inodes the mount has handed out.

use super::fixture::{Fixture, PROJECT};
use crate::fs::staging::Room;

#[tokio::test]
async fn statfs_shows_the_staging_limit_as_size_and_names_up_to_255_bytes() {
    // The fixture's staging folder holds 1 MiB.
    let f = Fixture::new().await;
    let stat = f.fs.statfs();
    assert_eq!(
        (stat.blocks, stat.block_size, stat.name_max),
        (256, 4096, 255)
    );
    assert_eq!(
        (stat.free_blocks, stat.available_blocks),
        (256, 256),
        "an empty spool on a disk with more than 1 MiB free"
    );
}

#[tokio::test]
async fn statfs_free_space_shrinks_by_what_a_staging_file_holds() {
    let f = Fixture::new().await;
    let handle = f.start_writing("1.1.0", "app.tar", &[7u8; 3 * 4096]).await;
    let stat = f.fs.statfs();
    assert_eq!((stat.blocks, stat.free_blocks), (256, 253));
    assert_eq!(stat.available_blocks, stat.free_blocks);
    f.close(handle).await.unwrap();
    assert_eq!(
        f.fs.statfs().free_blocks,
        256,
        "staged, the spool is empty again"
    );
}

#[tokio::test]
async fn statfs_of_a_read_only_mount_has_no_room() {
    let f = Fixture::read_only().await;
    let stat = f.fs.statfs();
    assert_eq!(
        (stat.blocks, stat.free_blocks, stat.available_blocks),
        (0, 0, 0)
    );
}

#[test]
fn the_room_to_write_is_the_smaller_of_the_limit_left_and_the_disk() {
    let room = |limit, used, disk_free| Room {
        limit,
        used,
        disk_free,
    };
    assert_eq!(room(100, 30, Some(1000)).writable(), 70);
    assert_eq!(room(100, 30, Some(20)).writable(), 20, "a nearly full disk");
    assert_eq!(room(100, 30, None).writable(), 70);
    assert_eq!(room(100, 130, Some(1000)).writable(), 0, "over the limit");
}

#[tokio::test]
async fn statfs_counts_the_inodes_handed_out_and_none_for_missing_names() {
    let f = Fixture::new().await;
    assert_eq!(f.fs.statfs().files, 1, "the root");
    f.inode("SugarWater/1.0.0/dist.txt").await;
    assert_eq!(f.fs.statfs().files, 4);
    assert!(f.lookup("SugarWater/2.0.0").await.is_err());
    assert!(f.lookup("NoSuchProject").await.is_err());
    assert_eq!(f.fs.statfs().files, 4, "a missing name takes no inode");
    f.inode(PROJECT).await;
    assert_eq!(f.fs.statfs().files, 4);
}
