//! Organisation setup: the same configuration written to every region it names, and
//! removed from regions that were dropped.

use futures::future::join_all;

use crate::storage::Backend;

use super::configuration::Configuration;
use super::error::Error;
use super::regions::parse_regions;

/// What setup did in each region.
#[derive(Debug, Clone)]
pub struct SetupReport {
    pub saved: Vec<(String, Result<(), String>)>,
    pub deleted: Vec<(String, Result<(), String>)>,
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
            let result = store
                .put_parameter(parameter, &json)
                .await
                .map_err(|e| e.to_string());
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
            let result = store
                .delete_parameter(parameter)
                .await
                .map_err(|e| e.to_string());
            (region.clone(), result)
        }
    }))
    .await;
    Ok(SetupReport { saved, deleted })
}
