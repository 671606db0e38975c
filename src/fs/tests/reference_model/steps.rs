//! The steps of the reference model and how they are generated: each call the kernel
//! makes, what happens around the mount (a region stops and comes back, the repair
//! runs, another tool yanks, the mount learns how a region takes files), and the
//! compound steps that put together an interleaving random sequences would seldom
//! make, so that it comes often.

use super::*;

const PROJECTS: [&str; 3] = [PROJECT, "Lemonade", "bad name"];
const VERSIONS: [&str; 6] = ["0.9.0", "1.0.0", "1.1.0", "2.0.0", "1.1", "latest"];
/// Not `dist.txt`: see `fixture::NEW_FILE`.
const FILES: [&str; 2] = ["model.tar", "model.bin"];
const KEYS: [&str; 5] = [
    "user.team",
    "user.lang",
    "user.startifact:team",
    "user.startifact:region",
    "trusted.team",
];
const VALUES: [&[u8]; 3] = [b"core", b"ops", b"\xff"];

#[derive(Debug, Clone)]
pub(super) enum Op {
    MkdirProject(&'static str),
    MkdirVersion(&'static str, &'static str),
    Create(&'static str, &'static str, &'static str),
    Write(&'static str, &'static str, u64, Vec<u8>),
    Close(&'static str, &'static str),
    SetXattr {
        project: &'static str,
        version: &'static str,
        on_file: bool,
        name: &'static str,
        value: &'static [u8],
        mode: SetMode,
    },
    LinkLatest(&'static str, &'static str),
    Rm(&'static str, &'static str),
    Rmdir(&'static str, &'static str),
    Lookup(&'static str, &'static str),
    /// The region (an index into `REGIONS`) refuses every request.
    Stop(usize),
    /// The region that was stopped answers again.
    Restart,
    /// The daemon's repair step.
    Repair,
    /// Another tool (the CLI, another mount) yanks a staged version; this mount's
    /// metadata TTL then passes, so its listings and `latest` are read again (the
    /// versions it pinned stay pinned).
    YankElsewhere(&'static str, &'static str),
    /// The other tool runs again the yanks a region missed.
    YankElsewhereAgain,
    /// The daemon stops (once every file is closed) and starts again on its spool.
    DaemonRestart,
    /// What the mount learned of a region (an index into `REGIONS`): it takes files
    /// in parts (`true`, a multipart ETag) or in one request (`false`, the MD5).
    SendWay(usize, bool),
    /// `latest` moved while a region is down (which then comes back): the steps that
    /// once let a repair undo a rollback, generated together so they come often.
    MoveLatestWhileDown(usize, &'static str, &'static str),
    /// A yank while a repair is due: a version staged while region `missed` was down
    /// (the spool kept for it), yanked (by this mount's `rm`, else by another tool)
    /// while `yank_down` is down, a repair while it still is when `early_repair`, the
    /// daemon stopped meanwhile and started again when `daemon_restarts`, then the
    /// region back and the repair step.
    YankWhileRepairDue {
        missed: usize,
        yank_down: Option<usize>,
        version: &'static str,
        bytes: Vec<u8>,
        by_this_mount: bool,
        early_repair: bool,
        daemon_restarts: bool,
    },
    /// One content under several ETags: each region sent files the way `in_parts`
    /// says, a version staged (with `missed` down, repaired once it is back), then
    /// `then_down` stops, so reads go on from a holder of another ETag.
    StageMixed {
        in_parts: [bool; REGIONS.len()],
        missed: Option<usize>,
        version: &'static str,
        bytes: Vec<u8>,
        then_down: usize,
    },
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    let project = || prop::sample::select(&PROJECTS[..]);
    let version = || prop::sample::select(&VERSIONS[..]);
    // The versions a compound step stages (canonical ones, some staged already).
    let staged = || prop::sample::select(&VERSIONS[..4]);
    let region = || 0..REGIONS.len();
    let bytes = || prop::collection::vec(any::<u8>(), 1..8);
    let mode = prop::sample::select(vec![SetMode::Any, SetMode::Create, SetMode::Replace]);
    prop_oneof![
        1 => project().prop_map(Op::MkdirProject),
        4 => (project(), version()).prop_map(|(p, v)| Op::MkdirVersion(p, v)),
        4 => (project(), version(), prop::sample::select(&FILES[..]))
            .prop_map(|(p, v, n)| Op::Create(p, v, n)),
        4 => (project(), version(), 0..8u64, bytes())
            .prop_map(|(p, v, o, b)| Op::Write(p, v, o, b)),
        3 => (project(), version()).prop_map(|(p, v)| Op::Close(p, v)),
        4 => (
            project(),
            version(),
            any::<bool>(),
            prop::sample::select(&KEYS[..]),
            prop::sample::select(&VALUES[..]),
            mode,
        )
            .prop_map(|(project, version, on_file, name, value, mode)| Op::SetXattr {
                project,
                version,
                on_file,
                name,
                value,
                mode,
            }),
        2 => (project(), version()).prop_map(|(p, v)| Op::LinkLatest(p, v)),
        2 => (project(), version()).prop_map(|(p, v)| Op::Rm(p, v)),
        2 => (project(), version()).prop_map(|(p, v)| Op::Rmdir(p, v)),
        1 => (project(), version()).prop_map(|(p, v)| Op::Lookup(p, v)),
        1 => region().prop_map(Op::Stop),
        1 => Just(Op::Restart),
        1 => Just(Op::Repair),
        1 => (project(), version()).prop_map(|(p, v)| Op::YankElsewhere(p, v)),
        1 => Just(Op::YankElsewhereAgain),
        1 => Just(Op::DaemonRestart),
        1 => (region(), any::<bool>()).prop_map(|(r, parts)| Op::SendWay(r, parts)),
        2 => (region(), project(), version())
            .prop_map(|(r, p, v)| Op::MoveLatestWhileDown(r, p, v)),
        2 => (
            region(),
            prop::option::of(region()),
            staged(),
            bytes(),
            any::<[bool; 3]>(),
        )
            .prop_map(|(missed, yank_down, version, bytes, [by_this_mount, early_repair, daemon_restarts])| {
                Op::YankWhileRepairDue {
                    missed,
                    yank_down,
                    version,
                    bytes,
                    by_this_mount,
                    early_repair,
                    daemon_restarts,
                }
            }),
        2 => (
            any::<[bool; REGIONS.len()]>(),
            prop::option::of(region()),
            staged(),
            bytes(),
            region(),
        )
            .prop_map(|(in_parts, missed, version, bytes, then_down)| Op::StageMixed {
                in_parts,
                missed,
                version,
                bytes,
                then_down,
            }),
    ]
}

/// `mkdir P/V && cp FILE P/V/` through the mount: the steps of a stage.
fn stage(version: &'static str, bytes: &[u8]) -> [Op; 4] {
    [
        Op::MkdirVersion(PROJECT, version),
        Op::Create(PROJECT, version, FILES[0]),
        Op::Write(PROJECT, version, 0, bytes.to_vec()),
        Op::Close(PROJECT, version),
    ]
}

impl Op {
    /// The steps this one is made of.
    pub(super) fn steps(&self) -> Vec<Op> {
        match self {
            Op::MoveLatestWhileDown(region, p, v) => {
                vec![Op::Stop(*region), Op::LinkLatest(p, v), Op::Restart]
            }
            Op::YankWhileRepairDue {
                missed,
                yank_down,
                version,
                bytes,
                by_this_mount,
                early_repair,
                daemon_restarts,
            } => {
                let mut steps = vec![Op::Stop(*missed)];
                steps.extend(stage(version, bytes));
                steps.push(Op::Restart);
                steps.extend(yank_down.map(Op::Stop));
                steps.push(match by_this_mount {
                    true => Op::Rm(PROJECT, version),
                    false => Op::YankElsewhere(PROJECT, version),
                });
                if *early_repair {
                    steps.push(Op::Repair);
                }
                if *daemon_restarts {
                    steps.push(Op::DaemonRestart);
                }
                // This mount's yank that a region missed is run again here.
                steps.extend([Op::Restart, Op::Repair, Op::YankElsewhereAgain]);
                steps
            }
            Op::StageMixed {
                in_parts,
                missed,
                version,
                bytes,
                then_down,
            } => {
                let mut steps: Vec<Op> = in_parts
                    .iter()
                    .enumerate()
                    .map(|(region, parts)| Op::SendWay(region, *parts))
                    .collect();
                steps.extend(missed.map(Op::Stop));
                steps.extend(stage(version, bytes));
                steps.extend([Op::Restart, Op::Repair, Op::Stop(*then_down), Op::Restart]);
                steps
            }
            other => vec![other.clone()],
        }
    }

    /// The project and version (or `latest`) a step names.
    pub(super) fn names(&self) -> Option<(&'static str, &'static str)> {
        match *self {
            Op::MkdirVersion(p, v)
            | Op::Create(p, v, _)
            | Op::Write(p, v, _, _)
            | Op::Close(p, v)
            | Op::LinkLatest(p, v)
            | Op::Rm(p, v)
            | Op::Rmdir(p, v)
            | Op::Lookup(p, v)
            | Op::YankElsewhere(p, v) => Some((p, v)),
            Op::SetXattr {
                project, version, ..
            } => Some((project, version)),
            Op::MkdirProject(_)
            | Op::Stop(_)
            | Op::Restart
            | Op::Repair
            | Op::YankElsewhereAgain
            | Op::DaemonRestart
            | Op::SendWay(..)
            | Op::MoveLatestWhileDown(..)
            | Op::YankWhileRepairDue { .. }
            | Op::StageMixed { .. } => None,
        }
    }
}
