//! A loopback HTTP/1.1 reverse proxy between the AWS SDK and `moto_server`.
//!
//! moto is a faithful enough S3 + SSM emulator for most things, but not for
//! the ones these tests care most about: it accepts a wrong `Content-MD5`
//! without complaint, and it answers 404 for a missing object where real AWS
//! answers 403 to a caller without `s3:ListBucket`. So the tests put this
//! proxy on the wire: it records every request (method, path, headers, body
//! length and, on request, body MD5; the status answered) and rewrites the
//! answers AWS would give differently. `Mode::Hang` and `Mode::Refuse`
//! simulate a region that is hung or down; refused deletes, a stager granted
//! only the documented write-only policy; a `BodyFault` damages the bytes of
//! the artifacts it serves, and a pace slows each of their answers as S3 does. The proxy owns its own thread and tokio runtime, so
//! plain `#[test]` functions can use it; it stops when dropped.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use md5::{Digest, Md5};
use tokio::sync::{oneshot, watch};

use super::body_fault::damage;
pub use super::body_fault::BodyFault;
use super::throttle::{paced, Flowing};

pub(super) type BoxError = Box<dyn StdError + Send + Sync>;
pub(super) type ProxyBody = BoxBody<Bytes, BoxError>;
type Upstream = Client<HttpConnector, ProxyBody>;

const S3_ACCESS_DENIED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
const XML: &str = "application/xml";
const SSM_JSON: &str = "application/x-amz-json-1.1";
/// Query parameters of ListObjects(V2); any other one on a bucket GET names a
/// sub-resource (`?location`, `?versioning`, `?uploads`, ...) that stays allowed.
const LISTING_PARAMS: &str = "list-type prefix delimiter marker max-keys encoding-type continuation-token fetch-owner start-after x-id";
/// Connection-level headers, not forwarded in either direction (the proxy
/// itself answers `Expect: 100-continue` by reading the body).
const HOP_BY_HOP: &str = "connection keep-alive proxy-connection te trailer upgrade expect";

/// What the proxy does with new requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward to upstream (with the deny rules applied).
    Forward,
    /// Read the request, never answer; when the mode changes or the proxy is
    /// dropped, the held connection is closed without an answer.
    Hang,
    /// Close the connection without answering.
    Refuse,
}

#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// As received, e.g. "/bucket/key?partNumber=1&uploadId=...".
    pub path_and_query: String,
    /// Lower-case names, in the order received.
    pub headers: Vec<(String, String)>,
    /// Bytes of body received so far (possibly aws-chunked encoded).
    pub body_len: usize,
    /// Base64 MD5 of the body as received; None until the body has ended, or
    /// when hashing is off (see `FaultProxy::set_hash_bodies`).
    pub body_md5: Option<String>,
    /// Status returned to the client; None if never answered.
    pub status: Option<u16>,
    /// The fault done to the answer's body, if any.
    pub body_fault: Option<BodyFault>,
}

