//! Why one region's part of a stage did not leave the region holding the artifact:
//! the key is taken by another stager's bytes or metadata (our own ruling, said in
//! words for the stage report), or a request failed, its cause kept.

use crate::protocol::error::Error;
use crate::storage::StorageError;

/// Why a region did not take the artifact.
#[derive(Debug)]
pub(super) enum Refusal {
    /// The key holds other bytes or metadata.
    Taken(String),
    Failed(RegionError),
}

/// A region's part of a stage that failed, with the failure it came from.
#[derive(Debug, thiserror::Error)]
pub(super) enum RegionError {
    #[error(transparent)]
    Protocol(#[from] Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("Failed to discover if s3:/{bucket}/{key} exists in {region}: {source}")]
    Presence {
        bucket: String,
        key: String,
        region: String,
        #[source]
        source: StorageError,
    },
    #[error("{key} was left by an earlier stage of ours, and could not be replaced: {source}")]
    NotReplaced {
        key: String,
        #[source]
        source: StorageError,
    },
    #[error("{key} was left by an earlier stage of ours with other bytes, and could not be removed: {source}")]
    NotRemoved {
        key: String,
        #[source]
        source: StorageError,
    },
}

impl From<RegionError> for Refusal {
    fn from(error: RegionError) -> Self {
        Refusal::Failed(error)
    }
}

impl From<StorageError> for Refusal {
    fn from(error: StorageError) -> Self {
        Refusal::Failed(error.into())
    }
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        Refusal::Failed(error.into())
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_failed_head_keeps_the_storage_error_under_the_report_s_words() {
        let cause = StorageError::timeout("HeadObject");
        let failed = RegionError::Presence {
            bucket: "b".into(),
            key: "App@1.0.0".into(),
            region: "r".into(),
            source: cause.clone(),
        };
        assert_eq!(
            failed.to_string(),
            format!("Failed to discover if s3:/b/App@1.0.0 exists in r: {cause}")
        );
        let kept = failed
            .source()
            .and_then(|s| s.downcast_ref::<StorageError>());
        assert!(kept.is_some_and(|e| e.kind() == cause.kind()));
        assert!(matches!(
            Refusal::from(cause),
            Refusal::Failed(RegionError::Storage(_))
        ));
    }
}
