//! readlink, symlink, rename and unlink of `latest`: it names the highest version;
//! `ln -sfn V latest` (and `rm latest; ln -s V latest`) moves it in every region, to a
//! staged version of the project only; nothing moves it on a read-only mount.

use std::path::Path;
use std::process::Command;

use semver::Version;
use startifact::protocol::Metadata;

use crate::support::backends::proxied_moto;
use crate::support::files::{errno_of, project};
use crate::support::mount::Mount;
use crate::support::proxy::Mode;
use crate::support::staging::{assert_latest_everywhere, cli_stage, names_in, two_versions};
use crate::support::world::{run_ok, World, WorldOptions};

/// A project with 1.0.0 and 2.0.0 staged by the CLI.
fn two_staged(world: &World, base: &str) -> String {
    let p = project(world, base);
    cli_stage(world, &p, "1.0.0", b"ln", &[]);
    cli_stage(world, &p, "2.0.0", b"ln", &[]);
    p
}

/// GNU `ln -sfn target link`: a symlink at a temporary name, renamed over `link`.
fn ln_sfn(target: &str, link: &Path) -> std::process::Output {
    Command::new("ln")
        .arg("-sfn")
        .arg(target)
        .arg(link)
        .output()
        .unwrap()
}

async fn latest_names_the_highest_version(world: World) {
    let p = two_versions(&world, "Readlink", b"first");
    let mount = Mount::start(&world, &[]);
    assert_eq!(
        std::fs::read_link(mount.join(&format!("{p}/latest"))).unwrap(),
        Path::new("1.1.0")
    );
}
on_both_backends!(latest_names_the_highest_version);

async fn ln_sfn_moves_latest_in_every_region(world: World) {
    let p = two_staged(&world, "Ln");
    let mount = Mount::start(&world, &[]);
    let latest = mount.join(&format!("{p}/latest"));
    assert_eq!(std::fs::read_link(&latest).unwrap(), Path::new("2.0.0"));
    let moved = ln_sfn("1.0.0", &latest);
    assert!(moved.status.success(), "{moved:?}");
    assert_eq!(std::fs::read_link(&latest).unwrap(), Path::new("1.0.0"));
    assert_latest_everywhere(&world, &p, "1.0.0").await;
}
on_both_backends!(ln_sfn_moves_latest_in_every_region);

async fn another_mount_sees_latest_moved_by_ln_sfn(world: World) {
    let p = two_staged(&world, "LnSeen");
    let mount = Mount::start(&world, &[]);
    run_ok(
        Command::new("ln")
            .arg("-sfn")
            .arg("1.0.0")
            .arg(mount.join(&format!("{p}/latest"))),
    );
    let second = Mount::start(&world, &[]);
    assert_eq!(
        std::fs::read_link(second.join(&format!("{p}/latest"))).unwrap(),
        Path::new("1.0.0")
    );
}
on_both_backends!(another_mount_sees_latest_moved_by_ln_sfn);

async fn rm_latest_then_ln_s_moves_latest_in_every_region(world: World) {
    let p = two_staged(&world, "RmLn");
    let mount = Mount::start(&world, &[]);
    let latest = mount.join(&format!("{p}/latest"));
    run_ok(Command::new("ln").arg("-sfn").arg("1.0.0").arg(&latest));
    std::fs::remove_file(&latest).unwrap();
    std::os::unix::fs::symlink("2.0.0", &latest).unwrap();
    assert_eq!(std::fs::read_link(&latest).unwrap(), Path::new("2.0.0"));
    assert_latest_everywhere(&world, &p, "2.0.0").await;
}
on_both_backends!(rm_latest_then_ln_s_moves_latest_in_every_region);

