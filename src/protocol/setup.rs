//! Organisation setup: the same configuration written to every region it names, and
//! removed from regions that were dropped; and the setup of an empty local store, so a
//! newcomer needs nothing else.

use std::path::Path;

use futures::future::join_all;

use crate::storage::local::{LocalRegion, LocalStore};
use crate::storage::{Backend, RegionStore, StorageError};

use super::configuration::Configuration;
use super::error::Error;
use super::regions::{parse_regions, regions_from_env};

/// The region an empty local store is set up with when `STARTIFACT_REGIONS` is unset.
pub const DEFAULT_LOCAL_REGION: &str = "local";
/// Bucket-name parameter and bucket an empty local store is set up with.
pub const LOCAL_BUCKET_NAME_PARAM: &str = "/startifact-local/bucket-name";
pub const LOCAL_BUCKET: &str = "startifact-local";

/// What setup did in each region.
#[derive(Debug, Clone)]
pub struct SetupReport {
    pub saved: Vec<(String, Result<(), StorageError>)>,
    pub deleted: Vec<(String, Result<(), StorageError>)>,
}

impl SetupReport {
    pub fn all_ok(&self) -> bool {
        self.saved
            .iter()
            .chain(&self.deleted)
            .all(|(_, r)| r.is_ok())
    }
}

/// Writes `configuration` to each of its regions and deletes the parameter from each of
/// `previous_regions` that it no longer names.
pub async fn save_configuration(
    backend: &Backend,
    parameter: &str,
    configuration: &Configuration,
    previous_regions: &[String],
) -> Result<SetupReport, Error> {
    configuration.validate_for_setup()?;
    let regions = parse_regions(&configuration.regions);
    let json = configuration.to_json();
    let saved = join_all(regions.iter().map(|region| {
        let store = backend.open_region(region);
        let json = json.clone();
        async move {
            let result = store.put_parameter(parameter, &json).await;
            (region.clone(), result)
        }
    }))
    .await;
    let dropped: Vec<&String> = previous_regions
        .iter()
        .filter(|r| !regions.contains(r))
        .collect();
    let deleted = join_all(dropped.into_iter().map(|region| {
        let store = backend.open_region(region);
        async move {
            let result = store.delete_parameter(parameter).await;
            (region.clone(), result)
        }
    }))
    .await;
    Ok(SetupReport { saved, deleted })
}

/// Opens the local store in `dir`, setting it up first when it is empty or missing:
/// the regions of `STARTIFACT_REGIONS` (else one region, `local`). Returns the regions
/// it holds, sorted.
pub async fn open_local_store(
    dir: &Path,
    configuration_parameter: &str,
) -> Result<Vec<String>, Error> {
    let opening = || format!("opening the local store {}", dir.display());
    if LocalStore::is_empty(dir).map_err(|e| Error::io(opening(), e))? {
        let regions = regions_from_env().unwrap_or_else(|_| vec![DEFAULT_LOCAL_REGION.to_string()]);
        set_up_local_store(dir, &regions, configuration_parameter).await?;
    }
    LocalStore::regions(dir).map_err(|e| Error::io(opening(), e))
}

/// Gives every region a bucket, its bucket-name parameter and the organisation
/// configuration (no prefixes).
pub(crate) async fn set_up_local_store(
    dir: &Path,
    regions: &[String],
    configuration_parameter: &str,
) -> Result<(), Error> {
    let configuration = Configuration {
        bucket_name_param: LOCAL_BUCKET_NAME_PARAM.to_string(),
        regions: regions.join(","),
        save_ok: "y".to_string(),
        ..Default::default()
    };
    let json = configuration.to_json();
    for region in regions {
        let local = LocalRegion::new(dir, region);
        local
            .create_bucket(LOCAL_BUCKET)
            .map_err(|e| Error::io(format!("opening the local store {}", dir.display()), e))?;
        for (name, value) in [
            (LOCAL_BUCKET_NAME_PARAM, LOCAL_BUCKET),
            (configuration_parameter, json.as_str()),
        ] {
            local
                .put_parameter(name, value)
                .await
                .map_err(|source| Error::Parameter {
                    name: name.to_string(),
                    region: region.clone(),
                    source,
                })?;
        }
    }
    tracing::info!(dir = %dir.display(), ?regions, "set up a new local store");
    Ok(())
}
