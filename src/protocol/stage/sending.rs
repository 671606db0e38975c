//! How each region is sent a file above the multipart threshold, learned from the stages
//! before it: in parts, or in one request.
//!
//! Amazon S3 rewards parts: a connection carries tens of MB/s, parts go over several at
//! once, and the completion only links them. Some S3-compatible servers (moto, s3s-fs)
//! copy every byte again at the completion, and serve one stream as fast as several; there
//! one request a region is the faster stage. Which kind of server a region is, only
//! sending tells. So each region's seconds per GiB are kept for both ways (a moving
//! average), with the share of the time in parts that the completion took:
//!
//! - nothing known: what the server is tells the first way (`first_method`): parts on
//!   Amazon S3 (a server that names itself `AmazonS3`, or before any answer an endpoint
//!   of S3's own), one request on any other server (the S3-compatible servers seen,
//!   moto and s3s-fs, copy the bytes at the completion, so the first stage of a fresh
//!   mount or CLI is not the slow one there);
//! - parts known, and their completion took at least `COPYING_SHARE` of the time: the
//!   server copies the bytes again, so one request is tried;
//! - one request known only: one request, and after `RETRY_AFTER` large stages, parts
//!   once, so that a server that rewards parts is found out;
//! - both known: the cheaper, and after `RETRY_AFTER` large stages one way, the other
//!   once more, so that the choice follows a server that changed.
//!
//! Regions are told apart by name and S3 endpoint, so a test server's figures never steer
//! a stage to AWS, and files by size class (see `place`). The figures are JSON kept by
//! their owner (the mount's staging folder, the CLI's state folder); figures that cannot
//! be read are set aside with a warning, and the learning starts again. A stage given an
//! explicit threshold learns nothing from here.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::storage::RegionStore;

/// The largest object S3 takes in one request.
pub const ONE_REQUEST_LIMIT: u64 = 5 << 30;

/// A completion taking this share of a stage in parts means the server copies the bytes
/// again (S3's takes a few per cent).
const COPYING_SHARE: f64 = 0.15;

/// After this many large stages sent the preferred way, the other is tried once more.
const RETRY_AFTER: u32 = 16;

/// Weight of the newest figure in each moving average.
const NEWEST_WEIGHT: f64 = 0.5;

const GIB: f64 = (1u64 << 30) as f64;

/// The way one region is sent one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    OneRequest,
    Parts,
}

/// What one region's upload took.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    pub method: Method,
    pub size: u64,
    /// From the first request of the upload to the answer to its last.
    pub took: Duration,
    /// Of which the completion of a multipart upload.
    pub completion: Duration,
}

/// One region's figures: seconds per GiB, moving averages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Costs {
    #[serde(default)]
    one_request: Option<f64>,
    #[serde(default)]
    parts: Option<f64>,
    #[serde(default)]
    completion_share: Option<f64>,
    /// Large stages sent the preferred way since the other was last tried.
    #[serde(default)]
    same_way: u32,
}

impl Costs {
    fn valid(&self) -> bool {
        let fine = |x: Option<f64>| x.is_none_or(|x| x.is_finite() && x >= 0.0);
        fine(self.one_request) && fine(self.parts) && fine(self.completion_share)
    }

    /// The way this region's figures point to, before any retry of the other; `first`
    /// when nothing is known.
    fn preferred(&self, first: Method) -> Method {
        match (self.one_request, self.parts) {
            (Some(one), Some(parts)) if one < parts => Method::OneRequest,
            (Some(_), Some(_)) => Method::Parts,
            (None, Some(_)) if self.completion_share.unwrap_or(0.0) >= COPYING_SHARE => {
                Method::OneRequest
            }
            (None, Some(_)) => Method::Parts,
            (Some(_), None) => Method::OneRequest,
            (None, None) => first,
        }
    }

    fn choose(&self, first: Method) -> Method {
        let preferred = self.preferred(first);
        // Once one request is known, the other way is tried again after a while. Parts
        // known alone are not second-guessed: one request of a large file to S3 is the
        // slow way.
        let other_worth_trying = self.one_request.is_some();
        if other_worth_trying && self.same_way >= RETRY_AFTER {
            match preferred {
                Method::OneRequest => Method::Parts,
                Method::Parts => Method::OneRequest,
            }
        } else {
            preferred
        }
    }

