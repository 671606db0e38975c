//! `startifact --repair [PROJECT] [--dry-run]`: what some regions lack (a version, its
//! metadata, `latest`, the configuration) is copied there from the regions that have
//! it, with the same bytes and ETag; other bytes are a conflict, reported and left; a
//! dry run prints the plan and changes nothing; and a Python stage that failed half way
//! is finished.

use bytes::Bytes;
use semver::Version;
use startifact::protocol::{Metadata, StageOptions};
use startifact::storage::PutOptions;

use crate::support::files::{project, random_bytes};
use crate::support::staging::{
    assert_latest_everywhere, cli_stage, latest_in_each_region, object_in,
};
use crate::support::unique_id;
use crate::support::world::{run, World, WorldOptions, REGIONS};

fn repair(world: &World, args: &[&str]) -> (i32, String, String) {
    run(world.cli().arg("--repair").args(args))
}

async fn forget(world: &World, region: &str, key: &str) {
    world
        .raw_store(region)
        .delete_object(&world.buckets[region], key, None)
        .await
        .unwrap();
}

/// Every region holds `key` with the same bytes and ETag as `REGIONS[0]`.
async fn same_everywhere(world: &World, key: &str) -> Vec<u8> {
    let bytes = object_in(world, REGIONS[0], key)
        .await
        .expect("in the first region");
    let etag = world.head_in(REGIONS[0], key).await.etag;
    for region in &REGIONS[1..] {
        assert_eq!(
            object_in(world, region, key).await.as_deref(),
            Some(&bytes[..]),
            "{key} in {region}"
        );
        assert_eq!(
            world.head_in(region, key).await.etag,
            etag,
            "ETag of {key} in {region}"
        );
    }
    bytes
}

async fn a_version_missing_from_one_region_is_copied_there_with_its_etag_and_metadata(
    world: World,
) {
    let p = project(&world, "Lost");
    cli_stage(
        &world,
        &p,
        "1.0.0",
        b"the artifact",
        &["--metadata", "lang=rust", "--filename"],
    );
    let prefix = &world.configuration.bucket_key_prefix;
    let key = format!("{prefix}{p}@1.0.0");
    let metadata_key = format!("{key}/metadata");
    let metadata = object_in(&world, REGIONS[0], &metadata_key).await.unwrap();
    forget(&world, REGIONS[1], &key).await;
    forget(&world, REGIONS[1], &metadata_key).await;

    // The copy goes through a temporary file of its own in TMPDIR (none there: the
    // copy fails, cleanly), gone once the repair is done.
    let temporary = tempfile::tempdir().unwrap();
    let missing = temporary.path().join("missing");
    let (code, stdout, _) = run(world.cli().env("TMPDIR", &missing).args(["--repair", &p]));
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "cannot make a temporary file in {}",
            missing.display()
        )),
        "{stdout}"
    );
    let (code, stdout, stderr) = run(world
        .cli()
        .env("TMPDIR", temporary.path())
        .args(["--repair", &p]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("📦 Did copy {p}@1.0.0 (12 bytes) from ")),
        "{stdout}"
    );
    let left: Vec<_> = std::fs::read_dir(temporary.path()).unwrap().collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
    assert!(stdout.contains(&format!("to {}.", REGIONS[1])), "{stdout}");
    assert!(
        stdout.contains(&format!("📦 Did copy the metadata of {p}@1.0.0 from ")),
        "{stdout}"
    );
    assert_eq!(same_everywhere(&world, &key).await, b"the artifact");
    assert_eq!(same_everywhere(&world, &metadata_key).await, metadata);

    let (code, stdout, stderr) = repair(&world, &[&p]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("every region is whole"), "{stdout}");
}
on_both_backends!(a_version_missing_from_one_region_is_copied_there_with_its_etag_and_metadata);

async fn latest_is_set_to_the_majority_s_value_and_a_missing_configuration_is_written(
    world: World,
) {
    let p = project(&world, "Behind");
    cli_stage(&world, &p, "1.0.0", b"one", &[]);
    cli_stage(&world, &p, "2.0.0", b"two", &[]);
    let name = format!("{}/{p}/latest", world.configuration.parameter_name_prefix);
    world
        .raw_store(REGIONS[0])
        .delete_parameter(&name)
        .await
        .unwrap();
    let configuration = world
        .raw_store(REGIONS[0])
        .get_parameter(&world.config_param)
        .await
        .unwrap();
    world
        .raw_store(REGIONS[1])
        .delete_parameter(&world.config_param)
        .await
        .unwrap();

    let (code, stdout, stderr) = repair(&world, &[&p]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "set latest of {p} (missing) to 2.0.0 in {}",
            REGIONS[0]
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "write the configuration parameter in {}",
            REGIONS[1]
        )),
        "{stdout}"
    );
    assert_latest_everywhere(&world, &p, "2.0.0").await;
    let written = world
        .raw_store(REGIONS[1])
        .get_parameter(&world.config_param)
        .await
        .unwrap();
    assert_eq!(written, configuration);

    // A rollback to 1.0.0 that missed one region: the repair moves that region back,
    // never the others forward.
    for region in [REGIONS[0], REGIONS[1]] {
        world
            .raw_store(region)
            .put_parameter(&name, "1.0.0")
            .await
            .unwrap();
    }
    let (code, stdout, stderr) = repair(&world, &[&p]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "move latest of {p} from 2.0.0 to 1.0.0 in {}",
            REGIONS[2]
        )),
        "{stdout}"
    );
    assert_latest_everywhere(&world, &p, "1.0.0").await;

    // No value named by a majority: nothing moves, and the repair says so.
    world
        .raw_store(REGIONS[1])
        .put_parameter(&name, "2.0.0")
        .await
        .unwrap();
    world
        .raw_store(REGIONS[2])
        .delete_parameter(&name)
        .await
        .unwrap();
    let (code, stdout, _) = repair(&world, &[&p]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("no version is named by a majority"),
        "{stdout}"
    );
}
on_both_backends!(latest_is_set_to_the_majority_s_value_and_a_missing_configuration_is_written);

