//! `statfs`: no blocks and no free space, 4096-byte blocks, names up to 255 bytes, and
//! as files the inodes the mount has handed out.

use super::fixture::{Fixture, PROJECT};

#[tokio::test]
async fn statfs_reports_no_space_and_names_up_to_255_bytes() {
    let f = Fixture::new().await;
    let stat = f.fs.statfs();
    assert_eq!(
        (stat.blocks, stat.block_size, stat.name_max),
        (0, 4096, 255)
    );
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
