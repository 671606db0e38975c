//! The Startifact format through the library, each test on moto and on the local store.

use std::collections::BTreeMap;

use futures::StreamExt;
use startifact::checksum::{Algorithm, Checksum};
use startifact::protocol::{
    python_dumps, read_latest, Error, LatestChange, Metadata, RegionOutcome, StageOptions,
    Verification,
};
use startifact::storage::RegionStore;

use crate::support::files::project;
use crate::support::staging::v;
use crate::support::world::{World, WorldOptions, REGIONS};

fn metadata(pairs: &[(&str, &str)]) -> Metadata {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The bytes of an object, read directly from one region.
async fn object_bytes(store: &dyn RegionStore, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let mut object = match store.get_object(bucket, key, None, None).await {
        Ok(object) => object,
        Err(e) if e.is_not_found() => return None,
        Err(e) => panic!("reading {key}: {e}"),
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = object.body.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    Some(bytes)
}

async fn parameter(store: &dyn RegionStore, name: &str) -> Option<String> {
    match store.get_parameter(name).await {
        Ok(value) => Some(value),
        Err(e) if e.is_not_found() => None,
        Err(e) => panic!("reading {name}: {e}"),
    }
}

/// Asserts that nothing at all was written into any region's bucket.
async fn assert_buckets_empty(world: &World) {
    for region in REGIONS {
        let store = world.raw_store(region);
        let objects = store
            .list_objects(&world.buckets[region], "")
            .await
            .unwrap();
        assert!(objects.is_empty(), "{region} holds {objects:?}");
    }
}

async fn stages_to_the_format_keys(world: World) {
    let content = b"sugar water".repeat(1000);
    let path = world.file("dist.tar.gz", &content);
    let session = world.session(false);
    let meta = metadata(&[("lang", "dotnet"), ("ключ", "значение 😀")]);
    let report = session
        .stage("SugarWater", &v("1.0.9000"), &path, meta.clone(), true)
        .await
        .unwrap();
    assert_eq!(report.held(), 3, "{report:?}");

    let prefix = &world.configuration.bucket_key_prefix;
    let key = format!("{prefix}SugarWater@1.0.9000");
    let latest = format!(
        "{}/SugarWater/latest",
        world.configuration.parameter_name_prefix
    );
    let mut expected_meta = meta.clone();
    expected_meta.insert("startifact:filename".into(), "dist.tar.gz".into());
    for region in REGIONS {
        let store = world.raw_store(region);
        let bucket = &world.buckets[region];
        assert_eq!(
            object_bytes(store.as_ref(), bucket, &key).await.as_deref(),
            Some(&content[..]),
            "{region}"
        );
        let meta_bytes = object_bytes(store.as_ref(), bucket, &format!("{key}/metadata"))
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8(meta_bytes).unwrap(),
            python_dumps(&expected_meta)
        );
        assert_eq!(
            parameter(store.as_ref(), &latest).await.as_deref(),
            Some("1.0.9000")
        );
    }

    let artifact = session.get("SugarWater", None).await.unwrap();
    assert_eq!(artifact.version(), &v("1.0.9000"));
    assert_eq!(artifact.key(), key);
    assert_eq!(artifact.metadata().await.unwrap(), &expected_meta);
    let folder = world.dir("out");
    let download = artifact.download_to_folder(&folder, true).await.unwrap();
    assert_eq!(
        download.path.as_deref(),
        Some(folder.join("dist.tar.gz").as_path())
    );
    assert_eq!(std::fs::read(folder.join("dist.tar.gz")).unwrap(), content);
    assert!(
        matches!(
            download.verification,
            Verification::Checked(Checksum::Crc64Nvme(_))
        ),
        "{download:?}"
    );
    assert_eq!(download.key, key);
    assert_eq!(download.region, REGIONS[0]);
}
on_both_backends!(stages_to_the_format_keys);

mod with_prefixes {
    use super::*;
    fn options() -> WorldOptions {
        WorldOptions {
            bucket_key_prefix: "my-platform/".into(),
            parameter_name_prefix: "/artifacts".into(),
        }
    }
    on_both_backends!(stages_to_the_format_keys, options());
}

async fn latest_moves_only_forward_by_precedence(world: World) {
    let session = world.session(false);
    let path = world.file("a", b"a");
    let stage = |version: &'static str| {
        let session = session.clone();
        let path = path.clone();
        async move {
            session
                .stage("App", &v(version), &path, Metadata::new(), false)
                .await
                .unwrap()
        }
    };
    stage("2.0.0").await;
    let hotfix = stage("1.9.1").await;
    assert!(
        hotfix
            .regions
            .iter()
            .all(|(_, o)| *o == RegionOutcome::Staged(LatestChange::Kept(v("2.0.0")))),
        "{hotfix:?}"
    );
    assert_eq!(
        read_latest(&session, "App").await.unwrap().version,
        v("2.0.0")
    );
    stage("2.0.1-rc.1").await;
    assert_eq!(
        read_latest(&session, "App").await.unwrap().version,
        v("2.0.1-rc.1")
    );
    stage("2.0.1").await;
    // Build metadata does not count: 2.0.1+build.5 is no higher than 2.0.1.
    let build = stage("2.0.1+build.5").await;
    assert!(
        build
            .regions
            .iter()
            .all(|(_, o)| *o == RegionOutcome::Staged(LatestChange::Kept(v("2.0.1")))),
        "{build:?}"
    );
    let listed: Vec<String> = session
        .list_versions("App")
        .await
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(
        listed,
        ["2.0.1+build.5", "2.0.1", "2.0.1-rc.1", "2.0.0", "1.9.1"]
    );
    // A given version is served even when it is not the latest.
    let old = session.get("App", Some(&v("1.9.1"))).await.unwrap();
    assert_eq!(old.locate().await.unwrap().info.size, 1);
}
on_both_backends!(latest_moves_only_forward_by_precedence);

