//! Why one region's part of a stage did not leave the region holding the artifact:
//! the key is taken by another stager's bytes or metadata (our own ruling), or a
//! request failed, its cause kept. The stage report gives both as text.

use crate::protocol::error::Error;
use crate::storage::StorageError;

/// Why a region did not take the artifact.
#[derive(Debug)]
pub(super) enum Refusal {
    /// The key holds other bytes or metadata.
    Taken(Taken),
    Failed(RegionError),
}

/// Where an artifact already is: the key, its bucket and region.
#[derive(Debug)]
pub(super) struct Existing {
    pub key: String,
    pub bucket: String,
    pub region: String,
}

impl std::fmt::Display for Existing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Existing {
            key,
            bucket,
            region,
        } = self;
        write!(f, "{key} exists in {bucket} in {region}")
    }
}

/// Why the key is not ours to stage in a region.
#[derive(Debug, thiserror::Error)]
pub(super) enum Taken {
    /// A dry run: the key is there, so a stage would not put it.
    #[error("{0}")]
    Exists(Existing),
    #[error("{at} with other content (MD5 {theirs}, ours {ours})")]
    OtherContent {
        at: Existing,
        theirs: String,
        ours: String,
    },
    /// Multipart or KMS-encrypted without our stager's record of the MD5.
    #[error("{0} and its MD5 cannot be known to compare")]
    UnknownContent(Existing),
    /// Another stager's metadata object: an artifact is never put beside it.
    #[error("{0} with other metadata")]
    OtherMetadata(Existing),
}

impl From<Taken> for Refusal {
    fn from(taken: Taken) -> Self {
        Refusal::Taken(taken)
    }
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

    #[test]
    fn a_key_taken_by_another_stager_is_said_as_before() {
        let at = || Existing {
            key: "App@1.0.0".into(),
            bucket: "b".into(),
            region: "r".into(),
        };
        let said = [
            (Taken::Exists(at()), "App@1.0.0 exists in b in r"),
            (
                Taken::OtherContent {
                    at: at(),
                    theirs: "aa".into(),
                    ours: "bb".into(),
                },
                "App@1.0.0 exists in b in r with other content (MD5 aa, ours bb)",
            ),
            (
                Taken::UnknownContent(at()),
                "App@1.0.0 exists in b in r and its MD5 cannot be known to compare",
            ),
            (
                Taken::OtherMetadata(at()),
                "App@1.0.0 exists in b in r with other metadata",
            ),
        ];
        for (taken, words) in said {
            assert_eq!(taken.to_string(), words);
        }
    }
}
