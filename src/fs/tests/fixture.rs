//! What every test of the model starts from, with no kernel and no FUSE: a new local
//! store of three regions in a temporary folder; two versions staged through the
//! protocol, as another tool stages them (`SugarWater` 0.9.0 as it is, 1.0.0 with
//! metadata and its saved file name, which moves `latest` to it: the fixture of
//! docs/SEMANTICS.md); and an `ArtifactFs` over it with a staging folder of its own.
//!
//! The session visits the regions in the order of `REGIONS`, so a test knows which one
//! a version is pinned from. The regions, the store and the configuration parameter are
//! given to the store's setup and to the session explicitly: tests run in parallel in
//! one process, and nothing here sets (or depends on) `STARTIFACT_*` variables.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use semver::Version;
use tempfile::TempDir;

use crate::fs::{
    ArtifactFs, Caller, DiskCache, Entry, FsOptions, FsResult, Staging, XattrReply, ROOT_INODE,
};
use crate::protocol::setup::{set_up_local_store, LOCAL_BUCKET};
use crate::protocol::{
    Metadata, Session, SessionBuilder, StageOptions, DEFAULT_CONFIGURATION_PARAMETER,
};
use crate::storage::breaker::BreakerPolicy;
use crate::storage::local::{layout, LocalRegion};
use crate::storage::{Backend, HealthBoard, RegionStore};

pub(super) const PROJECT: &str = "SugarWater";
/// In the order the session visits them: versions are pinned from the first.
pub(super) const REGIONS: [&str; 3] = ["eu-west-2", "us-east-1", "ap-south-1"];
/// 0.9.0, staged without metadata: its file is `SugarWater@0.9.0`.
pub(super) const OLD_BYTES: &[u8] = b"SugarWater 0.9.0\n";
/// 1.0.0, staged with `lang=rust` and its file name, `dist.txt`.
pub(super) const CURRENT_BYTES: &[u8] = b"SugarWater 1.0.0\n";
/// What the tests stage through the mount.
pub(super) const NEW_BYTES: &[u8] = b"SugarWater 1.1.0\n";
/// The staging file's name in tests. Not `dist.txt`: a close looks for descriptors of
/// the closing process that end in the file's name (see `process::closer`).
pub(super) const NEW_FILE: &str = "app.tar";
const STAGING_LIMIT: u64 = 1 << 20;

pub(super) struct Fixture {
    pub fs: ArtifactFs,
    /// The process behind every change: this test process, as the kernel would name it.
    pub caller: Caller,
    pub store: PathBuf,
    /// The staging folder, when the mount takes writes: the repair step runs on it.
    pub staging: Option<Arc<Staging>>,
    /// How the daemon was started, to start it again (`restart_daemon`).
    start: Start,
    _scratch: TempDir,
}

/// What a daemon of the fixture starts with, beside the store.
struct Start {
    options: FsOptions,
    staging_limit: Option<u64>,
    policy: Option<BreakerPolicy>,
    stage_options: StageOptions,
}

impl Fixture {
    /// A writable mount with a staging folder of 1 MiB.
    pub async fn new() -> Self {
        Self::with(FsOptions::default(), Some(STAGING_LIMIT)).await
    }

    /// A `--read-only` mount: no staging folder.
    pub async fn read_only() -> Self {
        let options = FsOptions {
            read_only: true,
            ..FsOptions::default()
        };
        Self::with(options, None).await
    }

    /// A mount whose staging folder holds at most `limit` bytes (`--staging-size`).
    pub async fn with_staging_limit(limit: u64) -> Self {
        Self::with(FsOptions::default(), Some(limit)).await
    }

    /// A mount started with `--allow-delete`.
    pub async fn allowing_delete() -> Self {
        let options = FsOptions {
            allow_delete: true,
            ..FsOptions::default()
        };
        Self::with(options, Some(STAGING_LIMIT)).await
    }

    /// A mount with these options, and a staging folder of `staging_limit` bytes.
    pub async fn with(options: FsOptions, staging_limit: Option<u64>) -> Self {
        Self::with_breaker(options, staging_limit, None).await
    }

