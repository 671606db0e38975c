//! The census of one object key across every configured region, and the one rule that
//! turns it into "present", "absent" or "cannot say".
//!
//! The rule (docs/SEMANTICS.md, "One version, one content"): of n configured regions,
//! more than n/2 must agree. An object is PRESENT when more than half of all regions
//! hold it with the same bytes (same size, and the same MD5 when both copies' MD5 can be
//! known, else the same ETag); ABSENT when more than half say it is not there (404, or
//! the 403 a caller without `s3:ListBucket` gets); otherwise UNKNOWN (too few answered)
//! or a CONFLICT (copies with different bytes, none held by a majority). A region
//! holding other bytes than the majority is a stray: reported, never served.
//!
//! The pure part (`Census`, `Verdict`) knows nothing of the network; `Census::take`
//! asks the regions concurrently and stops as soon as the verdict cannot change.

use futures::stream::{FuturesUnordered, StreamExt};

use crate::storage::ObjectInfo;

use super::session::Session;

/// How long a census that is already certain waits for the session's first region.
const FIRST_REGION_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// How many of `regions` make a majority: more than half (2 of 3, 3 of 4, 3 of 5).
pub fn majority(regions: usize) -> usize {
    regions / 2 + 1
}

/// Where a copy of the key lives.
#[derive(Debug, Clone)]
pub struct Location {
    pub region: String,
    pub bucket: String,
    pub key: String,
    pub info: ObjectInfo,
}

/// What one region answered about the key.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `HeadObject` answered: the region holds these bytes.
    Holds(Location),
    /// The region says the key is not there (404, or 403 without `s3:ListBucket`).
    Absent { region: String, reason: String },
    /// The region could not say (down, timed out, no bucket parameter, ...).
    Failed { region: String, reason: String },
}

impl Answer {
    pub fn region(&self) -> &str {
        match self {
            Answer::Holds(location) => &location.region,
            Answer::Absent { region, .. } | Answer::Failed { region, .. } => region,
        }
    }
}

/// What identifies a copy's bytes, as far as a `HeadObject` can tell.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Content {
    /// The MD5 (recorded by the stager, or a plain ETag), lowercase hex.
    Md5 { size: u64, md5: String },
    /// An ETag that is not an MD5 (multipart, KMS) with no recorded MD5.
    ETag { size: u64, etag: String },
    /// No ETag at all: only the size can be compared.
    Size { size: u64 },
}

impl Content {
    pub fn of(info: &ObjectInfo) -> Content {
        let size = info.size;
        if let Some(md5) = info.known_md5() {
            return Content::Md5 { size, md5 };
        }
        match info.etag.as_deref().map(|e| e.trim_matches('"')) {
            Some(etag) if !etag.is_empty() => Content::ETag {
                size,
                etag: etag.to_string(),
            },
            _ => Content::Size { size },
        }
    }
}

impl std::fmt::Display for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::Md5 { size, md5 } => write!(f, "MD5 {md5}, {size} bytes"),
            Content::ETag { size, etag } => write!(f, "ETag {etag}, {size} bytes"),
            Content::Size { size } => write!(f, "{size} bytes, no ETag"),
        }
    }
}

/// The copies that hold one content.
#[derive(Debug, Clone)]
pub struct Group {
    pub content: Content,
    /// In the session's region order.
    pub locations: Vec<Location>,
}

/// The answers gathered so far about one key, out of `regions` configured regions.
#[derive(Debug, Clone)]
pub struct Census {
    pub key: String,
    /// Every configured region, in the session's order.
    pub regions: Vec<String>,
    /// One answer per region that answered or failed; regions not asked (the census
    /// stopped once its verdict was certain) have none.
    pub answers: Vec<Answer>,
}

/// What a census decides.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// A majority holds the same bytes.
    Present(Majority),
    /// A majority says the key is not there.
    Absent {
        /// The regions that said so.
        regions: Vec<String>,
    },
    /// Too few regions answered to decide, and no two answers disagree on the bytes.
    Unknown {
        needed: usize,
        holding: usize,
        absent: usize,
        failed: Vec<(String, String)>,
    },
    /// Regions hold different bytes and no content reaches a majority.
    Conflict { needed: usize, groups: Vec<Group> },
}

