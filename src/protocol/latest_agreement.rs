//! `latest` as a replicated value: making a lagging region agree with the majority.
//!
//! A region's `latest` changes only by a stage (once a majority holds the artifact, and
//! then only forward), by an explicit move, or here: every region's value is read, and
//! when more than half of ALL regions name the same version, each region that answered
//! with another value (or with none) is set to it. Nothing is ever moved by the stage's
//! "forward only" rule here, so a rollback made while a region was down holds once the
//! region returns; when no value has a majority, nothing is written and the report says
//! why. A region that cannot be read is left alone.

use futures::future::join_all;
use semver::Version;

use super::census::majority;
use super::error::Error;
use super::names::{latest_parameter_name, validate_project_name};
use super::session::Session;
use crate::storage::StorageError;

/// What one region's `latest` was, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Names(Version),
    /// No parameter, or one that is not a version.
    Nothing,
    /// The region could not be read.
    Unreadable(String),
}

/// What aligning a project's `latest` did.
#[derive(Debug, Clone, Default)]
pub struct Alignment {
    /// The majority's value, when there is one.
    pub value: Option<Version>,
    /// Regions set to it: (region, what they named before, the write's result).
    pub set: Vec<(String, Option<Version>, Result<(), StorageError>)>,
    /// Regions that could not be read, with why.
    pub unreadable: Vec<(String, String)>,
    /// Why nothing could be aligned, or what was left alone.
    pub problems: Vec<String>,
}

impl Alignment {
    /// Nothing is left to do: every region names the majority's value, or no value has
    /// a majority (only an explicit move can settle that); a region that could not be
    /// read or written is left to do.
    pub fn is_settled(&self) -> bool {
        self.unreadable.is_empty() && self.set.iter().all(|(_, _, r)| r.is_ok())
    }
}

/// The majority's value among `claims` (one per configured region), and the regions
/// that must be set to it. Pure, for tests.
pub fn plan(claims: &[(String, Claim)]) -> (Option<Version>, Vec<(String, Option<Version>)>) {
    let needed = majority(claims.len());
    let value = claims.iter().find_map(|(_, claim)| match claim {
        Claim::Names(v) => {
            let agreeing = claims
                .iter()
                .filter(|(_, c)| matches!(c, Claim::Names(w) if w == v))
                .count();
            (agreeing >= needed).then(|| v.clone())
        }
        _ => None,
    });
    let Some(value) = value else {
        return (None, Vec::new());
    };
    let lagging = claims
        .iter()
        .filter_map(|(region, claim)| match claim {
            Claim::Names(v) if *v == value => None,
            Claim::Names(v) => Some((region.clone(), Some(v.clone()))),
            Claim::Nothing => Some((region.clone(), None)),
            Claim::Unreadable(_) => None,
        })
        .collect();
    (Some(value), lagging)
}

