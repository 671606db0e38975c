//! The daemon: the source argument and `-o` options (as fstab passes them, generic ones
//! of mount(8) included), SIGINT and SIGTERM (and a mount kept busy meanwhile), the
//! kernel's read-ahead, background mode, an unmount from outside, bad mount points and
//! options, and a mount point left stale by a killed daemon.

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

async fn sigint_and_sigterm_unmount_cleanly_and_exit_0(world: World) {
    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let mut mount = Mount::start(&world, &[]);
        assert_eq!(mount.stop_with(signal), Some(0), "{name}: {}", mount.log());
        assert!(mount_line(&mount.path).is_none(), "{name} unmounts");
        let said = format!("{name}: unmounting {}", mount.path.display());
        assert!(mount.log().contains(&said), "{}", mount.log());
    }
}
on_both_backends!(sigint_and_sigterm_unmount_cleanly_and_exit_0);

async fn a_busy_mount_is_retried_for_10_s_then_detached(world: World) {
    let p = one_version(&world, "Busy", b"held open");
    let mut mount = Mount::start(&world, &[]);
    let held = std::fs::File::open(mount.join(&format!("{p}/1.0.0/{p}@1.0.0"))).unwrap();
    let started = Instant::now();
    let code = mount.stop();
    let took = started.elapsed();
    let log = mount.log();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(15),
        "the daemon exited after {took:?}: {log}"
    );
    assert!(mount_line(&mount.path).is_none(), "still mounted");
    let said = format!(
        "unmounting {} failed (Device or resource busy",
        mount.path.display()
    );
    assert!(log.contains(&said) && log.contains("detaching it"), "{log}");
    drop(held);
}
on_both_backends!(a_busy_mount_is_retried_for_10_s_then_detached);

/// The kernel's read-ahead for a mount, in KiB: that of its device (the major:minor
/// /proc/self/mountinfo gives for it) in /sys/class/bdi.
fn read_ahead_kb(mountpoint: &Path) -> String {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let wanted = mountpoint.display().to_string();
    let device = info
        .lines()
        .map(|line| line.split(' ').collect::<Vec<_>>())
        .find(|fields| fields.get(4) == Some(&wanted.as_str()))
        .map(|fields| fields[2].to_string())
        .expect("the mount in /proc/self/mountinfo");
    let setting = format!("/sys/class/bdi/{device}/read_ahead_kb");
    std::fs::read_to_string(&setting)
        .unwrap_or_else(|e| panic!("{setting}: {e}"))
        .trim()
        .to_string()
}

/// Runs as root, as every mount test does.
async fn as_root_the_daemon_raises_the_mount_read_ahead_to_1_mib(world: World) {
    assert_eq!(unsafe { libc::geteuid() }, 0, "the mount tests run as root");
    let mount = Mount::start(&world, &[]);
    // Raised before the daemon says it is mounted.
    wait_until("the daemon says it is mounted", || {
        mount.log().contains(" mounted mountpoint=")
    });
    assert_eq!(read_ahead_kb(&mount.path), "1024");
}
on_both_backends!(as_root_the_daemon_raises_the_mount_read_ahead_to_1_mib);

async fn generic_mount_options_are_accepted_and_ignored(world: World) {
    let p = one_version(&world, "Generic", b"fstab options");
    let options = "rw,nofail,_netdev,noauto,x-systemd.automount,x-systemd.requires=network.target";
    let mount = Mount::start(&world, &["-o", options, &source(&world)]);
    let line = mount_line(&mount.path).unwrap();
    assert!(line.contains(" fuse.startifact-fs rw,"), "{line}");
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/1.0.0/{p}@1.0.0"))).unwrap(),
        b"fstab options"
    );
}
on_both_backends!(generic_mount_options_are_accepted_and_ignored);

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

/// Waits (up to 10 s) until `done`.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the daemon logging to `log` says its mount went away.
fn wait_until_unmount_noticed(log: &Path) {
    wait_until("the daemon notices the unmount", || {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains("was unmounted")
    });
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
