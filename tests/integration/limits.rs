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
/// at most 16,384 of them (see `src/fs/namespace/missing.rs`), so 100,000 distinct missing
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

/// What a local user makes the daemon keep, run from one Python process (a loop of
/// `os.stat` / `os.symlink`): the lookups of `lookups` missing project names
/// `Ghost-N`, then `links` symlinks `{project}/tN -> 1.0.0` (kept by the mount, to be
/// renamed over `latest`). Returns the resident memory before (after a first tenth of
/// each, to let the maps reach their bounds) and after.
fn fill_from_python(mount: &Mount, project: &str, lookups: u32, links: u32) -> (u64, u64) {
    let pid = mount.pid().expect("daemon");
    let run = |kind: &str, range: std::ops::Range<u32>| {
        let script = r#"
import errno, os, sys
mnt, project, kind, start, end = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
for n in range(start, end):
    if kind == "lookup":
        try:
            os.stat(f"{mnt}/Ghost-{n}")
            sys.exit(f"Ghost-{n} exists")
        except FileNotFoundError:
            pass
    else:
        os.symlink("1.0.0", f"{mnt}/{project}/t{n}")
"#;
        let status = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(mount.join(""))
            .args([
                project,
                kind,
                &range.start.to_string(),
                &range.end.to_string(),
            ])
            .status()
            .expect("python3");
        assert!(status.success(), "{kind} {range:?}");
    };
    run("lookup", 0..lookups / 10);
    run("link", 0..links / 10);
    let before = resident_kib(pid);
    run("lookup", lookups / 10..lookups);
    run("link", links / 10..links);
    (before, resident_kib(pid))
}

/// Any user may look up as many missing project names, and make as many symlinks
/// beside `latest`, as they like: the version listings kept for projects (256, see
/// `src/fs/namespace/mod.rs`) and the symlinks with their inodes (1,024, see
/// `src/fs/calls/latest_moves.rs`) are bounded. Unbounded, 200,000 missing projects grew the
/// daemon from 19 to 60 MiB, and each symlink kept its name and an inode for good.
/// Measured bounded: 1.3 MiB over the last 180,000 lookups and 90,000 symlinks (17 to
/// 18.6 MiB, in 100 s); the bound asserted (10 MiB) leaves room for the allocator and
/// the runtime's threads, and fails far below the 41 MiB that 200,000 missing projects
/// alone took unbounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_projects_and_symlinks_beside_latest_cost_bounded_memory() {
    let (world, p) = world_with_one_version("Linked").await;
    let mount = Mount::start(&world, &["-o", "log_level=info"]);
    let (before, after) = fill_from_python(&mount, &p, 200_000, 100_000);
    let grown_mib = after.saturating_sub(before) / 1024;
    eprintln!("daemon resident: {before} KiB after the first tenth, {after} KiB after all");
    // The last symlinks still work: one moves `latest`.
    let link = mount.join(&format!("{p}/t99999"));
    assert_eq!(std::fs::read_link(&link).unwrap().to_str(), Some("1.0.0"));
    assert_eq!(
        errno_of(std::fs::symlink_metadata(mount.join(&format!("{p}/t0")))),
        libc::ENOENT,
        "the first were dropped"
    );
    std::fs::rename(&link, mount.join(&format!("{p}/latest"))).unwrap();
    assert_eq!(
        std::fs::read_link(mount.join(&format!("{p}/latest")))
            .unwrap()
            .to_str(),
        Some("1.0.0")
    );
    assert!(
        grown_mib < 10,
        "180,000 missing projects and 90,000 symlinks grew the daemon by {grown_mib} MiB"
    );
}
