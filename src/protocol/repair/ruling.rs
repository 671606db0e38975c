//! The ruling on one object key across the regions: the census's majority rule
//! (`crate::protocol::census`). A version held by fewer than a majority (a stage that
//! failed half way, a yank that missed a region) is never decided, so never copied: a
//! yank is final, and a failed stage publishes nothing.

use crate::protocol::census::Location;
use crate::protocol::census::{Answer, Census, Verdict};
use crate::storage::{ObjectInfo, MD5_METADATA_KEY};

/// What one region answered about one object key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// The object, by size and ETag, and its MD5 when known (a plain ETag, or the MD5
    /// its stager recorded): copies with the same MD5 are the same bytes, whatever
    /// their ETags.
    Object {
        size: u64,
        etag: Option<String>,
        md5: Option<String>,
    },
    /// The region says the key does not exist.
    Absent,
    /// The region could not say (why).
    Unknown(String),
}

/// One content of an object: size and ETag (of the copy to copy from), and its MD5
/// when known.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Content {
    pub size: u64,
    pub etag: Option<String>,
    pub md5: Option<String>,
}

impl Content {
    /// Whether a copy with `info` holds these bytes: the same size and MD5 when both
    /// are known, else the same ETag.
    pub fn matches(&self, info: &ObjectInfo) -> bool {
        if info.size != self.size {
            return false;
        }
        match (&self.md5, info.known_md5()) {
            (Some(ours), Some(theirs)) => *ours == theirs,
            _ => info.etag == self.etag,
        }
    }
}

/// How an object's content was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub content: Content,
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
            Held::Object { size, etag, md5 } => Answer::Holds(Location {
                region: region.clone(),
                bucket: String::new(),
                key: key.to_string(),
                info: ObjectInfo {
                    size: *size,
                    etag: etag.clone(),
                    last_modified: None,
                    user_metadata: md5
                        .iter()
                        .map(|md5| (MD5_METADATA_KEY.to_string(), md5.clone()))
                        .collect(),
                    server_side_encryption: None,
                    customer_key_encrypted: false,
                    server_checksum: None,
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
        md5: location.info.known_md5(),
    };
    let regions_of = |locations: &[Location]| -> Vec<String> {
        locations.iter().map(|l| l.region.clone()).collect()
    };
    let verdict = census.verdict();
    match verdict {
        Verdict::Present(majority) => Ruling::Decided(Decision {
            content: content_of(majority.first()),
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
                // Never copied: a yank that missed a region, or a stage that never
                // reached a majority (the Python tool's half stage), must not come back.
                [group] => Ruling::Undecided(format!(
                    "held by {} of {} regions only (a stage that never reached a majority, or a yank that missed a region): not copied; stage it again to publish it{}",
                    group.locations.len(),
                    answers.len(),
                    if unknown.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " ({} could not answer: {})",
                            unknown.len(),
                            unknown
                                .iter()
                                .map(|(r, why)| format!("{r}: {why}"))
                                .collect::<Vec<_>>()
                                .join("; ")
                        )
                    }
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
            md5: None,
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
    fn a_minority_is_never_decided_so_a_yank_that_missed_a_region_stays_yanked() {
        let verdict = decide("k", &answers(&[Held::Absent, object("x"), Held::Absent]));
        let Ruling::Undecided(why) = verdict else {
            panic!("decided: {verdict:?}");
        };
        assert!(why.contains("held by 1 of 3 regions only"), "{why}");
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
        assert_eq!(d.unknown.len(), 1);
        let verdict = decide(
            "k",
            &answers(&[object("x"), Held::Unknown("down".into()), Held::Absent]),
        );
        assert!(matches!(verdict, Ruling::Undecided(_)));
    }

    #[test]
    fn the_same_md5_under_two_etags_is_one_content_not_a_conflict() {
        let md5 = "0123456789abcdef0123456789abcdef";
        let copy = |etag: &str| Held::Object {
            size: 3,
            etag: Some(etag.to_string()),
            md5: Some(md5.to_string()),
        };
        let d = decided(decide(
            "k",
            &answers(&[copy("abc-1"), copy(md5), Held::Absent]),
        ));
        assert_eq!(d.holders, ["a", "b"]);
        assert!(d.conflicting.is_empty());
        assert_eq!(d.missing, ["c"]);
        assert_eq!(d.content.md5.as_deref(), Some(md5));
    }

    #[test]
    fn nothing_held_is_nowhere() {
        assert_eq!(
            decide("k", &answers(&[Held::Absent, Held::Absent, Held::Absent])),
            Ruling::Nowhere
        );
    }
}
