//! What a repair reads before it plans: each region's configuration parameter, its
//! bucket (which must exist, with its bucket-name parameter: both are the user's), a
//! listing of its objects, and each project's `latest` parameter.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::future::join_all;
use semver::Version;

use crate::storage::{ObjectSummary, RegionStore, StorageError};

use super::super::error::Error;
use super::super::names::{
    artifact_key, latest_parameter_name, metadata_key, validate_project_name, versions_prefix,
};
use super::super::session::Session;
use super::failure::{LatestUnreadable, Unusable};
use super::plan::{ProjectAnswers, VersionAnswers};
use super::ruling::Held;

/// One region as the repair sees it: its bucket and its objects, or why it cannot be
/// used.
pub(super) struct RegionView {
    pub store: Arc<dyn RegionStore>,
    pub bucket: Result<String, Arc<Unusable>>,
    pub objects: Result<HashMap<String, ObjectSummary>, Arc<Unusable>>,
}

/// Everything read.
pub(super) struct Survey {
    pub regions: Vec<RegionView>,
    pub configuration: Vec<(String, Result<Option<String>, StorageError>)>,
    pub projects: BTreeMap<String, ProjectAnswers>,
    pub problems: Vec<String>,
}

impl Survey {
    pub fn region(&self, name: &str) -> Option<&RegionView> {
        self.regions.iter().find(|r| r.store.region() == name)
    }
}

/// Reads every region, for one project or (with `None`) every project found.
pub(super) async fn survey(session: &Session, project: Option<&str>) -> Result<Survey, Error> {
    if let Some(project) = project {
        validate_project_name(project)?;
    }
    let configuration = read_configurations(session).await;
    let loaded = session.ready_configuration().await?.clone();
    let listing_prefix = match project {
        Some(project) => versions_prefix(&loaded.bucket_key_prefix, project),
        None => loaded.bucket_key_prefix.clone(),
    };
    let mut problems = Vec::new();
    let views = join_all(session.stores().iter().map(|store| {
        let prefix = listing_prefix.clone();
        let parameter = loaded.bucket_name_param.clone();
        async move { view_region(session, store.clone(), &parameter, &prefix).await }
    }))
    .await;
    for view in &views {
        if let Err(why) = &view.objects {
            problems.push(format!("{}: skipped: {why}", view.store.region()));
        }
    }

    let mut names: BTreeSet<String> = BTreeSet::new();
    match project {
        Some(project) => {
            names.insert(project.to_string());
        }
        None => {
            for view in &views {
                if let Ok(objects) = &view.objects {
                    for key in objects.keys() {
                        if let Some((project, _, _)) = parse_key(&loaded.bucket_key_prefix, key) {
                            names.insert(project);
                        }
                    }
                }
            }
            names.extend(projects_with_parameters(session, &loaded.parameter_name_prefix).await);
        }
    }

    let mut projects = BTreeMap::new();
    for name in names {
        let mut answers = ProjectAnswers::default();
        let mut versions: BTreeSet<String> = BTreeSet::new();
        for view in &views {
            if let Ok(objects) = &view.objects {
                for key in objects.keys() {
                    if let Some((p, version, _)) = parse_key(&loaded.bucket_key_prefix, key) {
                        if p == name {
                            versions.insert(version);
                        }
                    }
                }
            }
        }
        for text in versions {
            let Ok(version) = Version::parse(&text) else {
                continue;
            };
            let key = artifact_key(&loaded.bucket_key_prefix, &name, &version);
            let meta_key = metadata_key(&key);
            answers.versions.insert(
                text,
                VersionAnswers {
                    artifact: with_md5s(&views, &key, held_everywhere(&views, &key)).await,
                    metadata: held_everywhere(&views, &meta_key),
                    version,
                    key,
                    metadata_key: meta_key,
                },
            );
        }
        let parameter = latest_parameter_name(&loaded.parameter_name_prefix, &name);
        answers.latest = join_all(session.stores().iter().map(|store| {
            let parameter = parameter.clone();
            async move {
                let answer = match store.get_parameter(&parameter).await {
                    Ok(text) => Version::parse(text.trim()).map(Some).map_err(|source| {
                        LatestUnreadable::NotAVersion {
                            parameter: parameter.clone(),
                            text,
                            source,
                        }
                    }),
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(e.into()),
                };
                (store.region().to_string(), answer)
            }
        }))
        .await;
        projects.insert(name, answers);
    }
    Ok(Survey {
        regions: views,
        configuration,
        projects,
        problems,
    })
}

async fn read_configurations(
    session: &Session,
) -> Vec<(String, Result<Option<String>, StorageError>)> {
    let name = session.configuration_parameter().to_string();
    join_all(session.stores().iter().map(|store| {
        let name = name.clone();
        async move {
            let answer = match store.get_parameter(&name).await {
                Ok(value) => Ok(Some(value)),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            };
            (store.region().to_string(), answer)
        }
    }))
    .await
}

