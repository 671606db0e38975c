//! What is staging, in memory: the staging folders (projects and versions), and for each
//! version its saved state, the bytes of its file as they are written, and its stage;
//! with the views the mount shows of them.

use crate::fs::caller::Caller;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::protocol::{DigestWriter, Metadata, UploadedAhead};

use super::spool::{time_of, FileStatus, VersionState};
use crate::fs::error::{FsError, FsErrorKind, FsResult};

/// The file of a staging version, as the mount shows it.
#[derive(Debug, Clone)]
pub struct FileView {
    pub name: String,
    pub folder: Option<String>,
    pub size: u64,
    pub mtime: SystemTime,
    pub attributes: Metadata,
    pub status: FileStatus,
    pub by: Option<Caller>,
}

/// A staging version, as the mount shows it.
#[derive(Debug, Clone)]
pub struct VersionView {
    pub created: SystemTime,
    pub attributes: Metadata,
    pub subfolders: Vec<String>,
    pub file: Option<FileView>,
}

/// The staging folders.
#[derive(Default)]
pub(super) struct Folders {
    /// Project folders made by `mkdir` (kept while they hold staging versions or
    /// until `rmdir`; across restarts too, marked so in the spool). The folder of any
    /// other project goes with the last staging version it holds.
    pub(super) projects: BTreeSet<String>,
    pub(super) versions: BTreeMap<(String, String), StagingVersion>,
}

/// A staging version folder.
pub(super) struct StagingVersion {
    /// What its `state.json` keeps.
    pub(super) state: VersionState,
    pub(super) bytes: SpooledBytes,
    pub(super) stage: StageState,
}

/// The bytes of the version's file in the spool, and who is writing them.
pub(super) struct SpooledBytes {
    pub(super) size: u64,
    /// Handles open for writing.
    pub(super) writers: usize,
    /// The spool file, opened at its first use.
    pub(super) data: Option<Arc<std::fs::File>>,
    /// Hashes the bytes as they are written, so that the stage need not read them again.
    pub(super) digest: Arc<Mutex<DigestWriter>>,
}

/// The stage of the version's file.
#[derive(Default)]
pub(super) struct StageState {
    /// A stage is running (or, after `interrupted`, waits for the next start).
    pub(super) running: bool,
    /// The daemon stopped during the stage: nothing may change the file before the
    /// next start resumes it.
    pub(super) interrupted: bool,
    /// Stages (and uploads ahead) of one version run one at a time.
    pub(super) one_at_a_time: Arc<tokio::sync::Mutex<()>>,
    /// Parts uploaded when the file was closed under a temporary name.
    pub(super) ahead: Option<UploadedAhead>,
}

pub(super) fn key(project: &str, version: &str) -> (String, String) {
    (project.to_string(), version.to_string())
}

pub(super) fn no_staging_folder(project: &str, version: &str) -> FsError {
    FsError::not_found(format!("no staging folder {project}/{version}"))
}

impl Folders {
    /// A staging version, unless it was published (and is only kept for repair).
    pub(super) fn unpublished(&self, project: &str, version: &str) -> Option<&StagingVersion> {
        self.versions
            .get(&key(project, version))
            .filter(|slot| !slot.published())
    }

    pub(super) fn unpublished_mut(
        &mut self,
        project: &str,
        version: &str,
    ) -> Option<&mut StagingVersion> {
        self.versions
            .get_mut(&key(project, version))
            .filter(|slot| !slot.published())
    }

    /// The staging version holding a file that may change now.
    pub(super) fn file_slot(
        &mut self,
        project: &str,
        version: &str,
    ) -> FsResult<&mut StagingVersion> {
        let slot = self
            .unpublished_mut(project, version)
            .filter(|slot| slot.state.file.is_some())
            .ok_or_else(|| FsError::not_found(format!("{project}/{version} holds no file")))?;
        slot.not_staging(project, version)?;
        Ok(slot)
    }
}

impl StagingVersion {
    /// A version folder holding `size` bytes in the spool, hashed so far by `digest`.
    pub(super) fn new(state: VersionState, size: u64, digest: DigestWriter) -> Self {
        StagingVersion {
            state,
            bytes: SpooledBytes {
                size,
                writers: 0,
                data: None,
                digest: Arc::new(Mutex::new(digest)),
            },
            stage: StageState::default(),
        }
    }

    pub(super) fn view(&self) -> VersionView {
        VersionView {
            created: time_of(self.state.created_seconds),
            attributes: self.state.attributes.clone(),
            subfolders: self.state.subfolders.iter().cloned().collect(),
            file: self.state.file.as_ref().map(|f| FileView {
                name: f.name.clone(),
                folder: f.folder.clone(),
                size: self.bytes.size,
                mtime: time_of(f.mtime_seconds),
                attributes: f.attributes.clone(),
                status: f.status.clone(),
                by: f.by.clone(),
            }),
        }
    }

    /// EBUSY while a stage of the file runs.
    pub(super) fn not_staging(&self, project: &str, version: &str) -> FsResult<()> {
        if self.stage.running {
            return Err(FsError::new(
                FsErrorKind::Busy,
                format!("{project}/{version} is being staged"),
            ));
        }
        Ok(())
    }

    pub(super) fn published(&self) -> bool {
        self.state
            .file
            .as_ref()
            .is_some_and(|f| f.status.is_published())
    }
}
