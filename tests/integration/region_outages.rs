//! Regions that fail for real: one `moto_server` per region (`support::regions`), one
//! stopped (connections refused), two stopped, or one hung (a listener that accepts and
//! never answers). The README's "Failure and consistency" promises, through a mount and
//! `startifact-fs status`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::files::{errno_of, project};
use crate::support::mount::Mount;
use crate::support::regions::world_per_region;
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
