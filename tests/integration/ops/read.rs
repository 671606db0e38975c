//! read: exact bytes, through `latest` and by many readers at once; ranged GETs of only
//! what is read, several at once on a slow connection, one each for readers slowed only
//! by each other; a hung region blocks no other call, and a read no region answers is EIO.

use std::io::Read;
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use semver::Version;
use startifact::protocol::Metadata;

use crate::support::backends::proxied_moto;
use crate::support::files::{errno_of, getxattr, project, random_bytes};
use crate::support::mount::Mount;
use crate::support::proxy::{FaultProxy, Mode};
use crate::support::staging::{names_in, two_versions};
use crate::support::world::{run_ok, World, WorldOptions};

async fn a_file_reads_its_exact_bytes(world: World) {
    let content = random_bytes(6 << 20, 7);
    let p = two_versions(&world, "Read", &content);
    let mount = Mount::start(&world, &[]);
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/1.0.0/dist.bin"))).unwrap(),
        content
    );
}
on_both_backends!(a_file_reads_its_exact_bytes);

async fn a_file_reads_through_latest(world: World) {
    let p = two_versions(&world, "Latest", b"first");
    let mount = Mount::start(&world, &[]);
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/latest/{p}@1.1.0"))).unwrap(),
        b"second version"
    );
}
on_both_backends!(a_file_reads_through_latest);

async fn sixteen_parallel_readers_each_read_the_exact_bytes(world: World) {
    let p = project(&world, "Parallel");
    let big = random_bytes(9 << 20, 3);
    let big_file = world.file("big", &big);
    world
        .session(false)
        .stage(
            &p,
            &Version::new(2, 0, 0),
            &big_file,
            Metadata::new(),
            false,
        )
        .await
        .unwrap();
    let mount = Mount::start(&world, &[]);
    let path = mount.join(&format!("{p}/2.0.0/{p}@2.0.0"));
    let expected = format!("{:x}", Md5::digest(&big));
    let readers: Vec<_> = (0..16)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut file = std::fs::File::open(&path).unwrap();
                let mut hasher = Md5::new();
                let mut buffer = vec![0u8; 64 * 1024 + i * 4096];
                loop {
                    let n = file.read(&mut buffer).unwrap();
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buffer[..n]);
                }
                format!("{:x}", hasher.finalize())
            })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.join().unwrap(), expected);
    }
}
on_both_backends!(sixteen_parallel_readers_each_read_the_exact_bytes);

// Moto only: the Python tool speaks only to AWS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_python_tool_staged_reads_with_its_metadata() {
    let world = World::moto(WorldOptions::default()).await;
    let p = project(&world, "Py");
    let file = world.file("from-python.tar.gz", b"staged by the Python tool");
    run_ok(
        world
            .python()
            .args([&p, "3.0.0", "--stage"])
            .arg(&file)
            .args(["--metadata", "team=py", "--filename"]),
    );
    let mount = Mount::start(&world, &[]);
    let artifact = mount.join(&format!("{p}/latest/from-python.tar.gz"));
    assert_eq!(
        std::fs::read(&artifact).unwrap(),
        b"staged by the Python tool"
    );
    assert_eq!(getxattr(&artifact, "user.team", 64).unwrap(), b"py");
}

/// GETs of `key` seen by the proxy, as (count, bytes their ranges asked for).
fn ranged_gets(proxy: &FaultProxy, key: &str) -> (usize, u64) {
    let gets = proxy.gets_of(key);
    let bytes = gets.iter().filter_map(|r| r.range_len()).sum();
    (gets.len(), bytes)
}

/// A one-region moto world reached through a fault proxy, with `content` staged as
/// `{base}-{id}` 1.0.0, and a mount of that region that keeps what it learns for 60 s.
/// Moto only: the proxy sits on the HTTP wire.
async fn one_proxied_region(base: &str, content: &[u8]) -> (World, FaultProxy, Mount, String) {
    let (world, proxy) = proxied_moto(WorldOptions::default(), &["us-east-1"]).await;
    let p = project(&world, base);
    let file = world.file("artifact", content);
    world
        .session_in(&["us-east-1"], false)
        .stage(&p, &Version::new(1, 0, 0), &file, Metadata::new(), false)
        .await
        .unwrap();
    let mount = Mount::start(&world, &["--regions", "us-east-1", "-o", "metadata_ttl=60"]);
    (world, proxy, mount, p)
}

// Moto only (as every test below): the GETs are counted on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_head_of_a_large_file_fetches_well_under_8_mib() {
    let (_world, proxy, mount, p) = one_proxied_region("Head", &random_bytes(40 << 20, 11)).await;
    let path = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    proxy.clear();
    run_ok(Command::new("head").args(["-c", "4096"]).arg(&path));
    let (_, bytes) = ranged_gets(&proxy, &format!("{p}@1.0.0"));
    assert!(bytes < 8 << 20, "head -c 4096 fetched {bytes} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequential_read_of_200_mb_takes_at_most_64_gets_and_is_exact() {
    let big = random_bytes(200 * 1000 * 1000, 11);
    let expected = format!("{:x}", Md5::digest(&big));
    let (_world, proxy, mount, p) = one_proxied_region("Lean", &big).await;
    drop(big);
    let path = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    proxy.clear();
    let started = Instant::now();
    let output = Command::new("md5sum").arg(&path).output().unwrap();
    let elapsed = started.elapsed();
    let (gets, bytes) = ranged_gets(&proxy, &format!("{p}@1.0.0"));
    assert!(gets <= 64, "{gets} GETs");
    assert!(
        bytes >= 200 * 1000 * 1000 - (4 << 20),
        "{bytes} bytes fetched"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with(&expected),
        "read {elapsed:?}"
    );
}

