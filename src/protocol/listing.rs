//! Listing the versions of a project by the majority rule (see `census`): a version is
//! listed when more than half of all regions list it; fewer than a majority answering
//! is an error, unless the others refused (a reader without `s3:ListBucket` there), in
//! which case what could be listed is shown. The projects are listed by the same rule.
//!
//! Cost: every region is asked at once. Within a region the pages of `ListObjectsV2`
//! (1,000 keys each; a version and its metadata object are two) come one after the
//! other, since each page's continuation token is in the one before: a project of
//! 10,000 versions is 20 pages a region, and nothing is asked per version.

use std::collections::{HashMap, HashSet};

use futures::future::join_all;
use semver::Version;

use super::census::majority;
use super::error::Error;
use super::names::{validate_project_name, version_of_key, versions_prefix};
use super::session::Session;
use crate::storage::RegionStore;

/// Sorts versions highest first by precedence (build metadata breaks ties, so the
/// order is stable) and drops exact duplicates.
pub fn sort_versions(versions: &mut Vec<Version>) {
    versions.sort_by(|a, b| b.cmp_precedence(a).then_with(|| b.build.cmp(&a.build)));
    versions.dedup();
}

impl Session {
    /// Every version of a project that any answering region lists, highest first.
    pub async fn list_versions(&self, project: &str) -> Result<Vec<Version>, Error> {
        let session = self;
        validate_project_name(project)?;
        let configuration = session.ready_configuration().await?;
        let prefix = versions_prefix(&configuration.bucket_key_prefix, project);
        let answers = join_all(session.stores().iter().map(|store| {
            let prefix = prefix.clone();
            async move {
                let region = store.region().to_string();
                let bucket = session
                    .bucket(store.as_ref())
                    .await
                    .map_err(|e| (e.is_denied(), e.to_string()))?;
                let objects = store
                    .list_objects(&bucket, &prefix)
                    .await
                    .map_err(|e| (e.is_access_denied(), format!("{region}: {e}")))?;
                Ok::<_, (bool, String)>(
                    objects
                        .iter()
                        .filter_map(|o| version_of_key(&prefix, &o.key))
                        .collect::<Vec<_>>(),
                )
            }
        }))
        .await;
        let regions = answers.len();
        let mut listed: Vec<Vec<Version>> = Vec::new();
        let mut reasons = Vec::new();
        // Every region that failed refused (IAM).
        let mut denied_elsewhere = true;
        for answer in answers {
            match answer {
                Ok(found) => listed.push(found),
                Err((denied, reason)) => {
                    tracing::warn!("failed to list versions of {project}: {reason}");
                    reasons.push(reason);
                    denied_elsewhere &= denied;
                }
            }
        }
        if listed.is_empty() {
            return Err(Error::NoRegionsAvailable {
                regions: session.regions(),
                reasons,
                denied: denied_elsewhere,
            });
        }
        if listed.len() < majority(regions) && !denied_elsewhere {
            return Err(Error::NoMajorityListing {
                project: project.to_string(),
                answered: listed.len(),
                needed: majority(regions),
                reasons,
            });
        }
        // Where the permissions let fewer than a majority list, what they can list is shown
        // (lookups still decide by the majority rule).
        let needed = if listed.len() < majority(regions) {
            1
        } else {
            majority(regions)
        };
        Ok(listed_by_at_least(listed, needed))
    }
}

/// The versions that at least `needed` of the regions' listings hold, highest first: a
/// version a minority lists (a stage that failed half way, a racing leftover) is not
/// one a majority could vouch for. Counted in a hash map: a project of 10,000 versions
/// in three regions is 30,000 names, which a search per name would make quadratic.
fn listed_by_at_least(listed: Vec<Vec<Version>>, needed: usize) -> Vec<Version> {
    let mut counts: HashMap<Version, usize> = HashMap::new();
    for versions in listed {
        // A region lists a version once, however many times its answer repeats it.
        let distinct: HashSet<Version> = versions.into_iter().collect();
        for version in distinct {
            *counts.entry(version).or_default() += 1;
        }
    }
    let mut versions: Vec<Version> = counts
        .into_iter()
        .filter(|(_, count)| *count >= needed)
        .map(|(version, _)| version)
        .collect();
    sort_versions(&mut versions);
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_by_precedence_highest_first() {
        let mut versions: Vec<Version> = [
            "1.0.0",
            "1.0.0-rc.1",
            "2.0.0",
            "1.10.0",
            "1.0.0-alpha",
            "1.0.0",
        ]
        .iter()
        .map(|v| Version::parse(v).unwrap())
        .collect();
        sort_versions(&mut versions);
        let order: Vec<String> = versions.iter().map(|v| v.to_string()).collect();
        assert_eq!(
            order,
            ["2.0.0", "1.10.0", "1.0.0", "1.0.0-rc.1", "1.0.0-alpha"]
        );
    }

    fn versions(list: &[&str]) -> Vec<Version> {
        list.iter().map(|v| Version::parse(v).unwrap()).collect()
    }

    #[test]
    fn a_version_a_minority_lists_is_not_listed() {
        let listed = vec![
            versions(&["1.0.0", "2.0.0"]),
            versions(&["1.0.0"]),
            versions(&["1.0.0", "3.0.0"]),
        ];
        assert_eq!(listed_by_at_least(listed, 2), versions(&["1.0.0"]));
    }

    #[test]
    fn a_version_two_of_three_list_is_listed() {
        let listed = vec![versions(&["1.0.0", "2.0.0"]), versions(&["2.0.0", "1.0.0"])];
        assert_eq!(listed_by_at_least(listed, 2), versions(&["2.0.0", "1.0.0"]));
    }
}

