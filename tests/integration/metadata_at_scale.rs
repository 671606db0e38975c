//! Metadata at scale: a project of thousands of versions, seeded straight into a moto
//! server's memory in the Startifact layout (every version with its metadata object, as
//! the mount and `--filename` stage them, so each region lists two keys a version),
//! mounted behind the recording proxy. A cold `ls` of the project costs the listing
//! pages of each region and nothing per version; a warm `ls`, `readlink latest` and
//! `stat` cost nothing while fresh. Moto only: the counts are of requests on the wire.
//!
//! Why 2,000 versions by default and not 10,000: moto sorts every key of the bucket
//! for each page it answers, so on the 2-core test machine one listing of 10,000
//! versions (20 pages a region, one Python process for all three) takes minutes, and
//! the mount lists the root twice at start (its permission check, then the harness's
//! first `ls`), each as long. The bounds checked are per page, so they are the same
//! proof at any size; `STARTIFACT_SCALE_VERSIONS=10000` runs the full size.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::files::project;
use crate::support::moto::{dies_with_its_thread, free_port, wait_until_up};
use crate::support::mount::Mount;
use crate::support::proxy::{FaultProxy, RecordedRequest};
use crate::support::world::{World, WorldOptions, REGIONS};

/// ListObjectsV2 answers at most this many keys a page.
const KEYS_PER_PAGE: usize = 1_000;