impl Session {
    /// Reads `latest` of `project` in every region and sets the regions that differ
    /// from the majority's value to it (see the module's comment).
    pub async fn align_latest(&self, project: &str) -> Result<Alignment, Error> {
        validate_project_name(project)?;
        if self.read_only() {
            return Err(Error::ReadOnly);
        }
        let prefix = &self.ready_configuration().await?.parameter_name_prefix;
        let name = latest_parameter_name(prefix, project);
        let claims: Vec<(String, Claim)> = join_all(self.stores().iter().map(|store| {
            let name = &name;
            async move {
                let claim = match store.get_parameter(name).await {
                    Ok(text) => Version::parse(text.trim())
                        .map(Claim::Names)
                        .unwrap_or(Claim::Nothing),
                    Err(e) if e.is_not_found() => Claim::Nothing,
                    Err(e) => Claim::Unreadable(e.to_string()),
                };
                (store.region().to_string(), claim)
            }
        }))
        .await;
        let mut alignment = Alignment::default();
        for (region, claim) in &claims {
            if let Claim::Unreadable(why) = claim {
                alignment.problems.push(format!(
                    "{project} latest: {region} could not be read: {why}"
                ));
                alignment.unreadable.push((region.clone(), why.clone()));
            }
        }
        let (value, lagging) = plan(&claims);
        let Some(value) = value else {
            let seen: Vec<String> = claims
                .iter()
                .map(|(region, claim)| match claim {
                    Claim::Names(v) => format!("{region}: {v}"),
                    Claim::Nothing => format!("{region}: none"),
                    Claim::Unreadable(_) => format!("{region}: unreadable"),
                })
                .collect();
            alignment.problems.push(format!(
                "{project} latest: no value is held by a majority ({}): left as it is",
                seen.join(", ")
            ));
            return Ok(alignment);
        };
        let text = value.to_string();
        let writes = lagging.into_iter().map(|(region, before)| {
            let (name, text) = (&name, &text);
            async move {
                let result = match self.stores().iter().find(|s| s.region() == region) {
                    Some(store) => store.put_parameter(name, text).await,
                    None => Err(StorageError::other("not a region of this session")),
                };
                match &result {
                    Ok(()) => tracing::info!(
                        region,
                        project,
                        from = before.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                        to = %text,
                        "latest set to the majority's value"
                    ),
                    Err(e) => tracing::warn!(region, project, "latest not aligned: {e}"),
                }
                (region, before, result)
            }
        });
        alignment.set = join_all(writes).await;
        alignment.value = Some(value);
        Ok(alignment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    fn claims(values: &[(&str, Claim)]) -> Vec<(String, Claim)> {
        values
            .iter()
            .map(|(r, c)| (r.to_string(), c.clone()))
            .collect()
    }

    #[test]
    fn a_lagging_region_is_set_to_the_majority_even_when_it_is_higher() {
        // A rollback to 1.0.0 made while c was down: c still names 2.0.0.
        let (value, lagging) = plan(&claims(&[
            ("a", Claim::Names(v("1.0.0"))),
            ("b", Claim::Names(v("1.0.0"))),
            ("c", Claim::Names(v("2.0.0"))),
        ]));
        assert_eq!(value, Some(v("1.0.0")));
        assert_eq!(lagging, [("c".to_string(), Some(v("2.0.0")))]);
    }

    #[test]
    fn a_missing_parameter_is_set_and_an_unreadable_one_left_alone() {
        let (value, lagging) = plan(&claims(&[
            ("a", Claim::Names(v("1.0.0"))),
            ("b", Claim::Names(v("1.0.0"))),
            ("c", Claim::Nothing),
            ("d", Claim::Unreadable("down".into())),
            ("e", Claim::Names(v("1.0.0"))),
        ]));
        assert_eq!(value, Some(v("1.0.0")));
        assert_eq!(lagging, [("c".to_string(), None)]);
    }

    #[test]
    fn no_majority_moves_nothing() {
        let (value, lagging) = plan(&claims(&[
            ("a", Claim::Names(v("1.0.0"))),
            ("b", Claim::Names(v("2.0.0"))),
            ("c", Claim::Unreadable("down".into())),
        ]));
        assert_eq!(value, None);
        assert!(lagging.is_empty());
    }

    #[test]
    fn a_majority_of_all_regions_is_needed_not_of_those_that_answered() {
        let (value, _) = plan(&claims(&[
            ("a", Claim::Names(v("1.0.0"))),
            ("b", Claim::Unreadable("down".into())),
            ("c", Claim::Unreadable("down".into())),
        ]));
        assert_eq!(value, None);
    }

    #[test]
    fn build_metadata_makes_another_value() {
        let (value, _) = plan(&claims(&[
            ("a", Claim::Names(v("1.0.0+a"))),
            ("b", Claim::Names(v("1.0.0+b"))),
            ("c", Claim::Names(v("1.0.0+a"))),
        ]));
        assert_eq!(value, Some(v("1.0.0+a")));
    }
}
