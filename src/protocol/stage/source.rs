//! What a stage is given: the file, the name to save for it, its digests when they were
//! taken as it was written, who stages it, and its parts when they were uploaded ahead.

use std::collections::HashMap;
use std::path::Path;

use crate::protocol::error::Error;
use crate::storage::CompletedPart;

use super::digests::FileDigests;
use super::ownership::Stager;

/// What to stage: a file, the name to save for it, its digests when known, its parts
/// when they were uploaded ahead, and who stages it (see `ownership`).
pub struct StageSource<'a> {
    pub path: &'a Path,
    pub file_name: Option<String>,
    pub digests: Option<FileDigests>,
    pub ahead: Option<UploadedAhead>,
    pub stager: Stager,
}

impl<'a> StageSource<'a> {
    /// The file at `path`, its own name saved when `save_filename`, by a new stager.
    pub fn of(path: &'a Path, save_filename: bool) -> Result<Self, Error> {
        let file_name = if save_filename {
            let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                Error::io(
                    format!("staging {}", path.display()),
                    std::io::Error::other("the path has no usable file name"),
                )
            })?;
            Some(name.to_string())
        } else {
            None
        };
        Ok(StageSource {
            path,
            file_name,
            digests: None,
            ahead: None,
            stager: Stager::default(),
        })
    }
}

/// The parts of a large file uploaded to each region before its stage, without the
/// completion that publishes them. The mount uploads ahead when rsync closes its
/// temporary file, so that the rename that stages it only completes the uploads.
#[derive(Debug, Clone, Default)]
pub struct UploadedAhead {
    pub(super) key: String,
    pub(super) md5_hex: String,
    pub(super) size: u64,
    /// The stage id its object carries once completed: only that stage completes it.
    pub(super) stager_id: String,
    /// Region -> (upload id, parts).
    pub(super) regions: HashMap<String, (String, Vec<CompletedPart>)>,
}

impl UploadedAhead {
    /// How many regions hold every part.
    pub fn regions(&self) -> usize {
        self.regions.len()
    }

    /// The id of the stage that may complete it (`StageSource::stager`).
    pub fn stager_id(&self) -> &str {
        &self.stager_id
    }
}
