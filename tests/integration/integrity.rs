//! Bytes that disagree with what was staged never pass for the artifact: a region that
//! serves a damaged body (bytes flipped, or cut short) is skipped or answered with an
//! error, by the CLI and by the mount; an object replaced under a mount that pinned it
//! is never read; and what the mount uploads carries a Content-MD5 that matches it and
//! `If-None-Match: *`.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use semver::Version;
use startifact::checksum::{Algorithm, Checksum};
use startifact::protocol::Metadata;
use startifact::storage::PutOptions;

use crate::support::files::{getxattr, project, random_bytes};
use crate::support::mount::Mount;
use crate::support::proxy::{BodyFault, FaultProxy, RecordedRequest};
use crate::support::world::{run, run_ok, World, REGIONS};

const FAULTS: [BodyFault; 3] = [BodyFault::Corrupt, BodyFault::Cut, BodyFault::Shorten];
/// Downloads tried until one meets a damaged region visited first (a chance in three
/// each: all 40 miss it once in ten million).
const MEETINGS: usize = 40;

/// Stages `bytes` as `{base}-{id}` at each of `versions`; returns the project.
async fn staged(world: &World, base: &str, versions: &[&str], bytes: &[u8]) -> String {
    let p = project(world, base);
    let path = world.file(&p, bytes);
    for version in versions {
        world
            .session(false)
            .stage(
                &p,
                &Version::parse(version).unwrap(),
                &path,
                Metadata::new(),
                false,
            )
            .await
            .unwrap();
    }
    p
}

fn set_fault(proxies: &[FaultProxy], fault: Option<BodyFault>) {
    for proxy in proxies {
        proxy.set_body_fault(fault);
    }
}

fn faulted(proxies: &[FaultProxy]) -> usize {
    proxies.iter().map(FaultProxy::faulted).sum()
}

/// Runs the CLI, returning (exit code, stdout as bytes, stderr).
fn run_bytes(command: &mut Command) -> (i32, Vec<u8>, String) {
    let output = command.output().expect("command runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), output.stdout, stderr)
}

/// A failure of the CLI: exit 1 and one line on stderr, starting 🔥.
fn assert_one_fire_line(code: i32, stderr: &str) {
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("🔥 "), "{stderr}");
}

/// Reads the rest of `file` through to its end or its first error: the bytes read,
/// and the errno.
fn read_on(file: &mut File) -> (Vec<u8>, Option<i32>) {
    let mut bytes = Vec::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return (bytes, None),
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (bytes, e.raw_os_error()),
        }
    }
}

fn read_through(path: &Path) -> (Vec<u8>, Option<i32>) {
    read_on(&mut File::open(path).unwrap())
}

