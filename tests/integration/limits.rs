//! What any user of a mount can ask of it without growing or breaking it: names over
//! 255 bytes, and lookups of many names that do not exist. Limits of the daemon, the
//! same over every backend, so these tests use the local store.

use crate::support::files::{errno_of, project};
use crate::support::mount::Mount;
use crate::support::world::{run_ok, World, WorldOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_over_255_bytes_are_enametoolong_before_any_request() {
    let world = World::local(WorldOptions::default()).await;
    let p = project(&world, "Long");
    let file = world.file("dist", b"bytes");
    run_ok(world.cli().args([p.as_str(), "1.0.0", "--stage"]).arg(&file));
    let mount = Mount::start(&world, &[]);
    let long = "a".repeat(256);

    assert_eq!(
        errno_of(std::fs::metadata(mount.join(&long))),
        libc::ENAMETOOLONG
    );
    assert_eq!(
        errno_of(std::fs::metadata(mount.join(&format!("{p}/{long}")))),
        libc::ENAMETOOLONG
    );
    assert_eq!(
        errno_of(std::fs::create_dir(mount.join(&long))),
        libc::ENAMETOOLONG
    );
    std::fs::create_dir(mount.join(&format!("{p}/1.1.0"))).unwrap();
    assert_eq!(
        errno_of(std::fs::write(mount.join(&format!("{p}/1.1.0/{long}")), b"x")),
        libc::ENAMETOOLONG
    );
    // Nothing was made: the staging version is still empty.
    assert_eq!(
        std::fs::read_dir(mount.join(&format!("{p}/1.1.0")))
            .unwrap()
            .count(),
        0
    );
    // 255 bytes is a name like any other: absent, not an outage.
    let longest = "b".repeat(255);
    assert_eq!(
        errno_of(std::fs::metadata(mount.join(&longest))),
        libc::ENOENT
    );
    let longest_version = format!("1.0.0-{}", "a".repeat(249));
    assert_eq!(longest_version.len(), 255);
    assert_eq!(
        errno_of(std::fs::metadata(
            mount.join(&format!("{p}/{longest_version}"))
        )),
        libc::ENOENT
    );
}
