//! The errors of the Startifact protocol, with messages at least as clear as the
//! Python tool's (several repeat its wording, which scripts may match).

use crate::storage::StorageError;

use super::stage_report::StageReport;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("STARTIFACT_REGIONS is empty or not set.")]
    NoRegionsConfigured,

    #[error("None of the configured regions are available: {regions:?}{}", reasons_suffix(.reasons))]
    NoRegionsAvailable {
        regions: Vec<String>,
        reasons: Vec<String>,
        /// Every region that failed refused (IAM), rather than failing or lacking what
        /// was asked: a caller without `s3:ListBucket` asking for a listing, say.
        denied: bool,
    },

    #[error("The organisation configuration key \"{key}\" is empty. Have you run \"startifact --setup\"?")]
    NoConfiguration { key: String },

    #[error("Project name {name:?} does not satisfy \"^[a-zA-Z0-9_\\-\\.]+$\" (and may not be \".\" or \"..\")")]
    ProjectName { name: String },

    #[error("{text:?} is not a valid Semantic Versioning 2.0 version: {reason}")]
    Version { text: String, reason: String },

    #[error(
        "Metadata key {key:?} is reserved: keys starting \"startifact:\" belong to Startifact"
    )]
    ReservedMetadataKey { key: String },

    #[error("Metadata of {what} is not a JSON object of strings: {reason}")]
    BadMetadata { what: String, reason: String },

    /// Larger than `metadata::MAX_METADATA_BYTES`: refused when read or staged.
    #[error("Metadata of {what} is {} the {} MiB ({limit} bytes) a metadata object may have", over_by(*.size), .limit >> 20)]
    OversizedMetadata {
        what: String,
        size: Option<usize>,
        limit: usize,
    },

    #[error("Could not stage {}@{} to enough regions ({}): {}{}", .0.project, .0.version, .0.summary(), .0.failures(), .0.left_behind_text())]
    CannotStage(Box<StageReport>),

    #[error("Could not move the latest version of {project} to {version}: {moved} of {regions} regions took it{}", reasons_suffix(.reasons))]
    CannotSetLatest {
        project: String,
        version: String,
        moved: usize,
        regions: usize,
        reasons: Vec<String>,
    },

    #[error("Could not yank {project}@{version} from every region{}", reasons_suffix(.reasons))]
    CannotYank {
        project: String,
        version: String,
        reasons: Vec<String>,
    },

    #[error("{project}@{version} was not found in any region{}", reasons_suffix(.reasons))]
    ArtifactNotFound {
        project: String,
        version: String,
        /// Every region answered that the object is not there (404, or 403 to a
        /// caller without `s3:ListBucket`), rather than failing.
        absent: bool,
        reasons: Vec<String>,
    },

    /// Neither present nor absent by the majority rule (`census`): too few regions
    /// answered, or they hold different bytes and no copy is held by a majority.
    #[error("Cannot say whether {project}@{version} exists: {detail}")]
    NoMajority {
        project: String,
        version: String,
        /// Regions hold different bytes (rather than too few answering).
        conflict: bool,
        detail: String,
    },

    #[error("Only {answered} regions could list the versions of {project}; {needed} must{}", reasons_suffix(.reasons))]
    NoMajorityListing {
        project: String,
        answered: usize,
        needed: usize,
        reasons: Vec<String>,
    },

    #[error("Fewer than {needed} of the regions could say the latest version of {project}{}", reasons_suffix(.reasons))]
    NoQuorum {
        project: String,
        needed: usize,
        /// Regions that answered that the parameter does not exist.
        missing: usize,
        /// A majority of all regions answered that it does not exist (see `census`):
        /// the project has no `latest`, rather than too few regions answering.
        absent: bool,
        reasons: Vec<String>,
    },

    #[error("Failed to interact with parameter {name} in {region}: {source}")]
    Parameter {
        name: String,
        region: String,
        #[source]
        source: StorageError,
    },

    #[error("{what} from {region} does not match: expected {expected}, got {actual}")]
    Integrity {
        what: String,
        region: String,
        expected: String,
        actual: String,
    },

    /// The bytes about to be staged are not those that were written (hashed as they
    /// were written): something changed the file behind the writer's back.
    #[error("{path}: {what} changed since it was written (MD5 taken while writing {expected}, now {actual}); not staged")]
    Changed {
        path: String,
        what: String,
        expected: String,
        actual: String,
    },

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("this session is read-only")]
    ReadOnly,

    #[error("{0}")]
    Setup(String),

    /// Endpoints, timeouts or retries given in the environment that make no sense.
    #[error("{0}")]
    Options(String),

    /// A task of ours failed (a panic or a cancelled blocking task).
    #[error("internal error: {0}")]
    Internal(String),

    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// "N bytes, over", or "over" when the size is unknown (a read stops past the limit).
fn over_by(size: Option<usize>) -> String {
    match size {
        Some(size) => format!("{size} bytes, over"),
        None => "over".to_string(),
    }
}

fn reasons_suffix(reasons: &[String]) -> String {
    if reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", reasons.join("; "))
    }
}

impl Error {
    /// Every region refused (IAM), rather than failing or lacking what was asked: a
    /// caller without `s3:ListBucket` asking for a listing, say.
    pub fn is_denied_everywhere(&self) -> bool {
        matches!(self, Error::NoRegionsAvailable { denied: true, .. })
    }

    /// The region refused (IAM), rather than failing or lacking what was asked.
    pub fn is_denied(&self) -> bool {
        match self {
            Error::Storage(e) | Error::Parameter { source: e, .. } => e.is_access_denied(),
            _ => false,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
