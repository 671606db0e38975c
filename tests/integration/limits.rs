//! What any user of a mount can ask of it without growing or breaking it: names over
//! 255 bytes, and lookups of many names that do not exist. Limits of the daemon, the
//! same over every backend, so these tests use the local store.

use crate::support::files::{errno_of, project};
use crate::support::mount::Mount;
use crate::support::world::{run_ok, World, WorldOptions};

/// A local store holding `{base}-ID` 1.0.0.
async fn world_with_one_version(base: &str) -> (World, String) {
    let world = World::local(WorldOptions::default()).await;
    let p = project(&world, base);
    let file = world.file("dist", b"bytes");
    run_ok(
        world
            .cli()
            .args([p.as_str(), "1.0.0", "--stage"])
            .arg(&file),
    );
    (world, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_over_255_bytes_are_enametoolong_before_any_request() {
    let (world, p) = world_with_one_version("Long").await;
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
        errno_of(std::fs::write(
            mount.join(&format!("{p}/1.1.0/{long}")),
            b"x"
        )),
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

/// The daemon's resident memory, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Any user may look up as many names that do not exist as they like: the daemon keeps
/// at most 16,384 of them (see `src/fs/tree/missing.rs`), so 100,000 distinct missing
/// names cost it a bounded amount. Unbounded (and each given an inode), they grew it by
/// 41 MiB. The bound
/// asserted (24 MiB over the first 10,000 names) leaves room for the allocator keeping
/// freed pages and for the runtime's threads, and still fails well before that growth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_missing_names_cost_bounded_memory() {
    let (world, p) = world_with_one_version("Probe").await;
    let mount = Mount::start(&world, &["-o", "log_level=info"]);
    let pid = mount.pid().expect("daemon");
    let probe = |range: std::ops::Range<u32>| {
        for n in range {
            let missing = mount.join(&format!("{p}/9.9.{n}"));
            assert_eq!(errno_of(std::fs::metadata(&missing)), libc::ENOENT);
        }
    };
    probe(0..10_000);
    let warmed = resident_kib(pid);
    probe(10_000..100_000);
    let after = resident_kib(pid);
    let grown_mib = after.saturating_sub(warmed) / 1024;
    eprintln!(
        "daemon resident: {warmed} KiB after 10,000 missing names, {after} KiB after 100,000"
    );
    assert!(
        grown_mib < 24,
        "90,000 more missing names grew the daemon by {grown_mib} MiB"
    );
}