async fn a_dry_run_prints_the_plan_and_changes_nothing(world: World) {
    let p = project(&world, "Plan");
    cli_stage(&world, &p, "1.0.0", b"planned", &[]);
    let key = format!("{}{p}@1.0.0", world.configuration.bucket_key_prefix);
    forget(&world, REGIONS[2], &key).await;
    let name = format!("{}/{p}/latest", world.configuration.parameter_name_prefix);
    world
        .raw_store(REGIONS[2])
        .delete_parameter(&name)
        .await
        .unwrap();
    let before = latest_in_each_region(&world, &p).await;

    // Both spellings: the project before --dry-run, and after it.
    for args in [vec![p.as_str(), "--dry-run"], vec!["--dry-run", p.as_str()]] {
        let (code, stdout, stderr) = repair(&world, &args);
        assert_eq!(code, 0, "{args:?}: {stdout}{stderr}");
        assert!(
            stdout.contains(&format!("🌍 Would copy {p}@1.0.0 (7 bytes) from ")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!(
                "🌍 Would set latest of {p} (missing) to 1.0.0 in {}.",
                REGIONS[2]
            )),
            "{stdout}"
        );
        assert!(
            stdout.contains("2 actions planned, 0 not repairable; nothing changed."),
            "{stdout}"
        );
        assert_eq!(object_in(&world, REGIONS[2], &key).await, None);
        assert_eq!(latest_in_each_region(&world, &p).await, before);
    }
}
on_both_backends!(a_dry_run_prints_the_plan_and_changes_nothing);

async fn other_bytes_in_one_region_are_a_conflict_reported_and_never_overwritten(world: World) {
    let p = project(&world, "Clash");
    cli_stage(&world, &p, "1.0.0", b"majority bytes", &[]);
    let key = format!("{}{p}@1.0.0", world.configuration.bucket_key_prefix);
    forget(&world, REGIONS[2], &key).await;
    world
        .raw_store(REGIONS[2])
        .put_object(
            &world.buckets[REGIONS[2]],
            &key,
            Bytes::from_static(b"hand edit"),
            &PutOptions::default(),
        )
        .await
        .unwrap();

    let (code, stdout, stderr) = repair(&world, &[&p]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("conflict"), "{stdout}");
    assert!(stdout.contains(REGIONS[2]), "{stdout}");
    assert!(
        stderr.starts_with("🔥 1 thing of the repair could not be done"),
        "{stderr}"
    );
    assert_eq!(
        object_in(&world, REGIONS[2], &key).await.as_deref(),
        Some(&b"hand edit"[..])
    );
}
on_both_backends!(other_bytes_in_one_region_are_a_conflict_reported_and_never_overwritten);

