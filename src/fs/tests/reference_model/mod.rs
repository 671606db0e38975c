//! A reference model of the namespace: random sequences of mkdir, create, write,
//! close, setxattr, `ln -sfn` of `latest`, rm, rmdir and lookups, and of what happens
//! around the mount (a region stops and comes back, the repair runs, another tool
//! yanks, the daemon restarts, the mount learns that a region takes files in parts),
//! run both through `ArtifactFs` (no kernel) and through `Model`, a few maps that
//! obviously say what docs/SEMANTICS.md promises. After every step the two are
//! compared: every folder's listing, every file's size and bytes, every attribute
//! listed and its value, where `latest` points, what each region's store holds and
//! names as `latest`, and what status.json shows awaiting repair or failed, and the
//! errno of every refusal.
//!
//! Its parts: `steps` (the steps and how they are generated), `model` and `repairs`
//! (what the mount should do), `compare` (the comparison), `regressions` (the
//! sequences it found, shrunk, kept as tests).
//!
//! `PROPTEST_CASES` runs more cases than the few each `cargo test --lib` runs; a failure
//! prints the shortest sequence of steps that still fails, to be kept in `regressions`,
//! and its seed is saved to be replayed first at every run (see the property below).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use semver::Version;

use super::fixture::{Fixture, CURRENT_BYTES, OLD_BYTES, PROJECT, REGIONS};
use crate::fs::{FsOptions, FsResult, SetMode, XattrReply, ROOT_INODE};
use crate::protocol::{SendingCosts, StageOptions};
use crate::storage::breaker::BreakerPolicy;
use crate::storage::local::LocalRegion;
use crate::storage::RegionStore;

/// The temporary name GNU `ln -sfn` gives its symlink before renaming it over `latest`.
const PENDING_LINK: &str = "latest.model";

type Metadata = BTreeMap<String, String>;
/// What a call answers, as the caller sees it.
type Outcome = Result<(), i32>;

/// More than half of all regions: what a census, a listing and `latest` need.
const MAJORITY: usize = REGIONS.len() / 2 + 1;
/// The answers a quorum read of `latest` needs: half of all regions, rounded up.
const QUORUM: usize = REGIONS.len().div_ceil(2);

// ---- the steps ----

mod steps;
use steps::{op, Op};

// ---- the model ----

mod model;
mod repairs;
use model::*;

// ---- the filesystem, driven as the kernel drives it ----

struct Real {
    f: Fixture,
    /// The writer's handle of each staging file created.
    handles: BTreeMap<(String, String), u64>,
    /// What the mount's stages and repairs learned of how each region takes files.
    sending: Arc<SendingCosts>,
}

fn outcome<T>(result: FsResult<T>) -> Outcome {
    result.map(|_| ()).map_err(|e| e.errno())
}

fn check(step: &str, expected: Outcome, got: Outcome) -> Result<(), TestCaseError> {
    prop_assert_eq!(expected, got, "{}", step);
    Ok(())
}

impl Real {
    /// Sets the mount's figures to what the model says of each region, before every
    /// step: a file (above the threshold of 0 bytes) goes in parts to a region whose
    /// parts are known to be cheaper, in one request to one whose single requests are
    /// (what the stages learn is reset, so that the way stays the model's).
    fn seed_sending(&self, model: &Model) {
        let regions: serde_json::Map<String, serde_json::Value> = REGIONS
            .iter()
            .zip(model.parts_in)
            .map(|(region, in_parts)| {
                let store = LocalRegion::new(&self.f.store, region);
                let endpoint = store.s3_endpoint().expect("a local region's endpoint");
                // `sending::place`: a region's figures for files under 64 MiB.
                let place = format!("{region} {endpoint} <64MiB");
                let (one_request, parts) = if in_parts { (1e300, 0.0) } else { (0.0, 1e300) };
                let costs = serde_json::json!({ "one_request": one_request, "parts": parts });
                (place, costs)
            })
            .collect();
        let figures = serde_json::json!({ "regions": regions }).to_string();
        self.sending
            .take_up(figures.as_bytes(), "the reference model");
    }

