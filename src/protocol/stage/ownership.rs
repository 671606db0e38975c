//! Which objects are a stage's own, and what it does with them.
//!
//! Every object a stage creates carries its stage id (user metadata
//! `startifact-stage`, a random 128-bit id per stage). An object is a stage's own only
//! while it carries that id: an object found already there without it (a peer's, the
//! Python tool's, a stage's we were not told of) is never removed or replaced, and one
//! a peer wrote over ours (a server whose conditional writes are not atomic, or ignored)
//! no longer carries it.
//!
//! - **A stage that never reached a majority** (so it moved `latest` nowhere) removes,
//!   in each region it sent an object to, what it created there: the artifact first,
//!   then the metadata object, and the metadata object only once no artifact is left
//!   beside it (a reader would take an artifact alone for one without metadata). Each
//!   removal is a `HeadObject` (still our id?) then a `DeleteObject` with `If-Match` on
//!   the ETag it saw, so an object written over ours meanwhile stays. A removal that
//!   fails is logged and reported (`StageReport::left_behind`).
//! - **What a failed stage left** (its removal failed, or the daemon running it was
//!   killed) is recognised by a later stage of the same stager, which is given the ids
//!   of its earlier stages (`Stager::earlier`: the mount keeps them with the spool, the
//!   CLI in its state folder): their metadata object is replaced (`If-Match`), their
//!   artifact counts as held when it has our bytes and is removed (`If-Match`) when it
//!   has others. Only ids of stages that have ended are given, so a stage never takes
//!   an object from one still running.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::protocol::names::metadata_key;
use crate::protocol::session::Session;
use crate::storage::{ObjectInfo, RegionStore};

use super::refusal::RegionError;

/// The user-metadata entry (S3 `x-amz-meta-startifact-stage`) naming the stage that
/// created an object.
pub const STAGE_METADATA_KEY: &str = "startifact-stage";

/// Who stages: the id its new objects carry, and the ids of its own earlier stages
/// that ended without publishing (whose objects it may meet and replace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stager {
    pub id: String,
    pub earlier: Vec<String>,
}

impl Default for Stager {
    fn default() -> Self {
        Stager::after(Vec::new())
    }
}

impl Stager {
    /// A new stage, after the stages `earlier` of the same stager.
    pub fn after(earlier: Vec<String>) -> Stager {
        Stager {
            id: new_stage_id(),
            earlier,
        }
    }

    /// The id an object carries, if any.
    pub fn id_of(info: &ObjectInfo) -> Option<&str> {
        info.user_metadata
            .get(STAGE_METADATA_KEY)
            .map(String::as_str)
    }

    /// Whether this stage created the object.
    fn created(&self, info: &ObjectInfo) -> bool {
        Stager::id_of(info) == Some(self.id.as_str())
    }

    /// Whether one of this stager's earlier stages created the object.
    pub fn left_earlier(&self, info: &ObjectInfo) -> bool {
        Stager::id_of(info).is_some_and(|id| self.earlier.iter().any(|e| e == id))
    }
}