async fn a_region_whose_bucket_is_gone_is_skipped_with_a_clear_error(world: World) {
    let p = project(&world, "NoBucket");
    cli_stage(&world, &p, "1.0.0", b"kept", &[]);
    world.lose_bucket(REGIONS[1]).await;
    let (code, stdout, stderr) = repair(&world, &[&p]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let line = format!(
        "⚠️ Not repaired: {}: skipped: the bucket no-such-bucket-here does not exist in {}",
        REGIONS[1], REGIONS[1]
    );
    assert!(stdout.contains(&line), "{stdout}");
}
on_both_backends!(a_region_whose_bucket_is_gone_is_skipped_with_a_clear_error);

async fn a_multipart_artifact_is_copied_in_the_same_parts_and_keeps_its_etag(world: World) {
    let p = project(&world, "Parts");
    let content = random_bytes(11 << 20, 7);
    let file = world.file("parts.bin", &content);
    let options = StageOptions {
        multipart_threshold: 6 << 20,
        part_size: 5 << 20,
        ..Default::default()
    };
    world
        .session(false)
        .stage_with(
            &p,
            &Version::new(1, 0, 0),
            &file,
            Metadata::new(),
            false,
            &options,
        )
        .await
        .unwrap();
    let key = format!("{}{p}@1.0.0", world.configuration.bucket_key_prefix);
    let etag = world.head_in(REGIONS[0], &key).await.etag.unwrap();
    assert!(etag.ends_with("-3\""), "{etag}");
    forget(&world, REGIONS[0], &key).await;

    let (code, stdout, stderr) = repair(&world, &[&p]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        world.head_in(REGIONS[0], &key).await.etag.as_deref(),
        Some(etag.as_str())
    );
    assert_eq!(same_everywhere(&world, &key).await, content);
}
on_both_backends!(a_multipart_artifact_is_copied_in_the_same_parts_and_keeps_its_etag);

/// Moto only (the Python tool speaks HTTP): its stage fails in two regions of three
/// (their bucket-name parameters name a bucket that does not exist), which leaves the
/// artifact, its metadata and `latest` in one region. A failed stage publishes nothing:
/// repair reports it and never copies it, and sets that region's `latest` back to the
/// majority's value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_stage_that_failed_half_way_is_reported_never_copied() {
    let world = World::moto(WorldOptions::default()).await;
    let p = project(&world, "HalfPy");
    cli_stage(&world, &p, "0.9.0", b"staged before", &[]);
    world.lose_bucket(REGIONS[0]).await;
    world.lose_bucket(REGIONS[2]).await;
    let file = world.file("py.bin", b"staged by python");
    let (code, stdout, _) = run(world
        .python()
        .args([&p, "1.0.0", "--stage"])
        .arg(&file)
        .args(["--metadata", "lang=python"]));
    assert_eq!(code, 1, "{stdout}");
    for region in [REGIONS[0], REGIONS[2]] {
        world
            .raw_store(region)
            .put_parameter(&world.bucket_param, &world.buckets[region])
            .await
            .unwrap();
    }
    let key = format!("{p}@1.0.0");
    assert_eq!(object_in(&world, REGIONS[0], &key).await, None);
    assert!(object_in(&world, REGIONS[1], &key).await.is_some());

    let (code, stdout, stderr) = repair(&world, &[&p]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("held by 1 of 3 regions only"), "{stdout}");
    for region in [REGIONS[0], REGIONS[2]] {
        assert_eq!(object_in(&world, region, &key).await, None, "{region}");
    }
    assert!(
        stdout.contains(&format!(
            "move latest of {p} from 1.0.0 to 0.9.0 in {}",
            REGIONS[1]
        )),
        "{stdout}"
    );
    assert_latest_everywhere(&world, &p, "0.9.0").await;
}

/// A parameter-name prefix of its own keeps this world's projects apart from other
/// tests' when every project is listed.
fn own_prefixes() -> WorldOptions {
    WorldOptions {
        bucket_key_prefix: "all/".into(),
        parameter_name_prefix: format!("/r{}", unique_id()),
    }
}

async fn without_a_project_every_project_is_repaired(world: World) {
    let projects = [project(&world, "One"), project(&world, "Two")];
    for p in &projects {
        cli_stage(&world, p, "1.0.0", p.as_bytes(), &[]);
        forget(&world, REGIONS[1], &format!("all/{p}@1.0.0")).await;
    }
    let (code, stdout, stderr) = repair(&world, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for p in &projects {
        assert_eq!(
            same_everywhere(&world, &format!("all/{p}@1.0.0")).await,
            p.as_bytes()
        );
    }
    assert!(
        stdout.contains("Repair of 2 projects in 3 regions: 2 done"),
        "{stdout}"
    );
}
on_both_backends!(without_a_project_every_project_is_repaired, own_prefixes());

/// The temporary file a copy goes through, while it is there: its folder's and its own
/// mode.
fn temporary_file_modes(tmpdir: &std::path::Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| {
        std::fs::symlink_metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777)
    };
    let folder = std::fs::read_dir(tmpdir).ok()?.flatten().next()?.path();
    Some((mode(&folder)?, mode(&folder.join("object"))?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_stopped_by_ctrl_c_leaves_no_temporary_file_and_it_was_private() {
    repair_stopped_by(libc::SIGINT, "interrupted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_stopped_by_sigterm_leaves_no_temporary_file() {
    repair_stopped_by(libc::SIGTERM, "terminated").await;
}

/// A repair copying through its temporary file is sent `signal`: it exits 1 saying
/// `says`, and leaves nothing in `TMPDIR`.
async fn repair_stopped_by(signal: libc::c_int, says: &str) {
    let (world, proxies) = World::moto_behind_proxies().await;
    let p = project(&world, "Interrupted");
    cli_stage(&world, &p, "1.0.0", &random_bytes(1 << 20, 7), &[]);
    forget(&world, REGIONS[1], &format!("{p}@1.0.0")).await;
    // 1 MiB read at 256 KiB/s: the copy takes 4 s, time to look at its file.
    for proxy in &proxies {
        proxy.set_pace(Some(256 << 10));
    }
    let temporary = tempfile::tempdir().unwrap();
    let child = world
        .cli()
        .env("TMPDIR", temporary.path())
        .args(["--repair", &p])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let modes = loop {
        if let Some(modes) = temporary_file_modes(temporary.path()) {
            break modes;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no temporary file appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert_eq!(modes, (0o700, 0o600));

    unsafe { libc::kill(child.id() as i32, signal) };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(says), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(temporary.path()).unwrap().collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}
