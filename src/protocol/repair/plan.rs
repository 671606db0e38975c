//! Planning a repair: from what each region answered (its objects, its configuration,
//! each project's `latest`), the copies and writes that make the regions whole, and the
//! problems that no copy can fix. Pure: no request is made here.
//!
//! The rules:
//! - A version's content is the bytes that more than half of ALL regions hold (the
//!   census's rule, `crate::protocol::census`); it is copied to the regions that say the
//!   key is absent.
//! - A version held by fewer (a stage that failed half way, as the Python tool leaves
//!   it; a yank that missed a region that was down) is reported, never copied: a yank
//!   is final, and a failed stage publishes nothing.
//! - A region holding other bytes under the key is a conflict: reported, never written.
//! - The metadata object follows the same rules, among the regions that hold (or will
//!   hold) the artifact, and is copied before the artifact, so no region ever holds the
//!   artifact without its metadata (a reader would take that as "no metadata"). A
//!   region holding a metadata object that is not the version's (a failed stage's
//!   leftover) does not get the artifact beside it: reported.
//! - `latest` is a replicated value: when more than half of ALL regions name the same
//!   version (and that version is decided), every other readable region is set to it,
//!   forward or back, so a rollback made while a region was down holds. Without such a
//!   majority nothing moves (reported).
//! - The configuration parameter is written where it is missing, when every region that
//!   has it holds the same value.

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;

use super::failure::LatestUnreadable;
use super::ruling::{decide, Content, Decision, Held, Ruling};
use crate::storage::StorageError;

/// Which object of a version a copy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Artifact,
    Metadata,
}

/// One thing the repair does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Writes the configuration parameter where it is missing.
    WriteConfiguration { region: String, value: String },
    /// Copies an object from one region to another.
    Copy {
        project: String,
        version: Version,
        part: Part,
        key: String,
        from: String,
        to: String,
        content: Content,
    },
    /// Sets `latest` in one region to the majority's value, a version whose artifact is
    /// `key` with `content` (checked again before the move).
    MoveLatest {
        project: String,
        region: String,
        from: Option<Version>,
        to: Version,
        key: String,
        content: Content,
    },
}

/// The plan: what to do, and what cannot be done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub problems: Vec<String>,
}

/// What the regions of one project answered.
#[derive(Debug, Default)]
pub struct ProjectAnswers {
    /// Per version: the artifact's and the metadata object's answers, per region.
    pub versions: BTreeMap<String, VersionAnswers>,
    /// Per region: the `latest` parameter (`Ok(None)` when it does not exist).
    pub latest: Vec<(String, Result<Option<Version>, LatestUnreadable>)>,
}

#[derive(Debug, Clone)]
pub struct VersionAnswers {
    pub version: Version,
    pub key: String,
    pub artifact: Vec<(String, Held)>,
    pub metadata_key: String,
    pub metadata: Vec<(String, Held)>,
}

