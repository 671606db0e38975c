//! One artifact and one `latest`, everywhere, whatever happened meanwhile
//! (docs/SEMANTICS.md, "`latest`, yanks and repair"): a rollback survives the repair of
//! the region that was down; a version yanked while its stager was stopped is not
//! brought back at the stager's restart; a stage that reaches a minority moves
//! `latest` nowhere and leaves nothing behind (or, where its removal was refused,
//! what a retry takes up as its own); one content under two ETags reads and repairs as
//! one; a region away for minutes is healed within a minute of its return.

use std::process::Command;
use std::time::{Duration, Instant};

use startifact::protocol::{read_latest, StageOptions};

use crate::support::backends::{proxied_moto, Outage};
use crate::support::files::{project, random_bytes, setxattr};
use crate::support::mount::Mount;
use crate::support::staging::{
    assert_latest_everywhere, cli_stage, in_any_region, in_every_region, latest_in_each_region,
    object_in, status_of, v,
};
use crate::support::within;
use crate::support::world::{run, Kind, World, WorldOptions, REGIONS};

/// `cp` of `content` into `{p}/{version}/app.bin` of the mount: (exit code, stderr).
fn cp(world: &World, mount: &Mount, p: &str, version: &str, content: &[u8]) -> (i32, String) {
    let folder = mount.join(&format!("{p}/{version}"));
    std::fs::create_dir_all(&folder).unwrap_or_else(|e| panic!("mkdir {folder:?}: {e}"));
    let (code, _, err) = run(Command::new("cp")
        .arg(world.file(&format!("{version}.bin"), content))
        .arg(folder.join("app.bin")));
    (code, err)
}

fn state_of(mount: &Mount, p: &str, version: &str) -> Option<String> {
    status_of(mount, p, version).map(|e| e["state"].as_str().unwrap_or("").to_string())
}

/// `cp` into the mount while a region is down: it succeeds, and the version awaits repair.
fn cp_awaiting_repair(world: &World, mount: &Mount, p: &str, version: &str, content: &[u8]) {
    let (code, err) = cp(world, mount, p, version, content);
    assert_eq!(code, 0, "{err}\n{}", mount.log());
    assert_eq!(
        state_of(mount, p, version).as_deref(),
        Some("awaiting-repair")
    );
}

/// Regions 1 and 2, down together: a stage then reaches region 0 only, a minority.
struct TwoDown([Outage; 2]);

impl TwoDown {
    /// Prepares the outages; call before anything starts in the world.
    fn of(world: &mut World) -> TwoDown {
        TwoDown([Outage::of(world, REGIONS[1]), Outage::of(world, REGIONS[2])])
    }

    fn begin(&self) {
        self.0.iter().for_each(Outage::begin);
    }

    fn end(&self) {
        self.0.iter().for_each(Outage::end);
    }
}

/// `startifact P 4.0.0 --stage` of the bytes `four`, with `lang` as its metadata if
/// given: (exit code, stdout, stderr).
fn cli_stage_four(world: &World, p: &str, lang: Option<&str>) -> (i32, String, String) {
    let file = world.file("4.0.0.bin", b"four");
    let mut command = world.cli();
    command.args([p, "4.0.0", "--stage"]).arg(&file);
    if let Some(lang) = lang {
        command.args(["--metadata", &format!("lang={lang}")]);
    }
    run(&mut command)
}

/// `cp` of `five` into `{p}/5.0.0` with a minority up: EIO.
fn cp_five_fails(world: &World, mount: &Mount, p: &str) {
    let (code, err) = cp(world, mount, p, "5.0.0", b"five");
    assert_ne!(code, 0, "cp to one region of three succeeded");
    assert!(err.contains("Input/output error"), "{err}");
}