/// 128 random bits, as 32 hex digits.
pub fn new_stage_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The objects a stage sent to one region (created, or maybe created: an answer that
/// never came).
#[derive(Debug, Clone, Copy, Default)]
struct SentObjects {
    artifact: bool,
    metadata: bool,
}

/// What a region holds under one key after a removal was tried.
enum Found {
    Absent,
    Removed,
    /// Another's object: left as it is.
    NotOurs,
    /// Ours, still there: why.
    Kept(String),
}

/// One stage's claim on what it creates: its stager, and what it sent to each region
/// (what it removes again if it fails).
#[derive(Debug, Default)]
pub(super) struct Ownership {
    pub(super) stager: Stager,
    sent: Mutex<HashMap<String, SentObjects>>,
}

impl Ownership {
    pub(super) fn new(stager: Stager) -> Self {
        Ownership {
            stager,
            sent: Mutex::new(HashMap::new()),
        }
    }

    /// The user metadata of an object this stage creates: its id, with `extra`.
    pub(super) fn owned_metadata(&self, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut entries = HashMap::from([(STAGE_METADATA_KEY.to_string(), self.stager.id.clone())]);
        for (name, value) in extra {
            entries.insert(name.to_string(), value.to_string());
        }
        entries
    }

    /// Notes that the artifact (else the metadata object) is about to be sent to `region`.
    pub(super) fn note_sent(&self, region: &str, artifact: bool) {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        let entry = sent.entry(region.to_string()).or_default();
        if artifact {
            entry.artifact = true;
        } else {
            entry.metadata = true;
        }
    }

    /// Removes the artifact at `key` with other bytes that an earlier stage of ours
    /// left (`If-Match` on the ETag seen), so that this stage can put its own.
    pub(super) async fn remove_earlier_artifact(
        &self,
        store: &dyn RegionStore,
        bucket: &str,
        key: &str,
        info: &ObjectInfo,
    ) -> Result<(), RegionError> {
        let etag = info.etag.as_deref().unwrap_or_default();
        match store.delete_object(bucket, key, Some(etag)).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(source) => Err(RegionError::NotRemoved {
                key: key.to_string(),
                source,
            }),
        }
    }

    /// After a stage of the artifact at `key` that never reached a majority: removes
    /// from the region what this stage created there (see the module's comment).
    /// Returns whether the artifact was removed, and what of ours stays, each with why.
    pub(super) async fn withdraw(
        &self,
        session: &Session,
        store: &dyn RegionStore,
        key: &str,
    ) -> (bool, Vec<String>) {
        let region = store.region();
        let sent = self
            .sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(region)
            .copied()
            .unwrap_or_default();
        if !sent.artifact && !sent.metadata {
            return (false, Vec::new());
        }
        let meta_key = metadata_key(key);
        let bucket = match session.bucket(store).await {
            Ok(bucket) => bucket,
            Err(e) => {
                let keys: Vec<&str> = [(sent.artifact, key), (sent.metadata, &meta_key)]
                    .into_iter()
                    .filter_map(|(sent, key)| sent.then_some(key))
                    .collect();
                let why = format!("could not be checked: {e}");
                return (false, self.left(region, &keys, &why));
            }
        };
        let artifact = if sent.artifact {
            self.remove_own(store, &bucket, key).await
        } else {
            match store.head_object(&bucket, key).await {
                Err(e) if e.is_not_found() => Found::Absent,
                Err(e) => Found::Kept(format!("could not be checked: {e}")),
                Ok(_) => Found::NotOurs,
            }
        };
        let mut left = Vec::new();
        if let Found::Kept(why) = &artifact {
            left.extend(self.left(region, &[key], why));
        }
        if sent.metadata {
            let metadata = match &artifact {
                Found::Absent | Found::Removed => self.remove_own(store, &bucket, &meta_key).await,
                // Never pull the metadata from under an artifact, ours or another's.
                Found::NotOurs | Found::Kept(_) => {
                    match store.head_object(&bucket, &meta_key).await {
                        Ok(info) if self.stager.created(&info) => {
                            Found::Kept(format!("kept beside {}, which stays", key))
                        }
                        _ => Found::NotOurs,
                    }
                }
            };
            if let Found::Kept(why) = metadata {
                left.extend(self.left(region, &[&meta_key], &why));
            }
        }
        (matches!(artifact, Found::Removed), left)
    }

    /// Removes `key` if this stage created it, only while it is the copy seen.
    async fn remove_own(&self, store: &dyn RegionStore, bucket: &str, key: &str) -> Found {
        let region = store.region();
        let info = match store.head_object(bucket, key).await {
            Ok(info) => info,
            Err(e) if e.is_not_found() => return Found::Absent,
            Err(e) => return Found::Kept(format!("could not be checked: {e}")),
        };
        if !self.stager.created(&info) {
            return Found::NotOurs;
        }
        let Some(etag) = info.etag.as_deref() else {
            return Found::Kept("no ETag to make its removal conditional".into());
        };
        match store.delete_object(bucket, key, Some(etag)).await {
            Ok(()) => {
                tracing::info!(
                    region,
                    key,
                    "removed what this stage created: it reached no majority"
                );
                Found::Removed
            }
            Err(e) if e.is_not_found() => Found::Absent,
            // Written over meanwhile: no longer ours.
            Err(e) if e.is_precondition_failed() => Found::NotOurs,
            Err(e) => Found::Kept(format!("could not be removed: {e}")),
        }
    }

    /// "KEY: why" for each key, each logged.
    fn left(&self, region: &str, keys: &[&str], why: &str) -> Vec<String> {
        keys.iter()
            .map(|key| {
                tracing::warn!(
                    region,
                    key,
                    stage = self.stager.id,
                    "left behind by a stage that reached no majority: {why}"
                );
                format!("{key} ({why})")
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "ownership_tests.rs"]
mod tests;