/// Plans the configuration parameter: `answers` is each region's value (`Ok(None)`
/// when missing).
pub fn plan_configuration(
    answers: &[(String, Result<Option<String>, StorageError>)],
    plan: &mut Plan,
) {
    let values: BTreeSet<&String> = answers
        .iter()
        .filter_map(|(_, a)| a.as_ref().ok().and_then(Option::as_ref))
        .collect();
    let missing: Vec<&String> = answers
        .iter()
        .filter(|(_, a)| matches!(a, Ok(None)))
        .map(|(region, _)| region)
        .collect();
    for (region, answer) in answers {
        if let Err(why) = answer {
            plan.problems
                .push(format!("{region}: cannot read the configuration: {why}"));
        }
    }
    if missing.is_empty() {
        return;
    }
    match values.len() {
        1 => {
            let value = values.into_iter().next().cloned().unwrap_or_default();
            for region in missing {
                plan.actions.push(Action::WriteConfiguration {
                    region: region.clone(),
                    value: value.clone(),
                });
            }
        }
        0 => plan
            .problems
            .push("no region holds the configuration: run startifact --setup".into()),
        _ => plan.problems.push(format!(
            "the regions hold {} different configurations: not written to {}",
            values.len(),
            missing
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Plans one project.
pub fn plan_project(project: &str, answers: &ProjectAnswers, plan: &mut Plan) {
    let mut decided: BTreeMap<String, (String, Content)> = BTreeMap::new();
    for (text, version) in &answers.versions {
        let decision = match decide(&version.key, &version.artifact) {
            Ruling::Nowhere => continue,
            Ruling::Undecided(why) => {
                plan.problems
                    .push(format!("{project}@{text}: not repaired: {why}"));
                continue;
            }
            Ruling::Decided(decision) => decision,
        };
        decided.insert(
            text.clone(),
            (version.key.clone(), decision.content.clone()),
        );
        report_leftovers(&format!("{project}@{text}"), &decision, plan);
        let Some(source) = decision.holders.first() else {
            continue;
        };
        // The metadata goes where the artifact is or will be.
        let destined: BTreeSet<&String> =
            decision.holders.iter().chain(&decision.missing).collect();
        let metadata: Vec<(String, Held)> = version
            .metadata
            .iter()
            .filter(|(region, _)| destined.contains(region))
            .cloned()
            .collect();
        // Regions missing the artifact whose metadata object is not the version's.
        let holds_metadata = |region: &String| {
            metadata
                .iter()
                .any(|(r, held)| r == region && matches!(held, Held::Object { .. }))
        };
        let mut foreign: BTreeSet<&String> = BTreeSet::new();
        match decide(&version.metadata_key, &metadata) {
            Ruling::Nowhere => {}
            Ruling::Undecided(why) => {
                foreign.extend(decision.missing.iter().filter(|r| holds_metadata(r)));
                plan.problems
                    .push(format!("{project}@{text} metadata: not repaired: {why}"))
            }
            Ruling::Decided(meta) => {
                foreign.extend(
                    decision
                        .missing
                        .iter()
                        .filter(|r| meta.conflicting.contains(r)),
                );
                report_leftovers(&format!("{project}@{text} metadata"), &meta, plan);
                if let Some(meta_source) = meta.holders.first() {
                    for region in &meta.missing {
                        plan.actions.push(Action::Copy {
                            project: project.to_string(),
                            version: version.version.clone(),
                            part: Part::Metadata,
                            key: version.metadata_key.clone(),
                            from: meta_source.clone(),
                            to: region.clone(),
                            content: meta.content.clone(),
                        });
                    }
                }
            }
        }
        for region in &decision.missing {
            if foreign.contains(region) {
                plan.problems.push(format!(
                    "{project}@{text}: not copied to {region}: it holds a metadata object that is not the version's (left as it is; the artifact is never put beside it)"
                ));
                continue;
            }
            plan.actions.push(Action::Copy {
                project: project.to_string(),
                version: version.version.clone(),
                part: Part::Artifact,
                key: version.key.clone(),
                from: source.clone(),
                to: region.clone(),
                content: decision.content.clone(),
            });
        }
    }
    plan_latest(project, answers, &decided, plan);
}

fn report_leftovers(what: &str, decision: &Decision, plan: &mut Plan) {
    for region in &decision.conflicting {
        plan.problems.push(format!(
            "{what}: conflict: {region} holds other bytes than {} (left as it is)",
            decision.holders.join(", ")
        ));
    }
    for (region, why) in &decision.unknown {
        plan.problems
            .push(format!("{what}: {region} could not be checked: {why}"));
    }
}

fn plan_latest(
    project: &str,
    answers: &ProjectAnswers,
    decided: &BTreeMap<String, (String, Content)>,
    plan: &mut Plan,
) {
    use crate::protocol::latest_agreement::{self, Claim};
    let claims: Vec<(String, Claim)> = answers
        .latest
        .iter()
        .map(|(region, answer)| {
            let claim = match answer {
                Ok(Some(v)) => Claim::Names(v.clone()),
                Ok(None) => Claim::Nothing,
                Err(why) => {
                    plan.problems.push(format!(
                        "{project} latest: {region} could not be read: {why}"
                    ));
                    Claim::Unreadable(why.to_string())
                }
            };
            (region.clone(), claim)
        })
        .collect();
    let (target, lagging) = latest_agreement::plan(&claims);
    let Some(target) = target else {
        if claims.iter().any(|(_, c)| matches!(c, Claim::Names(_))) {
            plan.problems.push(format!(
                "{project} latest: no version is named by a majority of the regions (left as it is)"
            ));
        }
        return;
    };
    let Some((key, content)) = decided.get(&target.to_string()) else {
        if !lagging.is_empty() {
            plan.problems.push(format!(
                "{project} latest: a majority names {target}, which no majority holds (left as it is)"
            ));
        }
        return;
    };
    for (region, from) in lagging {
        plan.actions.push(Action::MoveLatest {
            project: project.to_string(),
            region,
            from,
            to: target.clone(),
            key: key.clone(),
            content: content.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::ruling::tests::{answers, object};
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    fn version_answers(version: &str, artifact: &[Held], metadata: &[Held]) -> VersionAnswers {
        VersionAnswers {
            version: v(version),
            key: format!("P@{version}"),
            artifact: answers(artifact),
            metadata_key: format!("P@{version}/metadata"),
            metadata: answers(metadata),
        }
    }

    #[test]
    fn metadata_is_copied_before_the_artifact() {
        let mut project = ProjectAnswers::default();
        project.versions.insert(
            "1.0.0".into(),
            version_answers(
                "1.0.0",
                &[object("x"), object("x"), Held::Absent],
                &[object("m"), object("m"), Held::Absent],
            ),
        );
        let mut plan = Plan::default();
        plan_project("P", &project, &mut plan);
        let parts: Vec<(Part, &str)> = plan
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Copy { part, to, .. } => Some((*part, to.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(parts, [(Part::Metadata, "c"), (Part::Artifact, "c")]);
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    }

    #[test]
    fn an_artifact_is_never_copied_beside_a_metadata_object_that_is_not_the_version_s() {
        for (metadata, leftover) in [
            // The version's metadata is m; c holds a failed stage's n.
            ([object("m"), object("m"), object("n")], "other metadata"),
            // The version has none; c holds a failed stage's.
            ([Held::Absent, Held::Absent, object("n")], "no metadata"),
        ] {
            let mut project = ProjectAnswers::default();
            project.versions.insert(
                "1.0.0".into(),
                version_answers(
                    "1.0.0",
                    &[object("x"), object("x"), Held::Absent],
                    &metadata,
                ),
            );
            let mut plan = Plan::default();
            plan_project("P", &project, &mut plan);
            assert!(plan.actions.is_empty(), "{leftover}: {:?}", plan.actions);
            assert!(
                plan.problems.iter().any(|p| p.contains("not copied to c")),
                "{leftover}: {:?}",
                plan.problems
            );
        }
    }

    fn two_versions_held_everywhere() -> ProjectAnswers {
        let mut project = ProjectAnswers::default();
        let whole = [object("x"), object("x"), object("x")];
        let none = [Held::Absent, Held::Absent, Held::Absent];
        for version in ["1.0.0", "2.0.0"] {
            project
                .versions
                .insert(version.into(), version_answers(version, &whole, &none));
        }
        project
    }

    #[test]
    fn latest_is_set_to_the_majority_s_value_even_backward_so_a_rollback_holds() {
        // Rolled back to 1.0.0 while c was down: c still names 2.0.0, d has none.
        let mut project = two_versions_held_everywhere();
        project.latest = vec![
            ("a".into(), Ok(Some(v("1.0.0")))),
            ("b".into(), Ok(Some(v("1.0.0")))),
            ("c".into(), Ok(Some(v("2.0.0")))),
        ];
        let mut plan = Plan::default();
        plan_project("P", &project, &mut plan);
        let content = Content {
            size: 3,
            etag: Some("x".into()),
            md5: None,
        };
        assert_eq!(
            plan.actions,
            [Action::MoveLatest {
                project: "P".into(),
                region: "c".into(),
                from: Some(v("2.0.0")),
                to: v("1.0.0"),
                key: "P@1.0.0".into(),
                content,
            }]
        );
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    }

    #[test]
    fn without_a_majority_value_latest_is_left_as_it_is_and_reported() {
        let mut project = two_versions_held_everywhere();
        project.latest = vec![
            ("a".into(), Ok(Some(v("2.0.0")))),
            ("b".into(), Ok(Some(v("1.0.0")))),
            ("c".into(), Ok(None)),
        ];
        let mut plan = Plan::default();
        plan_project("P", &project, &mut plan);
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        assert_eq!(plan.problems.len(), 1, "{:?}", plan.problems);
    }

    #[test]
    fn a_region_naming_a_version_nobody_holds_is_set_to_the_majority_s_value() {
        // A failed stage's `latest` in one region (the Python tool writes it there).
        let mut project = two_versions_held_everywhere();
        project.latest = vec![
            ("a".into(), Ok(Some(v("9.0.0")))),
            ("b".into(), Ok(Some(v("1.0.0")))),
            ("c".into(), Ok(Some(v("1.0.0")))),
        ];
        let mut plan = Plan::default();
        plan_project("P", &project, &mut plan);
        assert!(
            matches!(
                plan.actions.as_slice(),
                [Action::MoveLatest { region, to, .. }] if region == "a" && *to == v("1.0.0")
            ),
            "{:?}",
            plan.actions
        );
    }

    #[test]
    fn the_configuration_is_written_where_missing_when_the_others_agree() {
        let mut plan = Plan::default();
        plan_configuration(
            &[
                ("a".into(), Ok(Some("{}".into()))),
                ("b".into(), Ok(None)),
                ("c".into(), Ok(Some("{}".into()))),
            ],
            &mut plan,
        );
        assert_eq!(
            plan.actions,
            [Action::WriteConfiguration {
                region: "b".into(),
                value: "{}".into()
            }]
        );
        let mut plan = Plan::default();
        plan_configuration(
            &[
                ("a".into(), Ok(Some("{1}".into()))),
                ("b".into(), Ok(None)),
                ("c".into(), Ok(Some("{2}".into()))),
            ],
            &mut plan,
        );
        assert!(plan.actions.is_empty());
        assert_eq!(plan.problems.len(), 1);
    }
}
