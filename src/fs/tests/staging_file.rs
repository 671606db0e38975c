//! The staging file: `create`, `write` (at any offset), `flush` (the `close()` that
//! stages it to every region), `release` (which never stages), `fsync`, `mknod`, and
//! the refusals of each.

use semver::Version;

use super::fixture::{errno, Fixture, NEW_BYTES, NEW_FILE, PROJECT, REGIONS};
use crate::fs::{FileKind, ROOT_INODE};

const NEW_KEY: &str = "SugarWater@1.1.0";

#[tokio::test]
async fn close_stages_to_every_region_what_was_written_out_of_order() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    let (entry, handle) = f.fs.create(folder, NEW_FILE, &f.caller).await.unwrap();
    assert_eq!(entry.attr.kind, FileKind::RegularFile);
    let (head, tail) = NEW_BYTES.split_at(7);
    assert_eq!(
        f.fs.write(handle, 7, tail, f.pid()).await.unwrap(),
        tail.len() as u32
    );
    assert_eq!(
        f.fs.write(handle, 0, head, f.pid()).await.unwrap(),
        head.len() as u32
    );
    f.close(handle).await.unwrap();

    assert_eq!(f.regions_holding(NEW_KEY).await, REGIONS);
    for region in REGIONS {
        assert_eq!(f.object(region, NEW_KEY).await, NEW_BYTES, "{region}");
    }
}

#[tokio::test]
async fn after_its_stage_the_file_is_an_immutable_version_under_its_name() {
    let f = Fixture::new().await;
    f.cp("1.1.0", NEW_FILE, NEW_BYTES).await.unwrap();
    let file = f.lookup("SugarWater/1.1.0/app.tar").await.unwrap();
    assert_eq!(
        (file.attr.perm, file.attr.size),
        (0o444, NEW_BYTES.len() as u64)
    );
    assert_eq!(f.read_all("SugarWater/1.1.0/app.tar").await, NEW_BYTES);
    let version = Version::new(1, 1, 0);
    let other = f.other_session().await;
    let artifact = other.get(PROJECT, Some(&version)).await.unwrap();
    let metadata = artifact.metadata().await.unwrap();
    assert_eq!(
        metadata.get("startifact:filename").map(String::as_str),
        Some(NEW_FILE)
    );
}

#[tokio::test]
async fn a_stage_moves_latest_forward() {
    let f = Fixture::new().await;
    f.cp("1.1.0", NEW_FILE, NEW_BYTES).await.unwrap();
    let latest = f.inode("SugarWater/latest").await;
    assert_eq!(f.fs.readlink(latest).await.unwrap(), "1.1.0");
}

#[tokio::test]
async fn a_stage_of_an_older_version_leaves_latest_where_it_is() {
    let f = Fixture::new().await;
    f.cp("0.9.5", NEW_FILE, NEW_BYTES).await.unwrap();
    let latest = f.inode("SugarWater/latest").await;
    assert_eq!(f.fs.readlink(latest).await.unwrap(), "1.0.0");
}

#[tokio::test]
async fn release_without_a_close_stages_nothing() {
    let f = Fixture::new().await;
    let handle = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    f.fs.release(handle);
    assert!(f.regions_holding(NEW_KEY).await.is_empty());
    let file = f.lookup("SugarWater/1.1.0/app.tar").await.unwrap();
    assert_eq!(file.attr.perm, 0o644, "still a staging file");
}

#[tokio::test]
async fn fsync_of_the_staging_file_does_not_stage_it() {
    let f = Fixture::new().await;
    let handle = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    f.fs.fsync(handle).await.unwrap();
    assert!(f.regions_holding(NEW_KEY).await.is_empty());
    f.close(handle).await.unwrap();
    assert_eq!(f.regions_holding(NEW_KEY).await, REGIONS);
}

#[tokio::test]
async fn a_second_file_in_a_staging_version_is_eperm() {
    let f = Fixture::new().await;
    f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    let folder = f.inode("SugarWater/1.1.0").await;
    assert_eq!(
        errno(f.fs.create(folder, "notes.txt", &f.caller).await),
        libc::EPERM
    );
}

