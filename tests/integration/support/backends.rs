//! The backend harness: one test function run as two tests, on moto and on the local
//! store, the worlds whose regions go through a fault proxy (moto only: the proxy
//! sits on the HTTP wire the local store does not have), and a region's outage on
//! either backend.

use std::path::PathBuf;

use semver::Version;
use startifact::protocol::Metadata;

use super::files::project;
use super::moto::Moto;
use super::proxy::{FaultProxy, Mode};
use super::world::{Kind, World, WorldOptions, REGIONS};

/// Runs `async fn $name(world: World)` as two tests, `$name::on_moto` and
/// `$name::on_local_store`, each in a world made with `$options`
/// (`WorldOptions::default()` when left out; an expression evaluated in the caller's
/// module).
macro_rules! on_both_backends {
    ($name:ident) => {
        on_both_backends!($name, $crate::support::world::WorldOptions::default());
    };
    ($name:ident, $options:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_moto() {
                super::$name($crate::support::world::World::moto($options).await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_local_store() {
                super::$name($crate::support::world::World::local($options).await).await
            }
        }
    };
}

/// Runs `async fn $name(world: World, proxies: Vec<FaultProxy>)` as two tests: on
/// moto, each region behind a proxy of its own, and on the local store, with no
/// proxies.
macro_rules! on_both_backends_behind_proxies {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_moto() {
                let (world, proxies) = $crate::support::world::World::moto_behind_proxies().await;
                super::$name(world, proxies).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_local_store() {
                let options = $crate::support::world::WorldOptions::default();
                let world = $crate::support::world::World::local(options).await;
                let proxies = Vec::<$crate::support::proxy::FaultProxy>::new();
                super::$name(world, proxies).await
            }
        }
    };
}

/// A moto world whose `regions` are reached through one fault proxy (the others
/// directly).
pub async fn proxied_moto(options: WorldOptions, regions: &[&str]) -> (World, FaultProxy) {
    let mut world = World::moto(options).await;
    let proxy = FaultProxy::start(&Moto::shared().url);
    for region in regions {
        world
            .region_endpoints
            .insert(region.to_string(), proxy.url());
    }
    (world, proxy)
}

/// A moto world (with key and parameter prefixes) whose reader may neither list buckets
/// nor get parameters by path (`s3:ListBucket`, `ssm:GetParametersByPath`), holding a
/// project `{base}-{id}` whose 1.0.0 is `d.bin`, `no listing needed`. Returns the
/// project too.
pub async fn without_listing_permission(base: &str) -> (World, FaultProxy, String) {
    let options = WorldOptions {
        bucket_key_prefix: "team/".into(),
        parameter_name_prefix: "/team".into(),
    };
    let (world, proxy) = proxied_moto(options, &REGIONS).await;
    let p = project(&world, base);
    let file = world.file("d.bin", b"no listing needed");
    world
        .session(false)
        .stage(&p, &Version::new(1, 0, 0), &file, Metadata::new(), true)
        .await
        .unwrap();
    proxy.set_deny_listing(true);
    proxy.set_denied_ssm_actions(&["GetParametersByPath"]);
    (world, proxy, p)
}

/// One region made unreachable on demand: on moto, a proxy before it refuses every
/// connection; on the local store, its folder is moved away (which the local store
/// answers as a region that is down).
pub enum Outage {
    Proxy(FaultProxy),
    Folder { region: PathBuf, away: PathBuf },
}

impl Outage {
    /// Prepares the outage of `region`; call before anything starts in the world.
    pub fn of(world: &mut World, region: &str) -> Outage {
        match &world.kind {
            Kind::Moto { .. } => {
                let proxy = FaultProxy::start(&Moto::shared().url);
                world.region_endpoints.insert(region.into(), proxy.url());
                Outage::Proxy(proxy)
            }
            Kind::Local { dir } => Outage::Folder {
                region: dir.join(region),
                away: world.scratch.path().join(format!("{region}-away")),
            },
        }
    }

    /// Takes the region down.
    pub fn begin(&self) {
        match self {
            Outage::Proxy(proxy) => proxy.set_mode(Mode::Refuse),
            Outage::Folder { region, away } => std::fs::rename(region, away).unwrap(),
        }
    }

    /// Brings the region back, holding what it held before.
    pub fn end(&self) {
        match self {
            Outage::Proxy(proxy) => proxy.set_mode(Mode::Forward),
            Outage::Folder { region, away } => std::fs::rename(away, region).unwrap(),
        }
    }
}
