//! One content and the regions whose copies may serve it, and the one way a range of it
//! is read: from the regions of the majority first (each asked, with `If-Match`, for its
//! own copy's ETag: the same bytes may carry several), then from the regions the census
//! did not wait for (each checked first), the suspects last; when a region fails, even
//! mid-body, the rest of the range comes from the next one, from the byte reached.
//!
//! The mount's streams, its small reads, its disk cache fill and the command line's
//! download all read through `RangeRead`.

use std::collections::{BTreeSet, VecDeque};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;

use crate::checksum::Checksum;
use crate::storage::{ObjectStream, RegionStore, StorageError};

use super::census::{Content, Majority};
use super::session::Session;

/// A region of the majority and its copy's ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub region: String,
    pub etag: Option<String>,
}

/// The regions that served bytes of a content that failed its MD5 (or whose share of
/// such bytes cannot be told apart from the others'). An ETag cannot catch a region
/// whose body is damaged in transit or at rest, so later reads go to the rest first; a
/// suspect is still asked when no other can serve. Shared by every clone.
#[derive(Debug, Clone, Default)]
pub struct Suspects(Arc<Mutex<BTreeSet<String>>>);

impl Suspects {
    pub fn add(&self, regions: &[String]) {
        if let Ok(mut suspects) = self.0.lock() {
            suspects.extend(regions.iter().cloned());
        }
    }

    pub fn contains(&self, region: &str) -> bool {
        self.0
            .lock()
            .is_ok_and(|suspects| suspects.contains(region))
    }
}

/// One content of one key, and where it may be read.
#[derive(Debug, Clone)]
pub struct Copies {
    pub key: String,
    pub size: u64,
    /// The first holder's ETag (for a record of the content kept without its holders).
    pub etag: Option<String>,
    /// The MD5 when it can be known without reading (see `ObjectInfo::known_md5`).
    pub md5: Option<String>,
    /// What a whole read is checked against (see `ObjectInfo::check`); `None`: the
    /// size only.
    pub check: Option<Checksum>,
    /// The first region of the majority (in session order), and its bucket.
    pub region: String,
    pub bucket: String,
    /// Every region of the majority, in session order (`region` first), each with its
    /// own copy's ETag. Empty for a content restored from a record without asking the
    /// regions: then any region may serve, `region` first, each asked for `etag`.
    pub holders: Vec<Holder>,
    pub suspects: Suspects,
}

impl Copies {
    /// The content a census found held by a majority.
    pub fn of(majority: &Majority) -> Copies {
        let first = majority.first();
        Copies {
            key: first.key.clone(),
            size: first.info.size,
            etag: first.info.etag.clone(),
            md5: first.info.known_md5(),
            check: first.info.check(),
            region: first.region.clone(),
            bucket: first.bucket.clone(),
            holders: majority
                .group
                .locations
                .iter()
                .map(|l| Holder {
                    region: l.region.clone(),
                    etag: l.info.etag.clone(),
                })
                .collect(),
            suspects: Suspects::default(),
        }
    }

    /// What identifies the bytes, as a census compares copies.
    fn content(&self) -> Content {
        match (&self.md5, &self.etag) {
            (Some(md5), _) => Content::Md5 {
                size: self.size,
                md5: md5.clone(),
            },
            (None, Some(etag)) => Content::ETag {
                size: self.size,
                etag: etag.trim_matches('"').to_string(),
            },
            (None, None) => Content::Size { size: self.size },
        }
    }

    /// The regions that may serve: the majority's, in its order, then (when the
    /// content can be told by more than its size) the others, each checked first
    /// (`etag_for`); the suspects last.
    pub fn regions_in_order(&self, session: &Session) -> Vec<Arc<dyn RegionStore>> {
        let stores = session.stores();
        let mut order: Vec<Arc<dyn RegionStore>> = if self.holders.is_empty() {
            stores
                .iter()
                .filter(|s| s.region() == self.region)
                .chain(stores.iter().filter(|s| s.region() != self.region))
                .cloned()
                .collect()
        } else {
            let checkable = !matches!(self.content(), Content::Size { .. });
            let holds = |region: &str| self.holders.iter().any(|h| h.region == region);
            let others = stores.iter().filter(|s| checkable && !holds(s.region()));
            self.holders
                .iter()
                .filter_map(|holder| stores.iter().find(|s| s.region() == holder.region))
                .chain(others)
                .cloned()
                .collect()
        };
        // A stable sort: the trusted keep their order, then the suspects keep theirs.
        order.sort_by_key(|store| self.suspects.contains(store.region()));
        order
    }

    /// The ETag to ask `store`'s region for (`If-Match`): its own copy's, as the census
    /// saw it; for a region the census did not wait for, asked now (`HeadObject`) and
    /// taken only when its copy is the same content (so a read goes on when the regions
    /// it was pinned to are down); `etag` for a content kept without its holders.
    pub async fn etag_for(
        &self,
        store: &dyn RegionStore,
        bucket: &str,
    ) -> Result<Option<String>, EtagError> {
        if self.holders.is_empty() {
            return Ok(self.etag.clone());
        }
        if let Some(holder) = self.holders.iter().find(|h| h.region == store.region()) {
            return Ok(holder.etag.clone());
        }
        let info = store.head_object(bucket, &self.key).await?;
        let theirs = Content::of(&info);
        if theirs == self.content() && !matches!(theirs, Content::Size { .. }) {
            Ok(info.etag)
        } else {
            Err(EtagError::OtherBytes(theirs))
        }
    }

