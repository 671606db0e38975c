//! lookup: a name is found when the store holds it, ENOENT when it does not or cannot,
//! and a named version needs no listing permission.

use std::path::Path;

use crate::support::backends::without_listing_permission;
use crate::support::files::{errno_of, project};
use crate::support::mount::Mount;
use crate::support::staging::cli_stage;
use crate::support::world::World;

/// A mount over a project with version 1.0.0 (its file named after its key).
fn mount_over_one_version(world: &World, base: &str) -> (Mount, String) {
    let p = project(world, base);
    cli_stage(world, &p, "1.0.0", b"staged", &[]);
    (Mount::start(world, &[]), p)
}

#[track_caller]
fn assert_enoent(mount: &Mount, name: &str) {
    assert_eq!(
        errno_of(std::fs::metadata(mount.join(name))),
        libc::ENOENT,
        "{name}"
    );
}

async fn a_missing_project_is_enoent(world: World) {
    let (mount, _) = mount_over_one_version(&world, "Lookup");
    assert_enoent(&mount, "NoSuchProject");
}
on_both_backends!(a_missing_project_is_enoent);

async fn a_name_that_cannot_be_a_project_is_enoent(world: World) {
    let (mount, _) = mount_over_one_version(&world, "Lookup");
    assert_enoent(&mount, "bad name");
}
on_both_backends!(a_name_that_cannot_be_a_project_is_enoent);

async fn a_missing_version_is_enoent(world: World) {
    let (mount, p) = mount_over_one_version(&world, "Lookup");
    assert_enoent(&mount, &format!("{p}/9.9.9"));
}
on_both_backends!(a_missing_version_is_enoent);

async fn a_name_that_cannot_be_a_version_is_enoent(world: World) {
    let (mount, p) = mount_over_one_version(&world, "Lookup");
    assert_enoent(&mount, &format!("{p}/not-a-version"));
}
on_both_backends!(a_name_that_cannot_be_a_version_is_enoent);

async fn any_name_but_the_file_in_a_version_is_enoent(world: World) {
    let (mount, p) = mount_over_one_version(&world, "Lookup");
    assert_enoent(&mount, &format!("{p}/1.0.0/other.bin"));
}
on_both_backends!(any_name_but_the_file_in_a_version_is_enoent);

// Moto only, as the next two: the denial is the proxy's, on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_version_reads_without_listing_permission() {
    let (world, _proxy, p) = without_listing_permission("Denied").await;
    let mount = Mount::start(&world, &[]);
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/1.0.0/d.bin"))).unwrap(),
        b"no listing needed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_reads_without_listing_permission() {
    let (world, _proxy, p) = without_listing_permission("Denied").await;
    let mount = Mount::start(&world, &[]);
    assert_eq!(
        std::fs::read_link(mount.join(&format!("{p}/latest"))).unwrap(),
        Path::new("1.0.0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_every_region_answers_403_for_is_enoent() {
    let (world, proxy, p) = without_listing_permission("Denied").await;
    let mount = Mount::start(&world, &[]);
    assert_enoent(&mount, &format!("{p}/9.9.9"));
    assert!(proxy.requests().iter().any(|r| r.status == Some(403)));
}
