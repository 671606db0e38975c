//! `open`, `read` and `release`: the bytes read are those that were staged, whole or by
//! range, past the end of the file too; what cannot be opened, and why.

use semver::Version;

use super::fixture::{
    errno, Fixture, CURRENT_BYTES, NEW_BYTES, NEW_FILE, OLD_BYTES, PROJECT, REGIONS,
};
use crate::protocol::setup::LOCAL_BUCKET;
use crate::storage::local::layout;

/// Stages `bytes` as version 2.0.0 from another session; returns the file's path.
async fn stage_version_2(f: &Fixture, bytes: &[u8]) -> &'static str {
    f.stage_elsewhere(&Version::new(2, 0, 0), bytes).await;
    "SugarWater/2.0.0/SugarWater@2.0.0"
}

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
async fn a_staged_file_keeps_its_pages_once_read_whole_and_checked() {
    let f = Fixture::new().await;
    let inode = f.inode("SugarWater/1.0.0/dist.txt").await;
    let opened = f.fs.open(inode, false, false, &f.caller).await.unwrap();
    assert!(
        !opened.keep_pages,
        "not yet read whole: its pages may not be kept"
    );
    let bytes = f.fs.read(opened.handle, 0, 1 << 20).await.unwrap();
    assert_eq!(&bytes[..], CURRENT_BYTES);
    f.fs.release(opened.handle);
    let opened = f.fs.open(inode, false, false, &f.caller).await.unwrap();
    assert!(
        opened.keep_pages,
        "read whole and checked: the kernel may keep its pages"
    );
    f.fs.release(opened.handle);
}

/// Same length, other bytes, in every region, under the ETag the sidecars still give:
/// what a store that damaged its copies would serve.
fn damage_everywhere(f: &Fixture, key: &str) {
    damage_in(f, &REGIONS, key);
}

fn damage_in(f: &Fixture, regions: &[&str], key: &str) {
    for region in regions {
        let file = layout::path_of(
            &f.store.join(region).join("buckets").join(LOCAL_BUCKET),
            key,
        );
        let mut bytes = std::fs::read(&file).expect("the object's file");
        bytes[3] ^= 0xff;
        std::fs::write(&file, bytes).expect("damage the object");
    }
}

#[tokio::test]
async fn the_last_read_of_a_whole_file_that_fails_its_checksum_is_eio() {
    let f = Fixture::new().await;
    damage_everywhere(&f, "SugarWater@1.0.0");
    let inode = f.inode("SugarWater/1.0.0/dist.txt").await;
    let opened = f.fs.open(inode, false, false, &f.caller).await.unwrap();
    let head = f.fs.read(opened.handle, 0, 8).await.unwrap();
    assert_eq!(head.len(), 8, "bytes before the last read go out unchecked");
    assert_eq!(errno(f.fs.read(opened.handle, 8, 1 << 20).await), libc::EIO);
    f.fs.release(opened.handle);
    let opened = f.fs.open(inode, false, false, &f.caller).await.unwrap();
    assert!(
        !opened.keep_pages,
        "the pages of a failed read must be dropped"
    );
    assert_eq!(errno(f.fs.read(opened.handle, 0, 1 << 20).await), libc::EIO);
    f.fs.release(opened.handle);
}

#[tokio::test]
async fn a_cache_fill_that_fails_its_checksum_is_eio_and_keeps_both_digests() {
    use crate::fs::cache::CacheError;
    use std::error::Error as _;
    let f = Fixture::new().await.with_cache(1 << 20);
    damage_everywhere(&f, "SugarWater@1.0.0");
    let opened = open(&f, "SugarWater/1.0.0/dist.txt").await;
    let failed = f.fs.read(opened, 0, 1 << 20).await.unwrap_err();
    f.fs.release(opened);
    assert_eq!(failed.errno(), libc::EIO);
    let cause = failed.source().and_then(|s| s.downcast_ref::<CacheError>());
    let Some(CacheError::Arrived {
        expected,
        got,
        served,
        ..
    }) = cause
    else {
        panic!("the cause is lost: {failed:?}");
    };
    // Staged by this tool: the check is the CRC-64/NVME it recorded.
    assert_eq!(
        *expected,
        crate::checksum::Checksum::of(crate::checksum::Algorithm::Crc64Nvme, CURRENT_BYTES)
    );
    assert_ne!(got, expected);
    assert!(!served.is_empty());
    assert!(
        failed.message.contains("arrived with CRC-64/NVME"),
        "{failed}"
    );
}

