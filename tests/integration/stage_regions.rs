//! A stage through the command line, region by region, as the README's "Where we
//! differ" says: an artifact a region already holds with the same bytes and metadata
//! counts as held, so re-running a partial stage completes it, and other bytes fail the
//! regions that hold it; where the stager may not read `latest`, it is written as the
//! Python tool writes it.

use std::path::Path;
use std::process::Command;

use crate::support::backends::{proxied_moto, Outage};
use crate::support::files::project;
use crate::support::staging::{assert_latest_everywhere, object_in};
use crate::support::world::{assert_one_fire_line, run, run_ok, World, WorldOptions, REGIONS};

/// `startifact P VERSION --stage FILE`.
fn stage(world: &World, project: &str, version: &str, file: &Path) -> Command {
    let mut command = world.cli();
    command.args([project, version, "--stage"]).arg(file);
    command
}

async fn rerunning_a_partial_stage_completes_it_and_other_bytes_fail_the_regions_holding_it(
    mut world: World,
) {
    let p = project(&world, "Rerun");
    let key = format!("{p}@1.0.0");
    let file = world.file("first", b"first bytes");
    let outage = Outage::of(&mut world, REGIONS[2]);
    outage.begin();
    let (code, stdout, stderr) = run(&mut stage(&world, &p, "1.0.0", &file));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let failed = format!("🔥 Failed to stage to {}: ", REGIONS[2]);
    assert!(stderr.starts_with(&failed), "{stderr}");
    outage.end();
    assert_eq!(object_in(&world, REGIONS[2], &key).await, None);

    let (code, stdout, stderr) = run(&mut stage(&world, &p, "1.0.0", &file));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stderr, "");
    for region in &REGIONS[..2] {
        let held = format!("📦 Staged to {region} (it was already there).");
        assert!(stdout.contains(&held), "{stdout}");
    }
    let staged = format!("📦 Staged to {}.", REGIONS[2]);
    assert!(stdout.contains(&staged), "{stdout}");
    for region in REGIONS {
        let bytes = object_in(&world, region, &key).await;
        assert_eq!(bytes.as_deref(), Some(&b"first bytes"[..]), "{region}");
    }
    assert_latest_everywhere(&world, &p, "1.0.0").await;

    let other = world.file("other", b"other bytes");
    let line = assert_one_fire_line(run(&mut stage(&world, &p, "1.0.0", &other)), "other");
    for region in REGIONS {
        assert!(line.contains(region), "{region} not named: {line}");
        let bytes = object_in(&world, region, &key).await;
        assert_eq!(bytes.as_deref(), Some(&b"first bytes"[..]), "{region}");
    }
    assert!(line.contains("other content"), "{line}");
}
on_both_backends!(
    rerunning_a_partial_stage_completes_it_and_other_bytes_fail_the_regions_holding_it
);

/// Moto only: the denial is made by a proxy on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_the_stager_may_not_read_latest_it_is_written_as_the_python_tool_does() {
    let (world, proxy) = proxied_moto(WorldOptions::default(), &REGIONS).await;
    let p = project(&world, "Blind");
    run_ok(&mut stage(&world, &p, "2.0.0", &world.file("two", b"2")));
    assert_latest_everywhere(&world, &p, "2.0.0").await;

    proxy.set_denied_ssm_parameters(&["GetParameter"], "/latest");
    proxy.clear();
    run_ok(&mut stage(&world, &p, "1.0.0", &world.file("one", b"1")));
    let denied = proxy
        .requests()
        .into_iter()
        .filter(|r| r.ssm_action() == Some("GetParameter") && r.status == Some(400))
        .count();
    assert_eq!(denied, REGIONS.len(), "{:#?}", proxy.requests());
    // Overwritten with the version staged last, though lower.
    assert_latest_everywhere(&world, &p, "1.0.0").await;
}