    /// As `with`, the session's breaker following `policy` (`None`: the default one).
    pub async fn with_breaker(
        options: FsOptions,
        staging_limit: Option<u64>,
        policy: Option<BreakerPolicy>,
    ) -> Self {
        Self::with_stage_options(options, staging_limit, policy, StageOptions::default()).await
    }

    /// As `with_breaker`, the mount's stages and repairs run with `stage_options`.
    pub async fn with_stage_options(
        options: FsOptions,
        staging_limit: Option<u64>,
        policy: Option<BreakerPolicy>,
        stage_options: StageOptions,
    ) -> Self {
        let scratch = scratch_folder();
        let store = scratch.path().join("store");
        let regions: Vec<String> = REGIONS.iter().map(|r| r.to_string()).collect();
        set_up_local_store(&store, &regions, DEFAULT_CONFIGURATION_PARAMETER)
            .await
            .expect("a new local store");
        let caller = Caller::daemon();
        let fixture_session = session_on(&store).await;
        stage_source(&fixture_session, scratch.path(), "0.9.0", OLD_BYTES, false).await;
        stage_source(
            &fixture_session,
            scratch.path(),
            "1.0.0",
            CURRENT_BYTES,
            true,
        )
        .await;
        let start = Start {
            options: FsOptions {
                uid: caller.uid,
                gid: caller.gid,
                ..options
            },
            staging_limit,
            policy,
            stage_options,
        };
        let (fs, staging) = start.daemon(&store, scratch.path()).await;
        Fixture {
            fs,
            caller,
            store,
            staging,
            start,
            _scratch: scratch,
        }
    }

    /// The daemon stopped, every stage finished, and started again on the same store
    /// and staging folder: a new session (its breakers closed), a mount that pinned
    /// and cached nothing yet, the spool taken up as at a start. Its repair runs when
    /// `repair` is called, as its background task would at once.
    pub async fn restart_daemon(&mut self) {
        // The spool's lock is let go with the last reference to it.
        self.staging = None;
        let session = self.fs.session().clone();
        self.fs = ArtifactFs::new(session, self.start.options.clone());
        let (fs, staging) = self.start.daemon(&self.store, self._scratch.path()).await;
        (self.fs, self.staging) = (fs, staging);
    }

    /// The same mount with an on-disk cache of `capacity` bytes (`--cache-dir`).
    pub fn with_cache(self, capacity: u64) -> Self {
        let dir = self._scratch.path().join("cache");
        let cache = DiskCache::open(&dir, capacity).expect("a cache folder");
        Fixture {
            fs: self.fs.with_cache(Arc::new(cache)),
            ..self
        }
    }

    /// Another session on the same store: another tool, or another mount.
    pub async fn other_session(&self) -> Session {
        session_on(&self.store).await
    }

    /// Stages `bytes` as `version` of the project from another session (another tool).
    pub async fn stage_elsewhere(&self, version: &Version, bytes: &[u8]) {
        let source = self.store.with_file_name(format!("elsewhere-{version}"));
        std::fs::write(&source, bytes).expect("the file to stage");
        self.other_session()
            .await
            .stage(PROJECT, version, &source, Metadata::new(), false)
            .await
            .expect("a stage from another session");
    }

    pub fn pid(&self) -> u32 {
        self.caller.pid
    }

    /// Looks up a path from the root, one name at a time, as the kernel does.
    pub async fn lookup(&self, path: &str) -> FsResult<Entry> {
        let mut names = path.split('/');
        let first = names.next().expect("a path");
        let mut entry = self.fs.lookup(ROOT_INODE, first).await?;
        for name in names {
            entry = self.fs.lookup(entry.attr.inode, name).await?;
        }
        Ok(entry)
    }

    /// The inode of a path that must exist.
    pub async fn inode(&self, path: &str) -> u64 {
        match self.lookup(path).await {
            Ok(entry) => entry.attr.inode,
            Err(e) => panic!("{path}: {e} (errno {})", e.errno()),
        }
    }

    /// An extended attribute's value.
    pub async fn xattr(&self, inode: u64, name: &str) -> Vec<u8> {
        match self.fs.getxattr(inode, name, 1 << 16).await {
            Ok(XattrReply::Data(data)) => data,
            other => panic!("{name}: {other:?}"),
        }
    }

