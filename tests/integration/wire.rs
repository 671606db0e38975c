//! What moto cannot show, seen on the wire through a proxy (or in the local store):
//! Content-MD5 and `If-None-Match` on every write (and no second hash of the body for
//! the signature), the 403 answers of a reader without
//! `s3:ListBucket`, and a hung region costing a timeout rather than an outage.

use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use md5::{Digest, Md5};
use semver::Version;
use startifact::protocol::{python_dumps, Error, Metadata, RegionOutcome, StageOptions};
use startifact::storage::local::LocalRegion;
use startifact::storage::{PutOptions, RegionStore};

use crate::support::backends::proxied_moto;
use crate::support::moto::Moto;
use crate::support::proxy::{FaultProxy, Mode};
use crate::support::world::{World, WorldOptions, REGIONS};

fn b64_md5(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
}

fn v(text: &str) -> Version {
    Version::parse(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_carries_content_md5_and_if_none_match() {
    let (world, proxy) = proxied_moto(WorldOptions::default(), &REGIONS).await;
    let small = b"small artifact".to_vec();
    let path = world.file("small", &small);
    let metadata: Metadata = [("lang".to_string(), "rust ✓".to_string())].into();
    world
        .session(false)
        .stage("W", &v("1.0.0"), &path, metadata.clone(), false)
        .await
        .unwrap();

    let requests = proxy.requests();
    let puts: Vec<_> = requests.iter().filter(|r| r.method == "PUT").collect();
    let artifact_puts: Vec<_> = puts
        .iter()
        .filter(|r| r.key_path().ends_with("/W@1.0.0"))
        .collect();
    let metadata_puts: Vec<_> = puts
        .iter()
        .filter(|r| r.key_path().ends_with("/W@1.0.0/metadata"))
        .collect();
    assert_eq!(artifact_puts.len(), 3, "{requests:#?}");
    assert_eq!(metadata_puts.len(), 3);
    for put in &artifact_puts {
        assert_eq!(put.header("content-md5"), Some(b64_md5(&small).as_str()));
        assert_eq!(put.header("if-none-match"), Some("*"));
        // Checked by its Content-MD5: the body is not hashed again for the signature.
        assert_eq!(put.header("x-amz-content-sha256"), Some("UNSIGNED-PAYLOAD"));
    }
    let metadata_bytes = python_dumps(&metadata).into_bytes();
    for put in &metadata_puts {
        assert_eq!(
            put.header("content-md5"),
            Some(b64_md5(&metadata_bytes).as_str())
        );
        assert_eq!(put.header("if-none-match"), Some("*"));
    }

    // In parts: every part has its own Content-MD5, and the completion is conditional.
    proxy.clear();
    let large: Vec<u8> = (0..11 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let path = world.file("large", &large);
    let options = StageOptions {
        multipart_threshold: 6 << 20,
        part_size: 5 << 20,
        ..Default::default()
    };
    world
        .session(false)
        .stage_with("W", &v("2.0.0"), &path, Metadata::new(), false, &options)
        .await
        .unwrap();
    let requests = proxy.requests();
    let parts: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "PUT" && r.path_and_query.contains("partNumber="))
        .collect();
    assert_eq!(parts.len(), 9, "3 parts in each of 3 regions");
    let chunks: Vec<&[u8]> = large.chunks(5 << 20).collect();
    for part in parts {
        let number: usize = part
            .path_and_query
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("partNumber="))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            part.header("content-md5"),
            Some(b64_md5(chunks[number - 1]).as_str())
        );
        assert_eq!(
            part.header("x-amz-content-sha256"),
            Some("UNSIGNED-PAYLOAD")
        );
    }
    let completions: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path_and_query.contains("uploadId="))
        .collect();
    assert_eq!(completions.len(), 3);
    for completion in completions {
        assert_eq!(completion.header("if-none-match"), Some("*"));
    }
}

