//! readdir: the root lists projects, a project its versions and `latest`; a listing the
//! credentials may not make lists nothing, and the log says so.

use std::process::Command;

use semver::Version;
use startifact::protocol::Metadata;

use crate::support::backends::without_listing_permission;
use crate::support::files::project;
use crate::support::mount::Mount;
use crate::support::staging::{names_in, two_versions};
use crate::support::world::{run_ok, World};

async fn the_root_lists_a_staged_project(world: World) {
    let p = two_versions(&world, "Root", b"first");
    let mount = Mount::start(&world, &[]);
    let root = names_in(&mount.path);
    assert!(root.contains(&p), "{root:?}");
}
on_both_backends!(the_root_lists_a_staged_project);

async fn a_project_lists_its_versions_and_latest(world: World) {
    let p = two_versions(&world, "Versions", b"first");
    let mount = Mount::start(&world, &[]);
    assert_eq!(names_in(&mount.join(&p)), ["1.0.0", "1.1.0", "latest"]);
}
on_both_backends!(a_project_lists_its_versions_and_latest);

async fn ls_l_shows_26_versions_as_folders_and_latest_as_a_link(world: World) {
    let p = project(&world, "Many");
    let session = world.session(false);
    let small = world.file("small", b"v");
    let versions = (0..25).map(|minor| Version::new(1, minor, 0));
    for version in versions.chain([Version::new(2, 0, 0)]) {
        session
            .stage(&p, &version, &small, Metadata::new(), false)
            .await
            .unwrap();
    }
    let mount = Mount::start(&world, &[]);
    let ls = run_ok(Command::new("ls").arg("-l").arg(mount.join(&p)));
    assert_eq!(
        ls.lines().filter(|l| l.starts_with('d')).count(),
        26,
        "{ls}"
    );
    assert!(ls.contains("latest -> 2.0.0"), "{ls}");
}
on_both_backends!(ls_l_shows_26_versions_as_folders_and_latest_as_a_link);

// Moto only: the denial is the proxy's, on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_listing_permission_the_root_lists_nothing_and_the_log_says_so() {
    let (world, _proxy, _) = without_listing_permission("Denied").await;
    let mount = Mount::start(&world, &[]);
    assert_eq!(
        std::fs::read_dir(&mount.path).unwrap().count(),
        0,
        "nothing can be listed"
    );
    assert!(
        mount
            .log()
            .contains("lists only what the granted permissions can list"),
        "{}",
        mount.log()
    );
}