    /// The whole of a file, read through one handle.
    pub async fn read_all(&self, path: &str) -> Vec<u8> {
        let inode = self.inode(path).await;
        let opened = self
            .fs
            .open(inode, false, false, &self.caller)
            .await
            .expect("open for reading");
        let bytes = self.fs.read(opened.handle, 0, 1 << 20).await.expect("read");
        self.fs.release(opened.handle);
        bytes.to_vec()
    }

    /// `mkdir PROJECT/VERSION`, then the first steps of `cp`: create `name` in it and
    /// write `bytes`. Returns the open handle.
    pub async fn start_writing(&self, version: &str, name: &str, bytes: &[u8]) -> u64 {
        let project = self.inode(PROJECT).await;
        let folder = self.fs.mkdir(project, version).await.expect("mkdir");
        let (_, handle) = self
            .fs
            .create(folder.attr.inode, name, &self.caller)
            .await
            .expect("create");
        self.fs
            .write(handle, 0, bytes, self.pid())
            .await
            .expect("write");
        handle
    }

    /// The close of `cp`'s descriptor: FUSE `flush` (whose errno `close()` returns),
    /// then `release`.
    pub async fn close(&self, handle: u64) -> FsResult<()> {
        let closed = self.fs.flush(handle, self.pid()).await;
        self.fs.release(handle);
        closed
    }

    /// `mkdir PROJECT/VERSION && cp FILE PROJECT/VERSION/`: the errno of the close.
    pub async fn cp(&self, version: &str, name: &str, bytes: &[u8]) -> FsResult<()> {
        let handle = self.start_writing(version, name, bytes).await;
        self.close(handle).await
    }

    /// The bytes of the object `key` in a region, read through the storage layer.
    pub async fn object(&self, region: &str, key: &str) -> Vec<u8> {
        let store = LocalRegion::new(&self.store, region);
        let mut object = store
            .get_object(LOCAL_BUCKET, key, None, None)
            .await
            .unwrap_or_else(|e| panic!("{key} in {region}: {e}"));
        let mut bytes = Vec::new();
        while let Some(chunk) = object.body.next().await {
            bytes.extend_from_slice(&chunk.expect("a chunk of the object"));
        }
        bytes
    }

    /// The regions whose bucket holds the object `key`.
    /// The project's `latest` parameter in one region, read directly.
    pub async fn latest_in(&self, region: &str, project: &str) -> Option<Version> {
        let store = LocalRegion::new(&self.store, region);
        match store.get_parameter(&format!("/{project}/latest")).await {
            Ok(text) => Some(Version::parse(text.trim()).expect("a version")),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("latest of {project} in {region}: {e}"),
        }
    }

    pub async fn regions_holding(&self, key: &str) -> Vec<&'static str> {
        let mut holding = Vec::new();
        for region in REGIONS {
            let store = LocalRegion::new(&self.store, region);
            if store.head_object(LOCAL_BUCKET, key).await.is_ok() {
                holding.push(region);
            }
        }
        holding
    }

    /// A region that is down: its folder is gone.
    pub fn take_down(&self, region: &str) {
        std::fs::remove_dir_all(self.store.join(region)).expect("remove a region's folder");
    }

    /// Where a stopped region's folder waits (outside the store) to be brought back.
    fn stopped_folder(&self, region: &str) -> PathBuf {
        let scratch = self
            .store
            .parent()
            .expect("the store is in the scratch folder");
        scratch.join(format!("stopped-{region}"))
    }

    /// A region that refuses every request until `restart`: its folder is moved aside.
    pub fn stop(&self, region: &str) {
        std::fs::rename(self.store.join(region), self.stopped_folder(region))
            .expect("move a region's folder aside");
    }

    /// A region stopped by `stop` answers again, holding what it held.
    pub fn restart(&self, region: &str) {
        std::fs::rename(self.stopped_folder(region), self.store.join(region))
            .expect("bring a region's folder back");
    }

    /// The daemon's repair step, run now for every version awaiting repair (and every
    /// conflict), as at a start.
    pub async fn repair(&self) {
        if let Some(staging) = &self.staging {
            staging.repair_everything_now(self.fs.session()).await;
        }
    }

    /// Writes `bytes` under `key` in one region's bucket, over whatever was there: a
    /// racing stager's leftover, or a hand edit.
    pub async fn plant(&self, region: &str, key: &str, bytes: &[u8]) {
        LocalRegion::new(&self.store, region)
            .put_object(
                LOCAL_BUCKET,
                key,
                bytes::Bytes::copy_from_slice(bytes),
                &crate::storage::PutOptions::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("planting {key} in {region}: {e}"));
    }

    /// Deletes `key` from one region's bucket.
    pub async fn delete(&self, region: &str, key: &str) {
        LocalRegion::new(&self.store, region)
            .delete_object(LOCAL_BUCKET, key, None)
            .await
            .unwrap_or_else(|e| panic!("deleting {key} in {region}: {e}"));
    }

    /// Where a region keeps the parameter `name`.
    pub fn parameter_file(&self, region: &str, name: &str) -> PathBuf {
        layout::path_of(&self.store.join(region).join("parameters"), name)
    }
}