/// A server that answers a streamed PUT long after its last byte (moto storing a large
/// file does) gets it once: the body says when it ended, so the SDK's stalled-stream
/// protection stops watching the upload there instead of failing it as stalled and
/// sending the file again (which then met `If-None-Match` as "already held").
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_answer_after_a_streamed_put_is_not_taken_for_a_stall() {
    let (world, proxy) = proxied_moto(WorldOptions::default(), &REGIONS).await;
    let (path, _, options) = streamed_file(&world, "slow");
    let session = world.session_adjusted(|o| o.stall_grace_period = Duration::from_secs(1));
    proxy.set_answer_delay(Some((hyper::Method::PUT, Duration::from_secs(3))));
    let report = session
        .stage_with("Slow", &v("1.0.0"), &path, Metadata::new(), false, &options)
        .await
        .unwrap();
    proxy.set_answer_delay(None);
    for (region, outcome) in &report.regions {
        assert!(
            matches!(outcome, RegionOutcome::Staged(_)),
            "{region}: {outcome:?} (the PUT was sent again)"
        );
    }
    let puts = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.key_path().ends_with("/Slow@1.0.0"))
        .count();
    assert_eq!(puts, 3, "one PUT a region");
}

/// 20 MiB, more than is held in memory, and options whose threshold (32 MiB) stages it
/// in one request a region: the file is streamed.
fn streamed_file(world: &World, name: &str) -> (std::path::PathBuf, Vec<u8>, StageOptions) {
    let large: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let path = world.file(name, &large);
    let options = StageOptions {
        multipart_threshold: 32 << 20,
        ..Default::default()
    };
    (path, large, options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_under_the_multipart_threshold_is_one_checked_put() {
    let (world, proxy) = proxied_moto(WorldOptions::default(), &REGIONS).await;
    // Larger than what is held in memory, smaller than the threshold: streamed.
    let (path, large, options) = streamed_file(&world, "large");
    let session = world.session(false);
    session
        .stage_with("W", &v("3.0.0"), &path, Metadata::new(), false, &options)
        .await
        .unwrap();
    let requests = proxy.requests();
    let puts: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "PUT" && r.key_path().ends_with("/W@3.0.0"))
        .collect();
    assert_eq!(puts.len(), 3, "one PUT a region: {requests:#?}");
    for put in &puts {
        assert!(!put.path_and_query.contains("partNumber="), "{put:?}");
        assert_eq!(put.header("content-md5"), Some(b64_md5(&large).as_str()));
        assert_eq!(put.header("if-none-match"), Some("*"));
        assert_eq!(put.header("x-amz-content-sha256"), Some("UNSIGNED-PAYLOAD"));
    }
    assert!(
        !requests
            .iter()
            .any(|r| r.method == "POST" && r.path_and_query.contains("upload")),
        "no multipart upload: {requests:#?}"
    );

    // Digests that do not match the file (it changed after it was hashed) are caught
    // by the server's check of the Content-MD5: no region takes it.
    let stale = startifact::protocol::FileDigests {
        size: large.len() as u64,
        md5: Md5::digest(b"other bytes").into(),
        crc64: startifact::digest::Crc64::of(b"other bytes"),
        part_size: 8 << 20,
        parts: Vec::new(),
    };
    let source = startifact::protocol::StageSource {
        path: &path,
        file_name: None,
        digests: Some(stale),
        ahead: None,
        stager: Default::default(),
    };
    let err = session
        .stage_file("W", &v("4.0.0"), source, Metadata::new(), &options)
        .await
        .unwrap_err();
    let Error::CannotStage(report) = err else {
        panic!("{err}")
    };
    assert!(report.regions.iter().all(|(_, o)| !o.holds()), "{report:?}");
    for region in REGIONS {
        let absent = world
            .raw_store(region)
            .head_object(&world.buckets[region], "W@4.0.0")
            .await;
        assert!(matches!(absent, Err(e) if e.is_not_found()), "{region}");
    }
}

#[tokio::test]
async fn the_local_store_refuses_a_wrong_content_md5() {
    let dir = tempfile::tempdir().unwrap();
    let region = LocalRegion::new(dir.path(), "r");
    region.create_bucket("b").unwrap();
    let wrong = PutOptions {
        content_md5: Some(b64_md5(b"other")),
        ..Default::default()
    };
    let err = region
        .put_object("b", "k", Bytes::from_static(b"body"), &wrong)
        .await
        .unwrap_err();
    assert!(
        err.kind() == startifact::storage::ErrorKind::BadDigest,
        "{err}"
    );
    assert!(region
        .head_object("b", "k")
        .await
        .unwrap_err()
        .is_not_found());
    let right = PutOptions {
        content_md5: Some(b64_md5(b"body")),
        if_none_match: true,
        ..Default::default()
    };
    region
        .put_object("b", "k", Bytes::from_static(b"body"), &right)
        .await
        .unwrap();
    let again = region
        .put_object("b", "k", Bytes::from_static(b"body"), &right)
        .await
        .unwrap_err();
    assert!(again.is_precondition_failed(), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_without_list_bucket_still_reads_known_versions() {
    let (world, proxy) = proxied_moto(WorldOptions::default(), &REGIONS).await;
    let path = world.file("r", b"readable");
    world
        .session(false)
        .stage("R", &v("1.0.0"), &path, Metadata::new(), false)
        .await
        .unwrap();

    proxy.set_deny_listing(true);
    let reader = world.session(true);
    // No metadata object: S3 answers 403, and the artifact is there, so: no metadata.
    let artifact = reader.get("R", Some(&v("1.0.0"))).await.unwrap();
    assert!(artifact.metadata().await.unwrap().is_empty());
    let out = world.scratch.path().join("out");
    artifact.download_to_path(&out).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"readable");
    // A version that does not exist is a clear error, not "no metadata".
    let missing = reader.get("R", Some(&v("9.9.9"))).await.unwrap();
    assert!(matches!(
        missing.metadata().await,
        Err(Error::ArtifactNotFound { absent: true, .. })
    ));
    let err = missing.download_to_path(&out).await.unwrap_err();
    assert!(matches!(err, Error::ArtifactNotFound { .. }), "{err}");
    assert!(err.to_string().contains("access denied"), "{err}");
    // Listing is refused in every region: an error that says so.
    let err = reader.list_versions("R").await.unwrap_err();
    assert!(err.to_string().contains("access denied"), "{err}");
    assert!(proxy.requests().iter().any(|r| r.status == Some(403)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_region_costs_a_timeout_not_an_outage() {
    let mut world = World::moto(WorldOptions::default()).await;
    let hung = FaultProxy::start(&Moto::shared().url);
    world
        .region_endpoints
        .insert(REGIONS[0].to_string(), hung.url());
    let path = world.file("h", b"hung");
    // Bucket names and configuration are read before the region hangs.
    let session = world.session(false);
    session.ready_configuration().await.unwrap();
    hung.set_mode(Mode::Hang);

    let started = Instant::now();
    let report = session
        .stage("H", &v("1.0.0"), &path, Metadata::new(), false)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.held(), 2, "{report:?}");
    match &report.regions[0] {
        (region, RegionOutcome::Failed(reason)) => {
            assert_eq!(region, REGIONS[0]);
            assert!(
                reason.contains("timed out") || reason.contains("unavailable"),
                "{reason}"
            );
        }
        other => panic!("expected the hung region to fail, got {other:?}"),
    }

    let started = Instant::now();
    let reader = world.session(true);
    let artifact = reader.get("H", None).await.unwrap();
    let out = world.scratch.path().join("out");
    let download = artifact.download_to_path(&out).await.unwrap();
    assert_ne!(download.region, REGIONS[0]);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"hung");
}