fn versions() -> usize {
    std::env::var("STARTIFACT_SCALE_VERSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

/// The name of version `n`, as `seeded_moto.py` makes it.
fn version_name(n: usize) -> String {
    format!("1.{}.{}", n / 100, n % 100)
}

/// A moto server of this test's own, whose buckets `support/seeded_moto.py` fills in
/// its own memory: 20,000 objects in seconds rather than 20,000 PUTs.
struct SeededMoto {
    url: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl SeededMoto {
    fn start() -> SeededMoto {
        let port = free_port();
        let python = crate::support::venv().join("bin/python");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/support/seeded_moto.py");
        let mut command = Command::new(&python);
        command
            .arg(script)
            .arg(port.to_string())
            .env_remove("AWS_CA_BUNDLE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // The server dies with the test that started it.
        dies_with_its_thread(&mut command);
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {} (run scripts/test.sh): {e}",
                python.display()
            )
        });
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut server = SeededMoto {
            url: format!("http://127.0.0.1:{port}"),
            child,
            stdin,
            stdout,
        };
        server.wait_for("up");
        wait_until_up(port);
        server
    }

    /// Reads the server's output up to the line `word`.
    fn wait_for(&mut self, word: &str) {
        let mut line = String::new();
        loop {
            line.clear();
            let read = self
                .stdout
                .read_line(&mut line)
                .expect("the seeding server answers");
            assert!(read > 0, "the seeding server ended before {word:?}");
            if line.trim() == word {
                return;
            }
        }
    }

    /// Writes `count` versions of `project` (each with its metadata object) into
    /// `bucket`.
    fn seed(&mut self, bucket: &str, project: &str, count: usize) {
        writeln!(self.stdin, "seed {bucket} {project} {count}").expect("the seeding server reads");
        self.stdin.flush().expect("the seeding server reads");
        self.wait_for("seeded");
    }
}

impl Drop for SeededMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the recorded requests were, per region: "ListObjectsV2", "HeadObject",
/// "GetObject", or the SSM action.
fn requests_by_region(
    world: &World,
    requests: &[RecordedRequest],
) -> BTreeMap<String, Vec<String>> {
    let region_of_bucket: BTreeMap<&str, &str> = world
        .buckets
        .iter()
        .map(|(region, bucket)| (bucket.as_str(), region.as_str()))
        .collect();
    let mut by_region: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for request in requests {
        let (region, kind) = match request.ssm_action() {
            Some(action) => {
                // The region is in the signature's scope: Credential=KEY/DATE/REGION/ssm/...
                let scope = request.header("authorization").unwrap_or("");
                let region = scope
                    .split("Credential=")
                    .nth(1)
                    .and_then(|c| c.split('/').nth(2))
                    .unwrap_or("?");
                (region.to_string(), action.to_string())
            }
            None => {
                let path = request.key_path();
                let bucket = path.trim_start_matches('/').split('/').next().unwrap_or("");
                let region = region_of_bucket.get(bucket).copied().unwrap_or("?");
                let kind = if request.path_and_query.contains("list-type=2") {
                    "ListObjectsV2"
                } else if request.method == "HEAD" {
                    "HeadObject"
                } else {
                    "GetObject"
                };
                (region.to_string(), kind.to_string())
            }
        };
        by_region.entry(region).or_default().push(kind);
    }
    by_region
}

fn count(by_region: &BTreeMap<String, Vec<String>>, region: &str, kind: &str) -> usize {
    by_region
        .get(region)
        .map_or(0, |kinds| kinds.iter().filter(|k| *k == kind).count())
}

fn names_in(folder: &Path) -> Vec<String> {
    std::fs::read_dir(folder)
        .unwrap_or_else(|e| panic!("listing {}: {e}", folder.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The daemon's resident memory, in KiB.
fn resident_kib(mount: &Mount) -> u64 {
    let pid = mount.pid().expect("the daemon runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// Runs `what`, and returns its result, how long it took, and the requests it made.
fn measured<T>(
    proxy: &FaultProxy,
    world: &World,
    what: impl FnOnce() -> T,
) -> (T, Duration, BTreeMap<String, Vec<String>>) {
    proxy.clear();
    let started = Instant::now();
    let result = what();
    let took = started.elapsed();
    (result, took, requests_by_region(world, &proxy.requests()))
}

/// A world on a seeded server, each region reached through one recording proxy, whose
/// project holds `versions()` versions in every region, `latest` the highest, mounted
/// with listings trusted for two minutes, so that the warm calls below are warm however
/// slow the machine. The mount lists the root at start (the harness waits for it).
async fn mounted_project_of_many_versions(
    base: &str,
) -> (SeededMoto, World, FaultProxy, String, Mount) {
    let mut server = SeededMoto::start();
    let options = WorldOptions {
        bucket_key_prefix: String::new(),
        parameter_name_prefix: "/scale".into(),
    };
    let mut world = World::moto_at(&server.url, options).await;
    let p = project(&world, base);
    let started = Instant::now();
    for bucket in world.buckets.values() {
        server.seed(bucket, &p, versions());
    }
    for region in REGIONS {
        world
            .raw_store(region)
            .put_parameter(&format!("/scale/{p}/latest"), &version_name(versions() - 1))
            .await
            .unwrap();
    }
    eprintln!(
        "seeded {} versions x 2 objects x {} regions in {:?}",
        versions(),
        REGIONS.len(),
        started.elapsed()
    );
    let proxy = FaultProxy::start(&server.url);
    for region in REGIONS {
        world
            .region_endpoints
            .insert(region.to_string(), proxy.url());
    }
    let started = Instant::now();
    let mount = Mount::start_with_default_metadata_ttl(&world, &["--metadata-ttl", "120"]);
    eprintln!("mounted in {:?}", started.elapsed());
    (server, world, proxy, p, mount)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_of_thousands_of_versions_is_the_listing_pages_of_each_region_then_nothing() {
    let (_server, world, proxy, p, mount) = mounted_project_of_many_versions("Scale").await;
    let folder = mount.join(&p);
    // Looking the project up reads its `latest` (a quorum of regions), once.
    assert!(std::fs::metadata(&folder).unwrap().is_dir());
    let memory_before = resident_kib(&mount);

    let (names, cold, requests) = measured(&proxy, &world, || names_in(&folder));
    eprintln!("cold ls: {cold:?}, requests {requests:?}");
    assert_eq!(names.len(), versions() + 1, "every version and latest");
    assert!(names.iter().any(|n| n == "latest"));
    assert!(names.iter().any(|n| *n == version_name(versions() - 1)));
    // Two keys a region per version (the artifact and its metadata object).
    let pages = (2 * versions()).div_ceil(KEYS_PER_PAGE);
    for region in REGIONS {
        let lists = count(&requests, region, "ListObjectsV2");
        assert!(
            (pages..=pages + 1).contains(&lists),
            "{region}: {lists} listing requests for {pages} pages: {requests:?}"
        );
    }
    let others: usize = requests
        .values()
        .flatten()
        .filter(|kind| *kind != "ListObjectsV2")
        .count();
    assert_eq!(others, 0, "no request per version: {requests:?}");
    eprintln!(
        "daemon memory: {memory_before} KiB before the listing, {} KiB after",
        resident_kib(&mount)
    );

    let (again, warm, requests) = measured(&proxy, &world, || names_in(&folder));
    eprintln!("warm ls: {warm:?}, requests {requests:?}");
    assert_eq!(again.len(), versions() + 1);
    assert!(
        requests.is_empty(),
        "a warm ls asks no region: {requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_and_stat_among_thousands_of_versions_are_answered_from_memory_once_known() {
    let (_server, world, proxy, p, mount) = mounted_project_of_many_versions("ScaleStat").await;
    let folder = mount.join(&p);
    names_in(&folder);
    let highest = version_name(versions() - 1);

    let (target, cold, requests) = measured(&proxy, &world, || {
        std::fs::read_link(folder.join("latest")).unwrap()
    });
    eprintln!("cold readlink latest: {cold:?}, requests {requests:?}");
    assert_eq!(target, Path::new(&highest));
    let total: usize = requests.values().map(Vec::len).sum();
    assert!(
        total <= REGIONS.len() && requests.values().flatten().all(|k| k == "GetParameter"),
        "latest is read from its parameter alone: {requests:?}"
    );
    let (target, warm, requests) = measured(&proxy, &world, || {
        std::fs::read_link(folder.join("latest")).unwrap()
    });
    eprintln!("warm readlink latest: {warm:?}, requests {requests:?}");
    assert_eq!(target, Path::new(&highest));
    assert!(requests.is_empty(), "{requests:?}");

    let version = folder.join(version_name(1234));
    let (is_dir, cold, requests) = measured(&proxy, &world, || {
        std::fs::metadata(&version).unwrap().is_dir()
    });
    eprintln!("cold stat of a version: {cold:?}, requests {requests:?}");
    assert!(is_dir);
    // One version's census (a `HeadObject` a region), the majority's metadata (a
    // `HeadObject` of its object a holder) and one `GetObject` of it: the same whatever
    // the project's size.
    let total: usize = requests.values().map(Vec::len).sum();
    assert!(total <= 2 * REGIONS.len() + 1, "{requests:?}");
    let file = version.join(format!("app-{}.tar.gz", version_name(1234)));
    let (sizes, warm, requests) = measured(&proxy, &world, || {
        (
            std::fs::metadata(&version).unwrap().len(),
            std::fs::metadata(&file).unwrap().len(),
        )
    });
    eprintln!("warm stat of the version and its file: {warm:?}, requests {requests:?}");
    assert_eq!(sizes.1, format!("{p}@{}", version_name(1234)).len() as u64);
    assert!(requests.is_empty(), "{requests:?}");
}
