//! What the `close()` that stages answers besides 0: EEXIST when someone else staged
//! the version meanwhile, and EBUSY for changes to the file while its stage runs (held
//! open here by a region whose `latest` parameter is a FIFO that nothing writes yet).
//! (EIO when no majority takes it is in `regions_down`.)

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use semver::Version;

use super::fixture::{errno, Fixture, NEW_BYTES, NEW_FILE, REGIONS};
use crate::fs::SetMode;

#[tokio::test]
async fn close_after_someone_else_staged_the_version_is_eexist_and_keeps_the_file() {
    let f = Fixture::new().await;
    let handle = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    f.stage_elsewhere(&Version::new(1, 1, 0), b"someone else's 1.1.0\n")
        .await;
    assert_eq!(errno(f.close(handle).await), libc::EEXIST);
    let kept = f.lookup("SugarWater/1.1.0/app.tar").await.unwrap();
    assert_eq!(kept.attr.perm, 0o644, "still a staging file here");
}

/// Makes `path` a FIFO: a reader blocks in `open` until a writer comes.
fn make_fifo(path: &Path) {
    std::fs::remove_file(path).unwrap();
    let c_path = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
}

/// Waits until something has the FIFO open for reading (a non-blocking open for
/// writing fails with ENXIO until then), and returns its write end.
async fn reader_of(path: &Path) -> File {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
        {
            Ok(file) => return file,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            Err(e) => panic!("no stage came to read {}: {e}", path.display()),
        }
    }
}

#[tokio::test]
async fn changes_to_the_file_while_its_stage_runs_are_ebusy() {
    let f = Fixture::new().await;
    let held = f.parameter_file(REGIONS[2], "/SugarWater/latest");
    make_fifo(&held);
    let handle = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    let folder = f.inode("SugarWater/1.1.0").await;
    let file = f.inode("SugarWater/1.1.0/app.tar").await;
    f.fs.setxattr(folder, "user.early", b"1", SetMode::Any, f.pid())
        .await
        .unwrap();

    let changes_while_staging = async {
        let mut latest = reader_of(&held).await;
        let write = f.fs.write(handle, 0, b"late", f.pid()).await;
        let reopen = f.fs.open(file, true, false, &f.caller).await;
        let rm = f.fs.unlink(folder, NEW_FILE, f.pid()).await;
        let mv =
            f.fs.rename(folder, NEW_FILE, folder, "renamed.tar", f.pid())
                .await;
        // What the stage publishes was taken at its start: metadata cannot change
        // under it (nor make its own regions look like someone else's).
        let set_folder =
            f.fs.setxattr(folder, "user.late", b"1", SetMode::Any, f.pid())
                .await;
        let set_file =
            f.fs.setxattr(file, "user.late", b"1", SetMode::Any, f.pid())
                .await;
        let remove = f.fs.removexattr(folder, "user.early", f.pid()).await;
        latest.write_all(b"1.0.0\n").unwrap();
        drop(latest);
        [
            errno(write),
            errno(reopen),
            errno(rm),
            errno(mv),
            errno(set_folder),
            errno(set_file),
            errno(remove),
        ]
    };
    let (closed, refused) = tokio::join!(f.fs.flush(handle, f.pid()), changes_while_staging);
    f.fs.release(handle);

    assert_eq!(
        refused,
        [libc::EBUSY; 7],
        "write, open, rm, mv, setfattr x2, removexattr"
    );
    closed.unwrap();
    assert_eq!(f.regions_holding("SugarWater@1.1.0").await, REGIONS);
    assert_eq!(f.read_all("SugarWater/1.1.0/app.tar").await, NEW_BYTES);
    let other = f.other_session().await;
    let artifact = other
        .get("SugarWater", Some(&Version::new(1, 1, 0)))
        .await
        .unwrap();
    let metadata = artifact.metadata().await.unwrap();
    assert_eq!(metadata.get("early").map(String::as_str), Some("1"));
    assert!(!metadata.contains_key("late"), "{metadata:?}");
}