impl RecordedRequest {
    /// The request's path without its query, with the escapes the SDK uses in keys
    /// (`@`, `+`) decoded.
    pub fn key_path(&self) -> String {
        let path = self.path_and_query.split('?').next().unwrap_or("");
        path.replace("%40", "@").replace("%2B", "+")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// How many bytes a `Range: bytes=A-B` header asks for; None without one.
    pub fn range_len(&self) -> Option<u64> {
        let (start, end) = self
            .header("range")?
            .strip_prefix("bytes=")?
            .split_once('-')?;
        Some(end.parse::<u64>().ok()? - start.parse::<u64>().ok()? + 1)
    }

    /// "x-amz-target: AmazonSSM.GetParameter" -> "GetParameter".
    pub fn ssm_action(&self) -> Option<&str> {
        self.header("x-amz-target")?.strip_prefix("AmazonSSM.")
    }

    /// Whether `Content-MD5` matches the body as received; None without the
    /// header or `body_md5`. (Meaningless for aws-chunked bodies.)
    pub fn content_md5_matches(&self) -> Option<bool> {
        Some(self.header("content-md5")? == self.body_md5.as_deref()?)
    }
}

struct Shared {
    upstream: String,
    mode: watch::Sender<Mode>,
    deny_listing: AtomicBool,
    /// `DeleteObject` is denied (403), as to a stager without `s3:DeleteObject`.
    deny_deletes: AtomicBool,
    hash_bodies: AtomicBool,
    body_fault: Mutex<Option<BodyFault>>,
    /// Bytes a second each artifact answer is paced to.
    pace: Mutex<Option<u64>>,
    flowing: Arc<Flowing>,
    /// Bytes a second each artifact upload (a PUT of an object or a part) is paced to.
    upload_pace: Mutex<Option<u64>>,
    denied_ssm: Mutex<Vec<String>>,
    /// SSM actions denied only for the parameters whose name ends with the suffix.
    denied_ssm_parameters: Mutex<(Vec<String>, String)>,
    /// Requests of this method are answered this long after upstream answered.
    answer_delay: Mutex<Option<(Method, Duration)>>,
    /// Answers from upstream carry this `Server` header instead of their own.
    server_name: Mutex<Option<String>>,
    log: Mutex<Vec<Arc<Mutex<RecordedRequest>>>>,
}

pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts listening on 127.0.0.1:0, forwarding to `upstream` (e.g. "http://127.0.0.1:5000").
    pub fn start(upstream: &str) -> FaultProxy {
        let uri: hyper::Uri = upstream.parse().expect("upstream URL");
        let shared = Arc::new(Shared {
            upstream: format!("http://{}", uri.authority().expect("upstream host:port")),
            mode: watch::Sender::new(Mode::Forward),
            deny_listing: AtomicBool::new(false),
            deny_deletes: AtomicBool::new(false),
            hash_bodies: AtomicBool::new(false),
            body_fault: Mutex::new(None),
            pace: Mutex::new(None),
            flowing: Arc::default(),
            upload_pace: Mutex::new(None),
            denied_ssm: Mutex::new(Vec::new()),
            denied_ssm_parameters: Mutex::new((Vec::new(), String::new())),
            answer_delay: Mutex::new(None),
            server_name: Mutex::new(None),
            log: Mutex::new(Vec::new()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("proxy address");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let (tx, rx) = oneshot::channel();
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                runtime.block_on(serve(listener, sh, rx));
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("spawn proxy thread");
        FaultProxy {
            addr,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request seen so far, in order of arrival.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.log)
            .iter()
            .map(|r| lock(r).clone())
            .collect()
    }

    /// The GETs of the object `key` (not of `key/metadata`) seen so far.
    pub fn gets_of(&self, key: &str) -> Vec<RecordedRequest> {
        let suffix = format!("/{key}");
        self.requests()
            .into_iter()
            .filter(|r| r.method == "GET" && r.key_path().ends_with(&suffix))
            .collect()
    }

    pub fn clear(&self) {
        lock(&self.shared.log).clear();
        self.shared.flowing.reset();
    }

    /// Takes effect for new requests (and releases held ones when leaving Hang).
    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.send_replace(mode);
    }

    pub fn set_deny_listing(&self, deny: bool) {
        self.shared.deny_listing.store(deny, Ordering::SeqCst);
    }

    /// Denies `DeleteObject` (403 AccessDenied); aborts of uploads stay allowed.
    pub fn set_deny_deletes(&self, deny: bool) {
        self.shared.deny_deletes.store(deny, Ordering::SeqCst);
    }

    /// Record `body_md5` for new requests. Off by default: md-5 runs at about
    /// 50 MB/s in an unoptimised test crate, which would throttle big uploads.
    pub fn set_hash_bodies(&self, on: bool) {
        self.shared.hash_bodies.store(on, Ordering::SeqCst);
    }

    /// Damages the artifacts served from now on; None serves them intact.
    pub fn set_body_fault(&self, fault: Option<BodyFault>) {
        *lock(&self.shared.body_fault) = fault;
    }

    /// Paces the body of every artifact served from now on to `rate` bytes a second
    /// (each answer on its own, as S3 limits each connection); None: full speed.
    pub fn set_pace(&self, rate: Option<u64>) {
        *lock(&self.shared.pace) = rate;
    }

    /// Paces the body of every artifact upload from now on (a PUT of an artifact or of
    /// one of its parts) to `rate` bytes a second, each on its own, as S3 limits each
    /// connection; None: full speed.
    pub fn set_upload_pace(&self, rate: Option<u64>) {
        *lock(&self.shared.upload_pace) = rate;
    }

    /// Answers each request of `method` `delay` after upstream answered it (its body
    /// read whole), as a server storing a large object takes a while to; None: at once.
    pub fn set_answer_delay(&self, delay: Option<(Method, Duration)>) {
        *lock(&self.shared.answer_delay) = delay;
    }

    /// The most paced artifact answers that flowed at once since the last `clear`.
    /// Answers name their server `name` (`AmazonS3`: as S3 does) instead of upstream's.
    pub fn set_server_name(&self, name: Option<&str>) {
        *lock(&self.shared.server_name) = name.map(str::to_string);
    }

    pub fn most_paced_at_once(&self) -> usize {
        self.shared.flowing.most()
    }

    /// How many answers had their body damaged so far.
    pub fn faulted(&self) -> usize {
        lock(&self.shared.log)
            .iter()
            .filter(|r| lock(r).body_fault.is_some())
            .count()
    }

    /// E.g. `["GetParametersByPath", "GetParameter"]`; empty to allow all.
    pub fn set_denied_ssm_actions(&self, actions: &[&str]) {
        *lock(&self.shared.denied_ssm) = actions.iter().map(|a| a.to_string()).collect();
    }

    /// Denies `actions` (e.g. `["GetParameter"]`) for the parameters whose name ends with
    /// `suffix` (e.g. `"/latest"`) only, as a policy naming those parameters would; an
    /// empty list allows all.
    pub fn set_denied_ssm_parameters(&self, actions: &[&str], suffix: &str) {
        let actions = actions.iter().map(|a| a.to_string()).collect();
        *lock(&self.shared.denied_ssm_parameters) = (actions, suffix.to_string());
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The error a service returns to make hyper drop the connection on purpose.
pub(super) const DROPPED: &str = "connection dropped on purpose by the fault proxy";

fn dropped() -> Answer {
    Err(DROPPED.into())
}

async fn serve(listener: std::net::TcpListener, sh: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => return eprintln!("fault proxy: cannot listen: {e}"),
    };
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Upstream = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(5))
        .build(connector);
    // Keep-alive on both sides is hyper's default; each connection is a task,
    // so a held request blocks nothing else.
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    eprintln!("fault proxy: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (sh, client) = (sh.clone(), client.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(sh.clone(), client.clone(), req));
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                let on_purpose = e.source().is_some_and(|s| s.to_string() == DROPPED);
                if !on_purpose && !e.is_incomplete_message() {
                    eprintln!("fault proxy: connection ended: {e}");
                }
            }
        });
    }
}