async fn quorum_latest_tolerates_one_region_without_the_parameter(world: World) {
    let session = world.session(false);
    let path = world.file("a", b"a");
    session
        .stage("Q", &v("1.0.0"), &path, Metadata::new(), false)
        .await
        .unwrap();
    let name = format!("{}/Q/latest", world.configuration.parameter_name_prefix);
    // The first region lost the parameter; the third claims a higher version.
    world
        .raw_store(REGIONS[0])
        .delete_parameter(&name)
        .await
        .unwrap();
    world
        .raw_store(REGIONS[2])
        .put_parameter(&name, "1.1.0")
        .await
        .unwrap();
    let latest = read_latest(&session, "Q").await.unwrap();
    assert_eq!(latest.version, v("1.1.0"));
    assert_eq!(latest.claims.len(), 2);
    // An unparseable value is no answer either: one answer of three is no quorum.
    world
        .raw_store(REGIONS[1])
        .put_parameter(&name, "not a version")
        .await
        .unwrap();
    match read_latest(&session, "Q").await {
        Err(Error::NoQuorum {
            needed: 2, reasons, ..
        }) => assert_eq!(reasons.len(), 2, "{reasons:?}"),
        other => panic!("expected no quorum, got {other:?}"),
    }
}
on_both_backends!(quorum_latest_tolerates_one_region_without_the_parameter);

async fn reads_fail_over_when_a_region_loses_its_bucket_or_parameter(world: World) {
    let session = world.session(false);
    let path = world.file("f", b"failover");
    session
        .stage("F", &v("1.0.0"), &path, metadata(&[("k", "v")]), false)
        .await
        .unwrap();

    // The first region's bucket-name parameter is gone: the lookup fails over too, and
    // the other two still make a majority.
    world
        .raw_store(REGIONS[0])
        .delete_parameter(&world.bucket_param)
        .await
        .unwrap();
    let fresh = world.session(true);
    let artifact = fresh.get("F", None).await.unwrap();
    let out = world.dir("out").join("f");
    let download = artifact.download_to_path(&out).await.unwrap();
    assert_ne!(download.region, REGIONS[0]);
    assert_eq!(std::fs::read(&out).unwrap(), b"failover");
    assert_eq!(artifact.metadata().await.unwrap(), &metadata(&[("k", "v")]));

    // The second region's bucket no longer has the artifact: one region holds it, one
    // says it is absent, one cannot answer. No majority either way: an error that says
    // so, and nothing written.
    let key = format!("{}F@1.0.0", world.configuration.bucket_key_prefix);
    world
        .raw_store(REGIONS[1])
        .delete_object(&world.buckets[REGIONS[1]], &key, None)
        .await
        .unwrap();
    let fresh = world.session(true);
    let artifact = fresh.get("F", Some(&v("1.0.0"))).await.unwrap();
    let out = world.dir("out2").join("f");
    let error = artifact.download_to_path(&out).await.unwrap_err();
    assert!(
        error.to_string().contains("too few regions answered"),
        "{error}"
    );
    assert!(!out.exists());
}
on_both_backends!(reads_fail_over_when_a_region_loses_its_bucket_or_parameter);

