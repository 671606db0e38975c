//! Reads fail over between regions through the mount: with one region down, or hung,
//! the others serve listings, `latest`, bytes and attributes, and a hung region costs a
//! read no more than its timeouts.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::backends::Outage;
use crate::support::files::{getxattr, project, random_bytes};
use crate::support::moto::Moto;
use crate::support::mount::Mount;
use crate::support::proxy::{FaultProxy, Mode};
use crate::support::world::{run_ok, World, WorldOptions};

/// The region the mount asks first (the configuration's order), the one taken down.
const FIRST_REGION: &str = "us-east-1";

/// Stages `P 1.0.0` as `dist.bin` with `lang=rust`; returns the project and the bytes.
fn stage_one_version(world: &World, base: &str) -> (String, Vec<u8>) {
    let p = project(world, base);
    let content = random_bytes(1 << 20, 31);
    let file = world.file("dist.bin", &content);
    run_ok(world.cli().args([&p, "1.0.0", "--stage"]).arg(&file).args([
        "--filename",
        "--metadata",
        "lang=rust",
    ]));
    (p, content)
}

fn names_in(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

async fn a_region_down_is_not_seen_by_ls_cat_or_getfattr(mut world: World) {
    let outage = Outage::of(&mut world, FIRST_REGION);
    let (p, content) = stage_one_version(&world, "Down");
    let mount = Mount::start(&world, &[]);
    outage.begin();

    assert_eq!(names_in(&mount.join(&p)), ["1.0.0", "latest"]);
    assert_eq!(
        std::fs::read_link(mount.join(&format!("{p}/latest"))).unwrap(),
        Path::new("1.0.0")
    );
    let artifact = mount.join(&format!("{p}/1.0.0/dist.bin"));
    assert!(std::fs::read(&artifact).unwrap() == content, "other bytes");
    let attributes = run_ok(Command::new("getfattr").arg("-d").arg(&artifact));
    assert!(attributes.contains("user.lang=\"rust\""), "{attributes}");
    let region = getxattr(&artifact, "user.startifact:region", 64).unwrap();
    assert_ne!(region, FIRST_REGION.as_bytes(), "served by the region down");
}
on_both_backends!(a_region_down_is_not_seen_by_ls_cat_or_getfattr);

/// Moto only: the local store has no wire on which a region could hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_region_delays_a_read_by_no_more_than_its_timeouts() {
    let mut world = World::moto(WorldOptions::default()).await;
    let proxy = FaultProxy::start(&Moto::shared().url);
    world
        .region_endpoints
        .insert(FIRST_REGION.into(), proxy.url());
    let (p, content) = stage_one_version(&world, "Hung");
    let timeout = Duration::from_secs(2);
    let mount = Mount::start_with_env(
        &world,
        &[],
        &[(
            "STARTIFACT_OPERATION_TIMEOUT",
            &timeout.as_secs().to_string(),
        )],
    );
    proxy.set_mode(Mode::Hang);

    // Asked first, the hung region delays each step that reaches it (the project's
    // `latest`, the version's head, its metadata) by at most its timeout.
    let started = Instant::now();
    let artifact = mount.join(&format!("{p}/1.0.0/dist.bin"));
    let bytes = std::fs::read(&artifact).unwrap();
    let elapsed = started.elapsed();
    assert!(bytes == content, "other bytes");
    assert!(
        elapsed < 3 * timeout + Duration::from_secs(3),
        "a read took {elapsed:?} while one region hung: {}",
        mount.log()
    );
    let region = getxattr(&artifact, "user.startifact:region", 64).unwrap();
    assert_ne!(region, FIRST_REGION.as_bytes(), "served by the hung region");
}
