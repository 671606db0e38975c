//! The Startifact protocol over the storage seam: configuration, bucket names, keys,
//! quorum reads of `latest`, metadata, downloads with failover, and multi-region
//! staging. Nothing here knows whether a region is AWS or a local folder.

pub mod artifact;
pub mod census;
pub mod configuration;
pub mod copies;
mod download;
pub mod error;
mod json;
pub mod latest;
pub mod latest_agreement;
pub mod listing;
pub mod metadata;
pub mod names;
pub mod progress;
pub mod regions;
pub mod repair;
pub mod session;
pub mod set_latest;
pub mod setup;
pub mod stage;
mod stage_report;
pub mod yank;

pub use artifact::{Artifact, Download, Verification};
pub use census::Location;
pub use census::{majority, Census, Verdict};
pub use configuration::{Configuration, DEFAULT_CONFIGURATION_PARAMETER};
pub use error::Error;
pub use json::python_dumps;
pub use latest::{read_latest, LatestVersion};
pub use listing::{list_projects, sort_versions, ProjectListing};
pub use metadata::Metadata;
pub use names::{parse_version, validate_project_name};
pub use progress::{Progress, ProgressHandle};
pub use repair::{Outcome as RepairOutcome, RepairReport};
pub use session::{LoadedConfiguration, Session, SessionBuilder};
pub use set_latest::LatestReport;
pub use stage::{
    new_stage_id, Completion, DigestWriter, FileDigests, LatestChange, PartsRule, RegionOutcome,
    SendingCosts, StageOptions, StageReport, StageSource, Stager, UploadedAhead,
    STAGE_METADATA_KEY,
};
pub use yank::{YankFailure, YankReport};
