//! Why a repair could not read a region or carry out an action, each with the failure
//! it came from. The report gives them as text (`Outcome::Failed`, the problems).

use semver::Version;

use super::super::error::Error;
use super::copy::CopyError;
use crate::storage::StorageError;

/// Why a region's bucket or objects cannot be used: the region is skipped.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    #[error("the bucket-name parameter {parameter} does not exist in {region}; create the bucket and the parameter (repair never creates buckets)")]
    NoBucketParameter {
        parameter: String,
        region: String,
        #[source]
        source: Error,
    },
    #[error(transparent)]
    Bucket(Error),
    #[error(
        "the bucket {bucket} does not exist in {region}; create it (repair never creates buckets)"
    )]
    NoBucket {
        bucket: String,
        region: String,
        #[source]
        source: StorageError,
    },
    #[error("cannot list s3://{bucket}/{prefix}: {source}")]
    Listing {
        bucket: String,
        prefix: String,
        #[source]
        source: StorageError,
    },
}

/// Why a region's `latest` parameter could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LatestUnreadable {
    #[error("{parameter} holds {text:?}, not a version: {source}")]
    NotAVersion {
        parameter: String,
        text: String,
        #[source]
        source: semver::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why one action of the plan failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum Failure {
    #[error("{0} is not one of the session's regions")]
    NotARegion(String),
    #[error("{from} or {to} is not one of the session's regions")]
    NotRegions { from: String, to: String },
    #[error("a bucket is unknown")]
    BucketUnknown,
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error("{project}@{version} is not held by a majority of the regions: latest not moved")]
    NoMajority { project: String, version: Version },
    #[error("{name} in {region} changed meanwhile (now {}): left for the next repair", now.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "none".into()))]
    ChangedMeanwhile {
        name: String,
        region: String,
        now: Option<Version>,
    },
    #[error(transparent)]
    Protocol(#[from] Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::storage::ErrorKind;

    #[test]
    fn a_region_that_cannot_be_listed_keeps_the_storage_error_under_the_same_words() {
        let cause = StorageError::unavailable("ListObjectsV2");
        let unusable = Unusable::Listing {
            bucket: "b".into(),
            prefix: "p/".into(),
            source: cause.clone(),
        };
        assert_eq!(
            unusable.to_string(),
            format!("cannot list s3://b/p/: {cause}")
        );
        let kept = unusable
            .source()
            .and_then(|s| s.downcast_ref::<StorageError>());
        assert_eq!(kept.map(StorageError::kind), Some(ErrorKind::Unavailable));
    }

    #[test]
    fn a_failed_action_says_what_it_said_and_keeps_its_cause() {
        let conflict = Failure::from(CopyError::Conflict("k appeared".into()));
        assert_eq!(conflict.to_string(), "conflict: k appeared");
        let moved = Failure::ChangedMeanwhile {
            name: "/p/latest".into(),
            region: "r".into(),
            now: None,
        };
        assert_eq!(
            moved.to_string(),
            "/p/latest in r changed meanwhile (now none): left for the next repair"
        );
        let refused = Failure::from(StorageError::access_denied("PutParameter"));
        assert!(matches!(&refused, Failure::Storage(e) if e.is_access_denied()));
        assert_eq!(
            refused.to_string(),
            StorageError::access_denied("PutParameter").to_string()
        );
    }
}