impl Start {
    /// A daemon's mount, with the staging folder in `scratch` when it takes writes.
    async fn daemon(&self, store: &Path, scratch: &Path) -> (ArtifactFs, Option<Arc<Staging>>) {
        let session = match self.policy {
            None => session_on(store).await,
            Some(policy) => session_with_breaker(store, policy),
        };
        let fs = ArtifactFs::new(session, self.options.clone());
        let Some(limit) = self.staging_limit else {
            return (fs, None);
        };
        let folder = Staging::open(&scratch.join("staging"), limit, self.stage_options.clone())
            .expect("a staging folder");
        let folder = Arc::new(folder);
        (fs.with_staging(Arc::clone(&folder)), Some(folder))
    }
}

/// The errno of a call that must fail.
pub(super) fn errno<T: Debug>(result: FsResult<T>) -> i32 {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(e) => e.errno(),
    }
}

/// A folder in memory when the machine has one: the local store syncs every object it
/// writes, which on a disk made each test ten times slower.
fn scratch_folder() -> TempDir {
    let memory = Path::new("/dev/shm");
    memory
        .is_dir()
        .then(|| tempfile::tempdir_in(memory).ok())
        .flatten()
        .unwrap_or_else(|| tempfile::tempdir().expect("a temporary folder"))
}

async fn session_on(store: &Path) -> Session {
    SessionBuilder {
        regions: Some(REGIONS.iter().map(|r| r.to_string()).collect()),
        local_store: Some(store.to_path_buf()),
        configuration_parameter: Some(DEFAULT_CONFIGURATION_PARAMETER.to_string()),
        keep_region_order: true,
        ..SessionBuilder::default()
    }
    .build()
    .await
    .expect("a session on the local store")
}

/// A session like `session_on`'s, its regions guarded by a breaker of `policy`.
fn session_with_breaker(store: &Path, policy: BreakerPolicy) -> Session {
    let board = HealthBoard::new(policy);
    let stores = REGIONS
        .iter()
        .map(|region| board.guard(Arc::new(LocalRegion::new(store, region))))
        .collect();
    Session::from_stores(
        Backend::Local {
            dir: store.to_path_buf(),
        },
        stores,
        false,
        DEFAULT_CONFIGURATION_PARAMETER.to_string(),
    )
}

/// Stages `bytes` as `PROJECT@version` from a file named `dist.txt`, as
/// `startifact PROJECT VERSION --stage dist.txt` does (with `--metadata lang=rust
/// --filename` when `described`).
async fn stage_source(
    session: &Session,
    scratch: &Path,
    version: &str,
    bytes: &[u8],
    described: bool,
) {
    let folder = scratch.join("source").join(version);
    std::fs::create_dir_all(&folder).expect("a source folder");
    let path = folder.join("dist.txt");
    std::fs::write(&path, bytes).expect("a source file");
    let mut metadata = Metadata::new();
    if described {
        metadata.insert("lang".to_string(), "rust".to_string());
    }
    let version = Version::parse(version).expect("a version");
    session
        .stage(PROJECT, &version, &path, metadata, described)
        .await
        .expect("staged through the protocol");
}
