//! A failed stage removes only what it created, and a retry takes up only what its own
//! earlier stages left: three local regions, each behind a store whose faults a test
//! scripts (down, deletes refused, an object written over ours right after our upload).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use semver::Version;

use crate::protocol::configuration::DEFAULT_CONFIGURATION_PARAMETER;
use crate::protocol::metadata::{self, Metadata};
use crate::protocol::setup::{set_up_local_store, LOCAL_BUCKET};
use crate::protocol::{Error, RegionOutcome, Session, StageReport, StageSource, Stager};
use crate::storage::local::LocalRegion;
use crate::storage::store_tests::{Call, Hook, Hooked, Op};
use crate::storage::{Backend, ObjectInfo, PutOptions, RegionStore, StorageError};

use super::STAGE_METADATA_KEY;

const REGIONS: [&str; 3] = ["r0", "r1", "r2"];
const KEY: &str = "App@4.0.0";
const META: &str = "App@4.0.0/metadata";

/// A local region whose faults the test scripts.
type Scripted = Hooked<LocalRegion, Script>;

/// The faults of one region.
#[derive(Debug, Default)]
struct Script {
    down: AtomicBool,
    refuse_deletes: AtomicBool,
    /// Written over the artifact by "a peer" right after our upload of it succeeds.
    overwrite_artifact: Mutex<Option<Bytes>>,
}

#[async_trait]
impl Hook for Script {
    async fn before(&self, call: Call<'_>) -> Result<(), StorageError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StorageError::unavailable("scripted outage"));
        }
        if call.op == Op::DeleteObject && self.refuse_deletes.load(Ordering::SeqCst) {
            return Err(StorageError::access_denied("scripted: s3:DeleteObject"));
        }
        Ok(())
    }

    async fn after(&self, inner: &dyn RegionStore, call: Call<'_>) {
        if !call.op.writes_object() || call.name != KEY {
            return;
        }
        let peer = self.overwrite_artifact.lock().unwrap().take();
        if let (Some(body), Some(bucket)) = (peer, call.bucket) {
            inner
                .put_object(bucket, KEY, body, &PutOptions::default())
                .await
                .unwrap();
        }
    }
}

/// Three scripted regions over a new local store, and a session over them.
struct Store {
    _dir: tempfile::TempDir,
    regions: Vec<Arc<Scripted>>,
    session: Session,
    file: std::path::PathBuf,
}

impl Store {
    async fn new() -> Store {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let names: Vec<String> = REGIONS.iter().map(|r| r.to_string()).collect();
        set_up_local_store(&store, &names, DEFAULT_CONFIGURATION_PARAMETER)
            .await
            .unwrap();
        let regions: Vec<Arc<Scripted>> = REGIONS
            .iter()
            .map(|region| {
                Arc::new(Hooked::new(
                    LocalRegion::new(&store, region),
                    Script::default(),
                ))
            })
            .collect();
        let stores = regions
            .iter()
            .map(|r| Arc::clone(r) as Arc<dyn RegionStore>)
            .collect();
        let session = Session::from_stores(
            Backend::Local { dir: store },
            stores,
            false,
            DEFAULT_CONFIGURATION_PARAMETER.to_string(),
        );
        let file = dir.path().join("app.bin");
        std::fs::write(&file, b"four").unwrap();
        Store {
            _dir: dir,
            regions,
            session,
            file,
        }
    }

    /// Takes regions r1 and r2 down (true) or brings them back.
    fn two_down(&self, down: bool) {
        for region in &self.regions[1..] {
            region.hook.down.store(down, Ordering::SeqCst);
        }
    }

    async fn stage(&self, stager: Stager, lang: Option<&str>) -> Result<StageReport, Error> {
        let metadata: Metadata = lang
            .map(|lang| [("lang".to_string(), lang.to_string())].into())
            .unwrap_or_default();
        let mut source = StageSource::of(&self.file, false).unwrap();
        source.stager = stager;
        let options = Default::default();
        self.session
            .stage_file("App", &Version::new(4, 0, 0), source, metadata, &options)
            .await
    }

    /// What r0 holds under `key`, directly.
    async fn in_r0(&self, key: &str) -> Option<ObjectInfo> {
        self.regions[0]
            .inner
            .head_object(LOCAL_BUCKET, key)
            .await
            .ok()
    }

    /// Writes `body` under `key` in r0 as another stager would (its id, if any).
    async fn plant(&self, key: &str, body: &[u8], id: Option<&str>) {
        let options = PutOptions {
            user_metadata: id
                .map(|id| HashMap::from([(STAGE_METADATA_KEY.to_string(), id.to_string())]))
                .unwrap_or_default(),
            ..PutOptions::default()
        };
        self.regions[0]
            .inner
            .put_object(LOCAL_BUCKET, key, Bytes::copy_from_slice(body), &options)
            .await
            .unwrap();
    }
}

fn failed(result: Result<StageReport, Error>) -> StageReport {
    match result {
        Err(Error::CannotStage(report)) => *report,
        other => panic!("expected CannotStage, got {other:?}"),
    }
}

fn rust_metadata() -> Vec<u8> {
    metadata::encode(&[("lang".to_string(), "rust".to_string())].into()).unwrap()
}

#[tokio::test]
async fn a_stage_that_reaches_a_minority_removes_what_it_created_there() {
    let s = Store::new().await;
    s.two_down(true);
    let report = failed(s.stage(Stager::default(), Some("rust")).await);
    assert_eq!(report.regions[0].1, RegionOutcome::Withdrawn, "{report:?}");
    assert!(report.left_behind.is_empty(), "{report:?}");
    assert!(s.in_r0(KEY).await.is_none(), "the artifact stayed");
    assert!(s.in_r0(META).await.is_none(), "the metadata object stayed");
}