// S3 gives each connection tens of MB/s: the proxy paces each answer to 16 MiB/s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_connection_has_the_rest_read_by_several_gets_at_once() {
    let big = random_bytes(48 << 20, 12);
    let expected = format!("{:x}", Md5::digest(&big));
    let (_world, proxy, mount, p) = one_proxied_region("Lanes", &big).await;
    drop(big);
    let path = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    proxy.set_pace(Some(16 << 20));
    proxy.clear();
    let output = Command::new("md5sum").arg(&path).output().unwrap();
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with(&expected),
        "{output:?}"
    );
    let (gets, bytes) = ranged_gets(&proxy, &format!("{p}@1.0.0"));
    // The first GET asks for the rest of the file; it is cut once it measured its rate.
    assert!(gets > 2, "{gets} GETs");
    assert!(bytes >= 48 << 20, "{bytes} bytes asked for");
    let at_once = proxy.most_paced_at_once();
    assert!(at_once >= 2, "at most {at_once} GETs flowed at once");
    assert!(at_once <= 8, "{at_once} GETs flowed at once");
}

// Readers slowed by each other are not readers of a slow server: six at once, each
// answer paced to 64 MiB/s (384 MiB/s together, past the 256 MiB/s below which a read is
// cut), read their different artifacts each in one GET (or its first 4 MiB and the
// rest), not in parts that would share the same server among more GETs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_slowed_by_each_other_read_in_one_get_each() {
    const READERS: u64 = 6;
    let (world, proxy) = proxied_moto(WorldOptions::default(), &["us-east-1"]).await;
    let p = project(&world, "Together");
    let session = world.session_in(&["us-east-1"], false);
    let mut expected = Vec::new();
    for i in 0..READERS {
        let content = random_bytes(44 << 20, 20 + i as u32);
        expected.push(format!("{:x}", Md5::digest(&content)));
        let file = world.file(&format!("artifact-{i}"), &content);
        session
            .stage(&p, &Version::new(1, 0, i), &file, Metadata::new(), false)
            .await
            .unwrap();
    }
    let mount = Mount::start(&world, &["--regions", "us-east-1", "-o", "metadata_ttl=60"]);
    let paths: Vec<_> = (0..READERS)
        .map(|i| mount.join(&format!("{p}/1.0.{i}/{p}@1.0.{i}")))
        .collect();
    for path in &paths {
        assert!(path.exists(), "{path:?}");
    }
    proxy.set_pace(Some(64 << 20));
    proxy.clear();
    let readers: Vec<_> = paths
        .iter()
        .map(|path| {
            Command::new("md5sum")
                .arg(path)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, reader) in readers.into_iter().enumerate() {
        let output = reader.wait_with_output().unwrap();
        assert!(
            String::from_utf8_lossy(&output.stdout).starts_with(&expected[i]),
            "reader {i}: {output:?}"
        );
    }
    for i in 0..READERS {
        let (gets, bytes) = ranged_gets(&proxy, &format!("{p}@1.0.{i}"));
        assert!(bytes >= 44 << 20, "artifact {i}: {bytes} bytes asked for");
        assert!(gets <= 2, "artifact {i} was read in {gets} GETs");
    }
}

/// Hangs the proxy and starts reading `path` in a thread; returns the reader once the
/// proxy holds its GET of `key` unanswered and the read has not returned: the reader
/// is blocked on the region, not merely slow to start.
fn reader_held_by_a_hung_region(
    proxy: &FaultProxy,
    path: &std::path::Path,
    key: &str,
) -> JoinHandle<std::io::Result<Vec<u8>>> {
    proxy.clear();
    proxy.set_mode(Mode::Hang);
    let reader = {
        let path = path.to_path_buf();
        std::thread::spawn(move || std::fs::read(path))
    };
    let held = || {
        proxy
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.key_path().ends_with(key) && r.status.is_none())
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !held() {
        assert!(!reader.is_finished(), "the read returned without a GET");
        assert!(
            Instant::now() < deadline,
            "no GET of {key} reached the proxy"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !reader.is_finished(),
        "the read returned while its GET is held"
    );
    reader
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_held_by_a_hung_region_blocks_no_stat_or_listing() {
    let (_world, proxy, mount, p) = one_proxied_region("Hung", &random_bytes(20 << 20, 5)).await;
    // Pin what the calls below need before the region hangs.
    let path = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    std::fs::metadata(&path).unwrap();
    let root = names_in(&mount.path);
    assert!(root.contains(&p), "{root:?}");
    let reader = reader_held_by_a_hung_region(&proxy, &path, &format!("{p}@1.0.0"));
    for _ in 0..3 {
        let started = Instant::now();
        std::fs::metadata(&path).unwrap();
        std::fs::read_dir(&mount.path).unwrap().count();
        std::fs::metadata(mount.join(&p)).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?} while a region hangs",
            started.elapsed()
        );
    }
    assert!(!reader.is_finished(), "the hung read returned meanwhile");
    proxy.set_mode(Mode::Refuse);
    let _ = reader.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_released_from_a_hung_region_when_no_region_answers_is_eio() {
    let (_world, proxy, mount, p) =
        one_proxied_region("Released", &random_bytes(20 << 20, 5)).await;
    let path = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    std::fs::metadata(&path).unwrap();
    let reader = reader_held_by_a_hung_region(&proxy, &path, &format!("{p}@1.0.0"));
    // The held request is dropped and the only region refuses from now on.
    proxy.set_mode(Mode::Refuse);
    assert_eq!(errno_of(reader.join().unwrap()), libc::EIO);
}
