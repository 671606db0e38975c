//! What reads cost in requests, counted at a proxy before every region (moto only:
//! the local store makes no requests to count). Without a cache, a cold `head` asks
//! for 4 MiB at most and a cold `cat` is one GET; with `--cache-dir`, an open fetches
//! the whole artifact in one GET, and a new daemon serves it from the cache with none.

use std::process::Command;

use crate::support::files::{project, random_bytes};
use crate::support::moto::Moto;
use crate::support::mount::Mount;
use crate::support::proxy::{FaultProxy, RecordedRequest};
use crate::support::world::{run_ok, World, WorldOptions, REGIONS};

const SIZE: usize = 20 << 20;

/// A world whose regions are all reached through one proxy, with `P 1.0.0` staged
/// (`SIZE` bytes); the proxy's record starts empty.
async fn world_behind_a_proxy(base: &str) -> (World, FaultProxy, String, Vec<u8>) {
    let mut world = World::moto(WorldOptions::default()).await;
    let proxy = FaultProxy::start(&Moto::shared().url);
    for region in REGIONS {
        world.region_endpoints.insert(region.into(), proxy.url());
    }
    let p = project(&world, base);
    let content = random_bytes(SIZE, 41);
    let file = world.file("big.bin", &content);
    run_ok(world.cli().args([&p, "1.0.0", "--stage"]).arg(&file));
    proxy.clear();
    (world, proxy, p, content)
}

/// How many bytes a GET asked for: its range, or the whole object without one.
fn asked_for(request: &RecordedRequest) -> u64 {
    request.range_len().unwrap_or(SIZE as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_head_asks_for_4_mib_at_most() {
    let (world, proxy, p, _) = world_behind_a_proxy("Head").await;
    let mount = Mount::start(&world, &[]);
    let path = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    std::fs::metadata(&path).unwrap();
    proxy.clear();
    run_ok(Command::new("head").args(["-c", "4096"]).arg(&path));
    let gets = proxy.gets_of(&format!("{p}@1.0.0"));
    assert_eq!(gets.len(), 1, "{gets:#?}");
    assert!(asked_for(&gets[0]) <= 4 << 20, "{gets:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_cat_is_one_get() {
    let (world, proxy, p, content) = world_behind_a_proxy("Cat").await;
    let mount = Mount::start(&world, &[]);
    let path = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    std::fs::metadata(&path).unwrap();
    proxy.clear();
    let output = Command::new("cat").arg(&path).output().unwrap();
    assert!(output.status.success());
    assert!(output.stdout == content, "other bytes");
    let gets = proxy.gets_of(&format!("{p}@1.0.0"));
    assert_eq!(gets.len(), 1, "{gets:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_file_with_a_disk_cache_fetches_it_whole_in_one_get() {
    let (world, proxy, p, content) = world_behind_a_proxy("Whole").await;
    let cache = world.dir("cache");
    let mount = Mount::start(&world, &["--cache-dir", cache.to_str().unwrap()]);
    let path = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    std::fs::metadata(&path).unwrap();
    proxy.clear();
    // A read of the head only: the open fetches the whole artifact all the same.
    run_ok(Command::new("head").args(["-c", "4096"]).arg(&path));
    assert!(std::fs::read(&path).unwrap() == content, "other bytes");
    let gets = proxy.gets_of(&format!("{p}@1.0.0"));
    assert_eq!(gets.len(), 1, "{gets:#?}");
    assert_eq!(asked_for(&gets[0]), SIZE as u64, "{gets:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_daemon_reads_a_cached_artifact_without_a_get() {
    let (world, proxy, p, content) = world_behind_a_proxy("Again").await;
    let cache = world.dir("cache");
    let args = ["--cache-dir", cache.to_str().unwrap()];
    let path = format!("{p}/1.0.0/{p}@1.0.0");
    let mut first = Mount::start(&world, &args);
    assert!(std::fs::read(first.join(&path)).unwrap() == content);
    assert_eq!(first.stop(), Some(0));

    // The new daemon pins the version from the regions (a head) and checks the cached
    // copy against it; the bytes come from the cache.
    proxy.clear();
    let second = Mount::start(&world, &args);
    assert!(std::fs::read(second.join(&path)).unwrap() == content);
    let key = format!("{p}@1.0.0");
    let gets = proxy.gets_of(&key);
    assert!(gets.is_empty(), "{gets:#?}");
    assert!(proxy
        .requests()
        .iter()
        .any(|r| r.method == "HEAD" && r.key_path().ends_with(&format!("/{key}"))));
}
