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

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use semver::Version;

use super::fixture::{Fixture, CURRENT_BYTES, OLD_BYTES, PROJECT, REGIONS};
use crate::fs::{FsOptions, FsResult, SetMode, XattrReply, ROOT_INODE};

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
    ]
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
        match *op {
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
                let got = outcome(self.f.fs.setxattr(inode, name, value, mode).await);
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
                            .rename(parent, PENDING_LINK, parent, "latest")
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
                let got = outcome(self.f.fs.unlink(folder, &file).await);
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

async fn listing(real: &Real, inode: u64) -> Result<Vec<String>, TestCaseError> {
    let entries = real
        .f
        .fs
        .readdir(inode)
        .await
        .map_err(|e| TestCaseError::fail(format!("readdir {inode}: {e}")))?;
    Ok(entries.into_iter().map(|e| e.name).collect())
}

async fn bytes_of(real: &Real, path: &str) -> Result<Vec<u8>, TestCaseError> {
    let fail = |e: crate::fs::FsError| TestCaseError::fail(format!("{path}: {e}"));
    let inode = real.inode(path).await.map_err(fail)?;
    let opened = real
        .f
        .fs
        .open(inode, false, false, &real.f.caller)
        .await
        .map_err(fail)?;
    let read = real.f.fs.read(opened.handle, 0, 1 << 20).await;
    real.f.fs.release(opened.handle);
    Ok(read.map_err(fail)?.to_vec())
}

/// Every attribute listed, with its value.
async fn attributes_of(real: &Real, path: &str) -> Result<Metadata, TestCaseError> {
    let fail = |e: crate::fs::FsError| TestCaseError::fail(format!("{path}: {e}"));
    let inode = real.inode(path).await.map_err(fail)?;
    let XattrReply::Data(list) = real.f.fs.listxattr(inode, 1 << 16).await.map_err(fail)? else {
        return Err(TestCaseError::fail("listxattr answered a size"));
    };
    let mut attributes = Metadata::new();
    for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let value = match real.f.fs.getxattr(inode, &name, 1 << 16).await {
            Ok(XattrReply::Data(value)) => String::from_utf8_lossy(&value).into_owned(),
            other => return Err(TestCaseError::fail(format!("{path} {name}: {other:?}"))),
        };
        prop_assert!(
            attributes.insert(name.clone(), value).is_none(),
            "{} lists {} twice",
            path,
            name
        );
    }
    Ok(attributes)
}

fn user(metadata: &Metadata) -> Metadata {
    metadata
        .iter()
        .map(|(k, v)| (format!("user.{k}"), v.clone()))
        .collect()
}

async fn compare(real: &Real, model: &Model) -> Result<(), TestCaseError> {
    let projects: Vec<String> = model
        .projects
        .iter()
        .filter(|(_, p)| p.visible())
        .map(|(name, _)| name.clone())
        .collect();
    prop_assert_eq!(listing(real, ROOT_INODE).await?, projects.clone(), "ls /");
    for name in &projects {
        let project = &model.projects[name];
        let inode = real
            .inode(name)
            .await
            .map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
        let mut expected: Vec<String> = project
            .in_store()
            .then(|| "latest".into())
            .into_iter()
            .collect();
        let versions: BTreeSet<&Version> = project
            .staged
            .keys()
            .chain(project.staging.keys())
            .collect();
        expected.extend(versions.iter().rev().map(|v| v.to_string()));
        prop_assert_eq!(listing(real, inode).await?, expected, "ls {}", name);
        let target = match real.inode(&format!("{name}/latest")).await {
            Ok(inode) => real.f.fs.readlink(inode).await.map_err(|e| e.errno()),
            Err(e) => Err(e.errno()),
        };
        let expected = project
            .latest
            .as_ref()
            .map(|v| v.to_string())
            .ok_or(libc::ENOENT);
        prop_assert_eq!(target, expected, "readlink {}/latest", name);
        for (v, staged) in &project.staged {
            let folder = format!("{name}/{v}");
            let folder_inode = real
                .inode(&folder)
                .await
                .map_err(|e| TestCaseError::fail(format!("{folder}: {e}")))?;
            prop_assert_eq!(
                listing(real, folder_inode).await?,
                vec![staged.file.clone()],
                "ls {}",
                folder
            );
            let file = format!("{folder}/{}", staged.file);
            prop_assert_eq!(
                bytes_of(real, &file).await?,
                staged.bytes.clone(),
                "cat {}",
                file
            );
            let mut shown = user(&staged.metadata);
            shown.insert(
                "user.startifact:bucket".into(),
                crate::protocol::setup::LOCAL_BUCKET.into(),
            );
            shown.insert("user.startifact:key".into(), format!("{name}@{v}"));
            shown.insert("user.startifact:region".into(), REGIONS[0].into());
            for path in [&folder, &file] {
                let mut listed = attributes_of(real, path).await?;
                let etag = listed.remove("user.startifact:etag").unwrap_or_default();
                prop_assert_eq!(etag.len(), 34, "{} etag {:?}", path, etag);
                prop_assert_eq!(&listed, &shown, "getfattr -d {}", path);
            }
        }
        for (v, staging) in &project.staging {
            let folder = format!("{name}/{v}");
            let folder_inode = real
                .inode(&folder)
                .await
                .map_err(|e| TestCaseError::fail(format!("{folder}: {e}")))?;
            let names: Vec<String> = staging.file.iter().map(|f| f.name.clone()).collect();
            prop_assert_eq!(listing(real, folder_inode).await?, names, "ls {}", folder);
            prop_assert_eq!(
                attributes_of(real, &folder).await?,
                user(&staging.attributes),
                "getfattr -d {}",
                folder
            );
            if let Some(file) = &staging.file {
                let path = format!("{folder}/{}", file.name);
                prop_assert_eq!(
                    bytes_of(real, &path).await?,
                    file.bytes.clone(),
                    "cat {}",
                    path
                );
                let mut merged = staging.attributes.clone();
                merged.extend(file.attributes.clone());
                prop_assert_eq!(
                    attributes_of(real, &path).await?,
                    user(&merged),
                    "getfattr -d {}",
                    path
                );
            }
        }
    }
    Ok(())
}

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
    let mut real = Real {
        f: Fixture::with(options, Some(1 << 20)).await,
        handles: BTreeMap::new(),
    };
    let mut model = Model::new(allow_delete);
    compare(&real, &model).await?;
    for op in &ops {
        real.apply(&mut model, op).await?;
        compare(&real, &model)
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