/// The mount's `{p}/5.0.0`, made with `user.lang=rust`.
fn folder_five_in_rust(mount: &Mount, p: &str) -> std::path::PathBuf {
    let folder = mount.join(&format!("{p}/5.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    setxattr(&folder, "user.lang", b"rust").unwrap();
    folder
}

/// After a failed stage of `{p}@4.0.0` by the CLI and of `{p}/5.0.0` (`folder`) by the
/// mount, every region up again: a retry of each with `lang=cobol` stages to all three,
/// and every reader, the Python tool asking region 0 included (on moto), reads `cobol`.
async fn retries_with_cobol_take_every_region(
    world: &World,
    mount: &Mount,
    p: &str,
    folder: &std::path::Path,
) {
    let (code, out, err) = cli_stage_four(world, p, Some("cobol"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.is_empty(), "a region refused the retry: {err}");
    setxattr(folder, "user.lang", b"cobol").unwrap();
    let (code, _, err) = run(Command::new("touch").arg(folder.join("app.bin")));
    assert_eq!(code, 0, "the mount's retry: {err}\n{}", mount.log());
    assert_eq!(status_of(mount, p, "5.0.0"), None, "{}", mount.log());
    for version in ["4.0.0", "5.0.0"] {
        let cobol = Some("cobol".to_string());
        assert_eq!(
            lang_in_each_region(world, p, version).await,
            [cobol.clone(), cobol.clone(), cobol],
            "{version}"
        );
        if matches!(world.kind, Kind::Moto { .. }) {
            let info = python_info_in(world, REGIONS[0], p, version);
            assert!(info.contains("= cobol") && !info.contains("rust"), "{info}");
        }
    }
}

/// Waits until every region holds `{p}@{version}` and the mount's spool entry is gone.
async fn assert_repaired(world: &World, mount: &Mount, p: &str, version: &str, bound: Duration) {
    let key = format!("{p}@{version}");
    let repaired = within(bound, || async {
        status_of(mount, p, version).is_none() && in_every_region(world, &key).await
    })
    .await;
    assert!(
        repaired,
        "not repaired within {bound:?}: {:?}\n{}",
        status_of(mount, p, version),
        mount.log()
    );
}

async fn a_rollback_made_while_a_region_was_down_survives_its_repair(mut world: World) {
    let outage = Outage::of(&mut world, REGIONS[2]);
    let p = project(&world, "Rollback");
    cli_stage(&world, &p, "1.0.0", b"one", &[]);
    let mount = Mount::start(&world, &[]);
    outage.begin();
    cp_awaiting_repair(&world, &mount, &p, "2.0.0", &random_bytes(40_000, 1));
    let (code, _, err) = run(Command::new("ln")
        .args(["-sfn", "1.0.0"])
        .arg(mount.join(&format!("{p}/latest"))));
    assert_eq!(code, 0, "ln -sfn: {err}\n{}", mount.log());
    outage.end();
    assert_repaired(&world, &mount, &p, "2.0.0", Duration::from_secs(60)).await;
    // The repair set the returning region's `latest` to the majority's 1.0.0; before,
    // it moved every region forward to 2.0.0 by the stage's rule.
    assert_latest_everywhere(&world, &p, "1.0.0").await;
    let session = world.session(true);
    assert_eq!(read_latest(&session, &p).await.unwrap().version, v("1.0.0"));
}
on_both_backends!(a_rollback_made_while_a_region_was_down_survives_its_repair);

async fn a_version_yanked_while_its_stager_was_stopped_stays_yanked_at_its_restart(
    mut world: World,
) {
    let outage = Outage::of(&mut world, REGIONS[2]);
    let p = project(&world, "YankedMeanwhile");
    cli_stage(&world, &p, "1.0.0", b"one", &[]);
    let mut mount = Mount::start(&world, &[]);
    outage.begin();
    let content = random_bytes(30_000, 2);
    cp_awaiting_repair(&world, &mount, &p, "3.0.0", &content);
    assert_eq!(mount.stop(), Some(0));
    outage.end();
    // Another host yanks it, every region up.
    world
        .session(false)
        .yank(&p, &v("3.0.0"))
        .await
        .expect("the yank");
    let key = format!("{p}@3.0.0");
    assert!(!in_any_region(&world, &key).await);
    let mount = Mount::restart(&world, &[], mount);
    let ended = within(Duration::from_secs(20), || async {
        state_of(&mount, &p, "3.0.0").as_deref() == Some("failed")
    })
    .await;
    assert!(
        ended,
        "{:?}\n{}",
        status_of(&mount, &p, "3.0.0"),
        mount.log()
    );
    assert!(
        !in_any_region(&world, &key).await,
        "the repair brought the yanked version back"
    );
    let entry = status_of(&mount, &p, "3.0.0").unwrap();
    let reason = entry["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not uploaded again"), "{entry}");
    assert!(
        mount.log().contains("never uploaded again"),
        "{}",
        mount.log()
    );
    // Nothing is lost: the file stays in the spool.
    assert_eq!(
        std::fs::read(mount.staging_dir().join(&p).join("3.0.0/data")).unwrap(),
        content
    );
    assert_latest_everywhere(&world, &p, "1.0.0").await;
}
on_both_backends!(a_version_yanked_while_its_stager_was_stopped_stays_yanked_at_its_restart);

async fn a_stage_that_reaches_a_minority_moves_latest_nowhere(mut world: World) {
    let two_down = TwoDown::of(&mut world);
    let p = project(&world, "Minority");
    cli_stage(&world, &p, "1.0.0", b"one", &[]);
    let mount = Mount::start(&world, &[]);
    // The staging folder first: with two regions of three down, whether 5.0.0 exists
    // cannot be told, so `mkdir` then answers EIO.
    std::fs::create_dir(mount.join(&format!("{p}/5.0.0"))).unwrap();
    two_down.begin();
    let (code, _, err) = cli_stage_four(&world, &p, None);
    assert_eq!(code, 1, "the CLI's stage to one region of three: {err}");
    cp_five_fails(&world, &mount, &p);
    two_down.end();
    // The one region reached still names 1.0.0: no quorum read, whoever it asks first,
    // is sent to a version a majority lacks.
    for (region, value) in latest_in_each_region(&world, &p).await {
        assert_eq!(value.as_deref(), Some("1.0.0"), "latest in {region}");
    }
    let reached_first = world.session_in(&[REGIONS[0], REGIONS[1], REGIONS[2]], true);
    assert_eq!(
        read_latest(&reached_first, &p).await.unwrap().version,
        v("1.0.0")
    );
}
on_both_backends!(a_stage_that_reaches_a_minority_moves_latest_nowhere);

/// On moto, the Python tool's quorum read after a failed stage that reached one region.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_tool_reads_the_old_latest_after_a_failed_minority_stage() {
    let mut world = World::moto(Default::default()).await;
    let two_down = TwoDown::of(&mut world);
    let p = project(&world, "PyMinority");
    cli_stage(&world, &p, "1.0.0", b"one", &[]);
    two_down.begin();
    let (code, _, _) = cli_stage_four(&world, &p, None);
    assert_eq!(code, 1);
    two_down.end();
    // The Python tool shuffles the regions: ask it several times.
    for _ in 0..4 {
        let (code, out, err) = run(world.python().args([&p, "--info"]));
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains(&format!("The latest version of {p} is 1.0.0")),
            "{out}"
        );
    }
}

