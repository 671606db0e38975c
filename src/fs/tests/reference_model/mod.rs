//! A reference model of the namespace: random sequences of mkdir, create, write,
//! close, setxattr, `ln -sfn` of `latest`, rm, rmdir and lookups, run both through
//! `ArtifactFs` (no kernel) and through `Model`, a few maps that obviously say what
//! docs/SEMANTICS.md promises. After every step the two are compared: every folder's
//! listing, every file's size and bytes, every attribute listed and its value, where
//! `latest` points, and the errno of every refusal.
//!
//! `PROPTEST_CASES` runs more cases than the few each `cargo test --lib` runs; a failure
//! prints the shortest sequence of steps that still fails (no regression file is kept).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use semver::Version;

use super::fixture::{Fixture, CURRENT_BYTES, OLD_BYTES, PROJECT, REGIONS};
use crate::fs::{FsOptions, FsResult, SetMode, XattrReply, ROOT_INODE};
use crate::storage::breaker::BreakerPolicy;

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
/// The temporary name GNU `ln -sfn` gives its symlink before renaming it over `latest`.
const PENDING_LINK: &str = "latest.model";

type Metadata = BTreeMap<String, String>;
/// What a call answers, as the caller sees it.
type Outcome = Result<(), i32>;

#[derive(Debug, Clone)]
enum Op {
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
    /// `latest` moved while a region is down (which then comes back): the steps that
    /// once let a repair undo a rollback, generated together so they come often.
    MoveLatestWhileDown(usize, &'static str, &'static str),
}

fn op() -> impl Strategy<Value = Op> {
    let project = || prop::sample::select(&PROJECTS[..]);
    let version = || prop::sample::select(&VERSIONS[..]);
    let mode = prop::sample::select(vec![SetMode::Any, SetMode::Create, SetMode::Replace]);
    prop_oneof![
        1 => project().prop_map(Op::MkdirProject),
        4 => (project(), version()).prop_map(|(p, v)| Op::MkdirVersion(p, v)),
        4 => (project(), version(), prop::sample::select(&FILES[..]))
            .prop_map(|(p, v, n)| Op::Create(p, v, n)),
        4 => (project(), version(), 0..8u64, prop::collection::vec(any::<u8>(), 1..8))
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
        1 => (0..REGIONS.len()).prop_map(Op::Stop),
        1 => Just(Op::Restart),
        1 => Just(Op::Repair),
        2 => (0..REGIONS.len(), project(), version())
            .prop_map(|(r, p, v)| Op::MoveLatestWhileDown(r, p, v)),
    ]
}

impl Op {
    /// The steps this one is made of.
    fn steps(&self) -> Vec<Op> {
        match *self {
            Op::MoveLatestWhileDown(region, p, v) => {
                vec![Op::Stop(region), Op::LinkLatest(p, v), Op::Restart]
            }
            ref other => vec![other.clone()],
        }
    }

    /// The project and version (or `latest`) a step names.
    fn names(&self) -> Option<(&'static str, &'static str)> {
        match *self {
            Op::MkdirVersion(p, v)
            | Op::Create(p, v, _)
            | Op::Write(p, v, _, _)
            | Op::Close(p, v)
            | Op::LinkLatest(p, v)
            | Op::Rm(p, v)
            | Op::Rmdir(p, v)
            | Op::Lookup(p, v) => Some((p, v)),
            Op::SetXattr {
                project, version, ..
            } => Some((project, version)),
            Op::MkdirProject(_)
            | Op::Stop(_)
            | Op::Restart
            | Op::Repair
            | Op::MoveLatestWhileDown(..) => None,
        }
    }
}

// ---- the model ----

mod model;
use model::*;

// ---- the filesystem, driven as the kernel drives it ----

struct Real {
    f: Fixture,
    /// The writer's handle of each staging file created.
    handles: BTreeMap<(String, String), u64>,
}

fn outcome<T>(result: FsResult<T>) -> Outcome {
    result.map(|_| ()).map_err(|e| e.errno())
}

