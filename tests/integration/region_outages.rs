//! Regions that fail for real: one `moto_server` per region (`support::regions`), one
//! stopped (connections refused), two stopped, one hung (a listener that accepts and
//! never answers), or one started again empty and filled by repair. The README's
//! "Failure and consistency" promises, through a mount and `startifact-fs status`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;

use crate::support::files::{errno_of, project, setxattr};
use crate::support::mount::Mount;
use crate::support::regions::{world_per_region, RegionServers};
use crate::support::staging::{cli_stage, close, status_of};
use crate::support::world::{run, World, REGIONS};

/// What `startifact-fs status MOUNT --json` prints.
fn status_json(world: &World, mount: &Mount) -> Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_startifact-fs"));
    command.env_clear().envs(world.env());
    let (code, stdout, stderr) = run(command.arg("status").arg(&mount.path).arg("--json"));
    assert_eq!(code, 0, "{stdout}{stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// What `startifact-fs status MOUNT` prints for people.
fn status_text(world: &World, mount: &Mount) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_startifact-fs"));
    command.env_clear().envs(world.env());
    let (code, stdout, stderr) = run(command.arg("status").arg(&mount.path));
    assert_eq!(code, 0, "{stdout}{stderr}");
    stdout
}

fn region_in<'a>(status: &'a Value, region: &str) -> &'a Value {
    status["regions"]
        .as_array()
        .and_then(|regions| regions.iter().find(|r| r["region"] == region))
        .unwrap_or_else(|| panic!("{region} not in {status}"))
}

/// Runs `what` and fails if it took longer than `bound`.
fn within<T>(bound: Duration, what: &str, action: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = action();
    let took = started.elapsed();
    assert!(took <= bound, "{what} took {took:?}, more than {bound:?}");
    result
}

fn cp(from: &Path, to: &Path) -> (i32, String, String) {
    run(Command::new("cp").arg(from).arg(to))
}

fn rsync(from: &Path, to: &Path) -> (i32, String, String) {
    run(Command::new("rsync").arg("-a").arg(from).arg(to))
}

