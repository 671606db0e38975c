//! `open`, `read` and `release`: the bytes read are those that were staged, whole or by
//! range, past the end of the file too; what cannot be opened, and why.

use semver::Version;

use super::fixture::{errno, Fixture, CURRENT_BYTES, NEW_BYTES, NEW_FILE, OLD_BYTES, PROJECT};
use crate::protocol::Metadata;

async fn open(f: &Fixture, path: &str) -> u64 {
    let inode = f.inode(path).await;
    f.fs.open(inode, false, false, &f.caller)
        .await
        .unwrap()
        .handle
}

#[tokio::test]
async fn a_whole_file_reads_as_it_was_staged() {
    let f = Fixture::new().await;
    assert_eq!(f.read_all("SugarWater/1.0.0/dist.txt").await, CURRENT_BYTES);
    assert_eq!(
        f.read_all("SugarWater/0.9.0/SugarWater@0.9.0").await,
        OLD_BYTES
    );
}

#[tokio::test]
async fn a_staged_file_opens_as_immutable() {
    let f = Fixture::new().await;
    let inode = f.inode("SugarWater/1.0.0/dist.txt").await;
    let opened = f.fs.open(inode, false, false, &f.caller).await.unwrap();
    assert!(opened.keep_pages, "the kernel may keep its pages");
    f.fs.release(opened.handle);
}

#[tokio::test]
async fn a_range_reads_those_bytes_only() {
    let f = Fixture::new().await;
    let handle = open(&f, "SugarWater/1.0.0/dist.txt").await;
    let bytes = f.fs.read(handle, 11, 5).await.unwrap();
    assert_eq!(&bytes[..], &CURRENT_BYTES[11..16]);
}

#[tokio::test]
async fn a_read_past_the_end_is_empty_and_one_across_it_is_cut_there() {
    let f = Fixture::new().await;
    let handle = open(&f, "SugarWater/1.0.0/dist.txt").await;
    let size = CURRENT_BYTES.len() as u64;
    assert!(f.fs.read(handle, size, 10).await.unwrap().is_empty());
    assert!(f.fs.read(handle, size + 100, 10).await.unwrap().is_empty());
    let tail = f.fs.read(handle, size - 3, 100).await.unwrap();
    assert_eq!(&tail[..], &CURRENT_BYTES[CURRENT_BYTES.len() - 3..]);
}

/// Larger than a block of the random-read path (256 KiB), read out of order.
#[tokio::test]
async fn ranges_of_a_larger_file_read_in_any_order_match_what_was_staged() {
    let f = Fixture::new().await;
    let bytes: Vec<u8> = (0..700_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let source = f.store.with_file_name("large.bin");
    std::fs::write(&source, &bytes).unwrap();
    let version = Version::new(2, 0, 0);
    f.other_session()
        .await
        .stage(PROJECT, &version, &source, Metadata::new(), false)
        .await
        .unwrap();
    let handle = open(&f, "SugarWater/2.0.0/SugarWater@2.0.0").await;
    for (offset, size) in [(600_000, 100_000), (0, 4096), (262_000, 1000), (5, 300_000)] {
        let read = f.fs.read(handle, offset, size).await.unwrap();
        let end = (offset as usize + size as usize).min(bytes.len());
        assert_eq!(&read[..], &bytes[offset as usize..end], "at {offset}");
    }
}

#[tokio::test]
async fn a_staging_file_reads_from_the_spool() {
    let f = Fixture::new().await;
    let writer = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    let inode = f.inode("SugarWater/1.1.0/app.tar").await;
    let opened = f.fs.open(inode, false, false, &f.caller).await.unwrap();
    assert!(!opened.keep_pages, "a staging file changes");
    let bytes = f.fs.read(opened.handle, 0, 100).await.unwrap();
    assert_eq!(&bytes[..], NEW_BYTES);
    f.fs.release(opened.handle);
    f.fs.release(writer);
}

#[tokio::test]
async fn opening_a_staged_file_for_writing_is_eperm() {
    let f = Fixture::new().await;
    let inode = f.inode("SugarWater/1.0.0/dist.txt").await;
    assert_eq!(
        errno(f.fs.open(inode, true, false, &f.caller).await),
        libc::EPERM
    );
    assert_eq!(
        errno(f.fs.open(inode, true, true, &f.caller).await),
        libc::EPERM,
        "O_TRUNC"
    );
}

#[tokio::test]
async fn opening_a_staged_file_for_writing_on_a_read_only_mount_is_erofs() {
    let f = Fixture::read_only().await;
    let inode = f.inode("SugarWater/1.0.0/dist.txt").await;
    assert_eq!(
        errno(f.fs.open(inode, true, false, &f.caller).await),
        libc::EROFS
    );
}

#[tokio::test]
async fn opening_a_folder_is_eisdir() {
    let f = Fixture::new().await;
    for path in [PROJECT, "SugarWater/1.0.0"] {
        let inode = f.inode(path).await;
        assert_eq!(
            errno(f.fs.open(inode, false, false, &f.caller).await),
            libc::EISDIR,
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_released_handle_reads_nothing_ebadf() {
    let f = Fixture::new().await;
    let handle = open(&f, "SugarWater/1.0.0/dist.txt").await;
    f.fs.release(handle);
    assert_eq!(errno(f.fs.read(handle, 0, 10).await), libc::EBADF);
}

#[tokio::test]
async fn flush_and_fsync_of_a_staged_file_succeed_and_do_nothing() {
    let f = Fixture::new().await;
    let handle = open(&f, "SugarWater/1.0.0/dist.txt").await;
    f.fs.flush(handle, f.pid()).await.unwrap();
    f.fs.fsync(handle).await.unwrap();
    assert_eq!(&f.fs.read(handle, 0, 100).await.unwrap()[..], CURRENT_BYTES);
}
