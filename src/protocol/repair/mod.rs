//! Repair: making every region hold what the majority holds. The survey reads every
//! region, the plan decides (see `plan` for the rules: the majority of all regions,
//! never a minority, conflicts never overwritten, `latest` set to the majority's
//! value), and the apply step here carries the plan out in order: configuration,
//! then each version's metadata and artifact, then `latest`.

mod copy;
pub mod failure;
pub mod plan;
pub mod ruling;
mod scratch;
mod survey;

use futures::future::join_all;

use super::error::Error;
use super::session::Session;
use copy::{copy_object, Copied, End};
use failure::Failure;
use plan::{plan_configuration, plan_project, Action, Part, Plan};
use ruling::Content;
use survey::Survey;

pub use plan::{Action as RepairAction, Part as RepairPart};

/// What became of one planned action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A dry run: only planned.
    Planned,
    Done,
    /// Someone else did it first (the same bytes or value).
    AlreadyDone,
    Failed(String),
}

/// What a repair did, one line per action, and what it could not repair.
#[derive(Debug, Clone)]
pub struct RepairReport {
    pub dry_run: bool,
    pub projects: usize,
    pub actions: Vec<(Action, Outcome)>,
    /// Conflicts, unreadable regions, undecidable versions.
    pub problems: Vec<String>,
}

impl RepairReport {
    /// Nothing was left unrepaired (a dry run: nothing would be).
    pub fn is_whole(&self) -> bool {
        self.problems.is_empty()
            && self
                .actions
                .iter()
                .all(|(_, outcome)| !matches!(outcome, Outcome::Failed(_)))
    }

    pub fn failed(&self) -> usize {
        self.actions
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
            .count()
    }
}

/// One action in the user's words.
pub fn describe(action: &Action) -> String {
    match action {
        Action::WriteConfiguration { region, .. } => {
            format!("write the configuration parameter in {region}")
        }
        Action::Copy {
            project,
            version,
            part,
            from,
            to,
            content,
            ..
        } => {
            let what = match part {
                Part::Artifact => format!("{project}@{version} ({} bytes)", content.size),
                Part::Metadata => format!("the metadata of {project}@{version}"),
            };
            format!("copy {what} from {from} to {to}")
        }
        Action::MoveLatest {
            project,
            region,
            from,
            to,
            ..
        } => match from {
            Some(from) => format!("move latest of {project} from {from} to {to} in {region}"),
            None => format!("set latest of {project} (missing) to {to} in {region}"),
        },
    }
}

impl Session {
    /// Repairs one project, or every project found (`None`); with `dry_run`, only plans.
    pub async fn repair(
        &self,
        project: Option<&str>,
        dry_run: bool,
    ) -> Result<RepairReport, Error> {
        if self.read_only() && !dry_run {
            return Err(Error::ReadOnly);
        }
        let survey = survey::survey(self, project).await?;
        let mut plan = Plan {
            problems: survey.problems.clone(),
            ..Plan::default()
        };
        plan_configuration(&survey.configuration, &mut plan);
        for (name, answers) in &survey.projects {
            plan_project(name, answers, &mut plan);
        }
        let mut actions = Vec::with_capacity(plan.actions.len());
        // A region whose metadata copy failed does not get the artifact: a reader
        // would take the artifact alone for one without metadata.
        let mut metadata_failed = Vec::new();
        for action in plan.actions {
            let outcome = match &action {
                _ if dry_run => Outcome::Planned,
                Action::Copy {
                    part: Part::Artifact,
                    key,
                    to,
                    ..
                } if metadata_failed.contains(&(super::names::metadata_key(key), to.clone())) => {
                    Outcome::Failed("its metadata could not be copied first".into())
                }
                _ => self.apply(&survey, &action).await,
            };
            if let (
                Action::Copy {
                    part: Part::Metadata,
                    key,
                    to,
                    ..
                },
                Outcome::Failed(_),
            ) = (&action, &outcome)
            {
                metadata_failed.push((key.clone(), to.clone()));
            }
            match &outcome {
                Outcome::Failed(why) => tracing::warn!("{}: failed: {why}", describe(&action)),
                _ => tracing::info!("{}: {outcome:?}", describe(&action)),
            }
            actions.push((action, outcome));
        }
        Ok(RepairReport {
            dry_run,
            projects: survey.projects.len(),
            actions,
            problems: plan.problems,
        })
    }

