//! The sequences the model found, as shrunk, kept as tests of their own: each once
//! showed a difference between the mount and the model (in the model or in the
//! mount), and each runs at every `cargo test --lib`, whatever the random cases draw.

use super::steps::Op;
use super::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Runs `ops`, compared with the model after every step, and fails the test at the
/// first difference.
fn replay(allow_delete: bool, ops: Vec<Op>) {
    replay_on(&runtime(), allow_delete, ops);
}

/// As `replay`, on `runtime`, and returns the mount, for a test that looks further.
fn replay_on(runtime: &tokio::runtime::Runtime, allow_delete: bool, ops: Vec<Op>) -> Real {
    match runtime.block_on(run_steps(allow_delete, ops)) {
        Ok((real, _)) => real,
        Err(e) => panic!("{e}"),
    }
}

/// What differs in a `Op::YankWhileRepairDue` from its usual case: staged while
/// eu-west-2 was down, yanked by another tool with every region up, no repair before
/// the region is back, no restart of the daemon.
#[derive(Default)]
struct Due {
    missed: usize,
    yank_down: Option<usize>,
    by_this_mount: bool,
    early_repair: bool,
    daemon_restarts: bool,
}

/// A yank of `version` (a file of one byte) while its repair is due.
fn yank_due(version: &'static str, due: Due) -> Op {
    Op::YankWhileRepairDue {
        missed: due.missed,
        yank_down: due.yank_down,
        version,
        bytes: vec![0],
        by_this_mount: due.by_this_mount,
        early_repair: due.early_repair,
        daemon_restarts: due.daemon_restarts,
    }
}

/// `version` (a file of one byte) staged through the mount to every region, each sent
/// it in one request, then eu-west-2 stopped and back.
fn staged_everywhere(version: &'static str) -> Op {
    Op::StageMixed {
        in_parts: [false; REGIONS.len()],
        missed: None,
        version,
        bytes: vec![0],
        then_down: 0,
    }
}

/// What `ls` of the mount's root shows.
fn projects_listed(runtime: &tokio::runtime::Runtime, real: &Real) -> Vec<String> {
    let entries = runtime
        .block_on(real.f.fs.readdir(ROOT_INODE))
        .expect("ls /");
    entries.into_iter().map(|e| e.name).collect()
}

/// A version staged while eu-west-2 was down, yanked by another tool while us-east-1
/// was down: the repair finds it absent in a majority, ends its entry `failed` and
/// aligns `latest`, so us-east-1 stops naming the yanked version once it answers,
/// without waiting for that tool to run its yank again.
#[test]
fn a_repair_that_finds_its_version_yanked_aligns_latest_where_the_yank_missed() {
    replay(
        false,
        vec![yank_due(
            "1.1.0",
            Due {
                yank_down: Some(1),
                ..Due::default()
            },
        )],
    );
}

/// A version staged while eu-west-2 was down, yanked through this mount while it was
/// down again (EIO), then repaired before it came back: the repair finds the version
/// absent in a majority and ends its entry `failed`, so it is a staging folder again
/// until the yank is run again (which then discards the kept file).
#[test]
fn a_yank_that_answered_eio_then_a_repair_leaves_a_failed_staging_file() {
    replay(
        true,
        vec![yank_due(
            "1.1.0",
            Due {
                yank_down: Some(0),
                by_this_mount: true,
                early_repair: true,
                ..Due::default()
            },
        )],
    );
}

/// `latest` rolled back to 0.9.0 while ap-south-1 was down (it still names 1.1.0),
/// then another tool yanks 1.0.0 while eu-west-2 is down: once the TTL passed, the
/// mount reads `latest` again from the two regions that answer, which disagree, and
/// no majority can be formed without eu-west-2: the highest answer, 1.1.0, wins (the
/// model once kept its earlier value).
#[test]
fn latest_read_again_with_a_region_down_and_no_majority_is_the_highest_answer() {
    replay(
        false,
        vec![
            staged_everywhere("1.1.0"),
            Op::MoveLatestWhileDown(2, PROJECT, "0.9.0"),
            yank_due(
                "1.0.0",
                Due {
                    yank_down: Some(0),
                    ..Due::default()
                },
            ),
        ],
    );
}