    fn record(&mut self, sent: &Sent, first: Method) {
        if sent.size == 0 {
            return;
        }
        let preferred = self.preferred(first);
        let per_gib = sent.took.as_secs_f64() * GIB / sent.size as f64;
        let average = |old: Option<f64>, new: f64| match old {
            Some(old) => old + NEWEST_WEIGHT * (new - old),
            None => new,
        };
        match sent.method {
            Method::OneRequest => self.one_request = Some(average(self.one_request, per_gib)),
            Method::Parts => {
                self.parts = Some(average(self.parts, per_gib));
                let took = sent.took.as_secs_f64();
                if took > 0.0 {
                    let share = (sent.completion.as_secs_f64() / took).min(1.0);
                    self.completion_share = Some(average(self.completion_share, share));
                }
            }
        }
        self.same_way = if sent.method == preferred {
            self.same_way.saturating_add(1)
        } else {
            0
        };
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    /// "region endpoint size-class" (see `place`) -> figures.
    regions: BTreeMap<String, Costs>,
}

/// The figures of every region a mount or a CLI has sent large files to. They are kept
/// by the owner (`to_json`, `take_up`): the mount in its spool, the CLI in its state
/// folder.
#[derive(Debug, Default)]
pub struct SendingCosts {
    saved: Mutex<Saved>,
    /// Something was learned since the figures were last kept.
    changed: std::sync::atomic::AtomicBool,
}

impl SendingCosts {
    /// Figures that start empty.
    pub fn in_memory() -> Self {
        SendingCosts::default()
    }

    /// Takes up figures kept by an earlier process (`changes`); figures that cannot be
    /// read, or out of range, are set aside with a warning naming `from`.
    pub fn take_up(&self, bytes: &[u8], from: &str) {
        match serde_json::from_slice::<Saved>(bytes) {
            Ok(saved) if saved.regions.values().all(Costs::valid) => *self.saved() = saved,
            Ok(_) => tracing::warn!(
                from,
                "ignoring figures out of range; learning how to send large files again"
            ),
            Err(e) => tracing::warn!(
                from,
                "ignoring unreadable figures ({e}); learning how to send large files again"
            ),
        }
    }

    /// The figures, to be kept for the next process, when something was learned since
    /// they were last asked for.
    pub fn changes(&self) -> Option<Vec<u8>> {
        use std::sync::atomic::Ordering;
        if !self.changed.swap(false, Ordering::SeqCst) {
            return None;
        }
        // Strings, numbers and options only: encoding cannot fail.
        serde_json::to_vec_pretty(&*self.saved()).ok()
    }

    fn saved(&self) -> std::sync::MutexGuard<'_, Saved> {
        self.saved.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How `place` (see `place`) should be sent a file of `size` bytes, above the
    /// multipart threshold; `first` (see `first_method`) while nothing is known of it.
    pub fn choose(&self, place: &str, size: u64, first: Method) -> Method {
        if size > ONE_REQUEST_LIMIT {
            return Method::Parts;
        }
        self.saved()
            .regions
            .get(place)
            .map_or(first, |costs| costs.choose(first))
    }

    /// Learns from one region's upload (`first`: as given to `choose`).
    pub fn record(&self, place: &str, sent: Sent, first: Method) {
        let mut saved = self.saved();
        let costs = saved.regions.entry(place.to_string()).or_default();
        costs.record(&sent, first);
        self.changed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let way = match sent.method {
            Method::OneRequest => "in one request",
            Method::Parts => "in parts",
        };
        let seconds = format!("{:.2}", sent.took.as_secs_f64());
        let completion = format!("{:.2}", sent.completion.as_secs_f64());
        tracing::info!(
            place,
            size = sent.size,
            seconds,
            completion,
            "sent {way}; next: {:?}",
            costs.choose(first)
        );
    }
}

/// The way `store`'s region is first sent a large file, before anything is learned of
/// it: parts on Amazon S3, one request on any other server (see `first_method_for`).
pub fn first_method(store: &dyn RegionStore) -> Method {
    first_method_for(store.s3_endpoint(), store.server_name().as_deref())
}

/// The way a server is first sent a large file: parts when it names itself `AmazonS3`
/// (its `Server` header), one request when it names itself otherwise (the S3-compatible
/// servers seen, moto and s3s-fs, copy the bytes again at the completion); before any
/// answer, parts when `endpoint` is S3's (`None`, or a host under `amazonaws.com`, such
/// as a VPC endpoint), one request elsewhere.
fn first_method_for(endpoint: Option<&str>, server: Option<&str>) -> Method {
    if let Some(server) = server {
        return if server.eq_ignore_ascii_case("AmazonS3") {
            Method::Parts
        } else {
            Method::OneRequest
        };
    }
    let Some(endpoint) = endpoint else {
        return Method::Parts;
    };
    let rest = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    }
    .trim_end_matches('.')
    .to_ascii_lowercase();
    let aws = ["amazonaws.com", "amazonaws.com.cn"]
        .iter()
        .any(|domain| host == *domain || host.ends_with(&format!(".{domain}")));
    if aws {
        Method::Parts
    } else {
        Method::OneRequest
    }
}