    /// Reads `range` (`None`: the whole object) from the regions in order.
    pub fn read(&self, session: &Session, range: Option<Range<u64>>) -> RangeRead {
        let range = range.unwrap_or(0..self.size);
        RangeRead {
            copies: self.clone(),
            session: session.clone(),
            order: self.regions_in_order(session).into(),
            at: range.start,
            end: range.end,
            body: None,
            fresh: false,
            served: Vec::new(),
            reasons: Vec::new(),
        }
    }

    /// Reads `range` whole into memory.
    pub async fn fetch(&self, session: &Session, range: Range<u64>) -> Result<Bytes, Unserved> {
        let mut read = self.read(session, Some(range.clone()));
        let mut buffer = bytes::BytesMut::with_capacity((range.end - range.start) as usize);
        while let Some(piece) = read.next().await {
            buffer.extend_from_slice(&piece?.bytes);
        }
        Ok(buffer.freeze())
    }
}

/// Bytes of a range, and the region that served them.
#[derive(Debug)]
pub struct Piece {
    pub region: Arc<str>,
    pub bytes: Bytes,
    /// The first bytes of a request: the time waited for them is the request's, not
    /// the body's.
    pub first: bool,
}

/// Why a region's copy is not asked for the content (`Copies::etag_for`).
#[derive(Debug, thiserror::Error)]
pub enum EtagError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("its copy holds other bytes ({0})")]
    OtherBytes(Content),
}

/// No region could serve the rest of a range.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no region could serve bytes {}..{} of {key}: {}", range.start, range.end, reasons.join("; "))]
pub struct Unserved {
    pub key: String,
    /// What was left to read.
    pub range: Range<u64>,
    /// Each region's failure, `region: why`.
    pub reasons: Vec<String>,
}

/// A range being read (see `Copies::read`): a stream of pieces in order.
pub struct RangeRead {
    copies: Copies,
    session: Session,
    /// The regions not asked yet.
    order: VecDeque<Arc<dyn RegionStore>>,
    /// Offset of the next byte to hand out.
    at: u64,
    end: u64,
    body: Option<(Arc<str>, ObjectStream)>,
    /// No bytes handed out yet from `body`'s request.
    fresh: bool,
    /// The regions that served bytes, in order, each once per turn.
    served: Vec<String>,
    reasons: Vec<String>,
}

impl RangeRead {
    /// The next bytes, `None` once the range is read, `Err` when no region is left to
    /// serve the rest (then `None` after it).
    pub async fn next(&mut self) -> Option<Result<Piece, Unserved>> {
        loop {
            if self.at >= self.end {
                self.body = None;
                return None;
            }
            if self.body.is_none() {
                match self.open().await {
                    Some(opened) => {
                        self.body = Some(opened);
                        self.fresh = true;
                    }
                    None => {
                        let unserved = Unserved {
                            key: self.copies.key.clone(),
                            range: self.at..self.end,
                            reasons: std::mem::take(&mut self.reasons),
                        };
                        self.at = self.end;
                        return Some(Err(unserved));
                    }
                }
            }
            let Some((region, object)) = self.body.as_mut() else {
                continue;
            };
            let failure = match object.body.next().await {
                Some(Ok(mut bytes)) => {
                    let room = self.end - self.at;
                    bytes.truncate(room.min(bytes.len() as u64) as usize);
                    if bytes.is_empty() {
                        continue;
                    }
                    self.at += bytes.len() as u64;
                    if self.served.last().map(String::as_str) != Some(&**region) {
                        self.served.push(region.to_string());
                    }
                    return Some(Ok(Piece {
                        region: Arc::clone(region),
                        bytes,
                        first: std::mem::take(&mut self.fresh),
                    }));
                }
                Some(Err(e)) => format!("the body broke at byte {}: {e}", self.at),
                None => format!("the body ended at byte {}, before {}", self.at, self.end),
            };
            tracing::warn!(region = &**region, key = %self.copies.key, "{failure}: the rest from the next region");
            self.reasons.push(format!("{region}: {failure}"));
            self.body = None;
        }
    }

    /// Stops the read at `end` (sooner than asked), when it has not passed it.
    pub fn shorten(&mut self, end: u64) {
        self.end = self.end.min(end.max(self.at));
    }

    /// Offset of the next byte.
    pub fn position(&self) -> u64 {
        self.at
    }

    /// The regions that served bytes so far, in order.
    pub fn served(&self) -> &[String] {
        &self.served
    }

    /// A GET of the rest of the range at the next region that answers one.
    async fn open(&mut self) -> Option<(Arc<str>, ObjectStream)> {
        while let Some(store) = self.order.pop_front() {
            let region = store.region();
            let bucket = match self.session.bucket(store.as_ref()).await {
                Ok(bucket) => bucket,
                Err(e) => {
                    self.reasons.push(format!("{region}: {e}"));
                    continue;
                }
            };
            let etag = match self.copies.etag_for(store.as_ref(), &bucket).await {
                Ok(etag) => etag,
                Err(why) => {
                    self.reasons.push(format!("{region}: {why}"));
                    continue;
                }
            };
            let range = Some(self.at..self.end);
            match store
                .get_object(&bucket, &self.copies.key, range, etag.as_deref())
                .await
            {
                Ok(object) => return Some((Arc::from(region), object)),
                Err(e) => {
                    let (at, end) = (self.at, self.end);
                    tracing::warn!(region, key = %self.copies.key, "read of {at}..{end} failed: {e}");
                    self.reasons.push(format!("{region}: {e}"));
                }
            }
        }
        None
    }
}
