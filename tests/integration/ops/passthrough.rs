//! FUSE passthrough of whole cached artifacts (`--cache-dir`): once an artifact is
//! whole and checked in the cache, an open is passed through and the kernel reads the
//! cache file itself, so a read goes on to the end with the daemon stopped (SIGSTOP);
//! with `--no-passthrough` the same read waits for the daemon. Beside a handle read
//! through the daemon an open is not passed through; beside one passed through, it is.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::mount::Mount;
use crate::support::world::World;

const PASSED: &str = "opened with passthrough";

/// Stages `P 1.0.0` (`a.bin`) and `P 2.0.0` (`b.bin`), 3 MiB each; returns their paths
/// in a mount, their contents, and an empty cache folder's `cache_dir=` option.
async fn two_versions_and_a_cache(world: &World) -> ([String; 2], [Vec<u8>; 2], String) {
    let (p, first, second, cache) =
        super::cache::two_versions_and_a_cache(world, "Passthrough").await;
    let paths = [format!("{p}/1.0.0/a.bin"), format!("{p}/2.0.0/b.bin")];
    (paths, [first, second], cache)
}

/// The daemon stopped with SIGSTOP, until dropped (SIGCONT).
struct Stopped(i32);

impl Stopped {
    fn daemon_of(mount: &Mount) -> Stopped {
        let pid = mount.pid().expect("a daemon") as i32;
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// Drops the pages the kernel keeps of an open file of the mount: its next read must
/// come from the daemon, or from the backing file when passed through.
fn drop_pages(file: &File) {
    let done = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(done, 0);
    // The advice may leave pages a read-ahead was still filling: the kernel's clean
    // pages are all dropped too (as root; they are only read again).
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "1");
}

/// Reads `file` to its end on another thread, with read(2) only (a stat could ask the
/// daemon); the bytes and the file (closing it asks the daemon too) come back.
fn read_in_background(mut file: File) -> mpsc::Receiver<(Vec<u8>, File)> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            match file.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&buffer[..n]),
                Err(e) => panic!("read: {e}"),
            }
        }
        let _ = sender.send((bytes, file));
    });
    receiver
}

fn read_whole(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn passed_through(mount: &Mount) -> usize {
    mount.log().matches(PASSED).count()
}

/// Opens `path` once it is passed through: the daemon hears of the close of an earlier
/// handle read through it a little after the close, and keeps passthrough out till then.
fn open_passed_through(mount: &Mount, path: &Path) -> File {
    let before = passed_through(mount);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let file = File::open(path).unwrap();
        if passed_through(mount) > before {
            return file;
        }
        assert!(
            Instant::now() < deadline,
            "never passed through: {}",
            mount.log()
        );
        drop(file);
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn a_whole_cached_artifact_reads_with_the_daemon_stopped(world: World) {
    let ([path, _], [content, _], cache) = two_versions_and_a_cache(&world).await;
    let mount = Mount::start(&world, &["-o", &cache]);
    let path = mount.join(&path);
    assert!(
        read_whole(&path) == content,
        "other bytes, read through the cache"
    );
    assert_eq!(passed_through(&mount), 0, "not whole at its first open");
    let file = open_passed_through(&mount, &path);
    drop_pages(&file);
    let stopped = Stopped::daemon_of(&mount);
    let read = read_in_background(file).recv_timeout(Duration::from_secs(30));
    drop(stopped);
    let (bytes, _file) = read.expect("the read ended with the daemon stopped");
    assert!(bytes == content, "other bytes, passed through");
}
on_both_backends!(a_whole_cached_artifact_reads_with_the_daemon_stopped);

async fn with_no_passthrough_a_cached_read_waits_for_the_daemon(world: World) {
    let ([path, _], [content, _], cache) = two_versions_and_a_cache(&world).await;
    let mount = Mount::start(&world, &["-o", &format!("{cache},no_passthrough")]);
    let path = mount.join(&path);
    assert!(
        read_whole(&path) == content,
        "other bytes, read through the cache"
    );
    let file = File::open(&path).unwrap();
    drop_pages(&file);
    let stopped = Stopped::daemon_of(&mount);
    let reading = read_in_background(file);
    let early = reading.recv_timeout(Duration::from_secs(2));
    // The daemon goes on before any assertion: a file dropped while it is stopped
    // would wait for it in `close` for ever.
    drop(stopped);
    assert!(early.is_err(), "the read ended without the daemon");
    let (bytes, _file) = reading
        .recv_timeout(Duration::from_secs(30))
        .expect("the read ended once the daemon went on");
    assert!(bytes == content, "other bytes, through the daemon");
    assert_eq!(passed_through(&mount), 0, "{}", mount.log());
}
on_both_backends!(with_no_passthrough_a_cached_read_waits_for_the_daemon);

async fn an_open_beside_a_handle_read_through_the_daemon_is_not_passed_through(world: World) {
    let ([path, _], [content, _], cache) = two_versions_and_a_cache(&world).await;
    let mount = Mount::start(&world, &["-o", &cache]);
    let path = mount.join(&path);
    // The first handle reads while the artifact arrives, through the daemon, and stays
    // open: the kernel refuses (EIO) to pass another open of the file through.
    let mut first = File::open(&path).unwrap();
    let mut bytes = Vec::new();
    first.read_to_end(&mut bytes).unwrap();
    assert!(bytes == content, "other bytes");
    assert!(
        read_whole(&path) == content,
        "other bytes beside the first handle"
    );
    assert_eq!(passed_through(&mount), 0, "{}", mount.log());
    drop(first);
    let mut alone = open_passed_through(&mount, &path);
    let mut bytes = Vec::new();
    alone.read_to_end(&mut bytes).unwrap();
    assert!(bytes == content, "other bytes once alone");
}
on_both_backends!(an_open_beside_a_handle_read_through_the_daemon_is_not_passed_through);

fn cached_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect()
}

async fn a_passed_through_reader_reads_on_when_the_cache_evicts_its_file(world: World) {
    let ([a, b], [first, second], cache) = two_versions_and_a_cache(&world).await;
    let mount = Mount::start(&world, &["-o", &format!("{cache},cache_size=4M")]);
    let (a, b) = (mount.join(&a), mount.join(&b));
    assert!(read_whole(&a) == first, "other bytes");
    let passed = open_passed_through(&mount, &a);
    // b takes the room of a, whose cache file goes while `passed` reads it.
    assert!(read_whole(&b) == second, "other bytes");
    let kept = cached_files(&world.scratch.path().join("cache"));
    assert!(
        kept.len() == 1 && read_whole(&kept[0]) == second,
        "{kept:?}"
    );
    // A new open of a fetches it again, not yet whole; the kernel refuses (EIO) any
    // open of a but one passed through to the file `passed` reads: it joins that.
    assert!(
        read_whole(&a) == first,
        "other bytes beside the evicted file"
    );
    assert_eq!(passed_through(&mount), 2, "{}", mount.log());
    let (bytes, _passed) = read_in_background(passed)
        .recv_timeout(Duration::from_secs(30))
        .expect("the read ended");
    assert!(bytes == first, "other bytes from the evicted file");
}
on_both_backends!(a_passed_through_reader_reads_on_when_the_cache_evicts_its_file);