    async fn apply(&self, survey: &Survey, action: &Action) -> Outcome {
        let store_of = |region: &str| {
            survey
                .region(region)
                .ok_or_else(|| Failure::NotARegion(region.to_string()))
        };
        let result = match action {
            Action::WriteConfiguration { region, value } => match store_of(region) {
                Ok(view) => view
                    .store
                    .put_parameter(self.configuration_parameter(), value)
                    .await
                    .map(|()| Outcome::Done)
                    .map_err(Failure::from),
                Err(why) => Err(why),
            },
            Action::Copy {
                key,
                from,
                to,
                content,
                ..
            } => self.apply_copy(survey, key, from, to, content).await,
            Action::MoveLatest {
                project,
                region,
                from,
                to,
                key,
                content,
            } => {
                if !self.held_by_majority(survey, key, content).await {
                    Err(Failure::NoMajority {
                        project: project.clone(),
                        version: to.clone(),
                    })
                } else {
                    match store_of(region) {
                        Ok(view) => {
                            self.move_latest(view.store.as_ref(), project, from.as_ref(), to)
                                .await
                        }
                        Err(why) => Err(why),
                    }
                }
            }
        };
        result.unwrap_or_else(|failure| Outcome::Failed(failure.to_string()))
    }

    async fn apply_copy(
        &self,
        survey: &Survey,
        key: &str,
        from: &str,
        to: &str,
        content: &Content,
    ) -> Result<Outcome, Failure> {
        let (Some(source), Some(target)) = (survey.region(from), survey.region(to)) else {
            return Err(Failure::NotRegions {
                from: from.to_string(),
                to: to.to_string(),
            });
        };
        let (Ok(from_bucket), Ok(to_bucket)) = (&source.bucket, &target.bucket) else {
            return Err(Failure::BucketUnknown);
        };
        let copied = copy_object(
            End {
                store: source.store.as_ref(),
                bucket: from_bucket,
            },
            End {
                store: target.store.as_ref(),
                bucket: to_bucket,
            },
            key,
            content.etag.as_deref(),
        )
        .await;
        match copied? {
            Copied::Written => Ok(Outcome::Done),
            Copied::AlreadyThere => Ok(Outcome::AlreadyDone),
        }
    }

    /// Checked again just before `latest` moves: the copies before may have failed.
    async fn held_by_majority(&self, survey: &Survey, key: &str, content: &Content) -> bool {
        let held = join_all(survey.regions.iter().map(|view| async move {
            let Ok(bucket) = &view.bucket else {
                return false;
            };
            match view.store.head_object(bucket, key).await {
                Ok(info) => content.matches(&info),
                Err(_) => false,
            }
        }))
        .await;
        held.iter().filter(|h| **h).count() * 2 > survey.regions.len()
    }

    /// Sets `latest` in one region to the majority's value `to`, reading it again
    /// first: a region that names `to` already is left alone, and one whose value
    /// changed since the survey (someone moved it meanwhile) is left for the next repair.
    async fn move_latest(
        &self,
        store: &dyn crate::storage::RegionStore,
        project: &str,
        from: Option<&semver::Version>,
        to: &semver::Version,
    ) -> Result<Outcome, Failure> {
        let prefix = &self.ready_configuration().await?.parameter_name_prefix;
        let name = super::names::latest_parameter_name(prefix, project);
        let now = match store.get_parameter(&name).await {
            Ok(text) => semver::Version::parse(text.trim()).ok(),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        if now.as_ref() == Some(to) {
            return Ok(Outcome::AlreadyDone);
        }
        if now.as_ref() != from {
            return Err(Failure::ChangedMeanwhile {
                name,
                region: store.region().to_string(),
                now,
            });
        }
        store
            .put_parameter(&name, &to.to_string())
            .await
            .map(|()| Outcome::Done)
            .map_err(Failure::from)
    }
}
