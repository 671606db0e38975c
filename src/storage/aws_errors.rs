//! How the SDK's failures become `StorageError`s: timeouts, unreachable servers, and
//! each service answer by its code and HTTP status (not found, access denied, a failed
//! precondition, a bad digest, a server error). The only place that reads SDK errors.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

use super::StorageError;

/// Sorts an SDK failure into the protocol's terms.
pub(super) fn classify<E>(what: String, err: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::TimeoutError(_) => StorageError::Timeout(what),
        SdkError::DispatchFailure(failure) => {
            if failure.is_timeout() {
                StorageError::Timeout(what)
            } else {
                StorageError::Unavailable(format!("{what}: {}", describe(&err)))
            }
        }
        SdkError::ConstructionFailure(_) => {
            StorageError::Invalid(format!("{what}: {}", describe(&err)))
        }
        SdkError::ResponseError(_) => {
            StorageError::Unavailable(format!("{what}: {}", describe(&err)))
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("");
            let message = service.err().message().unwrap_or("");
            let detail = format!("{what}: {code} {message} (HTTP {status})");
            match (status, code) {
                (_, "ParameterNotFound" | "NoSuchKey" | "NoSuchBucket" | "NotFound") | (404, _) => {
                    StorageError::NotFound(detail)
                }
                (_, "AccessDeniedException" | "AccessDenied") | (403, _) => {
                    StorageError::AccessDenied(detail)
                }
                (_, "PreconditionFailed" | "ConditionalRequestConflict") | (412, _) => {
                    StorageError::PreconditionFailed(detail)
                }
                (_, "BadDigest" | "InvalidDigest") => StorageError::BadDigest(detail),
                (500..=599, _) => StorageError::Unavailable(detail),
                _ => StorageError::Other(detail),
            }
        }
        _ => StorageError::Other(format!("{what}: {}", describe(&err))),
    }
}

/// The whole chain of an error, since the SDK's top-level messages are terse.
pub(super) fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