async fn a_majority_of_regions_is_enough(world: World) {
    let path = world.file("m", b"majority");
    // The last region's bucket-name parameter names a bucket that does not exist.
    world.lose_bucket(REGIONS[2]).await;
    let session = world.session(false);
    let report = session
        .stage("M", &v("1.0.0"), &path, Metadata::new(), false)
        .await
        .unwrap();
    assert_eq!(report.held(), 2);
    assert_eq!(report.failed().len(), 1);
    assert_eq!(report.failed()[0].0, REGIONS[2]);

    // The Python tool's rule: any failed region fails the stage.
    let strict = StageOptions {
        require_all_regions: true,
        ..Default::default()
    };
    let err = world
        .session(false)
        .stage_with("M", &v("1.0.1"), &path, Metadata::new(), false, &strict)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CannotStage(_)), "{err}");

    // A retry once the region is back succeeds; the copies already there count as held.
    world
        .raw_store(REGIONS[2])
        .put_parameter(&world.bucket_param, &world.buckets[REGIONS[2]])
        .await
        .unwrap();
    let retry = world
        .session(false)
        .stage("M", &v("1.0.0"), &path, Metadata::new(), false)
        .await
        .unwrap();
    let outcomes: BTreeMap<_, _> = retry.regions.iter().cloned().collect();
    assert!(
        matches!(outcomes[REGIONS[0]], RegionOutcome::AlreadyHeld(_)),
        "{retry:?}"
    );
    assert!(
        matches!(outcomes[REGIONS[2]], RegionOutcome::Staged(_)),
        "{retry:?}"
    );

    // Only one region of three: failure, the report says which failed and why, and the
    // one region that took it had it removed again.
    for region in &REGIONS[1..] {
        world.lose_bucket(region).await;
    }
    let err = world
        .session(false)
        .stage("M", &v("2.0.0"), &path, Metadata::new(), false)
        .await
        .unwrap_err();
    match err {
        Error::CannotStage(report) => {
            assert_eq!(report.held(), 0);
            let reached = report.regions.iter().find(|(r, _)| r == REGIONS[0]);
            assert_eq!(reached.map(|(_, o)| o), Some(&RegionOutcome::Withdrawn));
            let message = Error::CannotStage(report).to_string();
            assert!(message.contains("0 of 3 regions hold it"), "{message}");
            assert!(
                message.contains(REGIONS[1]) && message.contains(REGIONS[2]),
                "{message}"
            );
        }
        other => panic!("expected CannotStage, got {other}"),
    }
}
on_both_backends!(a_majority_of_regions_is_enough);

async fn versions_are_immutable(world: World) {
    let session = world.session(false);
    let first = world.file("one", b"first bytes");
    let second = world.file("two", b"other bytes");
    session
        .stage("I", &v("1.0.0"), &first, Metadata::new(), false)
        .await
        .unwrap();
    let err = session
        .stage("I", &v("1.0.0"), &second, Metadata::new(), false)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("exists in") && message.contains("other content"),
        "{message}"
    );
    // Same bytes but other metadata is refused too.
    let err = session
        .stage("I", &v("1.0.0"), &first, metadata(&[("a", "b")]), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("other metadata"), "{err}");
    let out = world.dir("out").join("i");
    session
        .get("I", None)
        .await
        .unwrap()
        .download_to_path(&out)
        .await
        .unwrap();
    assert_eq!(std::fs::read(out).unwrap(), b"first bytes");
}
on_both_backends!(versions_are_immutable);

async fn large_files_go_in_verified_parts(world: World) {
    let content: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let path = world.file("big.bin", &content);
    let options = StageOptions {
        multipart_threshold: 6 << 20,
        part_size: 5 << 20,
        ..Default::default()
    };
    let session = world.session(false);
    session
        .stage_with("Big", &v("1.0.0"), &path, Metadata::new(), false, &options)
        .await
        .unwrap();
    let key = format!("{}Big@1.0.0", world.configuration.bucket_key_prefix);
    let info = world
        .raw_store(REGIONS[1])
        .head_object(&world.buckets[REGIONS[1]], &key)
        .await
        .unwrap();
    assert!(
        info.etag.as_deref().unwrap_or("").ends_with("-3\""),
        "{info:?}"
    );
    assert_eq!(
        info.known_md5(),
        Some(format!("{:x}", md5::Md5::digest(&content)))
    );
    // An upload in parts carries the whole artifact's CRC-64/NVME, recorded by us.
    assert_eq!(
        info.check(),
        Some(Checksum::of(Algorithm::Crc64Nvme, &content))
    );
    let out = world.dir("out").join("big");
    let download = session
        .get("Big", None)
        .await
        .unwrap()
        .download_to_path(&out)
        .await
        .unwrap();
    assert!(matches!(
        download.verification,
        Verification::Checked(Checksum::Crc64Nvme(_))
    ));
    assert_eq!(std::fs::read(out).unwrap(), content);
}
on_both_backends!(large_files_go_in_verified_parts);