fn check(step: &str, expected: Outcome, got: Outcome) -> Result<(), TestCaseError> {
    prop_assert_eq!(expected, got, "{}", step);
    Ok(())
}

impl Real {
    async fn inode(&self, path: &str) -> FsResult<u64> {
        self.f.lookup(path).await.map(|e| e.attr.inode)
    }

    /// Looks up a version folder (and its file when `file` names it); a path the model
    /// says is not there must be ENOENT. `None`: stop this step.
    async fn resolve(
        &self,
        model: &Model,
        project: &str,
        name: &str,
        file: Option<&str>,
    ) -> Result<Option<u64>, TestCaseError> {
        if name == "latest" {
            return Ok(None); // the kernel follows it: the version folder's own steps
        }
        let exists = model.folder_exists(project, name)
            && file.is_none_or(|f| model.file_of(project, name).as_deref() == Some(f));
        let path = match file {
            Some(file) => format!("{project}/{name}/{file}"),
            None => format!("{project}/{name}"),
        };
        let found = self.inode(&path).await;
        if !exists {
            check(&format!("lookup {path}"), Err(libc::ENOENT), outcome(found))?;
            return Ok(None);
        }
        match found {
            Ok(inode) => Ok(Some(inode)),
            Err(e) => Err(TestCaseError::fail(format!("lookup {path}: {e}"))),
        }
    }

    async fn project(&self, model: &Model, project: &str) -> Result<Option<u64>, TestCaseError> {
        let found = self.inode(project).await;
        if model.project(project).is_none() {
            check(
                &format!("lookup {project}"),
                Err(libc::ENOENT),
                outcome(found),
            )?;
            return Ok(None);
        }
        found
            .map(Some)
            .map_err(|e| TestCaseError::fail(format!("lookup {project}: {e}")))
    }

