//! Moving `latest` explicitly (roll back, pin): the latest-version parameter of a
//! project set to an existing version in every region. It holds until a higher version
//! is staged, since staging moves `latest` only forward.

use futures::future::join_all;
use semver::Version;

use super::error::Error;
use super::names::latest_parameter_name;
use super::session::Session;
use crate::storage::StorageError;

/// What moving `latest` did in each region.
#[derive(Debug, Clone)]
pub struct LatestReport {
    pub project: String,
    pub version: Version,
    pub regions: Vec<(String, Result<(), StorageError>)>,
}

impl LatestReport {
    pub fn moved(&self) -> usize {
        self.regions.iter().filter(|(_, r)| r.is_ok()).count()
    }
}

impl Session {
    /// Sets `latest` of `project` to `version`, which must be staged. Succeeds when more
    /// than half of the regions took it (so every quorum read sees it).
    pub async fn set_latest(
        &self,
        project: &str,
        version: &Version,
    ) -> Result<LatestReport, Error> {
        super::names::validate_project_name(project)?;
        if self.read_only() {
            return Err(Error::ReadOnly);
        }
        // Only a version that exists can be the latest.
        self.get(project, Some(version)).await?.locate().await?;
        let prefix = &self.ready_configuration().await?.parameter_name_prefix;
        let name = latest_parameter_name(prefix, project);
        let value = version.to_string();
        let results = join_all(self.stores().iter().map(|store| {
            let (name, value) = (&name, &value);
            async move {
                let result = store.put_parameter(name, value).await;
                (store.region().to_string(), result)
            }
        }))
        .await;
        let report = LatestReport {
            project: project.to_string(),
            version: version.clone(),
            regions: results,
        };
        for (region, result) in &report.regions {
            match result {
                Ok(()) => tracing::info!(region, project, %version, "latest moved"),
                Err(e) => tracing::warn!(region, project, %version, "latest not moved: {e}"),
            }
        }
        if report.moved() * 2 > report.regions.len() {
            Ok(report)
        } else {
            let failures: Vec<String> = report
                .regions
                .iter()
                .filter_map(|(region, r)| r.as_ref().err().map(|e| format!("{region}: {e}")))
                .collect();
            Err(Error::CannotSetLatest {
                project: project.to_string(),
                version: version.to_string(),
                moved: report.moved(),
                regions: report.regions.len(),
                reasons: failures,
            })
        }
    }
}