/// The majority of a present key.
#[derive(Debug, Clone)]
pub struct Majority {
    /// The majority's content and the regions that hold it, in session order: the
    /// only regions a reader may be served from.
    pub group: Group,
    /// Copies with other bytes (a racing stager's, a hand edit): never served.
    pub strays: Vec<Location>,
    /// Regions that said the key is absent (repair fills them).
    pub missing: Vec<String>,
    /// Regions that could not answer, with why.
    pub failed: Vec<(String, String)>,
    /// Regions not asked because the verdict was already certain.
    pub not_asked: Vec<String>,
}

impl Majority {
    /// The first region to serve from.
    pub fn first(&self) -> &Location {
        // A majority group is never empty.
        &self.group.locations[0]
    }

    pub fn holds_in(&self, region: &str) -> bool {
        self.group.locations.iter().any(|l| l.region == region)
    }
}

impl Verdict {
    pub fn is_present(&self) -> bool {
        matches!(self, Verdict::Present(_))
    }

    pub fn is_absent(&self) -> bool {
        matches!(self, Verdict::Absent { .. })
    }

    /// One line for a log or an error: why no verdict could be given.
    pub fn explain(&self) -> String {
        match self {
            Verdict::Present(m) => format!(
                "held by {} ({})",
                region_list(m.group.locations.iter().map(|l| l.region.as_str())),
                m.group.content
            ),
            Verdict::Absent { regions } => {
                format!(
                    "absent in {}",
                    region_list(regions.iter().map(String::as_str))
                )
            }
            Verdict::Unknown {
                needed,
                holding,
                absent,
                failed,
            } => {
                let failed: Vec<String> = failed
                    .iter()
                    .map(|(r, why)| format!("{r}: {why}"))
                    .collect();
                format!(
                    "too few regions answered: {needed} must agree, {holding} hold it, {absent} say it is absent, {} could not answer ({})",
                    failed.len(),
                    failed.join("; ")
                )
            }
            Verdict::Conflict { needed, groups } => {
                let groups: Vec<String> = groups
                    .iter()
                    .map(|g| {
                        format!(
                            "{} hold {}",
                            region_list(g.locations.iter().map(|l| l.region.as_str())),
                            g.content
                        )
                    })
                    .collect();
                format!(
                    "conflict: regions hold different bytes and none is held by {needed}: {}",
                    groups.join("; ")
                )
            }
        }
    }
}

fn region_list<'a>(regions: impl Iterator<Item = &'a str>) -> String {
    let regions: Vec<&str> = regions.collect();
    if regions.is_empty() {
        "no region".into()
    } else {
        regions.join(", ")
    }
}

impl Census {
    pub fn new(key: impl Into<String>, regions: Vec<String>) -> Census {
        Census {
            key: key.into(),
            regions,
            answers: Vec::new(),
        }
    }

    pub fn needed(&self) -> usize {
        majority(self.regions.len())
    }

    fn pending(&self) -> usize {
        self.regions.len().saturating_sub(self.answers.len())
    }

    /// The copies grouped by content, largest group first (ties: session order).
    pub fn groups(&self) -> Vec<Group> {
        let mut groups: Vec<Group> = Vec::new();
        for region in &self.regions {
            let Some(Answer::Holds(location)) = self.answers.iter().find(|a| a.region() == region)
            else {
                continue;
            };
            let content = Content::of(&location.info);
            match groups.iter_mut().find(|g| g.content == content) {
                Some(group) => group.locations.push(location.clone()),
                None => groups.push(Group {
                    content,
                    locations: vec![location.clone()],
                }),
            }
        }
        groups.sort_by_key(|g| std::cmp::Reverse(g.locations.len()));
        groups
    }

    fn absent_regions(&self) -> Vec<String> {
        self.answers
            .iter()
            .filter_map(|a| match a {
                Answer::Absent { region, .. } => Some(region.clone()),
                _ => None,
            })
            .collect()
    }

    fn failed(&self) -> Vec<(String, String)> {
        self.answers
            .iter()
            .filter_map(|a| match a {
                Answer::Failed { region, reason } => Some((region.clone(), reason.clone())),
                _ => None,
            })
            .collect()
    }

