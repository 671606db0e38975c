//! Why a storage operation failed: its kind (what the layers above decide on: absent,
//! refused, a condition that did not hold, a region that cannot answer...), what was
//! asked, the service's answer when there was one (HTTP status, error code and message,
//! request id), and the error underneath (the SDK's, or the local disk's).
//!
//! The message (`Display`) tells the whole story, since logs print it; `source()` gives
//! the underlying error itself, and `kind()` and `answer()` what a caller may decide on.
//! Nobody above this layer tests an error's text.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// What kind of failure, in the terms the protocol cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The object, parameter, bucket or upload does not exist.
    NotFound,
    /// The caller is not allowed to do this (IAM), or the key is hidden from it.
    AccessDenied,
    /// A conditional request (`If-None-Match: *`, `If-Match: etag`) did not hold.
    PreconditionFailed,
    /// The bytes received did not match the Content-MD5 sent with them.
    BadDigest,
    /// The service asked us to slow down (429, `SlowDown`, `ThrottlingException`).
    Throttled,
    /// The request did not complete within its timeout.
    Timeout,
    /// The region could not be reached, or answered with a server error.
    Unavailable,
    /// The request was refused as invalid.
    Invalid,
    /// The local disk failed (the local store, or a file being sent).
    Io,
    /// Anything else the service reported.
    Other,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AccessDenied => "access denied",
            ErrorKind::PreconditionFailed => "precondition failed",
            ErrorKind::BadDigest => "bad digest",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Invalid => "invalid request",
            ErrorKind::Io => "I/O error",
            ErrorKind::Other => "failed",
        })
    }
}

/// What the service answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceAnswer {
    pub status: u16,
    /// The error code (`NoSuchKey`, `AccessDenied`, `ParameterNotFound`...).
    pub code: Option<String>,
    pub message: Option<String>,
    /// `x-amz-request-id` (S3) or `x-amzn-RequestId` (SSM): what AWS support asks for.
    pub request_id: Option<String>,
}

type Source = Arc<dyn StdError + Send + Sync>;

/// A failed storage operation (see the module's comment).
#[derive(Debug, Clone)]
pub struct StorageError {
    kind: ErrorKind,
    what: String,
    /// Boxed: an error travels in every `Result` of the layers above.
    answer: Option<Box<ServiceAnswer>>,
    source: Option<Source>,
}

impl StorageError {
    /// A failure of `kind`; `what` says what was asked and, when there is no answer or
    /// source to say it, why it failed.
    pub fn new(kind: ErrorKind, what: impl Into<String>) -> Self {
        StorageError {
            kind,
            what: what.into(),
            answer: None,
            source: None,
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, what)
    }
    pub fn access_denied(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::AccessDenied, what)
    }
    pub fn precondition_failed(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::PreconditionFailed, what)
    }
    pub fn bad_digest(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadDigest, what)
    }
    pub fn timeout(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, what)
    }
    pub fn unavailable(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, what)
    }
    pub fn invalid(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, what)
    }
    pub fn other(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, what)
    }

    /// The service's answer that made it fail.
    pub fn with_answer(mut self, answer: ServiceAnswer) -> Self {
        self.answer = Some(Box::new(answer));
        self
    }

    /// The error underneath.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What was asked (`GetObject s3://bucket/key in us-east-1`, say).
    pub fn what(&self) -> &str {
        &self.what
    }

    pub fn answer(&self) -> Option<&ServiceAnswer> {
        self.answer.as_deref()
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
    pub fn is_access_denied(&self) -> bool {
        self.kind == ErrorKind::AccessDenied
    }
    pub fn is_precondition_failed(&self) -> bool {
        self.kind == ErrorKind::PreconditionFailed
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            // Its words say it all.
            ErrorKind::Other => f.write_str(&self.what)?,
            kind => write!(f, "{kind}: {}", self.what)?,
        }
        if let Some(answer) = &self.answer {
            let said: Vec<&str> = [answer.code.as_deref(), answer.message.as_deref()]
                .into_iter()
                .flatten()
                .filter(|s| !s.is_empty())
                .collect();
            if !said.is_empty() {
                write!(f, ": {}", said.join(" "))?;
            }
            write!(f, " (HTTP {}", answer.status)?;
            if let Some(id) = &answer.request_id {
                write!(f, ", request id {id}")?;
            }
            f.write_str(")")?;
        } else if let Some(source) = &self.source {
            write!(f, ": {}", chain(source.as_ref()))?;
        }
        Ok(())
    }
}

impl StdError for StorageError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

/// An error and its causes, `a: b: c` (the SDK's top-level messages are terse, and say
/// the connection was refused only two causes down).
pub fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let said = inner.to_string();
        // Some wrappers repeat their cause's words.
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_says_the_kind_what_was_asked_and_the_answer() {
        let e = StorageError::not_found("HeadObject s3://b/k in r").with_answer(ServiceAnswer {
            status: 404,
            code: Some("NoSuchKey".into()),
            message: Some("The specified key does not exist.".into()),
            request_id: Some("R1".into()),
        });
        assert_eq!(
            e.to_string(),
            "not found: HeadObject s3://b/k in r: NoSuchKey The specified key does not exist. \
             (HTTP 404, request id R1)"
        );
        assert!(e.is_not_found() && e.answer().map(|a| a.status) == Some(404));
    }

    #[test]
    fn the_cause_is_kept_and_told() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = StorageError::unavailable("GetObject s3://b/k").with_source(refused);
        assert_eq!(e.to_string(), "unavailable: GetObject s3://b/k: refused");
        let source = e.source().and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            source.map(std::io::Error::kind),
            Some(std::io::ErrorKind::ConnectionRefused)
        );
    }
}
