//! What the kernel answers by itself: a warm `readlink latest` and `stat` of a version's
//! file reach the daemon only when what the kernel keeps expires (counted in the
//! daemon's debug log, which has a line for each `lookup`, `getattr` and `readlink`),
//! and a `latest` moved by a stage through the mount is seen at the next `readlink`.
//! (`ops/ttl.rs` proves that a move by another tool shows within `--metadata-ttl`.)

use std::path::Path;
use std::process::Command;

use crate::support::mount::Mount;
use crate::support::staging::two_versions;
use crate::support::world::{run_ok, World};

/// The calls of `kind` ("lookup", "getattr", "readlink") the daemon answered.
fn calls(mount: &Mount, kind: &str) -> usize {
    let line = match kind {
        "lookup" => " lookup parent=".to_string(),
        _ => format!(" {kind} inode="),
    };
    mount.log().matches(&line).count()
}

fn all_calls(mount: &Mount) -> [usize; 3] {
    ["lookup", "getattr", "readlink"].map(|kind| calls(mount, kind))
}

async fn warm_readlinks_and_stats_are_answered_by_the_kernel(world: World) {
    let p = two_versions(&world, "KernelKeeps", b"first");
    // The default TTL (10 s): the loop below stays well within it.
    let mount = Mount::start_with_default_metadata_ttl(&world, &[]);
    let latest = mount.join(&format!("{p}/latest"));
    let file = mount.join(&format!("{p}/1.1.0/{p}@1.1.0"));
    assert_eq!(std::fs::read_link(&latest).unwrap(), Path::new("1.1.0"));
    assert!(std::fs::metadata(&file).unwrap().is_file());
    let through_latest = latest.join(format!("{p}@1.1.0"));
    assert!(std::fs::metadata(&through_latest).unwrap().is_file());
    let cold = all_calls(&mount);
    assert!(cold[2] > 0, "the first readlink is the daemon's: {cold:?}");

    for _ in 0..1_000 {
        assert_eq!(std::fs::read_link(&latest).unwrap(), Path::new("1.1.0"));
        std::fs::metadata(&file).unwrap();
        std::fs::metadata(&through_latest).unwrap();
    }
    let warm = all_calls(&mount);
    let reached: usize = warm.iter().zip(cold).map(|(w, c)| w - c).sum();
    // 3,000 calls; only an expiry of the TTL (on a very slow machine) costs a few.
    assert!(
        reached < 30,
        "{reached} of 3,000 warm calls reached the daemon (lookup, getattr, readlink \
         before {cold:?}, after {warm:?})"
    );
}
on_both_backends!(warm_readlinks_and_stats_are_answered_by_the_kernel);

async fn latest_moved_by_a_stage_through_the_mount_is_seen_at_the_next_readlink(world: World) {
    let p = two_versions(&world, "KernelForgets", b"first");
    let mount = Mount::start_with_default_metadata_ttl(&world, &[]);
    let latest = mount.join(&format!("{p}/latest"));
    // Warm: the kernel keeps the name and the symlink's target.
    for _ in 0..3 {
        assert_eq!(std::fs::read_link(&latest).unwrap(), Path::new("1.1.0"));
    }
    let folder = mount.join(&format!("{p}/2.0.0"));
    std::fs::create_dir(&folder).unwrap();
    let source = world.file("staged-here", b"staged through the mount");
    run_ok(Command::new("cp").arg(&source).arg(folder.join("app.bin")));
    // The close that staged it returned: the kernel already forgot the old name.
    assert_eq!(std::fs::read_link(&latest).unwrap(), Path::new("2.0.0"));
    assert_eq!(
        std::fs::read(latest.join("app.bin")).unwrap(),
        b"staged through the mount"
    );
}
on_both_backends!(latest_moved_by_a_stage_through_the_mount_is_seen_at_the_next_readlink);
