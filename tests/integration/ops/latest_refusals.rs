//! The ways of moving `latest` that are refused, and leave it where it was in every
//! region: a symlink onto the existing `latest` (EEXIST: only `ln -sfn`, or `rm` then
//! `ln -s`, replace it), `ln -s` without `-n` (which follows `latest` into its version
//! folder: EPERM), a symlink named as a version (EEXIST), and a pending symlink renamed
//! anywhere but onto `latest` (EINVAL).

use std::path::Path;
use std::process::Command;

use crate::support::files::{errno_of, project};
use crate::support::mount::Mount;
use crate::support::world::{run, run_ok, World};

/// Stages `P 1.0.0` and `P 2.0.0` (so `latest` is 2.0.0) and mounts.
fn two_versions(world: &World, base: &str) -> (String, Mount) {
    let p = project(world, base);
    let file = world.file("dist.txt", b"x");
    run_ok(world.cli().args([&p, "1.0.0", "--stage"]).arg(&file));
    run_ok(world.cli().args([&p, "2.0.0", "--stage"]).arg(&file));
    (p, Mount::start(world, &[]))
}

/// `latest` as the mount and the store (the quorum read) see it.
async fn assert_latest(world: &World, mount: &Mount, project: &str, version: &str) {
    assert_eq!(
        std::fs::read_link(mount.join(&format!("{project}/latest"))).unwrap(),
        Path::new(version)
    );
    let artifact = world.session(true).get(project, None).await.unwrap();
    assert_eq!(artifact.version().to_string(), version);
}

async fn a_symlink_onto_latest_is_eexist(world: World) {
    let (p, mount) = two_versions(&world, "LnExists");
    let latest = mount.join(&format!("{p}/latest"));
    assert_eq!(
        errno_of(std::os::unix::fs::symlink("1.0.0", &latest)),
        libc::EEXIST
    );
    let (code, _, err) = run(Command::new("ln").arg("-sn").arg("1.0.0").arg(&latest));
    assert!(code != 0 && err.contains("File exists"), "{err}");
    assert_latest(&world, &mount, &p, "2.0.0").await;
}
on_both_backends!(a_symlink_onto_latest_is_eexist);

async fn ln_s_without_n_follows_latest_and_is_eperm(world: World) {
    let (p, mount) = two_versions(&world, "LnFollows");
    let (code, _, err) = run(Command::new("ln")
        .arg("-s")
        .arg("1.0.0")
        .arg(mount.join(&format!("{p}/latest"))));
    assert!(
        code != 0 && err.contains("latest/1.0.0") && err.contains("Operation not permitted"),
        "{err}"
    );
    assert_latest(&world, &mount, &p, "2.0.0").await;
}
on_both_backends!(ln_s_without_n_follows_latest_and_is_eperm);

async fn a_symlink_named_as_a_version_is_eexist(world: World) {
    let (p, mount) = two_versions(&world, "LnVersion");
    assert_eq!(
        errno_of(std::os::unix::fs::symlink(
            "2.0.0",
            mount.join(&format!("{p}/1.0.0"))
        )),
        libc::EEXIST
    );
    assert!(mount.join(&format!("{p}/1.0.0")).is_dir());
    assert_latest(&world, &mount, &p, "2.0.0").await;
}
on_both_backends!(a_symlink_named_as_a_version_is_eexist);

async fn a_pending_symlink_renamed_but_onto_latest_is_einval(world: World) {
    let (p, mount) = two_versions(&world, "LnRename");
    let pending = mount.join(&format!("{p}/latest.tmp"));
    std::os::unix::fs::symlink("1.0.0", &pending).unwrap();
    assert_eq!(
        errno_of(std::fs::rename(&pending, mount.join(&format!("{p}/other")))),
        libc::EINVAL
    );
    std::fs::remove_file(&pending).unwrap();
    assert_latest(&world, &mount, &p, "2.0.0").await;
}
on_both_backends!(a_pending_symlink_renamed_but_onto_latest_is_einval);