#[tokio::test]
async fn objects_found_already_there_are_never_removed() {
    // Another stager's metadata object, with the same metadata: taken as it is, so
    // our stage's artifact goes beside it; the failed stage removes only the artifact.
    let s = Store::new().await;
    s.plant(META, &rust_metadata(), Some("a-peer")).await;
    s.two_down(true);
    let report = failed(s.stage(Stager::default(), Some("rust")).await);
    assert_eq!(report.regions[0].1, RegionOutcome::Withdrawn, "{report:?}");
    assert!(s.in_r0(KEY).await.is_none(), "our artifact stayed");
    let kept = s
        .in_r0(META)
        .await
        .expect("the peer's metadata object was removed");
    assert_eq!(Stager::id_of(&kept), Some("a-peer"));

    // An artifact with our bytes already there (an earlier stage, any tool's): held,
    // not created, so kept, and its metadata with it.
    let s = Store::new().await;
    s.plant(KEY, b"four", None).await;
    s.plant(META, &rust_metadata(), None).await;
    s.two_down(true);
    let report = failed(s.stage(Stager::default(), Some("rust")).await);
    assert!(
        matches!(report.regions[0].1, RegionOutcome::AlreadyHeld(_)),
        "{report:?}"
    );
    assert!(
        s.in_r0(KEY).await.is_some(),
        "an artifact we found was removed"
    );
    assert!(
        s.in_r0(META).await.is_some(),
        "metadata we found was removed"
    );
}

#[tokio::test]
async fn an_artifact_a_peer_wrote_over_ours_is_never_removed() {
    let s = Store::new().await;
    *s.regions[0].hook.overwrite_artifact.lock().unwrap() = Some(Bytes::from_static(b"peer's"));
    s.two_down(true);
    let report = failed(s.stage(Stager::default(), Some("rust")).await);
    assert!(
        matches!(report.regions[0].1, RegionOutcome::Taken(_)),
        "{report:?}"
    );
    assert_eq!(
        s.in_r0(KEY)
            .await
            .expect("the peer's artifact was removed")
            .size,
        6
    );
    assert_eq!(Stager::id_of(&s.in_r0(KEY).await.unwrap()), None);
    // Our metadata object stays beside the peer's artifact: never pulled from under it.
    let meta = s
        .in_r0(META)
        .await
        .expect("the metadata under the artifact");
    assert_eq!(Stager::id_of(&meta), Some(report.stager.as_str()));
    assert_eq!(report.left_behind.len(), 1, "{report:?}");
}

#[tokio::test]
async fn a_removal_that_fails_is_reported_and_only_a_retry_told_of_it_takes_it_up() {
    let s = Store::new().await;
    s.regions[0]
        .hook
        .refuse_deletes
        .store(true, Ordering::SeqCst);
    s.two_down(true);
    let first = failed(s.stage(Stager::default(), Some("rust")).await);
    assert!(first.regions[0].1.holds(), "{first:?}");
    let left: Vec<&str> = first
        .left_behind
        .iter()
        .map(|(_, what)| what.as_str())
        .collect();
    assert_eq!(left.len(), 2, "{first:?}");
    assert!(
        left[0].starts_with(KEY) && left[0].contains("s3:DeleteObject"),
        "{left:?}"
    );
    let message = Error::CannotStage(Box::new(first.clone())).to_string();
    assert!(message.contains("left behind"), "{message}");
    s.two_down(false);

    // A stage that is not told of it finds another's version: other metadata.
    let stranger = s.stage(Stager::default(), Some("cobol")).await.unwrap();
    assert!(
        matches!(stranger.regions[0].1, RegionOutcome::Taken(_)),
        "{stranger:?}"
    );

    // The retry told of it takes it up: r0 then holds the retry's metadata.
    let s = Store::new().await;
    s.regions[0]
        .hook
        .refuse_deletes
        .store(true, Ordering::SeqCst);
    s.two_down(true);
    let first = failed(s.stage(Stager::default(), Some("rust")).await);
    s.two_down(false);
    let retry = s
        .stage(Stager::after(vec![first.stager.clone()]), Some("cobol"))
        .await
        .unwrap();
    assert!(retry.failed().is_empty(), "{retry:?}");
    let session = &s.session;
    for region in session.stores() {
        let bytes = metadata::read_bounded(region.as_ref(), LOCAL_BUCKET, META)
            .await
            .unwrap();
        let read = metadata::decode(META, &bytes).unwrap();
        assert_eq!(read.get("lang").map(String::as_str), Some("cobol"));
    }
}

#[tokio::test]
async fn without_metadata_the_artifact_is_never_put_beside_another_s() {
    let s = Store::new().await;
    s.plant(META, &rust_metadata(), Some("a-peer")).await;
    let report = s.stage(Stager::default(), None).await.unwrap();
    assert!(
        matches!(report.regions[0].1, RegionOutcome::Taken(_)),
        "{report:?}"
    );
    assert!(
        s.in_r0(KEY).await.is_none(),
        "an artifact beside another's metadata"
    );

    // Our own earlier stage's metadata object is removed instead.
    let s = Store::new().await;
    s.plant(META, &rust_metadata(), Some("ours-before")).await;
    let report = s
        .stage(Stager::after(vec!["ours-before".into()]), None)
        .await
        .unwrap();
    assert!(report.failed().is_empty(), "{report:?}");
    assert!(s.in_r0(META).await.is_none());
}