/// The region a mount pinned `path` from (looking it up if need be), as an index into
/// `REGIONS` (and the proxies).
fn pinned_region(path: &Path) -> usize {
    let region = getxattr(path, "user.startifact:region", 64).unwrap();
    REGIONS.iter().position(|r| r.as_bytes() == region).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_skips_a_region_that_serves_damaged_bytes() {
    let (world, proxies) = World::moto_behind_proxies().await;
    let bytes = random_bytes(300_000, 1);
    let p = staged(&world, "Skip", &["1.0.0"], &bytes).await;
    let out = world.scratch.path().join("out");
    for fault in FAULTS {
        proxies[0].set_body_fault(Some(fault));
        let before = proxies[0].faulted();
        // The CLI visits the regions in a random order: download until one meets the
        // damaged region.
        for _ in 0..MEETINGS {
            let _ = std::fs::remove_file(&out);
            let stdout = run_ok(world.cli().args([&p, "1.0.0", "--download"]).arg(&out));
            assert!(std::fs::read(&out).unwrap() == bytes, "{fault:?}");
            if proxies[0].faulted() > before {
                // Damaged bytes are fetched again from the others; a body that broke
                // is taken up by the next region where it broke.
                match fault {
                    BodyFault::Corrupt => assert!(!stdout.contains(REGIONS[0]), "{stdout}"),
                    _ => assert!(stdout.contains(" and "), "{fault:?}: {stdout}"),
                }
                break;
            }
        }
        assert!(proxies[0].faulted() > before, "{fault:?} never met");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_no_region_serves_intact_fails_and_leaves_the_destination_alone() {
    let (world, proxies) = World::moto_behind_proxies().await;
    let bytes = random_bytes(300_000, 2);
    let p = staged(&world, "Nowhere", &["1.0.0"], &bytes).await;
    let folder = world.dir("downloads");
    let existing = folder.join("existing");
    std::fs::write(&existing, b"kept").unwrap();
    let fresh = folder.join("fresh");
    for fault in FAULTS {
        set_fault(&proxies, Some(fault));
        let before = faulted(&proxies);
        for destination in [&existing, &fresh] {
            let (code, _, stderr) = run(world
                .cli()
                .args([&p, "1.0.0", "--download"])
                .arg(destination));
            assert_one_fire_line(code, &stderr);
            // The MD5 said so, or each region's body ended short (a cut body is an
            // error of its own).
            match fault {
                BodyFault::Corrupt => assert!(stderr.contains("does not match"), "{stderr}"),
                BodyFault::Shorten => assert!(stderr.contains("ended at byte"), "{stderr}"),
                BodyFault::Cut => {}
            }
        }
        assert_eq!(faulted(&proxies), before + 2 * REGIONS.len(), "{fault:?}");
        assert_eq!(std::fs::read(&existing).unwrap(), b"kept");
        let names: Vec<_> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["existing"], "{fault:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_to_standard_output_never_succeeds_with_damaged_bytes() {
    let (world, proxies) = World::moto_behind_proxies().await;
    let bytes = random_bytes(300_000, 3);
    let p = staged(&world, "Stdout", &["1.0.0"], &bytes).await;
    let download = || run_bytes(world.cli().args([&p, "1.0.0", "--download", "-"]));
    for fault in FAULTS {
        // What was written cannot be taken back: a download that meets the damaged
        // region first fails; one that does not delivers the artifact.
        proxies[0].set_body_fault(Some(fault));
        let before = proxies[0].faulted();
        for _ in 0..MEETINGS {
            let (code, stdout, stderr) = download();
            if code == 0 {
                assert!(stdout == bytes, "{fault:?}: exit 0 with other bytes");
            } else {
                assert_one_fire_line(code, &stderr);
            }
            if proxies[0].faulted() > before {
                break;
            }
        }
        assert!(proxies[0].faulted() > before, "{fault:?} never met");
        set_fault(&proxies, Some(fault));
        let (code, _, stderr) = download();
        assert_one_fire_line(code, &stderr);
        set_fault(&proxies, None);
    }
    let (code, stdout, stderr) = download();
    assert!(code == 0 && stdout == bytes, "{stderr}");
}

/// The command line reads through the mount's failover: a region whose body breaks or
/// ends early hands over to the next one at the byte reached, to a file and to standard
/// output alike (where nothing written can be taken back), and says which served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_goes_on_from_the_next_region_when_a_body_breaks() {
    let (world, proxies) = World::moto_behind_proxies().await;
    let bytes = random_bytes(3 << 20, 6);
    let p = staged(&world, "GoesOn", &["1.0.0"], &bytes).await;
    let out = world.dir("out");
    for fault in [BodyFault::Cut, BodyFault::Shorten] {
        // Two regions of three break their bodies: a download that asks one of them
        // first ends with another.
        set_fault(&proxies[..2], Some(fault));
        let path = out.join(format!("{fault:?}"));
        let path = path.to_str().unwrap();
        for destination in ["-", path] {
            let mut met = false;
            for _ in 0..MEETINGS {
                let before = faulted(&proxies);
                let (code, stdout, stderr) =
                    run_bytes(world.cli().args([&p, "1.0.0", "--download", destination]));
                assert_eq!(code, 0, "{fault:?} to {destination}: {stderr}");
                let read = match destination {
                    "-" => stdout.clone(),
                    _ => std::fs::read(path).unwrap(),
                };
                assert!(read == bytes, "{fault:?} to {destination}: other bytes");
                if faulted(&proxies) > before {
                    // Said on standard error when the bytes go to standard output.
                    let said = String::from_utf8_lossy(if destination == "-" {
                        stderr.as_bytes()
                    } else {
                        &stdout
                    })
                    .into_owned();
                    assert!(said.contains(" and "), "{fault:?}: {said}");
                    met = true;
                    break;
                }
            }
            assert!(met, "{fault:?} to {destination}: never met");
        }
        set_fault(&proxies, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_read_fails_over_when_a_region_ends_the_body_early() {
    let (world, proxies) = World::moto_behind_proxies().await;
    let bytes = random_bytes(3 << 20, 4);
    let p = staged(&world, "Early", &["1.0.0", "2.0.0"], &bytes).await;
    let mount = Mount::start(&world, &[]);
    // A version each: the kernel keeps the pages of a file read whole.
    for (version, fault) in [("1.0.0", BodyFault::Cut), ("2.0.0", BodyFault::Shorten)] {
        let path = mount.join(&format!("{p}/{version}/{p}@{version}"));
        let pinned = &proxies[pinned_region(&path)];
        pinned.set_body_fault(Some(fault));
        let (read, errno) = read_through(&path);
        assert_eq!(errno, None, "{fault:?}: {}", mount.log());
        assert!(read == bytes, "{fault:?}: other bytes");
        assert!(pinned.faulted() > 0, "{fault:?} never met");
        pinned.set_body_fault(None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_read_answers_eio_when_no_region_serves_the_whole_body() {
    let (world, proxies) = World::moto_behind_proxies().await;
    let bytes = random_bytes(3 << 20, 5);
    let p = staged(&world, "Short", &["1.0.0", "2.0.0"], &bytes).await;
    let mount = Mount::start(&world, &[]);
    for (version, fault) in [("1.0.0", BodyFault::Cut), ("2.0.0", BodyFault::Shorten)] {
        set_fault(&proxies, Some(fault));
        let (read, errno) = read_through(&mount.join(&format!("{p}/{version}/{p}@{version}")));
        assert_eq!(errno, Some(libc::EIO), "{fault:?}");
        assert!(bytes.starts_with(&read), "{fault:?}: other bytes");
        assert!(read.len() < bytes.len(), "{fault:?}");
    }
    assert!(faulted(&proxies) >= 2 * REGIONS.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_read_of_bytes_that_fail_their_checksum_ends_in_eio_and_keeps_none() {
    let (world, proxies) = World::moto_behind_proxies().await;
    let bytes = random_bytes(3 << 20, 9);
    let p = staged(&world, "Streamed", &["1.0.0"], &bytes).await;
    let mount = Mount::start(&world, &[]);
    let path = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    set_fault(&proxies, Some(BodyFault::Corrupt));
    let (_, errno) = read_through(&path);
    assert_eq!(errno, Some(libc::EIO), "{}", mount.log());
    assert!(faulted(&proxies) > 0);
    assert!(
        mount.log().contains("the last read answers EIO"),
        "{}",
        mount.log()
    );

    // Intact again: the pages the damaged read left in the kernel are dropped at the
    // next open, so every byte comes anew.
    set_fault(&proxies, None);
    let (read, errno) = read_through(&path);
    assert_eq!(errno, None, "{}", mount.log());
    assert!(read == bytes, "other bytes");
}

/// A region whose bodies stay damaged (the ETag it answers is right, so `If-Match`
/// cannot tell): the read that met it answers EIO, and the next open of the same file
/// reads it whole from another region of the majority, with no page of the damaged
/// read kept; so with a cache, where the damaged fetch is not filed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_read_fails_its_checksum_the_next_open_reads_from_another_region() {
    let (world, proxies) = World::moto_behind_proxies().await;
    let bytes = random_bytes(3 << 20, 11);
    let p = staged(&world, "Suspect", &["1.0.0", "2.0.0"], &bytes).await;
    let cache = world.dir("cache");
    let mount = Mount::start(&world, &[]);
    let cached = Mount::start(&world, &["--cache-dir", cache.to_str().unwrap()]);
    for (mount, version) in [(&mount, "1.0.0"), (&cached, "2.0.0")] {
        let path = mount.join(&format!("{p}/{version}/{p}@{version}"));
        let damaged = pinned_region(&path);
        set_fault(&proxies, None);
        proxies[damaged].set_body_fault(Some(BodyFault::Corrupt));
        let (_, errno) = read_through(&path);
        assert_eq!(errno, Some(libc::EIO), "{version}: {}", mount.log());
        let met = proxies[damaged].faulted();
        assert!(met > 0, "{version}: the damaged region was not read first");

        let (read, errno) = read_through(&path);
        assert_eq!(errno, None, "{version}: {}", mount.log());
        assert!(read == bytes, "{version}: other bytes");
        assert_eq!(
            proxies[damaged].faulted(),
            met,
            "{version}: the damaged region was asked again"
        );
    }
    assert!(
        mount
            .log()
            .contains("the next open asks the other regions first"),
        "{}",
        mount.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_mount_answers_eio_for_bytes_that_fail_their_checksum_and_keeps_none() {
    let (world, proxies) = World::moto_behind_proxies().await;
    let bytes = random_bytes(3 << 20, 6);
    let p = staged(&world, "Cached", &["1.0.0"], &bytes).await;
    let cache = world.dir("cache");
    let mount = Mount::start(&world, &["--cache-dir", cache.to_str().unwrap()]);
    let path = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    set_fault(&proxies, Some(BodyFault::Corrupt));
    let (_, errno) = read_through(&path);
    assert_eq!(errno, Some(libc::EIO), "{}", mount.log());
    assert!(faulted(&proxies) > 0);
    assert!(
        mount.log().contains("arrived with CRC-64/NVME"),
        "{}",
        mount.log()
    );
    let kept: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".data"))
        .collect();
    assert!(kept.is_empty(), "{kept:?}");

    // Intact again: the next open fetches anew, and what the damaged fetch handed the
    // kernel is not served.
    set_fault(&proxies, None);
    let (read, errno) = read_through(&path);
    assert_eq!(errno, None, "{}", mount.log());
    assert!(read == bytes, "other bytes");
}

/// Writes `bytes` over `key` in `regions`, straight to the store.
async fn replace(world: &World, regions: &[&str], key: &str, bytes: &[u8]) {
    for region in regions {
        world
            .raw_store(region)
            .put_object(
                &world.buckets[*region],
                key,
                Bytes::copy_from_slice(bytes),
                &PutOptions::default(),
            )
            .await
            .unwrap();
    }
}

/// GETs of `key` the proxy saw: (If-Match sent, status answered).
fn gets_of(proxy: &FaultProxy, key: &str) -> Vec<(Option<String>, Option<u16>)> {
    proxy
        .gets_of(key)
        .into_iter()
        .map(|r| (r.header("if-match").map(str::to_string), r.status))
        .collect()
}

on_both_backends_behind_proxies!(a_version_replaced_in_its_pinned_region_is_read_from_another);
async fn a_version_replaced_in_its_pinned_region_is_read_from_another(
    world: World,
    proxies: Vec<FaultProxy>,
) {
    let bytes = random_bytes(1 << 20, 7);
    let p = staged(&world, "Pinned", &["1.0.0"], &bytes).await;
    let key = format!("{p}@1.0.0");
    let mount = Mount::start(&world, &[]);
    let path = mount.join(&format!("{p}/1.0.0/{key}"));
    // Looked up (pinned), not read; then replaced, same size, where it was pinned.
    let pinned = pinned_region(&path);
    let etag = getxattr(&path, "user.startifact:etag", 256).unwrap();
    let etag = Some(String::from_utf8(etag).unwrap());
    replace(&world, &[REGIONS[pinned]], &key, &random_bytes(1 << 20, 70)).await;

    let (read, errno) = read_through(&path);
    assert_eq!(errno, None, "{}", mount.log());
    assert!(read == bytes, "the replacement was read");
    if !proxies.is_empty() {
        let refused = gets_of(&proxies[pinned], &key);
        assert!(!refused.is_empty());
        assert!(refused.iter().all(|g| *g == (etag.clone(), Some(412))));
        let served: Vec<_> = (0..REGIONS.len())
            .filter(|i| *i != pinned)
            .flat_map(|i| gets_of(&proxies[i], &key))
            .collect();
        assert!(served.iter().all(|(m, _)| *m == etag), "{served:?}");
        assert!(served.iter().any(|(_, s)| *s == Some(206)), "{served:?}");
    }
}

on_both_backends_behind_proxies!(
    a_version_replaced_everywhere_mid_read_answers_eio_never_new_bytes
);
async fn a_version_replaced_everywhere_mid_read_answers_eio_never_new_bytes(
    world: World,
    proxies: Vec<FaultProxy>,
) {
    // Larger than the first ranged GET (4 MiB), so the rest needs another.
    let bytes = random_bytes(9 << 20, 8);
    let p = staged(&world, "Swapped", &["1.0.0"], &bytes).await;
    let key = format!("{p}@1.0.0");
    let mount = Mount::start(&world, &[]);
    let path = mount.join(&format!("{p}/1.0.0/{key}"));
    let etag = getxattr(&path, "user.startifact:etag", 256).unwrap();
    let etag = Some(String::from_utf8(etag).unwrap());
    let mut file = File::open(&path).unwrap();
    let mut first = vec![0; 4096];
    file.read_exact(&mut first).unwrap();
    replace(&world, &REGIONS, &key, &random_bytes(9 << 20, 80)).await;

    let (rest, errno) = read_on(&mut file);
    assert_eq!(errno, Some(libc::EIO), "{}", mount.log());
    first.extend_from_slice(&rest);
    assert!(
        bytes.starts_with(&first),
        "bytes of the replacement were read"
    );
    if !proxies.is_empty() {
        let gets: Vec<_> = proxies.iter().flat_map(|p| gets_of(p, &key)).collect();
        assert!(gets.len() > 1, "{gets:?}");
        assert!(gets.iter().all(|(m, _)| *m == etag), "{gets:?}");
        assert!(gets.iter().any(|(_, s)| *s == Some(412)), "{gets:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mounts_uploads_carry_a_matching_content_md5_and_if_none_match() {
    let (world, proxies) = World::moto_behind_proxies().await;
    for proxy in &proxies {
        proxy.set_hash_bodies(true);
        // As on S3, which is sent parts from the first stage.
        proxy.set_server_name(Some("AmazonS3"));
    }
    let p = project(&world, "Uploads");
    let mount = Mount::start(&world, &["--part-size", "5M"]);
    // Under the multipart threshold (16 MiB), and over it: four parts of 5 MiB.
    let small = random_bytes(100_000, 9);
    let large = random_bytes(17 << 20, 10);
    for (version, content) in [("1.0.0", &small), ("2.0.0", &large)] {
        let folder = mount.join(&format!("{p}/{version}"));
        std::fs::create_dir_all(&folder).unwrap();
        let source = world.file(version, content);
        run_ok(Command::new("cp").arg(&source).arg(folder.join("app.bin")));
    }

    let requests: Vec<RecordedRequest> = proxies.iter().flat_map(FaultProxy::requests).collect();
    let of = |version: &str, method: &str, query: &str| -> Vec<&RecordedRequest> {
        requests
            .iter()
            .filter(|r| {
                r.method == method
                    && r.key_path().ends_with(&format!("/{p}@{version}"))
                    && r.path_and_query.contains(query)
            })
            .collect()
    };
    let puts: Vec<_> = requests.iter().filter(|r| r.method == "PUT").collect();
    for put in &puts {
        assert_eq!(put.content_md5_matches(), Some(true), "{put:#?}");
        if !put.path_and_query.contains("partNumber=") {
            assert_eq!(put.header("if-none-match"), Some("*"), "{put:#?}");
        }
    }
    assert_eq!(of("1.0.0", "PUT", "").len(), REGIONS.len());
    assert_eq!(of("2.0.0", "PUT", "partNumber=").len(), 4 * REGIONS.len());
    assert_eq!(
        of("2.0.0", "PUT", "").len(),
        4 * REGIONS.len(),
        "a whole PUT"
    );
    let completions = of("2.0.0", "POST", "uploadId=");
    assert_eq!(completions.len(), REGIONS.len());
    for completion in completions {
        assert_eq!(completion.header("if-none-match"), Some("*"));
    }
    // Each carries the whole artifact's CRC-64/NVME in its metadata, which reads check;
    // a PUT in one request sends it as S3's own checksum too, which S3 checks.
    let crc = |content: &[u8]| Checksum::of(Algorithm::Crc64Nvme, content);
    for put in of("1.0.0", "PUT", "") {
        assert_eq!(
            put.header("x-amz-checksum-crc64nvme"),
            Some(crc(&small).to_s3().as_str()),
            "{put:#?}"
        );
        assert_eq!(
            put.header("x-amz-sdk-checksum-algorithm"),
            Some("CRC64NVME")
        );
        assert_eq!(
            put.header("x-amz-meta-startifact-crc64nvme"),
            Some(crc(&small).hex().as_str())
        );
    }
    // An upload in parts is checked by S3 as a whole: created with a full-object
    // CRC-64/NVME, each part sent with its own CRC, the completion with the whole's.
    let creations = of("2.0.0", "POST", "uploads");
    assert_eq!(creations.len(), REGIONS.len());
    for creation in creations {
        assert_eq!(
            creation.header("x-amz-meta-startifact-crc64nvme"),
            Some(crc(&large).hex().as_str()),
            "{creation:#?}"
        );
        assert_eq!(
            creation.header("x-amz-checksum-algorithm"),
            Some("CRC64NVME")
        );
        assert_eq!(creation.header("x-amz-checksum-type"), Some("FULL_OBJECT"));
    }
    for part in of("2.0.0", "PUT", "partNumber=") {
        let number: usize = part
            .path_and_query
            .split(['?', '&'])
            .find_map(|q| q.strip_prefix("partNumber="))
            .and_then(|n| n.parse().ok())
            .unwrap();
        let start = (number - 1) * (5 << 20);
        let end = (start + (5 << 20)).min(large.len());
        assert_eq!(
            part.header("x-amz-checksum-crc64nvme"),
            Some(crc(&large[start..end]).to_s3().as_str()),
            "{part:#?}"
        );
    }
    for completion in of("2.0.0", "POST", "uploadId=") {
        assert_eq!(
            completion.header("x-amz-checksum-crc64nvme"),
            Some(crc(&large).to_s3().as_str()),
            "{completion:#?}"
        );
        assert_eq!(
            completion.header("x-amz-checksum-type"),
            Some("FULL_OBJECT")
        );
    }
    for (version, content) in [("1.0.0", &small), ("2.0.0", &large)] {
        let out = world.scratch.path().join(format!("{version}.out"));
        let artifact = world
            .session(true)
            .get(&p, Some(&Version::parse(version).unwrap()))
            .await
            .unwrap();
        artifact.download_to_path(&out).await.unwrap();
        assert!(std::fs::read(&out).unwrap() == **content, "{version}");
    }
}