/// Reads `P/1.0.0`, lists `P` and reads `latest`, as a deployment would.
fn read_side(mount: &Mount, p: &str, bytes: &[u8]) {
    let folder = mount.join(&format!("{p}/1.0.0"));
    assert_eq!(
        std::fs::read(folder.join(format!("{p}@1.0.0"))).unwrap(),
        bytes
    );
    let names: Vec<String> = std::fs::read_dir(mount.join(p))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n == "1.0.0"), "{names:?}");
    assert_eq!(
        std::fs::read_link(mount.join(&format!("{p}/latest"))).unwrap(),
        Path::new("1.0.0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_region_stopped_reads_listings_and_latest_succeed_and_status_shows_it_down() {
    let (world, servers) = world_per_region().await;
    let p = project(&world, "OneDown");
    cli_stage(&world, &p, "1.0.0", b"one region down", &[]);
    let mount = Mount::start(&world, &[]);
    servers.stop(REGIONS[0]);
    // Enough requests for the breaker to open whichever region the shuffle asks first.
    for _ in 0..4 {
        read_side(&mount, &p, b"one region down");
        std::thread::sleep(Duration::from_millis(1100));
    }
    let status = status_json(&world, &mount);
    let down = region_in(&status, REGIONS[0]);
    assert!(down["last_error"]["reason"].is_string(), "{status}");
    assert_ne!(down["breaker"], "closed", "{status}");
    for region in &REGIONS[1..] {
        let up = region_in(&status, region);
        assert_eq!(up["breaker"], "closed", "{status}");
        assert!(up["last_success"].is_number(), "{status}");
    }
    let text = status_text(&world, &mount);
    let line = text
        .lines()
        .find(|l| l.contains(REGIONS[0]))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("last error"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_region_stopped_staging_through_cp_and_rsync_succeeds_and_awaits_repair() {
    let (world, servers) = world_per_region().await;
    let p = project(&world, "StageDown");
    cli_stage(&world, &p, "1.0.0", b"already there", &[]);
    let mount = Mount::start(&world, &[]);
    servers.stop(REGIONS[2]);
    let file = world.file("dist.tar.gz", b"staged with one region down");

    let by_cp = mount.join(&format!("{p}/1.1.0"));
    std::fs::create_dir(&by_cp).unwrap();
    let (code, stdout, stderr) = cp(&file, &by_cp);
    assert_eq!(code, 0, "cp: {stdout}{stderr}");
    let by_rsync = mount.join(&format!("{p}/1.2.0"));
    std::fs::create_dir(&by_rsync).unwrap();
    let (code, stdout, stderr) = rsync(&file, &by_rsync);
    assert_eq!(code, 0, "rsync: {stdout}{stderr}");
    for folder in [&by_cp, &by_rsync] {
        assert_eq!(
            std::fs::read(folder.join("dist.tar.gz")).unwrap(),
            b"staged with one region down"
        );
    }

    let status = status_json(&world, &mount);
    assert!(
        region_in(&status, REGIONS[2])["last_error"].is_object(),
        "{status}"
    );
    for version in ["1.1.0", "1.2.0"] {
        let entry = status["staging"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["project"] == p.as_str() && e["version"] == version)
            .cloned()
            .unwrap_or_else(|| panic!("{version} not in {status}"));
        assert_eq!(entry["state"], "awaiting-repair", "{status}");
        assert!(
            entry["reason"].as_str().unwrap_or("").contains(REGIONS[2]),
            "{status}"
        );
    }
    let text = status_text(&world, &mount);
    assert!(text.contains("awaiting-repair"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_regions_stopped_a_stage_fails_with_eio_keeps_its_spool_and_cached_reads_go_on() {
    let (world, servers) = world_per_region().await;
    let p = project(&world, "TwoDown");
    cli_stage(&world, &p, "1.0.0", b"cached before the outage", &[]);
    let cache = world.dir("cache");
    let mount = Mount::start(&world, &["--cache-dir", cache.to_str().unwrap()]);
    let artifact = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    assert_eq!(
        std::fs::read(&artifact).unwrap(),
        b"cached before the outage"
    );

    let folder = mount.join(&format!("{p}/2.0.0"));
    std::fs::create_dir(&folder).unwrap();
    let mut file = std::fs::File::create(folder.join("dist")).unwrap();
    std::io::Write::write_all(&mut file, b"never reaches a majority").unwrap();
    servers.stop(REGIONS[0]);
    servers.stop(REGIONS[1]);
    assert_eq!(close(file), Err(libc::EIO));
    let entry = status_of(&mount, &p, "2.0.0").expect("the failed stage is reported");
    assert_eq!(entry["state"], "failed", "{entry}");
    let spooled: Vec<_> = walk(&mount.staging_dir())
        .into_iter()
        .filter(|path| {
            std::fs::read(path).ok().as_deref() == Some(&b"never reaches a majority"[..])
        })
        .collect();
    assert_eq!(spooled.len(), 1, "the spool keeps the file");

    // The mount still answers, and the cached artifact still reads.
    assert!(std::fs::read_dir(&mount.path).is_ok());
    assert_eq!(
        std::fs::read(&artifact).unwrap(),
        b"cached before the outage"
    );
    let status = status_json(&world, &mount);
    for region in &REGIONS[..2] {
        assert!(
            region_in(&status, region)["last_error"].is_object(),
            "{status}"
        );
    }
    assert_eq!(
        errno_of(std::fs::read_link(mount.join(&format!("{p}/9.9.9")))),
        libc::EIO
    );
}

/// Every file under a folder.
fn walk(folder: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_region_delays_no_read_listing_or_latest_beyond_a_bound() {
    let (world, servers) = world_per_region().await;
    let p = project(&world, "Hung");
    cli_stage(&world, &p, "1.0.0", b"one region hung", &[]);
    servers.hang(REGIONS[1]);
    let bound = Duration::from_secs(30);
    let mount = within(bound, "mounting", || Mount::start(&world, &[]));
    for round in 0..3 {
        within(bound, &format!("reads, round {round}"), || {
            read_side(&mount, &p, b"one region hung")
        });
    }
    let status = within(bound, "status", || status_json(&world, &mount));
    assert!(
        region_in(&status, REGIONS[1])["last_error"].is_object(),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_region_delays_no_mkdir_or_stage_beyond_a_bound() {
    let (world, servers) = world_per_region().await;
    let p = project(&world, "HungStage");
    cli_stage(&world, &p, "1.0.0", b"one region hung", &[]);
    let mount = Mount::start(&world, &[]);
    servers.hang(REGIONS[0]);
    let bound = Duration::from_secs(30);
    let file = world.file("dist", b"staged past a hung region");
    let by_cp = mount.join(&format!("{p}/1.1.0"));
    within(bound, "mkdir", || std::fs::create_dir(&by_cp).unwrap());
    let (code, stdout, stderr) = within(bound, "cp", || cp(&file, &by_cp));
    assert_eq!(code, 0, "cp: {stdout}{stderr}");
    let by_rsync = mount.join(&format!("{p}/1.2.0"));
    within(bound, "mkdir", || std::fs::create_dir(&by_rsync).unwrap());
    let (code, stdout, stderr) = within(bound, "rsync", || rsync(&file, &by_rsync));
    assert_eq!(code, 0, "rsync: {stdout}{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_started_again_empty_leaves_reads_answering() {
    let (world, servers) = world_per_region().await;
    let p = project(&world, "Empty");
    cli_stage(&world, &p, "1.0.0", b"before the restart", &[]);
    servers.stop(REGIONS[0]);
    servers.start_again(REGIONS[0]);
    let store = servers.store(REGIONS[0]).await;
    assert!(
        store
            .get_parameter(&world.config_param)
            .await
            .unwrap_err()
            .is_not_found(),
        "moto comes back empty"
    );
    let mount = Mount::start(&world, &[]);
    read_side(&mount, &p, b"before the restart");
}

/// `mkdir -p MOUNT/P/VERSION`, `setfattr -n user.lang -v rust` on it, and `cp` of a file
/// holding `bytes` into it.
fn cp_stage(world: &World, mount: &Mount, p: &str, version: &str, bytes: &[u8]) {
    let folder = mount.join(&format!("{p}/{version}"));
    std::fs::create_dir_all(&folder).unwrap();
    setxattr(&folder, "user.lang", b"rust").unwrap();
    let file = world.file(&format!("{version}/dist.tar.gz"), bytes);
    let (code, stdout, stderr) = cp(&file, &folder);
    assert_eq!(code, 0, "cp {version}: {stdout}{stderr}");
}

/// The bytes and ETag of `key` in `region`'s bucket, read from its server directly.
async fn held_in(
    servers: &RegionServers,
    world: &World,
    region: &str,
    key: &str,
) -> Option<(Vec<u8>, Option<String>)> {
    let store = servers.store(region).await;
    let bucket = &world.buckets[region];
    let head = store.head_object(bucket, key).await.ok()?;
    let mut object = store.get_object(bucket, key, None, None).await.ok()?;
    let mut bytes = Vec::new();
    while let Some(chunk) = object.body.next().await {
        bytes.extend_from_slice(&chunk.expect("object body"));
    }
    Some((bytes, head.etag))
}

fn entries_of<'a>(status: &'a Value, p: &str) -> Vec<&'a Value> {
    status["staging"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["project"] == p)
        .collect()
}

/// A version staged through the mount with every region up; one region started again
/// empty; a second version staged through the mount then (it reaches the other two and
/// awaits repair). Reads answer throughout; `startifact-fs status` shows the version
/// awaiting repair in that region; `startifact --repair` refuses the region until its
/// bucket and bucket-name parameter exist again; then the background repair fills in
/// the second version (and `latest`), `startifact --repair` the first (and writes the
/// configuration), each with the same bytes and ETag as elsewhere, and status shows
/// nothing awaiting repair and the last repair's outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_started_again_empty_is_filled_by_repair_and_status_shows_it_before_and_after() {
    let (world, servers) = world_per_region().await;
    let (empty, whole) = (REGIONS[1], REGIONS[0]);
    let p = project(&world, "Refill");
    let mount = Mount::start(&world, &[]);
    cp_stage(&world, &mount, &p, "1.0.0", b"staged with every region up");
    let status = status_json(&world, &mount);
    assert!(entries_of(&status, &p).is_empty(), "{status}");
    for region in REGIONS {
        assert_eq!(region_in(&status, region)["awaiting_repair"], 0, "{status}");
    }

    servers.stop(empty);
    servers.start_again(empty);
    let prefix = &world.configuration.bucket_key_prefix;
    let keys = |version: &str| {
        let key = format!("{prefix}{p}@{version}");
        [format!("{key}/metadata"), key]
    };
    for key in keys("1.0.0") {
        assert_eq!(held_in(&servers, &world, empty, &key).await, None, "{key}");
    }

    // (a) Reads answer, and a stage reaches the other two regions.
    let read = |version: &str| std::fs::read(mount.join(&format!("{p}/{version}/dist.tar.gz")));
    assert_eq!(read("1.0.0").unwrap(), b"staged with every region up");
    cp_stage(&world, &mount, &p, "1.1.0", b"staged with one region empty");
    assert_eq!(read("1.1.0").unwrap(), b"staged with one region empty");
    assert_eq!(
        std::fs::read_link(mount.join(&format!("{p}/latest"))).unwrap(),
        Path::new("1.1.0")
    );

    // (c) Before: the version awaits repair in that region, and only there.
    let status = status_json(&world, &mount);
    let entries = entries_of(&status, &p);
    assert_eq!(entries.len(), 1, "{status}");
    assert_eq!(entries[0]["version"], "1.1.0", "{status}");
    assert_eq!(entries[0]["state"], "awaiting-repair", "{status}");
    assert_eq!(
        entries[0]["regions"],
        serde_json::json!([empty]),
        "{status}"
    );
    assert!(entries[0]["next_try_seconds"].is_number(), "{status}");
    for region in REGIONS {
        let awaiting = u64::from(region == empty);
        let health = region_in(&status, region);
        assert_eq!(health["awaiting_repair"], awaiting, "{status}");
        assert!(health["breaker"].is_string(), "{status}");
    }
    let text = status_text(&world, &mount);
    let line = text
        .lines()
        .find(|l| l.contains(empty))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("1 version awaits repair here"), "{text}");
    assert!(
        text.contains(&format!("{p}/1.1.0/dist.tar.gz  awaiting-repair")),
        "{text}"
    );
    assert!(text.contains("(repairs tried: "), "{text}");

    // Repair needs the region's bucket and bucket-name parameter, which are the user's.
    let (code, stdout, stderr) = run(world.cli().args(["--repair", &p]));
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "⚠️ Not repaired: {empty}: skipped: the bucket-name parameter {} does not exist in {empty}",
            world.bucket_param
        )),
        "{stdout}"
    );
    // The configuration is the organisation's, not the region's: it is written anyway.
    assert!(
        stdout.contains(&format!(
            "📦 Did write the configuration parameter in {empty}."
        )),
        "{stdout}"
    );
    servers.provision_bucket(&world, empty).await;

    // (b) The background repair fills in the version it kept, and `latest`.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        let status = status_json(&world, &mount);
        if entries_of(&status, &p).is_empty() {
            break status;
        }
        assert!(Instant::now() < deadline, "never repaired: {status}");
        std::thread::sleep(Duration::from_secs(1));
    };
    let last = &status["last_repair"];
    assert_eq!(last["project"], p.as_str(), "{status}");
    assert_eq!(last["version"], "1.1.0", "{status}");
    assert_eq!(last["outcome"], "repaired", "{status}");
    let store = servers.store(empty).await;
    let latest = format!("{}/{p}/latest", world.configuration.parameter_name_prefix);
    assert_eq!(store.get_parameter(&latest).await.unwrap(), "1.1.0");

    // ... and `startifact --repair` the version staged before.
    let (code, stdout, stderr) = run(world.cli().args(["--repair", &p]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("📦 Did copy {p}@1.0.0 (27 bytes) from ")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("📦 Did copy the metadata of {p}@1.0.0 from ")),
        "{stdout}"
    );
    for version in ["1.0.0", "1.1.0"] {
        for key in keys(version) {
            let there = held_in(&servers, &world, whole, &key).await;
            assert!(there.is_some(), "{key} in {whole}");
            assert_eq!(held_in(&servers, &world, empty, &key).await, there, "{key}");
        }
    }
    let configuration = servers.store(whole).await;
    assert_eq!(
        store.get_parameter(&world.config_param).await.unwrap(),
        configuration
            .get_parameter(&world.config_param)
            .await
            .unwrap()
    );
    let (code, stdout, stderr) = run(world.cli().args(["--repair", &p]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("every region is whole"), "{stdout}");

    // (c) After: nothing awaits repair, and the last repair says it succeeded.
    let status = status_json(&world, &mount);
    assert!(entries_of(&status, &p).is_empty(), "{status}");
    for region in REGIONS {
        assert_eq!(region_in(&status, region)["awaiting_repair"], 0, "{status}");
    }
    let text = status_text(&world, &mount);
    assert!(text.contains("staging: nothing"), "{text}");
    assert!(!text.contains("awaits repair"), "{text}");
    assert!(
        text.contains(&format!("last repair: {p}/1.1.0 repaired ")),
        "{text}"
    );
    assert_eq!(read("1.0.0").unwrap(), b"staged with every region up");
    assert_eq!(read("1.1.0").unwrap(), b"staged with one region empty");
}