async fn view_region(
    session: &Session,
    store: Arc<dyn RegionStore>,
    bucket_name_param: &str,
    prefix: &str,
) -> RegionView {
    let region = store.region().to_string();
    let bucket = session.bucket(store.as_ref()).await.map_err(|e| {
        Arc::new(match e {
            Error::Parameter { ref source, .. } if source.is_not_found() => {
                Unusable::NoBucketParameter {
                    parameter: bucket_name_param.to_string(),
                    region: region.clone(),
                    source: e,
                }
            }
            other => Unusable::Bucket(other),
        })
    });
    let objects = match &bucket {
        Err(why) => Err(Arc::clone(why)),
        Ok(bucket) => match store.list_objects(bucket, prefix).await {
            Ok(objects) => Ok(objects.into_iter().map(|o| (o.key.clone(), o)).collect()),
            Err(source) if source.is_not_found() => Err(Arc::new(Unusable::NoBucket {
                bucket: bucket.clone(),
                region,
                source,
            })),
            Err(source) => Err(Arc::new(Unusable::Listing {
                bucket: bucket.clone(),
                prefix: prefix.to_string(),
                source,
            })),
        },
    };
    RegionView {
        store,
        bucket,
        objects,
    }
}

/// Projects that have a `latest` parameter in some region (where listing parameters is
/// allowed; a refusal adds nothing).
async fn projects_with_parameters(session: &Session, parameter_prefix: &str) -> BTreeSet<String> {
    let path = format!("{parameter_prefix}/");
    let mut found = BTreeSet::new();
    for store in session.stores() {
        match store.list_parameters(&path).await {
            Ok(parameters) => {
                for (name, _) in parameters {
                    let project = name
                        .strip_prefix(&path)
                        .and_then(|rest| rest.strip_suffix("/latest"));
                    if let Some(project) = project.filter(|p| validate_project_name(p).is_ok()) {
                        found.insert(project.to_string());
                    }
                }
            }
            Err(e) => tracing::info!(
                region = store.region(),
                "cannot list the project parameters: {e}"
            ),
        }
    }
    found
}

fn held_everywhere(views: &[RegionView], key: &str) -> Vec<(String, Held)> {
    views
        .iter()
        .map(|view| {
            let held = match &view.objects {
                Err(why) => Held::Unknown(why.to_string()),
                Ok(objects) => match objects.get(key) {
                    Some(o) => Held::Object {
                        size: o.size,
                        etag: o.etag.clone(),
                        md5: plain_md5(o.etag.as_deref()),
                    },
                    None => Held::Absent,
                },
            };
            (view.store.region().to_string(), held)
        })
        .collect()
}

/// The MD5 a listed ETag gives: a plain one is the MD5 of the bytes (the listing does not
/// say whether the object is KMS-encrypted, so a copy's MD5 is only a grouping hint; the
/// copy itself checks the bytes).
fn plain_md5(etag: Option<&str>) -> Option<String> {
    let etag = etag?.trim_matches('"');
    (etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| etag.to_ascii_lowercase())
}

/// Where the copies of `key` carry different ETags (one sent in one request, another in
/// parts, or in parts of another size), asks each copy whose MD5 the listing does not
/// give for the MD5 its stager recorded (`HeadObject`): the same bytes under two ETags
/// are one content, not a conflict.
async fn with_md5s(
    views: &[RegionView],
    key: &str,
    mut answers: Vec<(String, Held)>,
) -> Vec<(String, Held)> {
    let etags: BTreeSet<Option<&String>> = answers
        .iter()
        .filter_map(|(_, held)| match held {
            Held::Object { etag, .. } => Some(etag.as_ref()),
            _ => None,
        })
        .collect();
    if etags.len() < 2 {
        return answers;
    }
    let learned = join_all(
        answers
            .iter()
            .zip(views)
            .map(|((_, held), view)| async move {
                match (held, &view.bucket) {
                    (Held::Object { md5: None, .. }, Ok(bucket)) => view
                        .store
                        .head_object(bucket, key)
                        .await
                        .ok()
                        .and_then(|info| info.known_md5()),
                    _ => None,
                }
            }),
    )
    .await;
    for ((_, held), found) in answers.iter_mut().zip(learned) {
        if let (Held::Object { md5, .. }, Some(found)) = (held, found) {
            *md5 = Some(found);
        }
    }
    answers
}

/// `{prefix}{project}@{version}[/metadata]` as (project, version, is metadata).
fn parse_key(prefix: &str, key: &str) -> Option<(String, String, bool)> {
    let rest = key.strip_prefix(prefix)?;
    let (project, tail) = rest.split_once('@')?;
    validate_project_name(project).ok()?;
    let (version, is_metadata) = match tail.strip_suffix("/metadata") {
        Some(version) => (version, true),
        None => (tail, false),
    };
    if version.contains('/') || Version::parse(version).is_err() {
        return None;
    }
    Some((project.to_string(), version.to_string(), is_metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_into_project_version_and_part() {
        assert_eq!(
            parse_key("p/", "p/App@1.0.0"),
            Some(("App".into(), "1.0.0".into(), false))
        );
        assert_eq!(
            parse_key("", "App@1.0.0+b.1/metadata"),
            Some(("App".into(), "1.0.0+b.1".into(), true))
        );
        for other in [
            "App@x",
            "App@1.0.0/other",
            "x/App@1.0.0",
            "App",
            "a b@1.0.0",
        ] {
            assert_eq!(parse_key("", other), None, "{other}");
        }
        assert_eq!(parse_key("p/", "x/App@1.0.0"), None);
    }
}
