//! One staging folder per store, held by one daemon: mounts of two stores (here two
//! configuration parameters on one moto) get folders of their own by default and never
//! see or take up each other's staging versions; a second daemon on a folder another
//! holds stops before it mounts, naming the holder's PID. On moto only: what tells the
//! stores apart here is the configuration parameter, and a local store is told apart by
//! its folder already.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::mount::{daemon_command, mount_line, Mount};
use crate::support::staging::close;
use crate::support::unique_id;
use crate::support::world::{World, WorldOptions};

/// Where a daemon running as root keeps its default staging folders.
const BASE: &str = "/var/lib/startifact-fs/staging";

/// The default staging folder of `world`'s store: the one whose `@store.txt` names
/// its parameter. Removed when dropped (the tests' folders are not the machine's).
struct DefaultFolder(PathBuf);

impl DefaultFolder {
    fn of(world: &World) -> DefaultFolder {
        let wanted = format!("parameter = {:?}\n", world.config_param);
        let found: Vec<PathBuf> = std::fs::read_dir(BASE)
            .expect("the default base folder")
            .flatten()
            .map(|entry| entry.path())
            .filter(|dir| {
                std::fs::read_to_string(dir.join("@store.txt")).is_ok_and(|t| t.contains(&wanted))
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one folder names {}: {found:?}",
            world.config_param
        );
        DefaultFolder(found[0].clone())
    }
}

impl Drop for DefaultFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_mounted_at_once_keep_their_staging_versions_apart() {
    let first = World::moto(WorldOptions::default()).await;
    let second = World::moto(WorldOptions::default()).await;
    // One name in both stores: the second mount must not show the first one's folder.
    let p = format!("Apart-{}", unique_id());

    let a = Mount::start_with_default_staging(&first, &[]);
    let a_folder = DefaultFolder::of(&first);
    std::fs::create_dir_all(a.join(&format!("{p}/1.0.0"))).unwrap();
    let mut file = std::fs::File::create(a.join(&format!("{p}/1.0.0/a.bin"))).unwrap();
    file.write_all(b"the first store's").unwrap();
    assert!(a_folder.0.join(&p).join("1.0.0/state.json").exists());

    // Started while the first one's file is still being written.
    let b = Mount::start_with_default_staging(&second, &[]);
    let b_folder = DefaultFolder::of(&second);
    assert_ne!(a_folder.0, b_folder.0);
    let name = |f: &DefaultFolder| f.0.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name(&a_folder).starts_with("aws-"), "{}", name(&a_folder));
    assert!(name(&b_folder).starts_with("aws-"), "{}", name(&b_folder));
    assert!(!b_folder.0.join(&p).exists());
    assert_eq!(
        std::fs::metadata(b.join(&format!("{p}/1.0.0")))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ENOENT)
    );
    assert!(!b.log().contains("taken up from the spool"), "{}", b.log());

    // Nothing of the first one's was taken up as abandoned: its writer stages it.
    let entry = std::fs::read_to_string(a_folder.0.join(&p).join("1.0.0/state.json")).unwrap();
    assert!(entry.contains("\"writing\""), "{entry}");
    assert_eq!(close(file), Ok(()));
    assert_eq!(
        std::fs::read(a.join(&format!("{p}/1.0.0/a.bin"))).unwrap(),
        b"the first store's"
    );
    let status = std::fs::read_to_string(a_folder.0.join("status.json")).unwrap();
    assert!(!status.contains("abandoned"), "{status}");
    drop((a, b));
}

/// Runs a second daemon on `world` with `args` in front of a new mount point, until it
/// exits: (its exit code, what it said on stderr, whether its mount point is mounted).
fn second_daemon(world: &World, args: &[&str]) -> (Option<i32>, String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let mountpoint = dir.path().join("mnt");
    std::fs::create_dir(&mountpoint).unwrap();
    let mut child = daemon_command(world)
        .args(args)
        .arg(&mountpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = std::process::Command::new("fusermount3")
                .arg("-uz")
                .arg(&mountpoint)
                .status();
            panic!("the second daemon is still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let mounted = mount_line(&mountpoint).is_some();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        mounted,
    )
}

fn said_in_use_by(stderr: &str, pid: u32, folder: &Path) {
    assert!(stderr.contains(&format!("PID {pid}")), "{stderr}");
    assert!(
        stderr.contains("in use by another startifact-fs"),
        "{stderr}"
    );
    assert!(stderr.contains(&folder.display().to_string()), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_a_held_staging_folder_stops_naming_the_holders_pid() {
    let world = World::moto(WorldOptions::default()).await;

    // The same store twice, with the default folder, in the foreground.
    let first = Mount::start_with_default_staging(&world, &[]);
    let folder = DefaultFolder::of(&world);
    let pid = first.pid().unwrap();
    assert_eq!(
        std::fs::read_to_string(folder.0.join("@lock")).unwrap(),
        format!("{pid}\n")
    );
    let (code, stderr, mounted) = second_daemon(&world, &["-f"]);
    assert_eq!(code, Some(1), "{stderr}");
    said_in_use_by(&stderr, pid, &folder.0);
    assert!(stderr.contains("--staging-dir"), "{stderr}");
    assert!(!mounted);
    // The first one is untouched and still serves.
    assert!(std::fs::read_dir(&first.path).is_ok());
    drop(first);

    // A folder given explicitly, the second daemon started in the background: its
    // parent says why and exits 1.
    let scratch = tempfile::tempdir().unwrap();
    let spool = scratch.path().join("spool");
    let spool_arg = spool.to_str().unwrap();
    let holder = Mount::start(&world, &["--staging-dir", spool_arg]);
    let (code, stderr, mounted) = second_daemon(&world, &["--staging-dir", spool_arg]);
    assert_eq!(code, Some(1), "{stderr}");
    said_in_use_by(&stderr, holder.pid().unwrap(), &spool);
    assert!(!mounted);
    drop(holder);
    // Once the holder is gone, the folder is free.
    let after = Mount::start(&world, &["--staging-dir", spool_arg]);
    assert!(std::fs::read_dir(&after.path).is_ok());
}
