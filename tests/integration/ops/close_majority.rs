//! A stage needs a majority of regions: without one, close() is EIO and the file is kept;
//! with one, the spool is kept for the region that missed it, and `status.json` says
//! which. Moto only: the regions are taken down by fault proxies on the wire.

use std::process::Command;

use crate::support::files::{project, random_bytes};
use crate::support::moto::Moto;
use crate::support::mount::Mount;
use crate::support::proxy::{FaultProxy, Mode};
use crate::support::staging::{downloaded, status_of};
use crate::support::world::{run, run_ok, World, WorldOptions};

/// A moto world whose us-west-2 and eu-west-2 each go through a proxy of their own, a
/// mount, and a staging version `{p}/1.0.0` made in it.
struct TwoProxiedRegions {
    world: World,
    west: FaultProxy,
    london: FaultProxy,
    mount: Mount,
    p: String,
}

impl TwoProxiedRegions {
    async fn start(base: &str) -> TwoProxiedRegions {
        let mut world = World::moto(WorldOptions::default()).await;
        let (west, london) = (
            FaultProxy::start(&Moto::shared().url),
            FaultProxy::start(&Moto::shared().url),
        );
        world
            .region_endpoints
            .insert("us-west-2".into(), west.url());
        world
            .region_endpoints
            .insert("eu-west-2".into(), london.url());
        let p = project(&world, base);
        let mount = Mount::start(&world, &[]);
        std::fs::create_dir_all(mount.join(&format!("{p}/1.0.0"))).unwrap();
        TwoProxiedRegions {
            world,
            west,
            london,
            mount,
            p,
        }
    }

    /// `cp` of `content` into the version with only us-east-1 up: (code, stderr).
    fn cp_with_two_regions_down(&self, content: &[u8]) -> (i32, String) {
        self.west.set_mode(Mode::Refuse);
        self.london.set_mode(Mode::Refuse);
        let (code, _, err) = run(Command::new("cp")
            .arg(self.world.file("app.bin", content))
            .arg(self.mount.join(&format!("{}/1.0.0", self.p))));
        (code, err)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_without_a_majority_is_eio_and_keeps_the_file() {
    let regions = TwoProxiedRegions::start("NoMajority").await;
    let (mount, p) = (&regions.mount, &regions.p);
    let content = random_bytes(200_000, 8);
    let (code, err) = regions.cp_with_two_regions_down(&content);
    assert!(code != 0 && err.contains("Input/output error"), "{err}");
    // The one region reached took it, and the failed stage removed it again.
    assert!(
        mount.log().contains("0 of 3 regions hold it") && mount.log().contains("removed again"),
        "{}",
        mount.log()
    );
    assert_eq!(status_of(mount, p, "1.0.0").unwrap()["state"], "failed");
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/1.0.0/app.bin"))).unwrap(),
        content
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touch_after_a_failed_stage_reaches_a_majority_and_keeps_the_spool_for_repair() {
    let regions = TwoProxiedRegions::start("Repair").await;
    let (world, mount, p) = (&regions.world, &regions.mount, &regions.p);
    let content = random_bytes(200_000, 8);
    let (code, _) = regions.cp_with_two_regions_down(&content);
    assert_ne!(code, 0);
    regions.west.set_mode(Mode::Forward);
    let file = mount.join(&format!("{p}/1.0.0/app.bin"));
    run_ok(Command::new("touch").arg(&file));
    let entry = status_of(mount, p, "1.0.0").unwrap();
    assert_eq!(entry["state"], "awaiting-repair", "{entry}");
    assert!(
        entry["reason"].as_str().unwrap().contains("eu-west-2"),
        "{entry}"
    );
    assert_eq!(
        std::fs::read(mount.staging_dir().join(p).join("1.0.0/data")).unwrap(),
        content
    );
    assert_eq!(std::fs::read(&file).unwrap(), content);
    regions.london.set_mode(Mode::Forward);
    assert_eq!(downloaded(world, p, "1.0.0").await.0, content);
}
