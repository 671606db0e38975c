//! A large file is staged in parts of `--part-size` (8M unless told), each region's
//! object recording the whole file's MD5, each part read once for every region, while
//! the daemon's memory stays bounded; under `--multipart-threshold` it goes in one
//! request a region, streamed from the spool, with the memory as bounded. (The test
//! servers are not S3, so a mount given no threshold would send them one request: the
//! tests of parts give the threshold, 16M as by default.)

use std::process::Command;

use md5::{Digest, Md5};

use crate::support::backends::proxied_moto;
use crate::support::files::{project, random_bytes};
use crate::support::mount::Mount;
use crate::support::staging::downloaded;
use crate::support::world::{run_ok, World, WorldOptions, REGIONS};

fn peak_resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Mount arguments under which a file over 16 MiB goes in parts to any server.
const IN_PARTS: &[&str] = &["--multipart-threshold", "16M"];

/// `cp` of `content` into `{p}/1.0.0` of a mount started with `args`; returns the mount.
fn cp_into_a_new_version(world: &World, p: &str, content: &[u8], args: &[&str]) -> Mount {
    let mount = Mount::start(world, args);
    let source = world.file("big.bin", content);
    let folder = mount.join(&format!("{p}/1.0.0"));
    run_ok(Command::new("mkdir").arg("-p").arg(&folder));
    run_ok(Command::new("cp").arg(&source).arg(&folder));
    mount
}

/// Asserts every region holds `content` as `{p}@1.0.0` uploaded in `parts` parts, with
/// the whole file's MD5 recorded beside the ETag.
async fn assert_staged_in_parts(world: &World, p: &str, content: &[u8], parts: usize) {
    let md5 = hex::encode(Md5::digest(content));
    let key = format!("{p}@1.0.0");
    for region in REGIONS {
        let info = world.head_in(region, &key).await;
        assert_eq!(info.size, content.len() as u64);
        let etag = info.etag.as_deref().unwrap_or("");
        assert!(
            etag.trim_matches('"').ends_with(&format!("-{parts}")),
            "{region}: {etag:?}, not {parts} parts"
        );
        assert_eq!(info.known_md5().as_deref(), Some(md5.as_str()));
    }
}

async fn a_200_mb_cp_stages_in_8_mib_parts_with_bounded_memory(world: World) {
    let p = project(&world, "Big");
    let content = random_bytes(200 * 1000 * 1000, 21);
    let mount = cp_into_a_new_version(&world, &p, &content, IN_PARTS);
    let peak = peak_resident_kib(mount.pid().unwrap());
    eprintln!("daemon peak resident memory after a 200 MB cp: {peak} KiB");
    // The bound is the behaviour: far below the file's 200 MB, whatever its size.
    // The README's bound: 128 MiB, whatever the file's size.
    assert!(peak < 128 * 1024, "daemon peak resident memory {peak} KiB");
    // 200 MB in 8 MiB parts: 24 of them.
    assert_staged_in_parts(&world, &p, &content, 24).await;
    let (bytes, _) = downloaded(&world, &p, "1.0.0").await;
    assert!(bytes == content, "the staged artifact differs");
}
on_both_backends!(a_200_mb_cp_stages_in_8_mib_parts_with_bounded_memory);

async fn part_size_sets_the_size_of_the_parts(world: World) {
    let p = project(&world, "Parts");
    let content = random_bytes(40 * 1000 * 1000, 22);
    let mount = cp_into_a_new_version(
        &world,
        &p,
        &content,
        &["--part-size", "6M", "--multipart-threshold", "16M"],
    );
    // 40 MB in 6 MiB parts: 7 of them (8 MiB parts would make 5, 5 MiB parts 8).
    assert_staged_in_parts(&world, &p, &content, 7).await;
    // Each part is read from the spool once for all three regions (a region far
    // behind the others may read one again).
    let log = mount.log();
    let reads: usize = log
        .split("part_reads=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no part_reads in the stage's log line:\n{log}"));
    eprintln!("parts read from the spool: {reads} for 7 parts in 3 regions");
    assert!((7..=10).contains(&reads), "{reads} reads of 7 parts");
    let (bytes, _) = downloaded(&world, &p, "1.0.0").await;
    assert!(bytes == content, "the staged artifact differs");
}
on_both_backends!(part_size_sets_the_size_of_the_parts);

async fn under_the_multipart_threshold_a_large_file_goes_in_one_streamed_request(world: World) {
    let p = project(&world, "OneRequest");
    let content = random_bytes(150 * 1000 * 1000, 24);
    let mount = cp_into_a_new_version(&world, &p, &content, &["--multipart-threshold", "200M"]);
    let peak = peak_resident_kib(mount.pid().unwrap());
    eprintln!("daemon peak resident memory after a 150 MB cp in one request: {peak} KiB");
    // Streamed from the spool, not held: far below the file's 150 MB.
    assert!(peak < 128 * 1024, "daemon peak resident memory {peak} KiB");
    // One request: the ETag is the MD5 itself, with no part count.
    let md5 = hex::encode(Md5::digest(&content));
    for region in REGIONS {
        let info = world.head_in(region, &format!("{p}@1.0.0")).await;
        assert_eq!(info.size, content.len() as u64);
        assert_eq!(
            info.etag.as_deref().map(|e| e.trim_matches('"')),
            Some(md5.as_str())
        );
        assert_eq!(info.known_md5().as_deref(), Some(md5.as_str()));
    }
    let (bytes, _) = downloaded(&world, &p, "1.0.0").await;
    assert!(bytes == content, "the staged artifact differs");
}
on_both_backends!(under_the_multipart_threshold_a_large_file_goes_in_one_streamed_request);

// Moto only: the parts are seen on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_part_sent_is_the_part_size_but_the_last() {
    let (world, proxy) = proxied_moto(WorldOptions::default(), &REGIONS).await;
    let p = project(&world, "PartSizes");
    let content = random_bytes(40 * 1000 * 1000, 23);
    let _mount = cp_into_a_new_version(
        &world,
        &p,
        &content,
        &["--part-size", "6M", "--multipart-threshold", "16M"],
    );
    let key = format!("{p}@1.0.0");
    let mut sizes: Vec<(String, u64)> = proxy
        .requests()
        .iter()
        .filter(|r| {
            r.method == "PUT"
                && r.key_path().ends_with(&key)
                && r.path_and_query.contains("partNumber=")
        })
        .map(|r| {
            let number = r
                .path_and_query
                .split(['?', '&'])
                .find_map(|q| q.strip_prefix("partNumber="))
                .unwrap()
                .to_string();
            let length = r
                .header("x-amz-decoded-content-length")
                .or(r.header("content-length"))
                .unwrap()
                .parse()
                .unwrap();
            (number, length)
        })
        .collect();
    sizes.sort();
    let last = 40 * 1000 * 1000 - 6 * (6 << 20);
    let mut expected: Vec<(String, u64)> = (1..=7)
        .flat_map(|n| {
            let size = if n == 7 { last } else { 6 << 20 };
            std::iter::repeat_n((n.to_string(), size), REGIONS.len())
        })
        .collect();
    expected.sort();
    assert_eq!(sizes, expected);
}