async fn bad_input_is_refused_before_anything_is_written(world: World) {
    let session = world.session(false);
    let path = world.file("ok", b"ok");
    for name in ["", ".", "..", "a\n", "a/b", "a b", "ü"] {
        let err = session
            .stage(name, &v("1.0.0"), &path, Metadata::new(), false)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ProjectName { .. }), "{name:?}: {err}");
        assert!(matches!(
            session.get(name, None).await,
            Err(Error::ProjectName { .. })
        ));
    }
    let reserved = metadata(&[("startifact:filename", "x")]);
    let err = session
        .stage("P", &v("1.0.0"), &path, reserved, false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ReservedMetadataKey { .. }), "{err}");
    let missing = world.scratch.path().join("missing");
    let err = session
        .stage("P", &v("1.0.0"), &missing, Metadata::new(), false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    // A folder cannot be read as a file (root reads anything else).
    let folder = world.dir("a-folder");
    let err = session
        .stage("P", &v("1.0.0"), &folder, Metadata::new(), false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_buckets_empty(&world).await;
    for region in REGIONS {
        let latest = format!("{}/P/latest", world.configuration.parameter_name_prefix);
        assert_eq!(
            parameter(world.raw_store(region).as_ref(), &latest).await,
            None
        );
    }
}
on_both_backends!(bad_input_is_refused_before_anything_is_written);

async fn missing_or_empty_configuration_is_a_clear_error(world: World) {
    let path = world.file("ok", b"ok");
    let backend = world.backend();
    let stores = REGIONS.iter().map(|r| backend.open_region(r)).collect();
    let nowhere = startifact::Session::from_stores(
        backend.clone(),
        stores,
        false,
        "/no/such/configuration".into(),
    );
    let err = nowhere
        .stage("P", &v("1.0.0"), &path, Metadata::new(), false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoRegionsAvailable { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("None of the configured regions are available"),
        "{err}"
    );

    let empty_param = format!("/t-{}/empty-configuration", world.id);
    for region in REGIONS {
        world
            .raw_store(region)
            .put_parameter(&empty_param, "{}")
            .await
            .unwrap();
    }
    let stores = REGIONS.iter().map(|r| backend.open_region(r)).collect();
    let unset = startifact::Session::from_stores(backend, stores, false, empty_param);
    let err = unset
        .stage("P", &v("1.0.0"), &path, Metadata::new(), false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoConfiguration { .. }), "{err}");
    assert!(err.to_string().contains("startifact --setup"), "{err}");
    assert_buckets_empty(&world).await;
}
on_both_backends!(missing_or_empty_configuration_is_a_clear_error);

async fn a_region_without_the_configuration_parameter_does_not_count_as_answering(world: World) {
    // The session asks the regions in order: the first two have lost the parameter.
    for region in &REGIONS[..2] {
        world
            .raw_store(region)
            .delete_parameter(&world.config_param)
            .await
            .unwrap();
    }
    let p = project(&world, "Unconfigured");
    let path = world.file("c", b"configured elsewhere");
    let report = world
        .session(false)
        .stage(&p, &v("1.0.0"), &path, Metadata::new(), false)
        .await
        .unwrap();
    assert_eq!(report.held(), 3, "{report:?}");
    let artifact = world.session(true).get(&p, None).await.unwrap();
    assert_eq!(artifact.version(), &v("1.0.0"));
    let out = world.dir("out").join("c");
    artifact.download_to_path(&out).await.unwrap();
    assert_eq!(std::fs::read(out).unwrap(), b"configured elsewhere");
}
on_both_backends!(a_region_without_the_configuration_parameter_does_not_count_as_answering);

async fn a_dry_run_writes_nothing(world: World) {
    let path = world.file("d", b"dry");
    let report = world
        .session(true)
        .stage("D", &v("1.0.0"), &path, Metadata::new(), true)
        .await
        .unwrap();
    assert!(
        report
            .regions
            .iter()
            .all(|(_, o)| *o == RegionOutcome::WouldStage),
        "{report:?}"
    );
    assert_buckets_empty(&world).await;
    // ...but it does see a version that exists.
    world
        .session(false)
        .stage("D", &v("1.0.0"), &path, Metadata::new(), true)
        .await
        .unwrap();
    let err = world
        .session(true)
        .stage("D", &v("1.0.0"), &path, Metadata::new(), true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exists in"), "{err}");
}
on_both_backends!(a_dry_run_writes_nothing);

use md5::Digest;