/// The projects, by the majority rule: each region lists its per-project parameters
/// under the parameter prefix (`ssm:GetParametersByPath`) and its artifact keys under the
/// key prefix (`s3:ListBucket`), all regions at once; a project is listed when more than
/// half of all regions list it (from either source). Where fewer than a majority can
/// list, because the granted permissions or the regions refuse, what those that can
/// list is shown; `ProjectListing::failures` says why, for the log.
pub async fn list_projects(session: &Session) -> Result<ProjectListing, Error> {
    let configuration = session.ready_configuration().await?;
    let parameter_path = format!("{}/", configuration.parameter_name_prefix);
    let key_prefix = configuration.bucket_key_prefix.clone();
    let answers =
        join_all(session.stores().iter().map(|store| {
            projects_in_region(session, store.as_ref(), &parameter_path, &key_prefix)
        }))
        .await;
    let regions = answers.len();
    let mut listed = Vec::new();
    let mut failures = Vec::new();
    let mut complete = true;
    for answer in answers {
        failures.extend(answer.failures);
        complete &= answer.both_answered;
        if let Some(projects) = answer.projects {
            listed.push(projects);
        }
    }
    let needed = if listed.len() < majority(regions) {
        1
    } else {
        majority(regions)
    };
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for project in listed.into_iter().flatten() {
        *counts.entry(project).or_default() += 1;
    }
    Ok(ProjectListing {
        projects: counts
            .into_iter()
            .filter(|(_, count)| *count >= needed)
            .map(|(project, _)| project)
            .collect(),
        complete,
        failures,
    })
}

/// What one region lists of the projects.
struct RegionProjects {
    /// `None` when neither source answered.
    projects: Option<std::collections::BTreeSet<String>>,
    both_answered: bool,
    failures: Vec<String>,
}

async fn projects_in_region(
    session: &Session,
    store: &dyn RegionStore,
    parameter_path: &str,
    key_prefix: &str,
) -> RegionProjects {
    let region = store.region();
    let mut projects = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    let mut answered = 0;
    match store.list_parameters(parameter_path).await {
        Ok(parameters) => {
            answered += 1;
            for (name, _) in parameters {
                let project = name
                    .strip_prefix(parameter_path)
                    .and_then(|rest| rest.strip_suffix("/latest"));
                if let Some(project) = project.filter(|p| validate_project_name(p).is_ok()) {
                    projects.insert(project.to_string());
                }
            }
        }
        Err(e) => failures.push(format!("{region}: {e}")),
    }
    let listed = match session.bucket(store).await {
        Ok(bucket) => store
            .list_objects(&bucket, key_prefix)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match listed {
        Ok(objects) => {
            answered += 1;
            for object in objects {
                let rest = object.key.strip_prefix(key_prefix).unwrap_or("");
                if let Some((project, version)) = rest.split_once('@') {
                    if !version.contains('/') && validate_project_name(project).is_ok() {
                        projects.insert(project.to_string());
                    }
                }
            }
        }
        Err(e) => failures.push(format!("{region}: {e}")),
    }
    RegionProjects {
        projects: (answered > 0).then_some(projects),
        both_answered: answered == 2,
        failures,
    }
}

/// What `list_projects` found.
#[derive(Debug, Clone, Default)]
pub struct ProjectListing {
    pub projects: Vec<String>,
    /// Both sources answered.
    pub complete: bool,
    pub failures: Vec<String>,
}
