//! Which opens offer the kernel a file to read directly (`Opened::backing`, FUSE
//! passthrough): only a cached artifact that is whole and passed its check, and only
//! when passthrough is on. Every other open offers none and reads through `read`.

use std::io::Read;

use super::fixture::{Fixture, CURRENT_BYTES, NEW_BYTES, NEW_FILE, PROJECT, REGIONS};
use crate::fs::FsOptions;
use crate::protocol::setup::LOCAL_BUCKET;
use crate::storage::local::layout;

const DIST: &str = "SugarWater/1.0.0/dist.txt";

/// Opens `inode`, reads it whole through the model, and releases it; returns whether
/// the open offered a backing file, and that file's bytes.
async fn open_and_read(f: &Fixture, inode: u64) -> (Option<Vec<u8>>, Vec<u8>) {
    let opened = f.fs.open(inode, false, false, &f.caller).await.unwrap();
    let offered = opened.backing.map(|mut file| {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        bytes
    });
    let read = f.fs.read(opened.handle, 0, 1 << 20).await;
    f.fs.release(opened.handle);
    (offered, read.map(|b| b.to_vec()).unwrap_or_default())
}

#[tokio::test]
async fn a_cached_artifact_offers_its_cache_file_once_whole_and_checked() {
    let f = Fixture::new().await.with_cache(1 << 20);
    assert!(f.fs.may_pass_through());
    let inode = f.inode(DIST).await;
    let (offered, read) = open_and_read(&f, inode).await;
    assert_eq!(
        offered, None,
        "still arriving: its reads wait for the check"
    );
    assert_eq!(read, CURRENT_BYTES);
    let (offered, read) = open_and_read(&f, inode).await;
    assert_eq!(offered.as_deref(), Some(CURRENT_BYTES), "whole and checked");
    assert_eq!(read, CURRENT_BYTES);
}

#[tokio::test]
async fn with_passthrough_off_no_open_offers_a_file() {
    let options = FsOptions {
        passthrough: false,
        ..FsOptions::default()
    };
    let f = Fixture::with(options, None).await.with_cache(1 << 20);
    assert!(!f.fs.may_pass_through());
    let inode = f.inode(DIST).await;
    for _ in 0..2 {
        let (offered, read) = open_and_read(&f, inode).await;
        assert_eq!(offered, None);
        assert_eq!(read, CURRENT_BYTES);
    }
}

#[tokio::test]
async fn streamed_artifacts_and_staging_files_offer_no_file() {
    // No cache, and a cache too small for the artifact: both stream from the regions.
    for f in [Fixture::new().await, Fixture::new().await.with_cache(4)] {
        let inode = f.inode(DIST).await;
        for _ in 0..2 {
            let (offered, read) = open_and_read(&f, inode).await;
            assert_eq!(offered, None);
            assert_eq!(read, CURRENT_BYTES);
        }
    }
    let f = Fixture::new().await.with_cache(1 << 20);
    let writing = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    let inode = f.inode(&format!("{PROJECT}/1.1.0/{NEW_FILE}")).await;
    let (offered, read) = open_and_read(&f, inode).await;
    assert_eq!(offered, None, "a staging file changes");
    assert_eq!(read, NEW_BYTES);
    f.fs.release(writing);
}

#[tokio::test]
async fn a_cached_copy_that_fails_its_checksum_is_never_offered() {
    let f = Fixture::new().await.with_cache(1 << 20);
    for region in REGIONS {
        let file = layout::path_of(
            &f.store.join(region).join("buckets").join(LOCAL_BUCKET),
            "SugarWater@1.0.0",
        );
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[3] ^= 0xff;
        std::fs::write(&file, bytes).unwrap();
    }
    let inode = f.inode(DIST).await;
    for _ in 0..2 {
        let (offered, read) = open_and_read(&f, inode).await;
        assert_eq!(offered, None, "bytes that fail their MD5 are not whole");
        assert!(read.is_empty(), "EIO, never bytes");
    }
}
