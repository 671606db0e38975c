//! The storage seam: what one region can do, behind one trait.
//!
//! A `RegionStore` is one region's Systems Manager parameters and one region's S3
//! operations (the bucket is named per call, as in S3). The Startifact protocol in
//! `crate::protocol` is written only against this trait, so the AWS implementation
//! (`aws`) and the local-folder implementation (`local`) behave the same to it.
//!
//! Errors are classified once (`error`) into `StorageError`, so the protocol can tell
//! "not there" from "not allowed" from "region unavailable" without knowing which
//! backend answered. This file only names the modules and what the rest of the crate
//! uses of them: the trait and its types are `store`'s.

pub mod aws;
mod aws_errors;
mod aws_multipart;
mod backend;
pub mod breaker;
mod checked_file;
mod error;
pub mod health;
pub mod local;
pub mod options;
mod server_name;
mod store;
#[cfg(test)]
pub mod store_tests;
pub mod trust;

pub use backend::Backend;
pub use error::{chain, ErrorKind, ServiceAnswer, StorageError};
pub use health::{HealthBoard, RegionHealth};
pub use options::StorageOptions;
pub use store::{
    CompletedPart, ObjectInfo, ObjectStream, ObjectSummary, PartChecks, PutOptions, RegionStore,
    MD5_METADATA_KEY,
};