    async fn apply(&mut self, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
        let step = format!("{op:?}");
        let key = |p: &str, v: &str| (p.to_string(), v.to_string());
        if op.names().is_some_and(|(p, v)| model.yank_pending(p, v)) {
            return Ok(());
        }
        match *op {
            Op::Stop(region) => {
                if model.stop(region) {
                    self.f.stop(REGIONS[region]);
                }
            }
            Op::Restart => {
                let Some(region) = model.down else {
                    return Ok(());
                };
                self.f.restart(REGIONS[region]);
                for (p, v, file) in model.restart() {
                    let path = format!("{p}/{v}");
                    let folder = self.inode(&path).await;
                    let folder = folder.map_err(|e| TestCaseError::fail(format!("{path}: {e}")))?;
                    let got = outcome(self.f.fs.unlink(folder, &file, self.f.pid()).await);
                    check(&format!("rm {path}/{file} again"), Ok(()), got)?;
                }
            }
            Op::Repair => {
                self.f.repair().await;
                model.repair();
            }
            // Expanded into its steps by `Op::steps`.
            Op::MoveLatestWhileDown(..) => {}
            Op::MkdirProject(p) => {
                let got = outcome(self.f.fs.mkdir(ROOT_INODE, p).await);
                check(&step, model.mkdir_project(p), got)?;
            }
            Op::MkdirVersion(p, v) => {
                let Some(parent) = self.project(model, p).await? else {
                    return Ok(());
                };
                let got = outcome(self.f.fs.mkdir(parent, v).await);
                check(&step, model.mkdir_version(p, v), got)?;
            }
            Op::Create(p, v, name) => {
                let Some(folder) = self.resolve(model, p, v, None).await? else {
                    return Ok(());
                };
                let created = self.f.fs.create(folder, name, &self.f.caller).await;
                if let Ok((_, handle)) = &created {
                    self.handles.insert(key(p, v), *handle);
                }
                check(&step, model.create(p, v, name), outcome(created))?;
            }
            Op::Write(p, v, offset, ref data) => {
                let Some(&handle) = self.handles.get(&key(p, v)) else {
                    return Ok(());
                };
                let got = self.f.fs.write(handle, offset, data, self.f.pid()).await;
                prop_assert_eq!(got.ok(), Some(data.len() as u32), "{}", step);
                model.write(p, v, offset, data);
            }
            Op::Close(p, v) => {
                let Some(handle) = self.handles.remove(&key(p, v)) else {
                    return Ok(());
                };
                let got = outcome(self.f.close(handle).await);
                check(&step, model.close(p, v), got)?;
            }
            Op::SetXattr {
                project,
                version,
                on_file,
                name,
                value,
                mode,
            } => {
                let file = model.file_of(project, version).filter(|_| on_file);
                let Some(inode) = self
                    .resolve(model, project, version, file.as_deref())
                    .await?
                else {
                    return Ok(());
                };
                let got = outcome(
                    self.f
                        .fs
                        .setxattr(inode, name, value, mode, self.f.pid())
                        .await,
                );
                let expected = model.setxattr(project, version, file.is_some(), name, value, mode);
                check(&step, expected, got)?;
            }
            Op::LinkLatest(p, target) => {
                let Some(parent) = self.project(model, p).await? else {
                    return Ok(());
                };
                let mut got = outcome(self.f.fs.symlink(parent, PENDING_LINK, target).await);
                if got.is_ok() {
                    got = outcome(
                        self.f
                            .fs
                            .rename(parent, PENDING_LINK, parent, "latest", self.f.pid())
                            .await,
                    );
                }
                check(&step, model.link_latest(p, target), got)?;
            }
            Op::Rm(p, v) => {
                let Some(file) = model.file_of(p, v) else {
                    return Ok(());
                };
                if self.handles.contains_key(&key(p, v)) {
                    return Ok(()); // what `rm` does to a file being written is not said
                }
                let Some(folder) = self.resolve(model, p, v, None).await? else {
                    return Ok(());
                };
                let got = outcome(self.f.fs.unlink(folder, &file, self.f.pid()).await);
                check(&step, model.rm(p, v), got)?;
            }
            Op::Rmdir(p, v) => {
                let Some(parent) = self.project(model, p).await? else {
                    return Ok(());
                };
                let got = outcome(self.f.fs.rmdir(parent, v).await);
                check(&step, model.rmdir(p, v), got)?;
            }
            Op::Lookup(p, v) => {
                let Some(parent) = self.project(model, p).await? else {
                    return Ok(());
                };
                let got = outcome(self.f.fs.lookup(parent, v).await);
                let found = match (model.project(p), version(v)) {
                    (Some(project), _) if v == "latest" => project.latest.is_some(),
                    (Some(project), Some(v)) => {
                        project.staged.contains_key(&v) || project.staging.contains_key(&v)
                    }
                    _ => false,
                };
                check(&step, if found { Ok(()) } else { Err(libc::ENOENT) }, got)?;
            }
        }
        Ok(())
    }
}

// ---- the comparison after every step ----

mod compare;
use compare::compare;

// ---- the properties ----

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(16)
}

async fn run(allow_delete: bool, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let options = FsOptions {
        allow_delete,
        ..FsOptions::default()
    };
    // A breaker that opens as it does in the daemon but lets a probe through at once: a
    // region brought back is asked again at the next step, as it is after its backoff.
    let breaker = BreakerPolicy {
        first_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        ..BreakerPolicy::default()
    };
    let mut real = Real {
        f: Fixture::with_breaker(options, Some(1 << 20), Some(breaker)).await,
        handles: BTreeMap::new(),
    };
    let mut model = Model::new(allow_delete);
    compare(&real, &mut model).await?;
    for op in ops.iter().flat_map(Op::steps) {
        real.apply(&mut model, &op).await?;
        compare(&real, &mut model)
            .await
            .map_err(|e| TestCaseError::fail(format!("after {op:?}: {e}")))?;
    }
    Ok(())
}

#[test]
fn the_namespace_behaves_as_its_reference_model_after_every_step() {
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let strategy = (any::<bool>(), prop::collection::vec(op(), 1..40));
    TestRunner::new(config)
        .run(&strategy, |(allow_delete, ops)| {
            runtime.block_on(run(allow_delete, ops))
        })
        .unwrap();
}
