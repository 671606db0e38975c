//! How the SDK's failures become `StorageError`s: timeouts, unreachable servers, and
//! each service answer by its code and HTTP status (not found, access denied, a failed
//! precondition, a bad digest, throttling, a server error), keeping the answer (status,
//! code, message, request id) and the SDK's error itself. The only place that reads SDK
//! errors.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

use super::error::{ErrorKind, ServiceAnswer, StorageError};

/// Sorts an SDK failure into the protocol's terms.
pub(super) fn classify<E>(what: String, err: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (kind, answer) = match &err {
        SdkError::TimeoutError(_) => (ErrorKind::Timeout, None),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => (ErrorKind::Timeout, None),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => (ErrorKind::Unavailable, None),
        SdkError::ConstructionFailure(_) => (ErrorKind::Invalid, None),
        SdkError::ServiceError(service) => {
            let raw = service.raw();
            let header = |name: &str| raw.headers().get(name).map(str::to_string);
            let answer = ServiceAnswer {
                status: raw.status().as_u16(),
                code: service.err().code().map(str::to_string),
                message: service.err().message().map(str::to_string),
                request_id: header("x-amz-request-id").or_else(|| header("x-amzn-requestid")),
            };
            (kind_of(answer.status, answer.code.as_deref()), Some(answer))
        }
        _ => (ErrorKind::Other, None),
    };
    let error = StorageError::new(kind, what);
    match answer {
        Some(answer) => error.with_answer(answer).with_source(err),
        None => error.with_source(err),
    }
}

/// The kind of a service's answer, by its code first, else its status.
fn kind_of(status: u16, code: Option<&str>) -> ErrorKind {
    match (status, code.unwrap_or("")) {
        (_, "ParameterNotFound" | "NoSuchKey" | "NoSuchBucket" | "NoSuchUpload" | "NotFound")
        | (404, _) => ErrorKind::NotFound,
        (_, "AccessDeniedException" | "AccessDenied") | (403, _) => ErrorKind::AccessDenied,
        (_, "PreconditionFailed" | "ConditionalRequestConflict") | (412, _) => {
            ErrorKind::PreconditionFailed
        }
        (_, "BadDigest" | "InvalidDigest") => ErrorKind::BadDigest,
        (_, "SlowDown" | "Throttling" | "ThrottlingException" | "TooManyRequestsException")
        | (429, _) => ErrorKind::Throttled,
        (500..=599, _) => ErrorKind::Unavailable,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_sorted_by_its_code_first_then_its_status() {
        assert_eq!(kind_of(400, Some("NoSuchUpload")), ErrorKind::NotFound);
        assert_eq!(kind_of(404, None), ErrorKind::NotFound);
        assert_eq!(
            kind_of(400, Some("AccessDeniedException")),
            ErrorKind::AccessDenied
        );
        assert_eq!(kind_of(412, None), ErrorKind::PreconditionFailed);
        assert_eq!(
            kind_of(409, Some("ConditionalRequestConflict")),
            ErrorKind::PreconditionFailed
        );
        assert_eq!(kind_of(400, Some("BadDigest")), ErrorKind::BadDigest);
        assert_eq!(kind_of(503, Some("SlowDown")), ErrorKind::Throttled);
        assert_eq!(
            kind_of(400, Some("ThrottlingException")),
            ErrorKind::Throttled
        );
        assert_eq!(kind_of(500, Some("InternalError")), ErrorKind::Unavailable);
        assert_eq!(kind_of(400, Some("InvalidArgument")), ErrorKind::Other);
    }
}