/// Stages `content` to region 0 in parts and to the other two in one request, as the
/// adaptive sender may: one content, two kinds of ETag.
async fn staged_with_two_etags(world: &World, p: &str, content: &[u8]) {
    let file = world.file("mixed.bin", content);
    let in_parts = StageOptions {
        multipart_threshold: 5 << 20,
        part_size: 5 << 20,
        ..StageOptions::default()
    };
    let whole = StageOptions {
        multipart_threshold: 1 << 30,
        ..StageOptions::default()
    };
    let version = v("1.0.0");
    for (regions, options) in [(&REGIONS[..1], &in_parts), (&REGIONS[1..], &whole)] {
        world
            .session_in(regions, false)
            .stage_with(p, &version, &file, Default::default(), false, options)
            .await
            .unwrap_or_else(|e| panic!("staging to {regions:?}: {e}"));
    }
    let key = format!("{p}@1.0.0");
    let mut etags = Vec::new();
    for region in REGIONS {
        etags.push(world.head_in(region, &key).await.etag.unwrap_or_default());
    }
    assert!(etags[0].contains('-'), "not in parts: {etags:?}");
    assert!(!etags[1].contains('-') && etags[1] == etags[2], "{etags:?}");
}

async fn one_content_under_two_etags_reads_from_any_holder_and_repairs_as_one(world: World) {
    let mut world = world;
    let outages: Vec<Outage> = REGIONS.iter().map(|r| Outage::of(&mut world, r)).collect();
    let p = project(&world, "TwoETags");
    let content = random_bytes(12 << 20, 3);
    staged_with_two_etags(&world, &p, &content).await;

    let (code, out, err) = run(world.cli().args([&p, "--repair", "--dry-run"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("conflict"), "{out}");

    let mount = Mount::start(&world, &[]);
    let file = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    let pinned = xattr(&file, "user.startifact:region");
    // Leave up one region whose copy's ETag is not the pinned one.
    let (down, serving): (Vec<usize>, usize) = if pinned == REGIONS[0] {
        (vec![0, 1], 2)
    } else {
        (vec![1, 2], 0)
    };
    for index in &down {
        outages[*index].begin();
    }
    let read = std::fs::read(&file);
    for index in &down {
        outages[*index].end();
    }
    let read = read.unwrap_or_else(|e| {
        panic!(
            "read with only {} up (pinned {pinned}): {e}\n{}",
            REGIONS[serving],
            mount.log()
        )
    });
    assert!(read == content, "the bytes read differ");
}
on_both_backends!(one_content_under_two_etags_reads_from_any_holder_and_repairs_as_one);

fn xattr(path: &std::path::Path, name: &str) -> String {
    let (code, out, err) = run(Command::new("getfattr")
        .args(["--only-values", "-n", name])
        .arg(path));
    assert_eq!(code, 0, "getfattr {name}: {err}");
    out
}

async fn a_region_away_for_three_minutes_is_healed_within_a_minute_of_its_return(mut world: World) {
    let outage = Outage::of(&mut world, REGIONS[2]);
    let p = project(&world, "LongAway");
    let mount = Mount::start(&world, &[]);
    outage.begin();
    let (code, err) = cp(&world, &mount, &p, "1.0.0", &random_bytes(20_000, 4));
    assert_eq!(code, 0, "{err}\n{}", mount.log());
    // Long enough for the old doubling wait (10 s, 20, 40, 80...) to pass a minute.
    tokio::time::sleep(Duration::from_secs(180)).await;
    outage.end();
    let back = Instant::now();
    assert_repaired(&world, &mount, &p, "1.0.0", Duration::from_secs(60)).await;
    assert_latest_everywhere(&world, &p, "1.0.0").await;
    eprintln!(
        "healed {:.1} s after the region's return",
        back.elapsed().as_secs_f64()
    );
}
on_both_backends!(a_region_away_for_three_minutes_is_healed_within_a_minute_of_its_return);

async fn metadata_that_only_a_minority_of_holders_has_is_never_shown(world: World) {
    let p = project(&world, "MetaMajority");
    cli_stage(&world, &p, "1.0.0", b"bytes", &["--metadata", "lang=rust"]);
    // One holder's metadata object replaced, as a failed stage's leftover or a hand edit.
    let key = format!("{p}@1.0.0/metadata");
    let region = REGIONS[0];
    world
        .raw_store(region)
        .put_object(
            &world.buckets[region],
            &key,
            bytes::Bytes::from_static(b"{\n  \"lang\": \"cobol\"\n}"),
            &Default::default(),
        )
        .await
        .unwrap();
    // Whichever region a reader asks first, the majority's metadata wins.
    for first in REGIONS {
        let mut order = vec![first];
        order.extend(REGIONS.iter().filter(|r| **r != first));
        let session = world.session_in(&order, true);
        let artifact = session.get(&p, Some(&v("1.0.0"))).await.unwrap();
        let metadata = artifact.metadata().await.unwrap();
        assert_eq!(
            metadata.get("lang").map(String::as_str),
            Some("rust"),
            "{first} first"
        );
    }
    let mount = Mount::start(&world, &[]);
    let file = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    assert_eq!(xattr(&file, "user.lang"), "rust");
}
on_both_backends!(metadata_that_only_a_minority_of_holders_has_is_never_shown);

/// The `lang` of `{p}@{version}`'s metadata object in each region (None: no object).
async fn lang_in_each_region(world: &World, p: &str, version: &str) -> Vec<Option<String>> {
    let mut langs = Vec::new();
    for region in REGIONS {
        let object = object_in(world, region, &format!("{p}@{version}/metadata")).await;
        langs.push(object.map(|bytes| {
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            json["lang"].as_str().unwrap_or_default().to_string()
        }));
    }
    langs
}

/// The Python tool's `--info` of a version, asking only `region`.
fn python_info_in(world: &World, region: &str, p: &str, version: &str) -> String {
    let (code, out, err) = run(world
        .python()
        .env("STARTIFACT_REGIONS", region)
        .args([p, version, "--info"]));
    assert_eq!(code, 0, "{out}{err}");
    out
}

/// `startifact P 4.0.0 --stage` and `cp` into the mount's `P/5.0.0` with `lang=rust`,
/// with regions 1 and 2 down: both fail. What they put in region 0 is removed again:
/// the region holds neither artifact nor metadata. Once the regions are back, a retry
/// of each with `lang=cobol` stages to all three, and every reader, the Python tool
/// asking region 0 included, reads `cobol`. (Before, region 0 kept `lang=rust`: the
/// retry was `Taken` there, and a reader asking it first saw the failed stage's
/// metadata.)
async fn a_failed_stage_leaves_nothing_and_a_retry_with_other_metadata_takes_every_region(
    mut world: World,
) {
    let two_down = TwoDown::of(&mut world);
    let p = project(&world, "Withdrawn");
    let mount = Mount::start(&world, &[]);
    let folder = folder_five_in_rust(&mount, &p);
    two_down.begin();
    let (code, _, cli_err) = cli_stage_four(&world, &p, Some("rust"));
    assert_eq!(code, 1, "the CLI's stage to one region of three: {cli_err}");
    cp_five_fails(&world, &mount, &p);
    for version in ["4.0.0", "5.0.0"] {
        for key in [format!("{p}@{version}"), format!("{p}@{version}/metadata")] {
            assert_eq!(
                object_in(&world, REGIONS[0], &key).await,
                None,
                "{key} stayed in {}\n{}",
                REGIONS[0],
                mount.log()
            );
        }
    }
    assert!(cli_err.contains("removed again"), "{cli_err}");
    two_down.end();
    retries_with_cobol_take_every_region(&world, &mount, &p, &folder).await;
}
on_both_backends!(a_failed_stage_leaves_nothing_and_a_retry_with_other_metadata_takes_every_region);

/// A stager without `s3:DeleteObject` (the documented write-only policy) in region 0,
/// regions 1 and 2 down: the failed stage cannot remove what it put in region 0. It
/// says so (the CLI's error, the mount's `status.json`), and a retry with other
/// metadata by the same stager takes what it left up as its own: region 0 then holds
/// the retry's metadata, which the Python tool reads there. (Moto only: the refusal is
/// the proxy's.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_failed_stage_could_not_remove_is_reported_and_taken_up_by_its_retry() {
    let (mut world, proxy) = proxied_moto(WorldOptions::default(), &[REGIONS[0]]).await;
    let two_down = TwoDown::of(&mut world);
    proxy.set_deny_deletes(true);
    let p = project(&world, "LeftBehind");
    let mount = Mount::start(&world, &[]);
    let folder = folder_five_in_rust(&mount, &p);
    two_down.begin();
    let (code, _, err) = cli_stage_four(&world, &p, Some("rust"));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("left behind") && err.contains(&format!("{p}@4.0.0/metadata")),
        "{err}"
    );
    cp_five_fails(&world, &mount, &p);
    let entry = status_of(&mount, &p, "5.0.0").unwrap();
    assert_eq!(entry["state"], "failed", "{entry}");
    assert!(
        entry["reason"].as_str().unwrap().contains("left behind"),
        "{entry}"
    );
    for version in ["4.0.0", "5.0.0"] {
        let key = format!("{p}@{version}/metadata");
        assert!(object_in(&world, REGIONS[0], &key).await.is_some(), "{key}");
    }
    two_down.end();
    retries_with_cobol_take_every_region(&world, &mount, &p, &folder).await;
}