    /// The verdict if it is already certain, whatever the regions not yet heard say;
    /// `None` while waiting could still change it.
    pub fn settled(&self) -> Option<Verdict> {
        let needed = self.needed();
        let groups = self.groups();
        let absent = self.absent_regions().len();
        let largest = groups.first().map_or(0, |g| g.locations.len());
        if largest >= needed || absent >= needed || self.pending() == 0 {
            return Some(self.verdict());
        }
        if largest.max(absent) + self.pending() < needed {
            return Some(self.verdict());
        }
        None
    }

    /// The verdict from the answers gathered (regions not heard count as not answering).
    pub fn verdict(&self) -> Verdict {
        let needed = self.needed();
        let mut groups = self.groups();
        let absent = self.absent_regions();
        if groups.first().is_some_and(|g| g.locations.len() >= needed) {
            let group = groups.remove(0);
            let strays = groups.into_iter().flat_map(|g| g.locations).collect();
            let not_asked = self
                .regions
                .iter()
                .filter(|r| !self.answers.iter().any(|a| a.region() == r.as_str()))
                .cloned()
                .collect();
            return Verdict::Present(Majority {
                group,
                strays,
                missing: absent,
                failed: self.failed(),
                not_asked,
            });
        }
        if absent.len() >= needed {
            return Verdict::Absent { regions: absent };
        }
        if groups.len() >= 2 {
            return Verdict::Conflict { needed, groups };
        }
        let mut failed = self.failed();
        for region in &self.regions {
            if !self.answers.iter().any(|a| a.region() == region) {
                failed.push((region.clone(), "not answered".into()));
            }
        }
        Verdict::Unknown {
            needed,
            holding: groups.first().map_or(0, |g| g.locations.len()),
            absent: absent.len(),
            failed,
        }
    }

    /// Asks every region of `session` for `key` at once (each request has the session's
    /// operation timeout) and returns as soon as the verdict is certain, or once every
    /// region answered when `every_region` is set (repair wants each region's answer).
    pub async fn take(session: &Session, key: &str, every_region: bool) -> Census {
        let stores = session.stores();
        let mut census = Census::new(key, session.regions());
        let mut asking: FuturesUnordered<_> = stores
            .iter()
            .map(|store| async move {
                let region = store.region().to_string();
                let bucket = match session.bucket(store.as_ref()).await {
                    Ok(bucket) => bucket,
                    Err(e) => {
                        return Answer::Failed {
                            region,
                            reason: e.to_string(),
                        }
                    }
                };
                match store.head_object(&bucket, key).await {
                    Ok(info) => Answer::Holds(Location {
                        region,
                        bucket,
                        key: key.to_string(),
                        info,
                    }),
                    Err(e) if e.is_not_found() || e.is_access_denied() => Answer::Absent {
                        region,
                        reason: e.to_string(),
                    },
                    Err(e) => Answer::Failed {
                        region,
                        reason: e.to_string(),
                    },
                }
            })
            .collect();
        while let Some(answer) = asking.next().await {
            census.answers.push(answer);
            if !every_region && census.settled().is_some() {
                break;
            }
        }
        // The session's first region serves first when it is of the majority (the
        // session's order spreads load and keeps "where a file is read from" stable), so
        // it gets a moment more when others decided before it answered; never longer,
        // so a hung region costs almost nothing.
        let deadline = tokio::time::Instant::now() + FIRST_REGION_GRACE;
        while !census.heard_from_first() {
            match tokio::time::timeout_at(deadline, asking.next()).await {
                Ok(Some(answer)) => census.answers.push(answer),
                _ => break,
            }
        }
        census
    }

    fn heard_from_first(&self) -> bool {
        self.regions
            .first()
            .is_none_or(|first| self.answers.iter().any(|a| a.region() == first))
    }

    /// Logs, once, each region whose copy is not the majority's.
    pub fn warn_strays(&self, verdict: &Verdict) {
        if let Verdict::Present(majority) = verdict {
            for stray in &majority.strays {
                tracing::warn!(
                    region = %stray.region,
                    key = %self.key,
                    "holds other bytes ({}) than the majority ({} in {}): skipped, never served",
                    Content::of(&stray.info),
                    majority.group.content,
                    region_list(majority.group.locations.iter().map(|l| l.region.as_str())),
                );
            }
        }
    }
}

#[cfg(test)]
#[path = "census_tests.rs"]
mod tests;