type Answer = Result<Response<ProxyBody>, BoxError>;

async fn handle(sh: Arc<Shared>, client: Upstream, req: Request<Incoming>) -> Answer {
    let (mut parts, incoming) = req.into_parts();
    let target = parts.uri.to_string(); // origin-form: path and query
    let headers = parts.headers.iter();
    let rec = Arc::new(Mutex::new(RecordedRequest {
        method: parts.method.to_string(),
        path_and_query: target.clone(),
        headers: headers
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect(),
        body_len: 0,
        body_md5: None,
        status: None,
        body_fault: None,
    }));
    lock(&sh.log).push(rec.clone());
    let mut body = Tap::new(incoming, rec.clone(), sh.hash_bodies.load(Ordering::SeqCst));

    let mode = *sh.mode.borrow();
    match mode {
        Mode::Forward => {}
        Mode::Refuse => return dropped(),
        Mode::Hang => {
            body.drain().await?;
            let _ = sh.mode.subscribe().wait_for(|m| *m != Mode::Hang).await;
            return dropped();
        }
    }

    let action = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let action = action
        .and_then(|t| t.strip_prefix("AmazonSSM."))
        .map(str::to_string);
    if let Some(action) = action
        .as_deref()
        .filter(|a| lock(&sh.denied_ssm).iter().any(|d| d == a))
    {
        body.drain().await?;
        return Ok(ssm_access_denied(&rec, action));
    }
    // A denial by parameter name needs the name, which is in the (small, JSON) body.
    let (denied_actions, suffix) = lock(&sh.denied_ssm_parameters).clone();
    let named_denial = action.filter(|a| denied_actions.contains(a));
    let mut read_body = None;
    if let Some(action) = named_denial {
        let bytes = (&mut body).collect().await?.to_bytes();
        let name = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|json| json["Name"].as_str().map(str::to_string));
        if name.is_some_and(|name| name.ends_with(&suffix)) {
            return Ok(ssm_access_denied(&rec, &action));
        }
        read_body = Some(bytes);
    }

    // Path-style S3: "/bucket", "/bucket/", "/bucket/key...".
    let deny = sh.deny_listing.load(Ordering::SeqCst);
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let path = path.trim_start_matches('/');
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let params = || query.split('&').map(|p| p.split('=').next().unwrap_or(p));
    let listing = || params().all(|p| p.is_empty() || LISTING_PARAMS.split(' ').any(|l| l == p));
    if deny && parts.method == Method::GET && !bucket.is_empty() && key.is_empty() && listing() {
        body.drain().await?;
        return Ok(answer(&rec, StatusCode::FORBIDDEN, XML, S3_ACCESS_DENIED));
    }
    let object_delete =
        parts.method == Method::DELETE && !key.is_empty() && !params().any(|p| p == "uploadId");
    if object_delete && sh.deny_deletes.load(Ordering::SeqCst) {
        body.drain().await?;
        return Ok(answer(&rec, StatusCode::FORBIDDEN, XML, S3_ACCESS_DENIED));
    }
    let is_head = parts.method == Method::HEAD;
    let object_read = deny
        && (parts.method == Method::GET || is_head)
        && !key.is_empty()
        && !params().any(|p| p == "uploadId");
    let artifact = key.replace("%40", "@");
    let artifact_read = parts.method == Method::GET
        && artifact.contains('@')
        && !artifact.ends_with("/metadata")
        && !params().any(|p| p == "uploadId");
    let body_fault = (*lock(&sh.body_fault)).filter(|_| artifact_read);

    let client_version = parts.version;
    parts.uri = match format!("{}{}", sh.upstream, target).parse() {
        Ok(uri) => uri,
        Err(e) => {
            eprintln!("fault proxy: bad request target {target:?}: {e}");
            return dropped();
        }
    };
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    let artifact_upload =
        parts.method == Method::PUT && artifact.contains('@') && !artifact.ends_with("/metadata");
    let upload_pace = (*lock(&sh.upload_pace)).filter(|_| artifact_upload);
    let body = match (read_body, upload_pace) {
        (Some(bytes), _) => Full::new(bytes).map_err(|never| match never {}).boxed(),
        (None, Some(rate)) => paced(body.boxed(), rate, Arc::default()).boxed(),
        (None, None) => body.boxed(),
    };
    let method_sent = parts.method.clone();
    let forwarded = Request::from_parts(parts, body);
    let resp = match client.request(forwarded).await {
        Ok(resp) => resp,
        Err(e) => {
            eprintln!("fault proxy: upstream request for {target:?} failed: {e:?}");
            return dropped();
        }
    };
    let delay = lock(&sh.answer_delay).clone();
    if let Some((_, delay)) = delay.filter(|(method, _)| *method == method_sent) {
        tokio::time::sleep(delay).await;
    }
    if object_read && resp.status() == StatusCode::NOT_FOUND {
        let xml = if is_head { "" } else { S3_ACCESS_DENIED };
        return Ok(answer(&rec, StatusCode::FORBIDDEN, XML, xml));
    }
    let (mut rparts, rbody) = resp.into_parts();
    rparts.version = client_version;
    strip_hop_by_hop(&mut rparts.headers);
    if let Some(name) = lock(&sh.server_name).as_deref() {
        if let Ok(value) = hyper::header::HeaderValue::from_str(name) {
            rparts.headers.insert(hyper::header::SERVER, value);
        }
    }
    lock(&rec).status = Some(rparts.status.as_u16());
    let rbody = rbody.map_err(BoxError::from).boxed();
    let served = matches!(rparts.status, StatusCode::OK | StatusCode::PARTIAL_CONTENT);
    let rbody = match body_fault.filter(|_| served) {
        Some(fault) => match damage(fault, &mut rparts.headers, rbody) {
            Ok(damaged) => {
                lock(&rec).body_fault = Some(fault);
                damaged
            }
            Err(intact) => intact,
        },
        None => rbody,
    };
    let rbody = match (*lock(&sh.pace)).filter(|_| served && artifact_read) {
        Some(rate) => paced(rbody, rate, Arc::clone(&sh.flowing)).boxed(),
        None => rbody,
    };
    Ok(Response::from_parts(rparts, rbody))
}