/// The key of one region's figures for files of `size` bytes: its name, its S3 endpoint,
/// and the size's class (below 64 MiB, below 256 MiB, below 1 GiB, below 4 GiB, larger).
/// Sizes are kept apart because what is fast differs with them: on S3 a small file may
/// go faster in one request and a large one in parts.
pub fn place(region: &str, endpoint: Option<&str>, size: u64) -> String {
    const CLASSES: [(u64, &str); 4] = [
        (64 << 20, "<64MiB"),
        (256 << 20, "<256MiB"),
        (1 << 30, "<1GiB"),
        (4 << 30, "<4GiB"),
    ];
    let class = CLASSES
        .iter()
        .find(|(limit, _)| size < *limit)
        .map_or(">=4GiB", |(_, name)| name);
    format!("{region} {} {class}", endpoint.unwrap_or("aws"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGION: &str = "us-east-1 http://127.0.0.1:1";

    fn sent(method: Method, seconds: f64, completion: f64) -> Sent {
        Sent {
            method,
            size: 1 << 30,
            took: Duration::from_secs_f64(seconds),
            completion: Duration::from_secs_f64(completion),
        }
    }

    #[test]
    fn a_region_never_sent_to_gets_the_first_method() {
        let costs = SendingCosts::in_memory();
        assert_eq!(costs.choose(REGION, 1 << 30, Method::Parts), Method::Parts);
        assert_eq!(
            costs.choose(REGION, 1 << 30, Method::OneRequest),
            Method::OneRequest
        );
    }

    #[test]
    fn a_cheap_completion_keeps_parts() {
        let costs = SendingCosts::in_memory();
        costs.record(REGION, sent(Method::Parts, 6.0, 0.3), Method::Parts);
        assert_eq!(costs.choose(REGION, 1 << 30, Method::Parts), Method::Parts);
    }

    #[test]
    fn a_completion_that_copies_the_bytes_tries_one_request_then_keeps_the_cheaper() {
        let costs = SendingCosts::in_memory();
        costs.record(REGION, sent(Method::Parts, 30.0, 8.0), Method::Parts);
        assert_eq!(
            costs.choose(REGION, 1 << 30, Method::Parts),
            Method::OneRequest
        );
        costs.record(REGION, sent(Method::OneRequest, 18.0, 0.0), Method::Parts);
        assert_eq!(
            costs.choose(REGION, 1 << 30, Method::Parts),
            Method::OneRequest
        );

        // Where one request proves slower, parts come back.
        let other = "eu-west-2 aws";
        costs.record(other, sent(Method::Parts, 6.0, 1.5), Method::Parts);
        assert_eq!(
            costs.choose(other, 1 << 30, Method::Parts),
            Method::OneRequest
        );
        costs.record(other, sent(Method::OneRequest, 12.0, 0.0), Method::Parts);
        assert_eq!(costs.choose(other, 1 << 30, Method::Parts), Method::Parts);
    }

    #[test]
    fn the_other_way_is_tried_again_after_a_while() {
        let costs = SendingCosts::in_memory();
        costs.record(REGION, sent(Method::Parts, 30.0, 8.0), Method::Parts);
        costs.record(REGION, sent(Method::OneRequest, 18.0, 0.0), Method::Parts);
        let mut ways = Vec::new();
        for _ in 0..(2 * RETRY_AFTER + 2) {
            let way = costs.choose(REGION, 1 << 30, Method::Parts);
            ways.push(way);
            let seconds = if way == Method::Parts { 30.0 } else { 18.0 };
            costs.record(REGION, sent(way, seconds, 0.0), Method::Parts);
        }
        let parts = ways.iter().filter(|w| **w == Method::Parts).count();
        assert!((1..=3).contains(&parts), "{ways:?}");
        assert_eq!(ways.last(), Some(&Method::OneRequest), "{ways:?}");
    }

    #[test]
    fn s3_is_first_sent_parts_and_other_servers_one_request() {
        for aws in [
            None,
            Some("https://s3.us-east-1.amazonaws.com"),
            Some("https://bucket.vpce-1a2b.s3.us-east-1.vpce.amazonaws.com:443/"),
            Some("https://s3.cn-north-1.amazonaws.com.cn"),
            Some("HTTPS://S3.AMAZONAWS.COM."),
        ] {
            assert_eq!(first_method_for(aws, None), Method::Parts, "{aws:?}");
        }
        for other in [
            Some("http://127.0.0.1:5000"),
            Some("http://[::1]:9000"),
            Some("https://minio.example.org"),
            Some("https://amazonaws.com.evil.example"),
            Some("https://user@notamazonaws.com/"),
        ] {
            assert_eq!(
                first_method_for(other, None),
                Method::OneRequest,
                "{other:?}"
            );
        }
        // What the server says it is outweighs where it is.
        let moto = Some("http://127.0.0.1:5000");
        assert_eq!(first_method_for(moto, Some("AmazonS3")), Method::Parts);
        assert_eq!(first_method_for(None, Some("MinIO")), Method::OneRequest);
        assert_eq!(
            first_method_for(moto, Some("Werkzeug/3.1.3 Python/3.11.7")),
            Method::OneRequest
        );
    }

    #[test]
    fn one_request_known_alone_stays_and_tries_parts_after_a_while() {
        let costs = SendingCosts::in_memory();
        let first = Method::OneRequest;
        assert_eq!(costs.choose(REGION, 1 << 30, first), Method::OneRequest);
        let mut ways = Vec::new();
        for _ in 0..(RETRY_AFTER + 2) {
            let way = costs.choose(REGION, 1 << 30, first);
            ways.push(way);
            let seconds = if way == Method::Parts { 30.0 } else { 18.0 };
            costs.record(REGION, sent(way, seconds, 0.0), first);
        }
        assert_eq!(
            ways[..RETRY_AFTER as usize],
            [Method::OneRequest; RETRY_AFTER as usize]
        );
        assert!(ways.contains(&Method::Parts), "{ways:?}");
        assert_eq!(ways.last(), Some(&Method::OneRequest), "{ways:?}");
    }

    #[test]
    fn figures_are_kept_apart_by_endpoint_and_size_class() {
        let gib = 1 << 30;
        assert_ne!(
            place("us-east-1", None, gib),
            place("us-east-1", Some("http://127.0.0.1:1"), gib)
        );
        assert_ne!(place("us-east-1", None, gib), place("eu-west-2", None, gib));
        assert_ne!(
            place("us-east-1", None, 20 << 20),
            place("us-east-1", None, gib)
        );
        assert_eq!(
            place("us-east-1", None, 300 << 20),
            place("us-east-1", None, 900 << 20)
        );
    }

    #[test]
    fn files_over_the_one_request_limit_always_go_in_parts() {
        let costs = SendingCosts::in_memory();
        costs.record(REGION, sent(Method::Parts, 30.0, 8.0), Method::Parts);
        assert_eq!(
            costs.choose(REGION, ONE_REQUEST_LIMIT + 1, Method::OneRequest),
            Method::Parts
        );
    }

    #[test]
    fn figures_survive_a_restart_and_a_garbled_file_starts_again() {
        let costs = SendingCosts::in_memory();
        costs.record(REGION, sent(Method::Parts, 30.0, 8.0), Method::Parts);
        let kept = costs.changes().unwrap();
        assert_eq!(costs.changes(), None, "nothing new to keep");
        let next = SendingCosts::in_memory();
        next.take_up(&kept, "test");
        assert_eq!(
            next.choose(REGION, 1 << 30, Method::Parts),
            Method::OneRequest
        );

        for garbled in [
            &b"{\"regions\": 7"[..],
            br#"{"regions": {"us-east-1 http://127.0.0.1:1": {"parts": -1.0}}}"#,
        ] {
            let next = SendingCosts::in_memory();
            next.take_up(garbled, "test");
            assert_eq!(next.choose(REGION, 1 << 30, Method::Parts), Method::Parts);
        }
    }
}
