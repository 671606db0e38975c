//! The default `--metadata-ttl` (10 s): a version staged, or `latest` moved, by another
//! tool is not seen by a mount that read the name before, until what it read expires:
//! not right after the change, and by 11 s after the read. (Every other test mounts
//! with `--metadata-ttl 1`.) Each test takes about 11 s.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::files::{errno_of, project};
use crate::support::mount::Mount;
use crate::support::world::{run_ok, World};

const DEFAULT_TTL: Duration = Duration::from_secs(10);

/// Sleeps until `after` has passed since `since`.
fn wait_until(since: Instant, after: Duration) {
    if let Some(left) = after.checked_sub(since.elapsed()) {
        std::thread::sleep(left);
    }
}

async fn a_version_found_missing_shows_after_the_default_ttl(world: World) {
    let p = project(&world, "TtlVersion");
    let file = world.file("dist.txt", b"ttl");
    run_ok(world.cli().args([&p, "1.0.0", "--stage"]).arg(&file));
    let mount = Mount::start_with_default_metadata_ttl(&world, &[]);
    let version = mount.join(&format!("{p}/2.0.0"));

    let asked = Instant::now();
    assert_eq!(errno_of(std::fs::metadata(&version)), libc::ENOENT);
    let answered = Instant::now();
    run_ok(world.cli().args([&p, "2.0.0", "--stage"]).arg(&file));
    // The name found missing is trusted for the TTL.
    let again = std::fs::metadata(&version);
    assert!(asked.elapsed() < DEFAULT_TTL, "too slow to see the cache");
    assert_eq!(errno_of(again), libc::ENOENT);

    wait_until(answered, DEFAULT_TTL + Duration::from_secs(1));
    assert!(std::fs::metadata(&version).unwrap().is_dir());
}
on_both_backends!(a_version_found_missing_shows_after_the_default_ttl);

async fn latest_moved_elsewhere_shows_after_the_default_ttl(world: World) {
    let p = project(&world, "TtlLatest");
    let file = world.file("dist.txt", b"ttl");
    run_ok(world.cli().args([&p, "1.0.0", "--stage"]).arg(&file));
    run_ok(world.cli().args([&p, "2.0.0", "--stage"]).arg(&file));
    let mount = Mount::start_with_default_metadata_ttl(&world, &[]);
    let latest = mount.join(&format!("{p}/latest"));

    let asked = Instant::now();
    assert_eq!(std::fs::read_link(&latest).unwrap(), Path::new("2.0.0"));
    let answered = Instant::now();
    run_ok(world.cli().args([&p, "1.0.0", "--set-latest"]));
    let again = std::fs::read_link(&latest).unwrap();
    assert!(asked.elapsed() < DEFAULT_TTL, "too slow to see the cache");
    assert_eq!(again, Path::new("2.0.0"));

    wait_until(answered, DEFAULT_TTL + Duration::from_secs(1));
    assert_eq!(std::fs::read_link(&latest).unwrap(), Path::new("1.0.0"));
}
on_both_backends!(latest_moved_elsewhere_shows_after_the_default_ttl);