#[tokio::test]
async fn a_file_in_the_root_a_project_or_a_staged_version_is_eperm() {
    let f = Fixture::new().await;
    for parent in [
        ROOT_INODE,
        f.inode(PROJECT).await,
        f.inode("SugarWater/1.0.0").await,
    ] {
        assert_eq!(
            errno(f.fs.create(parent, "notes.txt", &f.caller).await),
            libc::EPERM,
            "in inode {parent}"
        );
    }
}

#[tokio::test]
async fn a_file_on_a_read_only_mount_is_erofs() {
    let f = Fixture::read_only().await;
    let version = f.inode("SugarWater/1.0.0").await;
    assert_eq!(
        errno(f.fs.create(version, "notes.txt", &f.caller).await),
        libc::EROFS
    );
}

#[tokio::test]
async fn a_write_past_the_staging_size_is_enospc_and_its_close_stages_nothing() {
    let f = Fixture::with_staging_limit(8).await;
    let project = f.inode(PROJECT).await;
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    let (_, handle) = f.fs.create(folder, NEW_FILE, &f.caller).await.unwrap();
    assert_eq!(
        errno(f.fs.write(handle, 0, NEW_BYTES, f.pid()).await),
        libc::ENOSPC
    );
    assert_eq!(
        errno(f.close(handle).await),
        libc::ENOSPC,
        "close() fails too"
    );
    assert!(f.regions_holding(NEW_KEY).await.is_empty());
    f.lookup("SugarWater/1.1.0/app.tar").await.unwrap();
}

#[tokio::test]
async fn a_write_from_outside_the_openers_process_tree_is_eacces() {
    let f = Fixture::new().await;
    let handle = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    // pid 1 (init) is no descendant of this test process.
    assert_eq!(errno(f.fs.write(handle, 0, b"x", 1).await), libc::EACCES);
    f.fs.release(handle);
}

#[tokio::test]
async fn a_write_through_a_handle_open_for_reading_is_ebadf() {
    let f = Fixture::new().await;
    let writer = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    let inode = f.inode("SugarWater/1.1.0/app.tar").await;
    let reader = f.fs.open(inode, false, false, &f.caller).await.unwrap();
    assert_eq!(
        errno(f.fs.write(reader.handle, 0, b"x", f.pid()).await),
        libc::EBADF
    );
    f.fs.release(reader.handle);
    f.fs.release(writer);
}

#[tokio::test]
async fn a_write_to_a_staged_file_is_eperm() {
    let f = Fixture::new().await;
    let inode = f.inode("SugarWater/1.0.0/dist.txt").await;
    let reader = f.fs.open(inode, false, false, &f.caller).await.unwrap();
    assert_eq!(
        errno(f.fs.write(reader.handle, 0, b"x", f.pid()).await),
        libc::EPERM
    );
}

#[tokio::test]
async fn reopening_the_file_for_writing_and_closing_it_stages_it() {
    let f = Fixture::new().await;
    let handle = f.start_writing("1.1.0", NEW_FILE, b"half").await;
    f.fs.release(handle);
    let inode = f.inode("SugarWater/1.1.0/app.tar").await;
    let opened = f.fs.open(inode, true, true, &f.caller).await.unwrap();
    f.fs.write(opened.handle, 0, NEW_BYTES, f.pid())
        .await
        .unwrap();
    f.close(opened.handle).await.unwrap();
    assert_eq!(f.read_all("SugarWater/1.1.0/app.tar").await, NEW_BYTES);
}

#[tokio::test]
async fn mknod_makes_the_file_with_no_handle_and_the_writers_close_stages_it() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    let made = f.fs.mknod_file(folder, NEW_FILE, &f.caller).await.unwrap();
    assert!(f.regions_holding(NEW_KEY).await.is_empty());
    let opened =
        f.fs.open(made.attr.inode, true, false, &f.caller)
            .await
            .unwrap();
    f.fs.write(opened.handle, 0, NEW_BYTES, f.pid())
        .await
        .unwrap();
    f.close(opened.handle).await.unwrap();
    assert_eq!(f.regions_holding(NEW_KEY).await, REGIONS);
}
