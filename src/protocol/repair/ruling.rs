//! The ruling on one object key across the regions: the census's majority rule
//! (`crate::protocol::census`), then repair's own rule for a minority: a version held
//! by fewer than a majority (a stage that failed half way) is decided only when every
//! region answered and every holder has the same bytes.

use crate::protocol::artifact::Location;
use crate::protocol::census::{Answer, Census, Verdict};
use crate::storage::ObjectInfo;

/// What one region answered about one object key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// The object, by size and ETag.
    Object { size: u64, etag: Option<String> },
    /// The region says the key does not exist.
    Absent,
    /// The region could not say (why).
    Unknown(String),
}

/// One content of an object: size and ETag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Content {
    pub size: u64,
    pub etag: Option<String>,
}

/// How an object's content was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub content: Content,
    /// Held by more than half of all regions.
    pub by_majority: bool,
    /// Regions that hold it.
    pub holders: Vec<String>,
    /// Regions that said the key is absent.
    pub missing: Vec<String>,
    /// Regions that hold other bytes.
    pub conflicting: Vec<String>,
    /// Regions that could not say, with why.
    pub unknown: Vec<(String, String)>,
}

/// The ruling on one object key across the regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ruling {
    /// No region holds it.
    Nowhere,
    /// The content is decided (see `Decision`).
    Decided(Decision),
    /// No content can be decided: why.
    Undecided(String),
}

/// Decides an object's content from every region's answer (one per region, answering
/// or not): the census's majority rule, then the minority rule of this module.
pub fn decide(key: &str, answers: &[(String, Held)]) -> Ruling {
    let regions: Vec<String> = answers.iter().map(|(r, _)| r.clone()).collect();
    let mut census = Census::new(key, regions);
    for (region, held) in answers {
        census.answers.push(match held {
            Held::Object { size, etag } => Answer::Holds(Location {
                region: region.clone(),
                bucket: String::new(),
                key: key.to_string(),
                info: ObjectInfo {
                    size: *size,
                    etag: etag.clone(),
                    last_modified: None,
                    user_metadata: Default::default(),
                    server_side_encryption: None,
                    customer_key_encrypted: false,
                },
            }),
            Held::Absent => Answer::Absent {
                region: region.clone(),
                reason: "not listed".into(),
            },
            Held::Unknown(why) => Answer::Failed {
                region: region.clone(),
                reason: why.clone(),
            },
        });
    }
    let content_of = |location: &Location| Content {
        size: location.info.size,
        etag: location.info.etag.clone(),
    };
    let regions_of = |locations: &[Location]| -> Vec<String> {
        locations.iter().map(|l| l.region.clone()).collect()
    };
    let verdict = census.verdict();
    match verdict {
        Verdict::Present(majority) => Ruling::Decided(Decision {
            content: content_of(majority.first()),
            by_majority: true,
            holders: regions_of(&majority.group.locations),
            missing: majority.missing,
            conflicting: regions_of(&majority.strays),
            unknown: majority.failed,
        }),
        Verdict::Conflict { .. } => Ruling::Undecided(verdict.explain()),
        Verdict::Absent { .. } | Verdict::Unknown { .. } => {
            let groups = census.groups();
            let unknown: Vec<(String, String)> = answers
                .iter()
                .filter_map(|(r, h)| match h {
                    Held::Unknown(why) => Some((r.clone(), why.clone())),
                    _ => None,
                })
                .collect();
            match groups.as_slice() {
                [] => Ruling::Nowhere,
                [group] if unknown.is_empty() => Ruling::Decided(Decision {
                    content: content_of(&group.locations[0]),
                    by_majority: false,
                    holders: regions_of(&group.locations),
                    missing: answers
                        .iter()
                        .filter(|(_, h)| *h == Held::Absent)
                        .map(|(r, _)| r.clone())
                        .collect(),
                    conflicting: Vec::new(),
                    unknown,
                }),
                [group] => Ruling::Undecided(format!(
                    "held by {} of {} regions, and not every other region answered: {}",
                    group.locations.len(),
                    answers.len(),
                    unknown
                        .iter()
                        .map(|(r, why)| format!("{r}: {why}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
                _ => Ruling::Undecided(format!(
                    "{} different contents and none held by a majority",
                    groups.len()
                )),
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A copy of three bytes with this ETag (plan's tests use it too).
    pub(in crate::protocol::repair) fn object(etag: &str) -> Held {
        Held::Object {
            size: 3,
            etag: Some(etag.to_string()),
        }
    }

    /// Regions `a`, `b` and `c`, holding what `held` says.
    pub(in crate::protocol::repair) fn answers(held: &[Held]) -> Vec<(String, Held)> {
        ["a", "b", "c"]
            .iter()
            .zip(held)
            .map(|(r, h)| (r.to_string(), h.clone()))
            .collect()
    }

    fn decided(ruling: Ruling) -> Decision {
        match ruling {
            Ruling::Decided(d) => d,
            other => panic!("not decided: {other:?}"),
        }
    }
    #[test]
    fn a_majority_decides_and_the_absent_region_is_missing() {
        let d = decided(decide(
            "k",
            &answers(&[object("x"), object("x"), Held::Absent]),
        ));
        assert!(d.by_majority);
        assert_eq!(d.holders, ["a", "b"]);
        assert_eq!(d.missing, ["c"]);
        assert!(d.conflicting.is_empty());
    }

    #[test]
    fn other_bytes_beside_a_majority_are_a_conflict() {
        let d = decided(decide(
            "k",
            &answers(&[object("x"), object("y"), object("x")]),
        ));
        assert_eq!(d.content.etag.as_deref(), Some("x"));
        assert_eq!(d.conflicting, ["b"]);
        assert!(d.missing.is_empty());
    }

    #[test]
    fn a_minority_with_every_other_region_absent_is_decided() {
        let d = decided(decide(
            "k",
            &answers(&[Held::Absent, object("x"), Held::Absent]),
        ));
        assert!(!d.by_majority);
        assert_eq!(d.missing, ["a", "c"]);
    }

    #[test]
    fn a_minority_with_a_region_unheard_is_not_decided() {
        let verdict = decide(
            "k",
            &answers(&[Held::Unknown("down".into()), object("x"), Held::Absent]),
        );
        assert!(matches!(verdict, Ruling::Undecided(_)), "{verdict:?}");
    }

    #[test]
    fn two_minorities_are_not_decided() {
        let verdict = decide("k", &answers(&[object("x"), object("y"), Held::Absent]));
        assert!(matches!(verdict, Ruling::Undecided(_)), "{verdict:?}");
    }

    #[test]
    fn a_majority_counts_all_regions_not_the_answering_ones() {
        let d = decided(decide(
            "k",
            &answers(&[object("x"), object("x"), Held::Unknown("down".into())]),
        ));
        assert!(d.by_majority);
        assert_eq!(d.unknown.len(), 1);
        let verdict = decide(
            "k",
            &answers(&[object("x"), Held::Unknown("down".into()), Held::Absent]),
        );
        assert!(matches!(verdict, Ruling::Undecided(_)));
    }

    #[test]
    fn nothing_held_is_nowhere() {
        assert_eq!(
            decide("k", &answers(&[Held::Absent, Held::Absent, Held::Absent])),
            Ruling::Nowhere
        );
    }
}
