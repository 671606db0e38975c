//! The daemon: the source argument and `-o` options (as fstab passes them), SIGTERM,
//! background mode, an unmount from outside, bad mount points and options, and a mount
//! point left stale by a killed daemon.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::files::{errno_of, project};
use crate::support::mount::{daemon_command, mount_line, Mount};
use crate::support::staging::cli_stage;
use crate::support::world::{run_ok, Kind, World};

/// The SOURCE argument naming the world's store.
fn source(world: &World) -> String {
    match &world.kind {
        Kind::Moto { .. } => "aws".to_string(),
        Kind::Local { dir } => format!("local:{}", dir.display()),
    }
}

/// A project `{base}-{id}` whose 1.0.0 holds `bytes`.
fn one_version(world: &World, base: &str, bytes: &[u8]) -> String {
    let p = project(world, base);
    cli_stage(world, &p, "1.0.0", bytes, &[]);
    p
}

async fn a_source_argument_names_the_store(world: World) {
    let p = one_version(&world, "Source", b"from the source");
    let mount = Mount::start(&world, &[&source(&world)]);
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/1.0.0/{p}@1.0.0"))).unwrap(),
        b"from the source"
    );
}
on_both_backends!(a_source_argument_names_the_store);

async fn dash_o_ro_mounts_read_only(world: World) {
    let p = one_version(&world, "Ro", b"read-only mount");
    let mount = Mount::start(&world, &["-o", "ro,_netdev", &source(&world)]);
    let line = mount_line(&mount.path).unwrap();
    assert!(line.contains(" fuse.startifact-fs ro,"), "{line}");
    let artifact = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    assert_eq!(std::fs::read(&artifact).unwrap(), b"read-only mount");
    assert_eq!(errno_of(std::fs::remove_file(&artifact)), libc::EROFS);
}
on_both_backends!(dash_o_ro_mounts_read_only);

async fn dash_o_uid_and_gid_own_the_files(world: World) {
    let p = one_version(&world, "Owner", b"owned");
    let mount = Mount::start(&world, &["-o", "uid=1234,gid=4321,_netdev"]);
    let meta = std::fs::metadata(mount.join(&format!("{p}/1.0.0/{p}@1.0.0"))).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 4321));
}
on_both_backends!(dash_o_uid_and_gid_own_the_files);

async fn sigterm_unmounts_and_exits_0(world: World) {
    let mut mount = Mount::start(&world, &[]);
    assert_eq!(mount.stop(), Some(0), "{}", mount.log());
    assert!(mount_line(&mount.path).is_none(), "SIGTERM unmounts");
    assert!(
        mount.log().contains("SIGTERM: unmounting"),
        "{}",
        mount.log()
    );
}
on_both_backends!(sigterm_unmounts_and_exits_0);

/// Mounts in the background (no `-f`) on a folder of the scratch space; returns the
/// mount point and the log file once the command has returned successfully.
fn mount_in_the_background(world: &World) -> (std::path::PathBuf, std::path::PathBuf) {
    let mountpoint = world.dir("bg-mnt");
    let log = world.scratch.path().join("bg.log");
    let status = daemon_command(world)
        .arg("--log-file")
        .arg(&log)
        .arg("--staging-dir")
        .arg(world.scratch.path().join("staging"))
        .arg(&mountpoint)
        .status()
        .unwrap();
    assert!(status.success());
    (mountpoint, log)
}

/// Waits until the daemon logging to `log` says its mount went away.
fn wait_until_unmount_noticed(log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches("was unmounted")
        .count()
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the daemon did not notice the unmount"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn background_mode_returns_once_the_mount_answers(world: World) {
    let p = one_version(&world, "Bg", b"background");
    let (mountpoint, log) = mount_in_the_background(&world);
    // Returned only once mounted: no waiting needed.
    let mounted = mount_line(&mountpoint);
    let read = std::fs::read(mountpoint.join(format!("{p}/latest/{p}@1.0.0")));
    run_ok(Command::new("fusermount3").arg("-u").arg(&mountpoint));
    wait_until_unmount_noticed(&log);
    assert!(
        mounted.is_some_and(|l| l.contains("fuse.startifact-fs")),
        "not mounted when the command returned"
    );
    assert_eq!(read.unwrap(), b"background");
}
on_both_backends!(background_mode_returns_once_the_mount_answers);

async fn the_daemon_notices_an_unmount_from_outside(world: World) {
    let (mountpoint, log) = mount_in_the_background(&world);
    run_ok(Command::new("fusermount3").arg("-u").arg(&mountpoint));
    wait_until_unmount_noticed(&log);
}
on_both_backends!(the_daemon_notices_an_unmount_from_outside);

async fn a_mount_point_that_is_no_folder_is_a_clear_error(world: World) {
    let output = daemon_command(&world)
        .arg(world.file("plain", b"x"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a folder"));
}
on_both_backends!(a_mount_point_that_is_no_folder_is_a_clear_error);

async fn an_unknown_option_is_a_clear_error(world: World) {
    let output = daemon_command(&world)
        .args(["-o", "bogus"])
        .arg(world.dir("mnt"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown mount option"));
}
on_both_backends!(an_unknown_option_is_a_clear_error);

async fn a_stale_mount_point_is_detached_and_reused(world: World) {
    let p = one_version(&world, "Stale", b"stale");
    let mut mount = Mount::start(&world, &[]);
    mount.kill();
    assert_eq!(
        errno_of(std::fs::read_dir(&mount.path).map(|_| ())),
        libc::ENOTCONN
    );
    let mount = Mount::restart(&world, &[], mount);
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/1.0.0/{p}@1.0.0"))).unwrap(),
        b"stale"
    );
}
on_both_backends!(a_stale_mount_point_is_detached_and_reused);