/// SSM's answer to an action the caller may not perform.
fn ssm_access_denied(rec: &Mutex<RecordedRequest>, action: &str) -> Response<ProxyBody> {
    let json = format!("{{\"__type\":\"AccessDeniedException\",\"message\":\"User is not authorized to perform: ssm:{action}\"}}");
    answer(rec, StatusCode::BAD_REQUEST, SSM_JSON, json)
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP.split(' ') {
        headers.remove(name);
    }
}

/// A locally made answer (no body on the wire for HEAD), recorded as returned.
fn answer(
    rec: &Mutex<RecordedRequest>,
    status: StatusCode,
    ctype: &'static str,
    body: impl Into<Bytes>,
) -> Response<ProxyBody> {
    let body = Full::new(body.into()).map_err(|never| match never {});
    let mut resp = Response::new(body.boxed());
    *resp.status_mut() = status;
    let ctype = HeaderValue::from_static(ctype);
    resp.headers_mut().insert(CONTENT_TYPE, ctype);
    lock(rec).status = Some(status.as_u16());
    resp
}

/// The request body on its way through: counts (and maybe hashes) its bytes
/// into the record as they pass, without buffering.
struct Tap {
    inner: Incoming,
    rec: Arc<Mutex<RecordedRequest>>,
    md5: Option<Md5>,
}

