//! readdir: the root lists projects, a project its versions and `latest`; a listing the
//! credentials may not make lists nothing, and the log says so; the kernel answers a
//! warm listing by itself until the listing changes.

use std::process::Command;

use semver::Version;
use startifact::protocol::Metadata;

use crate::support::backends::without_listing_permission;
use crate::support::files::project;
use crate::support::mount::Mount;
use crate::support::staging::{cli_stage, names_in, two_versions};
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

/// The `readdir` calls the daemon answered (its debug log has a line for each).
fn readdirs(mount: &Mount) -> usize {
    mount.log().matches("readdir inode=").count()
}

async fn a_warm_listing_is_the_kernels_until_the_versions_change(world: World) {
    let p = two_versions(&world, "KernelListing", b"first");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&p);
    assert_eq!(names_in(&folder), ["1.0.0", "1.1.0", "latest"]);
    let cold = readdirs(&mount);
    assert!(
        cold > 0,
        "the first listing is the daemon's: {}",
        mount.log()
    );
    for _ in 0..3 {
        assert_eq!(names_in(&folder), ["1.0.0", "1.1.0", "latest"]);
    }
    assert_eq!(readdirs(&mount), cold, "warm listings went to the daemon");

    // Another tool stages a version: seen once the daemon's listing expires (1 s here).
    cli_stage(&world, &p, "1.2.0", b"third", &[]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(names_in(&folder), ["1.0.0", "1.1.0", "1.2.0", "latest"]);
    assert!(readdirs(&mount) > cold, "a changed listing is read again");

    // A version made through the mount shows at once.
    std::fs::create_dir(folder.join("2.0.0")).unwrap();
    assert_eq!(
        names_in(&folder),
        ["1.0.0", "1.1.0", "1.2.0", "2.0.0", "latest"]
    );
}
on_both_backends!(a_warm_listing_is_the_kernels_until_the_versions_change);

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