    /// This mount's metadata TTL passes for a project: its listings and `latest` are
    /// read again (what it pinned stays pinned).
    fn metadata_ttl_passes(&self, model: &mut Model, project: &str) {
        self.f.fs.namespace.ttl_passes(project);
        model.read_again(project);
    }

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
        if found.is_err() && model.projects.get(project).is_some_and(|p| p.latest_unsaid) {
            return Ok(None); // looked up by its `latest`, which could not be read
        }
        let yank_pending = |p: &Project| !p.pending_yanks.is_empty();
        if model.project(project).is_none() && model.projects.get(project).is_some_and(yank_pending)
        {
            return Ok(None); // whether a project whose yank failed is there is not said
        }
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
        if op.names().is_some_and(|(p, v)| model.skipped(p, v)) {
            return Ok(());
        }
        self.seed_sending(model);
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
                for (p, v, file, discarded) in model.restart() {
                    let path = format!("{p}/{v}");
                    let folder = self.inode(&path).await;
                    let folder = folder.map_err(|e| TestCaseError::fail(format!("{path}: {e}")))?;
                    let got = outcome(self.f.fs.unlink(folder, &file, self.f.pid()).await);
                    check(&format!("rm {path}/{file} again"), Ok(()), got)?;
                    match discarded {
                        true => self.metadata_ttl_passes(model, &p),
                        // What the mount yanked, it reads again.
                        false => model.read_again(&p),
                    }
                }
            }
            Op::Repair => {
                self.f.repair().await;
                model.repair();
            }
            Op::YankElsewhere(p, v) => {
                if !model.yank_elsewhere(p, v) {
                    return Ok(());
                }
                let target = version(v).expect("a staged version");
                let yanked = self.f.other_session().await.yank(p, &target).await;
                let expected = model.down.is_none();
                prop_assert_eq!(yanked.is_ok(), expected, "{}: {:?}", step, yanked.err());
                self.metadata_ttl_passes(model, p);
            }
            Op::YankElsewhereAgain => {
                for (p, v, succeeds) in model.yank_elsewhere_again() {
                    let yanked = self.f.other_session().await.yank(&p, &v).await;
                    let what = format!("{p}@{v} yanked again");
                    prop_assert_eq!(yanked.is_ok(), succeeds, "{}: {:?}", what, yanked.err());
                    self.metadata_ttl_passes(model, &p);
                }
            }
            Op::DaemonRestart => {
                if model.restart_daemon() {
                    self.f.restart_daemon().await;
                }
            }
            Op::SendWay(region, in_parts) => {
                model.send_way(region, in_parts);
                self.seed_sending(model);
            }
            // Expanded into their steps by `Op::steps`.
            Op::MoveLatestWhileDown(..) | Op::YankWhileRepairDue { .. } | Op::StageMixed { .. } => {
            }
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
                if v == "latest" && model.project(p).is_some_and(|p| p.latest_unsaid) {
                    return Ok(());
                }
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
    run_steps(allow_delete, ops).await.map(|_| ())
}

/// Runs `ops` (compared after every step) and returns the mount and the model.
async fn run_steps(allow_delete: bool, ops: Vec<Op>) -> Result<(Real, Model), TestCaseError> {
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
    // Every file of a byte or more is sent each region the way the model says (see
    // `Real::seed_sending`).
    let sending = Arc::new(SendingCosts::in_memory());
    let stage_options = StageOptions {
        multipart_threshold: 0,
        sending: Some(Arc::clone(&sending)),
        ..StageOptions::default()
    };
    let f = Fixture::with_stage_options(options, Some(1 << 20), Some(breaker), stage_options);
    let mut real = Real {
        f: f.await,
        handles: BTreeMap::new(),
        sending,
    };
    let mut model = Model::new(allow_delete);
    compare(&real, &mut model).await?;
    for op in ops.iter().flat_map(Op::steps) {
        real.apply(&mut model, &op).await?;
        compare(&real, &mut model)
            .await
            .map_err(|e| TestCaseError::fail(format!("after {op:?}: {e}")))?;
    }
    Ok((real, model))
}

mod regressions;

#[test]
fn the_namespace_behaves_as_its_reference_model_after_every_step() {
    // A failure's seed is saved, once shrunk, in
    // `proptest-regressions/fs/tests/reference_model/mod.txt` at the top of the
    // package (beside `src/`, as the file's path below `src/`), and every later run
    // replays the seeds that file holds before any new case. Commit the file when it
    // appears, with the shrunk sequence kept as a test in `regressions`. The runner
    // is made by hand here (not by `proptest!`), so it is told this file's path.
    let config = Config {
        cases: cases(),
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
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