impl Tap {
    fn new(inner: Incoming, rec: Arc<Mutex<RecordedRequest>>, hash: bool) -> Tap {
        let mut tap = Tap {
            inner,
            rec,
            md5: hash.then(Md5::new),
        };
        if tap.inner.is_end_stream() {
            tap.finish();
        }
        tap
    }

    fn finish(&mut self) {
        if let Some(md5) = self.md5.take() {
            let digest = base64::engine::general_purpose::STANDARD.encode(md5.finalize());
            lock(&self.rec).body_md5 = Some(digest);
        }
    }

    /// Reads (and records) the rest of the body, for requests answered locally.
    async fn drain(&mut self) -> Result<(), BoxError> {
        while let Some(frame) = self.frame().await {
            frame?;
        }
        Ok(())
    }
}

impl Body for Tap {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let (md5, rec) = (&mut this.md5, &this.rec);
        let polled = ready!(super::frames::poll_data(
            Pin::new(&mut this.inner),
            cx,
            |data| {
                if let Some(md5) = md5.as_mut() {
                    md5.update(&data);
                }
                lock(rec).body_len += data.len();
                data
            }
        ));
        match &polled {
            Some(Ok(_)) if this.inner.is_end_stream() => this.finish(),
            None => this.finish(),
            Some(_) => {}
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
