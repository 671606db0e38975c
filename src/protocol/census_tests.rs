//! The census rule tried on every shape of answers: the verdicts, when a census may stop
//! early, and the regions it names.

use super::*;
use std::collections::HashMap;

const REGIONS: [&str; 5] = ["r0", "r1", "r2", "r3", "r4"];

fn census(n: usize) -> Census {
    Census::new("p@1", REGIONS[..n].iter().map(|r| r.to_string()).collect())
}

fn info(size: u64, etag: &str, recorded_md5: Option<&str>) -> ObjectInfo {
    ObjectInfo {
        size,
        etag: Some(format!("\"{etag}\"")),
        last_modified: None,
        user_metadata: recorded_md5
            .map(|m| HashMap::from([(crate::storage::MD5_METADATA_KEY.to_string(), m.to_string())]))
            .unwrap_or_default(),
        server_side_encryption: None,
        customer_key_encrypted: false,
        server_checksum: None,
    }
}

const MD5_A: &str = "0123456789abcdef0123456789abcdef";
const MD5_B: &str = "fedcba9876543210fedcba9876543210";

fn holds(c: &mut Census, i: usize, info: ObjectInfo) {
    c.answers.push(Answer::Holds(Location {
        region: REGIONS[i].into(),
        bucket: "b".into(),
        key: "p@1".into(),
        info,
    }));
}

fn absent(c: &mut Census, i: usize) {
    c.answers.push(Answer::Absent {
        region: REGIONS[i].into(),
        reason: "not found".into(),
    });
}

fn failed(c: &mut Census, i: usize) {
    c.answers.push(Answer::Failed {
        region: REGIONS[i].into(),
        reason: "unavailable".into(),
    });
}

fn served(v: &Verdict) -> Vec<String> {
    match v {
        Verdict::Present(m) => m.group.locations.iter().map(|l| l.region.clone()).collect(),
        other => panic!("not present: {other:?}"),
    }
}

#[test]
fn a_majority_is_more_than_half_of_all_regions() {
    assert_eq!(
        [1, 2, 3, 4, 5].map(majority),
        [1, 2, 2, 3, 3],
        "2 of 4 is not a majority"
    );
}

#[test]
fn two_of_three_holding_the_same_bytes_is_present_before_the_third_answers() {
    let mut c = census(3);
    holds(&mut c, 2, info(5, MD5_A, None));
    assert!(c.settled().is_none());
    holds(&mut c, 0, info(5, MD5_A, None));
    let v = c.settled().expect("certain");
    assert_eq!(served(&v), ["r0", "r2"], "session order");
    let Verdict::Present(m) = v else {
        unreachable!()
    };
    assert_eq!(m.not_asked, ["r1"]);
}

#[test]
fn two_of_three_absent_is_absent_whatever_the_third_would_say() {
    let mut c = census(3);
    absent(&mut c, 0);
    absent(&mut c, 1);
    assert!(c.settled().expect("certain").is_absent());
}

#[test]
fn absent_in_two_with_one_down_is_absent() {
    let mut c = census(3);
    failed(&mut c, 0);
    absent(&mut c, 1);
    assert!(c.settled().is_none(), "the third could still decide");
    absent(&mut c, 2);
    assert!(c.verdict().is_absent());
}

#[test]
fn held_in_one_of_three_and_absent_in_two_is_absent() {
    let mut c = census(3);
    holds(&mut c, 0, info(5, MD5_A, None));
    absent(&mut c, 1);
    absent(&mut c, 2);
    assert!(c.verdict().is_absent());
}

#[test]
fn held_in_one_absent_in_one_and_one_down_is_unknown() {
    let mut c = census(3);
    holds(&mut c, 0, info(5, MD5_A, None));
    absent(&mut c, 1);
    failed(&mut c, 2);
    let v = c.settled().expect("every region answered");
    assert!(
        matches!(v, Verdict::Unknown { needed: 2, holding: 1, absent: 1, ref failed } if failed.len() == 1),
        "{v:?}"
    );
    assert!(
        v.explain().contains("too few regions answered"),
        "{}",
        v.explain()
    );
}

#[test]
fn two_of_four_is_neither_present_nor_absent() {
    let mut c = census(4);
    holds(&mut c, 0, info(5, MD5_A, None));
    holds(&mut c, 1, info(5, MD5_A, None));
    absent(&mut c, 2);
    absent(&mut c, 3);
    assert!(matches!(c.verdict(), Verdict::Unknown { needed: 3, .. }));
    let mut c = census(4);
    absent(&mut c, 0);
    absent(&mut c, 1);
    failed(&mut c, 2);
    failed(&mut c, 3);
    assert!(matches!(c.verdict(), Verdict::Unknown { .. }));
}

#[test]
fn other_bytes_in_one_region_are_a_stray_never_served() {
    let mut c = census(3);
    holds(&mut c, 0, info(5, MD5_B, None));
    holds(&mut c, 1, info(5, MD5_A, None));
    holds(&mut c, 2, info(5, MD5_A, None));
    let v = c.verdict();
    assert_eq!(served(&v), ["r1", "r2"]);
    let Verdict::Present(m) = v else {
        unreachable!()
    };
    assert_eq!(m.strays.len(), 1);
    assert_eq!(m.strays[0].region, "r0");
}

#[test]
fn one_one_one_split_is_a_conflict() {
    let mut c = census(3);
    holds(&mut c, 0, info(5, MD5_A, None));
    holds(&mut c, 1, info(5, MD5_B, None));
    assert!(c.settled().is_none(), "the third could still side with one");
    absent(&mut c, 2);
    let v = c.settled().expect("certain");
    assert!(matches!(v, Verdict::Conflict { needed: 2, ref groups } if groups.len() == 2));
    let line = v.explain();
    assert!(
        line.contains("conflict") && line.contains(MD5_A) && line.contains("r1"),
        "{line}"
    );
}

#[test]
fn a_recorded_md5_and_a_plain_etag_compare_as_md5s() {
    let mut c = census(3);
    holds(&mut c, 0, info(5, "aaaa-2", Some(MD5_A)));
    holds(&mut c, 1, info(5, MD5_A, None));
    assert_eq!(served(&c.settled().expect("certain")), ["r0", "r1"]);
}

#[test]
fn the_same_etag_with_other_sizes_is_other_bytes() {
    let mut c = census(3);
    holds(&mut c, 0, info(5, "aaaa-2", None));
    holds(&mut c, 1, info(6, "aaaa-2", None));
    holds(&mut c, 2, info(5, "aaaa-2", None));
    assert_eq!(served(&c.verdict()), ["r0", "r2"]);
}

#[test]
fn a_verdict_that_cannot_be_reached_is_given_without_waiting() {
    let mut c = census(5);
    holds(&mut c, 0, info(5, MD5_A, None));
    holds(&mut c, 1, info(5, MD5_B, None));
    failed(&mut c, 2);
    assert!(c.settled().is_none(), "two more could still make three");
    failed(&mut c, 3);
    assert!(matches!(c.settled(), Some(Verdict::Conflict { .. })));
}
