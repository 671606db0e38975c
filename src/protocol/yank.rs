//! Yanking: removing a staged version from every region (its artifact and metadata
//! objects), and moving `latest` back to the highest remaining version wherever it
//! pointed at the yanked one (or removing it when none remains).
//!
//! Unlike a stage, a yank must reach every region: a copy left anywhere would still be
//! served by failover reads. A region that fails is reported and the yank fails; run
//! again, it finishes the job (objects already gone count as removed).

use std::sync::Arc;

use futures::future::join_all;
use semver::Version;

use super::error::Error;
use super::listing::sort_versions;
use super::names::{artifact_key, latest_parameter_name, metadata_key, validate_project_name};
use super::session::Session;
use crate::storage::{RegionStore, StorageError};

/// What yanking did in each region.
#[derive(Debug, Clone)]
pub struct YankReport {
    pub project: String,
    pub version: Version,
    /// Per region: where `latest` now points (None: left alone or removed), or why the
    /// region failed.
    pub regions: Vec<(String, Result<Option<Version>, YankFailure>)>,
}

/// Why a region's part of a yank failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum YankFailure {
    #[error("{0}")]
    Bucket(Arc<Error>),
    #[error("deleting {key} from {bucket}: {source}")]
    Delete {
        key: String,
        bucket: String,
        source: StorageError,
    },
    #[error("cannot list the remaining versions: {0}")]
    Remaining(Arc<Error>),
    #[error("reading {parameter}: {source}")]
    ReadLatest {
        parameter: String,
        source: StorageError,
    },
    #[error("moving {parameter} back to {version}: {source}")]
    MoveBack {
        parameter: String,
        version: Version,
        source: StorageError,
    },
    #[error("removing {parameter}: {source}")]
    RemoveLatest {
        parameter: String,
        source: StorageError,
    },
    /// `latest` points at the yanked version and where it must go back to is unknown.
    #[error("{parameter} points at the yanked version: {reason}")]
    Stranded {
        parameter: String,
        reason: Box<YankFailure>,
    },
}

impl YankReport {
    pub fn failures(&self) -> Vec<String> {
        self.regions
            .iter()
            .filter_map(|(region, r)| r.as_ref().err().map(|e| format!("{region}: {e}")))
            .collect()
    }
}

impl Session {
    /// Removes `project` at `version` from every region.
    pub async fn yank(&self, project: &str, version: &Version) -> Result<YankReport, Error> {
        validate_project_name(project)?;
        if self.read_only() {
            return Err(Error::ReadOnly);
        }
        let configuration = self.ready_configuration().await?.clone();
        let key = artifact_key(&configuration.bucket_key_prefix, project, version);
        let parameter = latest_parameter_name(&configuration.parameter_name_prefix, project);
        let deleted = join_all(self.stores().iter().map(|store| {
            let (store, key) = (Arc::clone(store), &key);
            async move { self.delete_version(store.as_ref(), key).await }
        }))
        .await;
        // Where `latest` must go back to: the highest version left anywhere.
        let remaining = match self.list_versions(project).await {
            Ok(mut versions) => {
                versions.retain(|v| v != version);
                sort_versions(&mut versions);
                Ok(versions.into_iter().next())
            }
            Err(e) => Err(YankFailure::Remaining(Arc::new(e))),
        };
        let moved = join_all(self.stores().iter().zip(deleted).map(|(store, deleted)| {
            let (store, parameter, remaining) = (Arc::clone(store), &parameter, &remaining);
            async move {
                deleted?;
                move_back(store.as_ref(), parameter, version, remaining).await
            }
        }))
        .await;
        let report = YankReport {
            project: project.to_string(),
            version: version.clone(),
            regions: self.regions().into_iter().zip(moved).collect(),
        };
        for (region, result) in &report.regions {
            match result {
                Ok(Some(latest)) => {
                    tracing::info!(region, project, %version, "yanked; latest moved back to {latest}")
                }
                Ok(None) => tracing::info!(region, project, %version, "yanked"),
                Err(e) => tracing::warn!(region, project, %version, "not yanked: {e}"),
            }
        }
        let failures = report.failures();
        if failures.is_empty() {
            Ok(report)
        } else {
            Err(Error::CannotYank {
                project: project.to_string(),
                version: version.to_string(),
                reasons: failures,
            })
        }
    }

    async fn delete_version(&self, store: &dyn RegionStore, key: &str) -> Result<(), YankFailure> {
        let bucket = self
            .bucket(store)
            .await
            .map_err(|e| YankFailure::Bucket(Arc::new(e)))?;
        // The artifact first: once it is gone the version is gone, even if the
        // metadata object outlives a failure.
        for key in [key.to_string(), metadata_key(key)] {
            match store.delete_object(&bucket, &key, None).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(source) => {
                    return Err(YankFailure::Delete {
                        key,
                        bucket,
                        source,
                    })
                }
            }
        }
        Ok(())
    }
}

/// Moves one region's `latest` off the yanked version, if it points there.
async fn move_back(
    store: &dyn RegionStore,
    parameter: &str,
    yanked: &Version,
    remaining: &Result<Option<Version>, YankFailure>,
) -> Result<Option<Version>, YankFailure> {
    match store.get_parameter(parameter).await {
        Ok(text) if Version::parse(text.trim()).is_ok_and(|v| v == *yanked) => {}
        Ok(_) => return Ok(None),
        Err(e) if e.is_not_found() => return Ok(None),
        Err(source) => {
            return Err(YankFailure::ReadLatest {
                parameter: parameter.to_string(),
                source,
            })
        }
    }
    match remaining {
        Ok(Some(version)) => store
            .put_parameter(parameter, &version.to_string())
            .await
            .map(|()| Some(version.clone()))
            .map_err(|source| YankFailure::MoveBack {
                parameter: parameter.to_string(),
                version: version.clone(),
                source,
            }),
        Ok(None) => store
            .delete_parameter(parameter)
            .await
            .map(|()| None)
            .or_else(|e| {
                if e.is_not_found() {
                    Ok(None)
                } else {
                    Err(YankFailure::RemoveLatest {
                        parameter: parameter.to_string(),
                        source: e,
                    })
                }
            }),
        Err(reason) => Err(YankFailure::Stranded {
            parameter: parameter.to_string(),
            reason: Box::new(reason.clone()),
        }),
    }
}