/// A version staged while us-east-1 was down (1.1.0, `latest` in the two regions that
/// took it), yanked through this mount while eu-west-2 was down: EIO, eu-west-2 keeps
/// its copy and its `latest` naming 1.1.0. The repair, run before eu-west-2 is back,
/// finds 1.1.0 absent in a majority and ends its spool entry `failed`, so the `rm` run
/// again once eu-west-2 is back discards that kept file instead of yanking, and
/// nothing ever aligns eu-west-2's `latest` (the project is in no list of lagging
/// ones). With us-east-1 down, the quorum read then hears 1.1.0 and 1.0.0, no
/// majority can form, and the highest answer wins: `latest` names the yanked version
/// (which the Python tool's reader, highest of two answers, downloads from
/// eu-west-2). The model follows the read rule, so this runs the promise itself.
#[test]
fn latest_never_names_a_version_yanked_while_its_repair_was_due() {
    let ops = vec![
        yank_due(
            "1.1.0",
            Due {
                missed: 1,
                yank_down: Some(0),
                by_this_mount: true,
                early_repair: true,
                ..Due::default()
            },
        ),
        Op::Stop(1),
        // Another tool's yank, after which the mount reads `latest` again.
        Op::YankElsewhere(PROJECT, "0.9.0"),
    ];
    let runtime = runtime();
    let real = replay_on(&runtime, true, ops);
    let latest = runtime.block_on(async {
        let inode = real
            .inode(&format!("{PROJECT}/latest"))
            .await
            .expect("latest");
        real.f.fs.readlink(inode).await.expect("readlink")
    });
    assert_eq!(
        latest, "1.0.0",
        "latest names a version yanked everywhere but eu-west-2"
    );
}

/// As `latest_never_names_a_version_yanked_while_its_repair_was_due`, then every
/// version yanked by another tool: eu-west-2 alone names a `latest` (the yanked
/// 1.1.0), and with us-east-1 down the quorum read has one answer and one region
/// without the parameter: EIO, not "no `latest`" (the model once said ENOENT).
#[test]
fn a_quorum_read_of_latest_with_one_answer_and_one_region_without_it_is_eio() {
    replay(
        true,
        vec![
            yank_due(
                "1.1.0",
                Due {
                    missed: 1,
                    yank_down: Some(0),
                    by_this_mount: true,
                    early_repair: true,
                    ..Due::default()
                },
            ),
            yank_due("1.0.0", Due::default()),
            yank_due("0.9.0", Due::default()),
            Op::MoveLatestWhileDown(1, PROJECT, "0.9.0"),
        ],
    );
}

/// A yank through this mount that answered EIO, run again once the region is back:
/// the mount reads `latest` again after it (the model once kept the value it had).
#[test]
fn a_yank_run_again_reads_latest_again() {
    replay(
        true,
        vec![
            yank_due(
                "2.0.0",
                Due {
                    missed: 1,
                    yank_down: Some(0),
                    by_this_mount: true,
                    early_repair: true,
                    ..Due::default()
                },
            ),
            yank_due(
                "1.1.0",
                Due {
                    missed: 1,
                    yank_down: Some(0),
                    by_this_mount: true,
                    ..Due::default()
                },
            ),
        ],
    );
}

/// Every version of SugarWater yanked by another tool, the project made again with
/// `mkdir`, a version staged through it to every region (its spool entry dropped, the
/// project's folder with it) and yanked too: the project is gone (the model once kept
/// the folder made by `mkdir`).
#[test]
fn a_project_folder_goes_with_the_last_version_its_spool_held() {
    let yank = |version| yank_due(version, Due::default());
    replay(
        true,
        vec![
            yank("0.9.0"),
            yank("1.0.0"),
            Op::MkdirProject(PROJECT),
            staged_everywhere("1.1.0"),
            yank("1.1.0"),
        ],
    );
}

