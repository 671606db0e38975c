//! Repair and crash safety: a stage that missed a region is repaired in the background
//! once the region is back (and at the next start); a region given other bytes is a
//! conflict, never overwritten; a daemon killed (`kill -9`) or stopped (SIGTERM)
//! during a stage that a majority already holds finishes it at its next start. The stages held "in the middle" use
//! a hanging proxy, so those tests run on moto only.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use startifact::storage::PutOptions;

use crate::support::backends::Outage;
use crate::support::files::{project, random_bytes};
use crate::support::mount::Mount;
use crate::support::proxy::Mode;
use crate::support::staging::{
    assert_latest_everywhere, downloaded, in_every_region, object_in, status_of,
};
use crate::support::within;
use crate::support::world::{run, World, REGIONS};

/// `cp` of `content` as `{p}/1.0.0/app.bin`, run to the end: (code, stderr).
fn cp(world: &World, mount: &Mount, p: &str, content: &[u8]) -> (i32, String) {
    let (code, _, err) = run(Command::new("cp")
        .arg(world.file("app.bin", content))
        .arg(mount.join(&format!("{p}/1.0.0/app.bin"))));
    (code, err)
}

/// `cp` started in the background (its close() is held by a hanging region).
fn cp_in_background(world: &World, mount: &Mount, p: &str, content: &[u8]) -> Child {
    Command::new("cp")
        .arg(world.file("app.bin", content))
        .arg(mount.join(&format!("{p}/1.0.0/app.bin")))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn state_of(mount: &Mount, p: &str) -> Option<String> {
    status_of(mount, p, "1.0.0").map(|e| e["state"].as_str().unwrap_or("").to_string())
}

/// The version is staged everywhere with `content`, `latest` is it everywhere, and
/// its spool entry is gone, within `bound`.
async fn assert_repaired(world: &World, mount: &Mount, p: &str, content: &[u8], bound: Duration) {
    let key = format!("{p}@1.0.0");
    let repaired = within(bound, || async {
        status_of(mount, p, "1.0.0").is_none() && in_every_region(world, &key).await
    })
    .await;
    assert!(
        repaired,
        "not repaired within {bound:?}: {:?}\n{}",
        status_of(mount, p, "1.0.0"),
        mount.log()
    );
    for region in REGIONS {
        let bytes = object_in(world, region, &key).await;
        assert_eq!(bytes.as_deref(), Some(content), "{region}");
    }
    assert_latest_everywhere(world, p, "1.0.0").await;
    assert_eq!(downloaded(world, p, "1.0.0").await.0, content);
    assert!(!mount.staging_dir().join(p).join("1.0.0").exists());
}

async fn a_region_down_during_the_stage_is_repaired_in_the_background_once_it_is_back(
    mut world: World,
) {
    let outage = Outage::of(&mut world, REGIONS[2]);
    let p = project(&world, "Repair");
    let mount = Mount::start(&world, &[]);
    std::fs::create_dir_all(mount.join(&format!("{p}/1.0.0"))).unwrap();
    let content = random_bytes(100_000, 3);
    outage.begin();
    let (code, err) = cp(&world, &mount, &p, &content);
    assert_eq!(code, 0, "{err}");
    let entry = status_of(&mount, &p, "1.0.0").unwrap();
    assert_eq!(entry["state"], "awaiting-repair", "{entry}");
    assert_eq!(entry["regions"], serde_json::json!([REGIONS[2]]), "{entry}");
    outage.end();
    // The first retry comes 10 s after the stage.
    assert_repaired(&world, &mount, &p, &content, Duration::from_secs(40)).await;
    assert!(mount.log().contains("repaired: every region holds it"));
}
on_both_backends!(a_region_down_during_the_stage_is_repaired_in_the_background_once_it_is_back);

async fn a_repair_left_when_the_daemon_stopped_is_done_at_the_next_start(mut world: World) {
    let outage = Outage::of(&mut world, REGIONS[2]);
    let p = project(&world, "RepairAtStart");
    let mut mount = Mount::start(&world, &[]);
    std::fs::create_dir_all(mount.join(&format!("{p}/1.0.0"))).unwrap();
    let content = random_bytes(50_000, 4);
    outage.begin();
    let (code, err) = cp(&world, &mount, &p, &content);
    assert_eq!(code, 0, "{err}");
    assert_eq!(state_of(&mount, &p).as_deref(), Some("awaiting-repair"));
    assert_eq!(mount.stop(), Some(0));
    outage.end();
    let mount = Mount::restart(&world, &[], mount);
    // At start, not after the 10 s of the first retry.
    assert_repaired(&world, &mount, &p, &content, Duration::from_secs(8)).await;
}
on_both_backends!(a_repair_left_when_the_daemon_stopped_is_done_at_the_next_start);

async fn other_bytes_in_a_region_awaiting_repair_are_a_conflict_never_overwritten(
    mut world: World,
) {
    let outage = Outage::of(&mut world, REGIONS[2]);
    let p = project(&world, "Conflict");
    let key = format!("{p}@1.0.0");
    let mount = Mount::start(&world, &[]);
    std::fs::create_dir_all(mount.join(&format!("{p}/1.0.0"))).unwrap();
    let content = random_bytes(30_000, 5);
    outage.begin();
    let (code, err) = cp(&world, &mount, &p, &content);
    assert_eq!(code, 0, "{err}");
    assert_eq!(state_of(&mount, &p).as_deref(), Some("awaiting-repair"));
    outage.end();
    let other = Bytes::from_static(b"someone else's bytes");
    world
        .raw_store(REGIONS[2])
        .put_object(
            &world.buckets[REGIONS[2]],
            &key,
            other.clone(),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let conflict = within(Duration::from_secs(40), || async {
        state_of(&mount, &p).as_deref() == Some("conflict")
    })
    .await;
    assert!(
        conflict,
        "{:?}\n{}",
        status_of(&mount, &p, "1.0.0"),
        mount.log()
    );
    let entry = status_of(&mount, &p, "1.0.0").unwrap();
    assert_eq!(entry["regions"], serde_json::json!([REGIONS[2]]), "{entry}");
    let reason = entry["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("{}: ", REGIONS[2])) && reason.contains("holds other bytes"),
        "{entry}"
    );
    assert!(mount.log().contains("conflict"), "{}", mount.log());
    assert_eq!(
        object_in(&world, REGIONS[2], &key).await.as_deref(),
        Some(&other[..])
    );
    for region in &REGIONS[..2] {
        let bytes = object_in(&world, region, &key).await;
        assert_eq!(bytes.as_deref(), Some(&content[..]), "{region}");
    }
    assert_eq!(
        std::fs::read(mount.staging_dir().join(&p).join("1.0.0/data")).unwrap(),
        content
    );
}
on_both_backends!(other_bytes_in_a_region_awaiting_repair_are_a_conflict_never_overwritten);

/// Waits until the mount's stage of `{p}/1.0.0` runs (saved as `staging`).
async fn stage_running(mount: &Mount, p: &str) {
    let running = within(Duration::from_secs(20), || async {
        state_of(mount, p).as_deref() == Some("staging")
    })
    .await;
    assert!(
        running,
        "{:?}\n{}",
        status_of(mount, p, "1.0.0"),
        mount.log()
    );
    let saved =
        std::fs::read_to_string(mount.staging_dir().join(p).join("1.0.0/state.json")).unwrap();
    assert!(saved.contains("\"state\": \"staging\""), "{saved}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_stage_loses_nothing_and_the_next_start_finishes_it() {
    let (world, proxies) = World::moto_behind_proxies().await;
    let p = project(&world, "Killed");
    let mut mount = Mount::start(&world, &[]);
    std::fs::create_dir_all(mount.join(&format!("{p}/1.0.0"))).unwrap();
    let content = random_bytes(300_000, 6);
    proxies[2].set_mode(Mode::Hang);
    let mut writer = cp_in_background(&world, &mount, &p, &content);
    stage_running(&mount, &p).await;
    // Killed once a majority holds it and its `latest` moved there: the next start
    // completes it in the third region and sets that region's `latest` to the
    // majority's value. (Killed before, it is never published: see `consistency`.)
    let name = format!("/{p}/latest");
    let committed = within(Duration::from_secs(20), || async {
        let mut moved = 0;
        for region in &REGIONS[..2] {
            let value = world.raw_store(region).get_parameter(&name).await;
            moved += usize::from(value.is_ok_and(|v| v == "1.0.0"));
        }
        moved == 2
    })
    .await;
    assert!(committed, "{}", mount.log());
    mount.kill();
    let _ = writer.wait();
    proxies[2].set_mode(Mode::Forward);
    let mount = Mount::restart(&world, &[], mount);
    assert_repaired(&world, &mount, &p, &content, Duration::from_secs(30)).await;
    assert!(
        mount.log().contains("resuming the stage"),
        "{}",
        mount.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_stage_waits_the_stop_timeout_then_the_next_start_finishes_it() {
    let (world, proxies) = World::moto_behind_proxies().await;
    let p = project(&world, "Stopped");
    let mut mount = Mount::start(&world, &["--stop-timeout", "2"]);
    std::fs::create_dir_all(mount.join(&format!("{p}/1.0.0"))).unwrap();
    let content = random_bytes(300_000, 7);
    proxies[2].set_mode(Mode::Hang);
    let writer = cp_in_background(&world, &mount, &p, &content);
    stage_running(&mount, &p).await;
    let asked = Instant::now();
    assert_eq!(mount.stop(), Some(0), "{}", mount.log());
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "{took:?}"
    );
    let output = writer.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && err.contains("Input/output error"),
        "{err}"
    );
    assert_eq!(state_of(&mount, &p).as_deref(), Some("interrupted"));
    assert_eq!(
        std::fs::read(mount.staging_dir().join(&p).join("1.0.0/data")).unwrap(),
        content
    );
    proxies[2].set_mode(Mode::Forward);
    let mount = Mount::restart(&world, &[], mount);
    assert_repaired(&world, &mount, &p, &content, Duration::from_secs(30)).await;
}