#[tokio::test]
async fn after_a_whole_read_fails_its_checksum_the_next_open_reads_from_another_region() {
    let f = Fixture::new().await;
    let inode = f.inode("SugarWater/1.0.0/dist.txt").await;
    let pinned = String::from_utf8(f.xattr(inode, "user.startifact:region").await).unwrap();
    damage_in(&f, &[pinned.as_str()], "SugarWater@1.0.0");
    let opened = f.fs.open(inode, false, false, &f.caller).await.unwrap();
    assert_eq!(errno(f.fs.read(opened.handle, 0, 1 << 20).await), libc::EIO);
    f.fs.release(opened.handle);
    let opened = f.fs.open(inode, false, false, &f.caller).await.unwrap();
    let bytes = f.fs.read(opened.handle, 0, 1 << 20).await.unwrap();
    assert_eq!(&bytes[..], CURRENT_BYTES, "read again from {pinned}");
    f.fs.release(opened.handle);
}

#[tokio::test]
async fn damaged_bytes_read_out_of_order_are_not_checked_and_keep_no_pages() {
    let f = Fixture::new().await;
    damage_everywhere(&f, "SugarWater@1.0.0");
    let inode = f.inode("SugarWater/1.0.0/dist.txt").await;
    let opened = f.fs.open(inode, false, false, &f.caller).await.unwrap();
    // The end first, then the start: pinned by ETag only, as documented.
    f.fs.read(opened.handle, 10, 1 << 20).await.unwrap();
    f.fs.read(opened.handle, 0, 10).await.unwrap();
    f.fs.release(opened.handle);
    let opened = f.fs.open(inode, false, false, &f.caller).await.unwrap();
    assert!(!opened.keep_pages);
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
    let path = stage_version_2(&f, &bytes).await;
    let handle = open(&f, path).await;
    for (offset, size) in [(600_000, 100_000), (0, 4096), (262_000, 1000), (5, 300_000)] {
        let read = f.fs.read(handle, offset, size).await.unwrap();
        let end = (offset as usize + size as usize).min(bytes.len());
        assert_eq!(&read[..], &bytes[offset as usize..end], "at {offset}");
    }
}

/// Readers of one file wait on each other's pages in the kernel, so a handle whose
/// bytes fill the memory budget while its reader waits elsewhere must not stall
/// another handle's read (sixteen `cat`s of one file once hung so, for ever).
#[tokio::test]
async fn a_handle_holding_the_whole_read_budget_does_not_stall_another() {
    use crate::fs::{FsOptions, ReadOptions};
    let options = FsOptions {
        read: ReadOptions {
            memory_budget: 1 << 20,
            chunk_size: 256 << 10,
            ..ReadOptions::default()
        },
        ..FsOptions::default()
    };
    let f = Fixture::with(options, None).await;
    let bytes: Vec<u8> = (0..(3 << 20) as u32)
        .map(|i| (i * 13 + i / 509) as u8)
        .collect();
    let path = stage_version_2(&f, &bytes).await;
    // The first handle's stream takes the whole budget ahead of its reader, who stops.
    let first = open(&f, path).await;
    assert_eq!(
        &f.fs.read(first, 0, 4096).await.unwrap()[..],
        &bytes[..4096]
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Another handle still reads, front to back.
    let second = open(&f, path).await;
    let mut read = Vec::new();
    while read.len() < bytes.len() {
        let next = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            f.fs.read(second, read.len() as u64, 128 << 10),
        )
        .await
        .expect("a read waited on the budget another handle holds")
        .unwrap();
        assert!(!next.is_empty());
        read.extend_from_slice(&next);
    }
    assert!(read == bytes, "the second handle's bytes differ");
    // And the first goes on where it stopped.
    let rest = f.fs.read(first, 4096, 1 << 20).await.unwrap();
    assert_eq!(&rest[..], &bytes[4096..4096 + rest.len()]);
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
