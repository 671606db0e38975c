//! Listing the versions of a project: the union over every region that answers.

use futures::future::join_all;
use semver::Version;

use super::error::Error;
use super::names::{validate_project_name, version_of_key, versions_prefix};
use super::session::Session;

/// Sorts versions highest first by precedence (build metadata breaks ties, so the
/// order is stable) and drops exact duplicates.
pub fn sort_versions(versions: &mut Vec<Version>) {
    versions.sort_by(|a, b| b.cmp_precedence(a).then_with(|| b.build.cmp(&a.build)));
    versions.dedup();
}

pub(crate) async fn list_versions(session: &Session, project: &str) -> Result<Vec<Version>, Error> {
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
                .map_err(|e| e.to_string())?;
            let objects = store
                .list_objects(&bucket, &prefix)
                .await
                .map_err(|e| format!("{region}: {e}"))?;
            Ok::<_, String>(
                objects
                    .iter()
                    .filter_map(|o| version_of_key(&prefix, &o.key))
                    .collect::<Vec<_>>(),
            )
        }
    }))
    .await;
    let mut versions = Vec::new();
    let mut reasons = Vec::new();
    let mut answered = false;
    for answer in answers {
        match answer {
            Ok(found) => {
                answered = true;
                versions.extend(found);
            }
            Err(reason) => {
                tracing::warn!("failed to list versions of {project}: {reason}");
                reasons.push(reason);
            }
        }
    }
    if !answered {
        return Err(Error::NoRegionsAvailable {
            regions: session.regions(),
            reasons,
        });
    }
    sort_versions(&mut versions);
    Ok(versions)
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
}

/// The projects that can be listed: the per-project parameters under the parameter
/// prefix (`ssm:GetParametersByPath`) merged with the artifact keys under the key prefix
/// (`s3:ListBucket`), each from the first region that answers. A source that no
/// region answers adds nothing; `ProjectListing::failures` says why, for the log.
pub async fn list_projects(session: &Session) -> Result<ProjectListing, Error> {
    let configuration = session.ready_configuration().await?;
    let parameter_prefix = configuration.parameter_name_prefix.clone();
    let key_prefix = configuration.bucket_key_prefix.clone();
    let mut projects = std::collections::BTreeSet::new();
    let mut failures = Vec::new();

    let path = format!("{parameter_prefix}/");
    let mut parameters_answered = false;
    for store in session.stores() {
        match store.list_parameters(&path).await {
            Ok(parameters) => {
                for (name, _) in parameters {
                    let project = name
                        .strip_prefix(&path)
                        .and_then(|rest| rest.strip_suffix("/latest"));
                    if let Some(project) = project.filter(|p| validate_project_name(p).is_ok()) {
                        projects.insert(project.to_string());
                    }
                }
                parameters_answered = true;
                break;
            }
            Err(e) => failures.push(format!("{}: {e}", store.region())),
        }
    }

    let mut objects_answered = false;
    for store in session.stores() {
        let listed = match session.bucket(store.as_ref()).await {
            Ok(bucket) => store
                .list_objects(&bucket, &key_prefix)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match listed {
            Ok(objects) => {
                for object in objects {
                    let rest = object.key.strip_prefix(&key_prefix).unwrap_or("");
                    if let Some((project, version)) = rest.split_once('@') {
                        if !version.contains('/') && validate_project_name(project).is_ok() {
                            projects.insert(project.to_string());
                        }
                    }
                }
                objects_answered = true;
                break;
            }
            Err(e) => failures.push(format!("{}: {e}", store.region())),
        }
    }
    Ok(ProjectListing {
        projects: projects.into_iter().collect(),
        complete: parameters_answered && objects_answered,
        failures,
    })
}

/// What `list_projects` found.
#[derive(Debug, Clone, Default)]
pub struct ProjectListing {
    pub projects: Vec<String>,
    /// Both sources answered.
    pub complete: bool,
    pub failures: Vec<String>,
}
