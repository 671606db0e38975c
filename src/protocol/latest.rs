//! The quorum read of a project's latest version.
//!
//! Of n regions, ceil(n/2) must answer (a missing, denied or unparseable parameter is
//! no answer); the latest version is the highest answer by semver precedence. When
//! those answers disagree (a region lagging behind a rollback or a stage, until the
//! repair sets it to the majority's value), every region is asked, and the version
//! that more than half of all regions name wins; without one, the highest answer. The
//! parameter is absent only when a majority of all regions say so, as a version is (see
//! `census`); too few answers otherwise is an error, not "absent". The format asks the
//! regions one at a time; we keep ceil(n/2) requests in flight and start the next region
//! in order whenever one fails, which gives the same answers sooner.

use futures::stream::{FuturesUnordered, StreamExt};
use semver::Version;

use super::census::majority;
use super::error::Error;
use super::names::{latest_parameter_name, validate_project_name};
use super::session::Session;

/// The quorum's answer, with what each answering region claimed.
#[derive(Debug, Clone)]
pub struct LatestVersion {
    pub version: Version,
    /// (region, version) for every region that answered, in the order they answered.
    pub claims: Vec<(String, Version)>,
}

/// How many of `regions` must answer a quorum read.
pub fn quorum(regions: usize) -> usize {
    regions.div_ceil(2).max(1)
}

/// Reads the latest version of `project` from a quorum of the session's regions.
pub async fn read_latest(session: &Session, project: &str) -> Result<LatestVersion, Error> {
    validate_project_name(project)?;
    let configuration = session.ready_configuration().await?;
    let name = latest_parameter_name(&configuration.parameter_name_prefix, project);
    let stores = session.stores();
    let needed = quorum(stores.len());

    let ask = |index: usize| {
        let store = stores[index].clone();
        let name = name.clone();
        async move {
            let region = store.region().to_string();
            let answer = match store.get_parameter(&name).await {
                Ok(text) => Version::parse(text.trim())
                    .map_err(|e| (false, format!("{name} holds {text:?}, not a version: {e}"))),
                Err(e) => Err((e.is_not_found(), e.to_string())),
            };
            (region, answer)
        }
    };

    let mut next = 0;
    let mut in_flight = FuturesUnordered::new();
    while next < stores.len() && in_flight.len() < needed {
        in_flight.push(ask(next));
        next += 1;
    }
    let mut claims: Vec<(String, Version)> = Vec::new();
    let mut reasons = Vec::new();
    let mut missing = 0;
    while let Some((region, answer)) = in_flight.next().await {
        match answer {
            Ok(version) => {
                tracing::debug!(region, %version, project, "region claims latest");
                claims.push((region, version));
                if claims.len() >= needed {
                    break;
                }
            }
            Err((not_found, reason)) => {
                missing += usize::from(not_found);
                tracing::debug!(region, project, "failed to read latest version: {reason}");
                reasons.push(format!("{region}: {reason}"));
                if next < stores.len() {
                    in_flight.push(ask(next));
                    next += 1;
                }
            }
        }
    }
    // The quorum disagrees (a region lags behind a rollback or a stage): ask the rest,
    // and take the value a majority of all regions names, when one does.
    let disagree = claims.windows(2).any(|pair| pair[0].1 != pair[1].1);
    if disagree && claims.len() >= needed {
        while next < stores.len() {
            in_flight.push(ask(next));
            next += 1;
        }
        while let Some((region, answer)) = in_flight.next().await {
            if let Ok(version) = answer {
                tracing::debug!(region, %version, project, "region claims latest");
                claims.push((region, version));
            }
        }
    }
    let chosen = majority_value(&claims, stores.len()).or_else(|| {
        claims
            .iter()
            .map(|(_, v)| v)
            .max_by(|a, b| a.cmp_precedence(b))
            .cloned()
    });
    match chosen {
        Some(version) if claims.len() >= needed => Ok(LatestVersion { version, claims }),
        _ => Err(Error::NoQuorum {
            project: project.to_string(),
            needed,
            missing,
            absent: missing >= majority(stores.len()),
            reasons,
        }),
    }
}

/// The version named by more than half of all `regions`, if any.
fn majority_value(claims: &[(String, Version)], regions: usize) -> Option<Version> {
    claims.iter().map(|(_, v)| v).find_map(|v| {
        let named = claims.iter().filter(|(_, w)| w == v).count();
        (named >= majority(regions)).then(|| v.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_named_by_a_majority_wins_over_a_higher_one() {
        let v = |t: &str| Version::parse(t).unwrap();
        let claims = vec![
            ("c".to_string(), v("2.0.0")),
            ("a".to_string(), v("1.0.0")),
            ("b".to_string(), v("1.0.0")),
        ];
        assert_eq!(majority_value(&claims, 3), Some(v("1.0.0")));
        assert_eq!(majority_value(&claims[..2], 3), None);
    }

    #[test]
    fn quorum_is_half_rounded_up() {
        assert_eq!(quorum(1), 1);
        assert_eq!(quorum(2), 1);
        assert_eq!(quorum(3), 2);
        assert_eq!(quorum(4), 2);
        assert_eq!(quorum(5), 3);
    }
}