/// A staging version made in SugarWater and removed (`rmdir`), then every version of
/// SugarWater yanked by another tool: the mount lists no SugarWater, and after a
/// restart of the daemon it still lists none (the spool's folder of the project, made
/// with its first staging version, once stayed after `rmdir` of that version, and the
/// next start took it up as made by `mkdir`: an empty SugarWater appeared).
#[test]
fn a_restart_shows_no_project_the_mount_did_not_show_before() {
    let ops = vec![
        Op::MkdirVersion(PROJECT, "1.1.0"),
        Op::Rmdir(PROJECT, "1.1.0"),
        Op::YankElsewhere(PROJECT, "0.9.0"),
        Op::YankElsewhere(PROJECT, "1.0.0"),
    ];
    let runtime = runtime();
    let mut real = replay_on(&runtime, false, ops.clone());
    let before = projects_listed(&runtime, &real);
    runtime.block_on(real.f.restart_daemon());
    let after = projects_listed(&runtime, &real);
    assert_eq!(after, before, "ls / after a restart of the daemon");
    // And the model says so too.
    replay(false, [ops, vec![Op::DaemonRestart]].concat());
}

/// As `a_restart_shows_no_project_the_mount_did_not_show_before`, with the restart
/// between `mkdir` and `rmdir` of the staging version: the project's folder goes with
/// it all the same (the start once took up every project folder of the spool as
/// made by `mkdir`, so an empty SugarWater stayed).
#[test]
fn a_project_folder_made_with_a_staging_version_goes_with_it_after_a_restart() {
    replay(
        false,
        vec![
            Op::MkdirVersion(PROJECT, "1.1.0"),
            Op::DaemonRestart,
            Op::Rmdir(PROJECT, "1.1.0"),
            Op::YankElsewhere(PROJECT, "0.9.0"),
            Op::YankElsewhere(PROJECT, "1.0.0"),
        ],
    );
}

/// A project made by `mkdir`, and a staging version made in it and removed on either
/// side of a restart: the empty project stays listed until `rmdir`, restarts or not.
#[test]
fn a_project_folder_made_by_mkdir_is_taken_up_at_the_next_start() {
    replay(
        false,
        vec![
            Op::MkdirProject("Lemonade"),
            Op::DaemonRestart,
            Op::MkdirVersion("Lemonade", "1.1.0"),
            Op::DaemonRestart,
            Op::Rmdir("Lemonade", "1.1.0"),
            Op::DaemonRestart,
        ],
    );
}

/// A version staged while eu-west-2 was down, then the daemon restarted while
/// us-east-1 is down: only ap-south-1 of the two regions that answer holds it, so the
/// new mount neither lists it nor can look it up (EIO) until us-east-1 is back (the
/// model once took the listing and the pin of the mount before the restart for good).
#[test]
fn after_a_restart_a_version_a_majority_cannot_confirm_is_not_listed_and_is_eio() {
    replay(
        false,
        vec![yank_due(
            "1.1.0",
            Due {
                yank_down: Some(1),
                by_this_mount: true,
                daemon_restarts: true,
                ..Due::default()
            },
        )],
    );
}

/// Every version of SugarWater yanked, one of them staged and yanked through this
/// mount, then the daemon restarted: the spool's folder of the project (made with
/// that version, not by `mkdir`) went with the version's yank, so the next start
/// does not take it up, and the project is gone once its last version is (the start
/// once took it up as made by `mkdir`, and the empty project stayed listed).
#[test]
fn a_project_folder_the_spool_made_is_not_taken_up_once_its_version_is_yanked() {
    let yank = |version, by_this_mount, daemon_restarts| {
        let due = Due {
            by_this_mount,
            daemon_restarts,
            ..Due::default()
        };
        yank_due(version, due)
    };
    replay(
        true,
        vec![
            yank("0.9.0", false, false),
            yank("1.1.0", true, true),
            yank("1.0.0", false, false),
        ],
    );
}

/// 1.0.0 yanked by another tool, then 0.9.0, the last version, yanked through this
/// mount while eu-west-2 is down (EIO): whether the mount still finds SugarWater (by
/// the `latest` it keeps) is not said until the yank is run again (the model once
/// said ENOENT).
#[test]
fn a_project_whose_last_yank_failed_half_way_may_still_be_found() {
    replay(
        true,
        vec![
            yank_due("1.0.0", Due::default()),
            Op::Stop(0),
            Op::Rm(PROJECT, "0.9.0"),
            Op::MkdirVersion(PROJECT, "1.1.0"),
        ],
    );
}
