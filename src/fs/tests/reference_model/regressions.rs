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

fn replay(allow_delete: bool, ops: Vec<Op>) {
    if let Err(e) = runtime().block_on(run(allow_delete, ops)) {
        panic!("{e}");
    }
}

/// A version staged while eu-west-2 was down, yanked by another tool while us-east-1
/// was down: the repair finds it absent in a majority, ends its entry `failed` and
/// aligns `latest`, so us-east-1 stops naming the yanked version once it answers,
/// without waiting for that tool to run its yank again.
#[test]
fn a_repair_that_finds_its_version_yanked_aligns_latest_where_the_yank_missed() {
    replay(
        false,
        vec![Op::YankWhileRepairDue {
            missed: 0,
            yank_down: Some(1),
            version: "1.1.0",
            bytes: vec![0],
            by_this_mount: false,
            early_repair: false,
            daemon_restarts: false,
        }],
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
        vec![Op::YankWhileRepairDue {
            missed: 0,
            yank_down: Some(0),
            version: "1.1.0",
            bytes: vec![0],
            by_this_mount: true,
            early_repair: true,
            daemon_restarts: false,
        }],
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
            Op::StageMixed {
                in_parts: [false, false, false],
                missed: None,
                version: "1.1.0",
                bytes: vec![0],
                then_down: 0,
            },
            Op::MoveLatestWhileDown(2, PROJECT, "0.9.0"),
            Op::YankWhileRepairDue {
                missed: 0,
                yank_down: Some(0),
                version: "1.0.0",
                bytes: vec![0],
                by_this_mount: false,
                early_repair: false,
                daemon_restarts: false,
            },
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
        Op::YankWhileRepairDue {
            missed: 1,
            yank_down: Some(0),
            version: "1.1.0",
            bytes: vec![0],
            by_this_mount: true,
            early_repair: true,
            daemon_restarts: false,
        },
        Op::Stop(1),
        // Another tool's yank, after which the mount reads `latest` again.
        Op::YankElsewhere(PROJECT, "0.9.0"),
    ];
    let runtime = runtime();
    let (real, _) = match runtime.block_on(run_steps(true, ops)) {
        Ok(done) => done,
        Err(e) => panic!("{e}"),
    };
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
            Op::YankWhileRepairDue {
                missed: 1,
                yank_down: Some(0),
                version: "1.1.0",
                bytes: vec![0],
                by_this_mount: true,
                early_repair: true,
                daemon_restarts: false,
            },
            Op::YankWhileRepairDue {
                missed: 0,
                yank_down: None,
                version: "1.0.0",
                bytes: vec![0],
                by_this_mount: false,
                early_repair: false,
                daemon_restarts: false,
            },
            Op::YankWhileRepairDue {
                missed: 0,
                yank_down: None,
                version: "0.9.0",
                bytes: vec![0],
                by_this_mount: false,
                early_repair: false,
                daemon_restarts: false,
            },
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
            Op::YankWhileRepairDue {
                missed: 1,
                yank_down: Some(0),
                version: "2.0.0",
                bytes: vec![0],
                by_this_mount: true,
                early_repair: true,
                daemon_restarts: false,
            },
            Op::YankWhileRepairDue {
                missed: 1,
                yank_down: Some(0),
                version: "1.1.0",
                bytes: vec![0],
                by_this_mount: true,
                early_repair: false,
                daemon_restarts: false,
            },
        ],
    );
}

/// Every version of SugarWater yanked by another tool, the project made again with
/// `mkdir`, a version staged through it to every region (its spool entry dropped, the
/// project's folder with it) and yanked too: the project is gone (the model once kept
/// the folder made by `mkdir`).
#[test]
fn a_project_folder_goes_with_the_last_version_its_spool_held() {
    let yank = |version| Op::YankWhileRepairDue {
        missed: 0,
        yank_down: None,
        version,
        bytes: vec![0],
        by_this_mount: false,
        early_repair: false,
        daemon_restarts: false,
    };
    replay(
        true,
        vec![
            yank("0.9.0"),
            yank("1.0.0"),
            Op::MkdirProject(PROJECT),
            Op::StageMixed {
                in_parts: [false, false, false],
                missed: None,
                version: "1.1.0",
                bytes: vec![0],
                then_down: 0,
            },
            yank("1.1.0"),
        ],
    );
}

/// A staging version made in SugarWater and removed (`rmdir`), then every version of
/// SugarWater yanked by another tool: the mount lists no SugarWater. After a restart of
/// the daemon it lists an empty SugarWater: the spool made a folder for the project
/// with its first staging version, `rmdir` of that version (and a yank through the
/// mount) leaves it, and the next start takes every project folder of the spool up as
/// made by `mkdir`. The model follows the mount, so this runs the promise itself (the
/// mount shows the same before and after a restart).
#[test]
#[ignore = "open: a project folder the spool kept reappears after a restart"]
fn a_restart_shows_no_project_the_mount_did_not_show_before() {
    let ops = vec![
        Op::MkdirVersion(PROJECT, "1.1.0"),
        Op::Rmdir(PROJECT, "1.1.0"),
        Op::YankElsewhere(PROJECT, "0.9.0"),
        Op::YankElsewhere(PROJECT, "1.0.0"),
    ];
    let runtime = runtime();
    let (mut real, _) = match runtime.block_on(run_steps(false, ops)) {
        Ok(done) => done,
        Err(e) => panic!("{e}"),
    };
    let names = |real: &Real| {
        let entries = runtime
            .block_on(real.f.fs.readdir(ROOT_INODE))
            .expect("ls /");
        entries.into_iter().map(|e| e.name).collect::<Vec<_>>()
    };
    let before = names(&real);
    runtime.block_on(real.f.restart_daemon());
    assert_eq!(names(&real), before, "ls / after a restart of the daemon");
}

/// A version staged while eu-west-2 was down, then the daemon restarted while
/// us-east-1 is down: only ap-south-1 of the two regions that answer holds it, so the
/// new mount neither lists it nor can look it up (EIO) until us-east-1 is back (the
/// model once took the listing and the pin of the mount before the restart for good).
#[test]
fn after_a_restart_a_version_a_majority_cannot_confirm_is_not_listed_and_is_eio() {
    replay(
        false,
        vec![Op::YankWhileRepairDue {
            missed: 0,
            yank_down: Some(1),
            version: "1.1.0",
            bytes: vec![0],
            by_this_mount: true,
            early_repair: false,
            daemon_restarts: true,
        }],
    );
}

/// Every version of SugarWater yanked, one of them staged and yanked through this
/// mount, then the daemon restarted: the spool's folder of the project is taken up at
/// the start as made by `mkdir`, so the empty project stays listed (see
/// `a_restart_shows_no_project_the_mount_did_not_show_before`).
#[test]
fn a_project_folder_the_spool_kept_is_taken_up_at_the_next_start() {
    let yank = |version, by_this_mount, daemon_restarts| Op::YankWhileRepairDue {
        missed: 0,
        yank_down: None,
        version,
        bytes: vec![0],
        by_this_mount,
        early_repair: false,
        daemon_restarts,
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
            Op::YankWhileRepairDue {
                missed: 0,
                yank_down: None,
                version: "1.0.0",
                bytes: vec![0],
                by_this_mount: false,
                early_repair: false,
                daemon_restarts: false,
            },
            Op::Stop(0),
            Op::Rm(PROJECT, "0.9.0"),
            Op::MkdirVersion(PROJECT, "1.1.0"),
        ],
    );
}