async fn ln_sfn_to_a_version_not_staged_is_enoent_and_moves_nothing(world: World) {
    let p = two_staged(&world, "LnMissing");
    let mount = Mount::start(&world, &[]);
    let latest = mount.join(&format!("{p}/latest"));
    let missing = ln_sfn("9.9.9", &latest);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("No such file or directory"),
        "{missing:?}"
    );
    // The call ln makes, answered directly.
    assert_eq!(
        errno_of(std::os::unix::fs::symlink(
            "9.9.9",
            mount.join(&format!("{p}/pending"))
        )),
        libc::ENOENT
    );
    assert_eq!(std::fs::read_link(&latest).unwrap(), Path::new("2.0.0"));
    assert_latest_everywhere(&world, &p, "2.0.0").await;
}
on_both_backends!(ln_sfn_to_a_version_not_staged_is_enoent_and_moves_nothing);

async fn a_symlink_to_anything_but_a_version_of_the_project_is_einval(world: World) {
    let p = two_staged(&world, "LnElsewhere");
    let mount = Mount::start(&world, &[]);
    assert_eq!(
        errno_of(std::os::unix::fs::symlink(
            "../elsewhere",
            mount.join(&format!("{p}/x"))
        )),
        libc::EINVAL
    );
}
on_both_backends!(a_symlink_to_anything_but_a_version_of_the_project_is_einval);

async fn a_symlink_outside_a_project_is_eperm(world: World) {
    let mount = Mount::start(&world, &[]);
    assert_eq!(
        errno_of(std::os::unix::fs::symlink("1.0.0", mount.join("top-level"))),
        libc::EPERM
    );
}
on_both_backends!(a_symlink_outside_a_project_is_eperm);

async fn on_a_read_only_mount_latest_does_not_move(world: World) {
    let p = two_staged(&world, "LnRo");
    let read_only = Mount::start(&world, &["--read-only"]);
    let latest = read_only.join(&format!("{p}/latest"));
    let refused = ln_sfn("1.0.0", &latest);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Read-only file system"),
        "{refused:?}"
    );
    assert_eq!(errno_of(std::fs::remove_file(&latest)), libc::EROFS);
    assert_latest_everywhere(&world, &p, "2.0.0").await;
}
on_both_backends!(on_a_read_only_mount_latest_does_not_move);

// Moto only: the Python tool speaks only to AWS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_tool_sees_latest_moved_by_ln_sfn() {
    let world = World::moto(WorldOptions::default()).await;
    let p = project(&world, "PyLn");
    let file = world.file("f", b"ln");
    run_ok(world.python().args([&p, "1.0.0", "--stage"]).arg(&file));
    run_ok(world.python().args([&p, "2.0.0", "--stage"]).arg(&file));
    let mount = Mount::start(&world, &[]);
    run_ok(
        Command::new("ln")
            .arg("-sfn")
            .arg("1.0.0")
            .arg(mount.join(&format!("{p}/latest"))),
    );
    let theirs = run_ok(world.python().args([&p, "--info"]));
    assert!(
        theirs.contains(&format!("The latest version of {p} is 1.0.0.")),
        "{theirs}"
    );
}

// Moto only: the region is made to refuse by a proxy on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_of_a_project_not_yet_read_is_eio_when_no_region_answers() {
    let (world, proxy) = proxied_moto(WorldOptions::default(), &["us-east-1"]).await;
    let p = project(&world, "Unread");
    world
        .session_in(&["us-east-1"], false)
        .stage(
            &p,
            &Version::new(1, 0, 0),
            &world.file("f", b"unread"),
            Metadata::new(),
            false,
        )
        .await
        .unwrap();
    let mount = Mount::start(&world, &["--regions", "us-east-1", "-o", "metadata_ttl=60"]);
    // The root is listed (and kept for 60 s); the project's `latest` is not read yet.
    let root = names_in(&mount.path);
    assert!(root.contains(&p), "{root:?}");
    proxy.set_mode(Mode::Refuse);
    assert_eq!(
        errno_of(std::fs::read_link(mount.join(&format!("{p}/latest")))),
        libc::EIO
    );
}
