//! What the spool keeps of the staging folders: a change to a version counts only once
//! its `state.json` is saved, and `status.json` is rewritten after every change, for
//! people and scripts (its states are the README's).

use super::model::{no_staging_folder, StagingVersion};
use super::spool::{FileStatus, StatusEntry};
use super::state::Staging;
use crate::fs::error::FsResult;
use crate::fs::sync::lock;

impl Staging {
    /// Changes a staging version's state under the lock and saves it; a change that
    /// cannot be saved is undone.
    pub(super) fn update<T>(
        &self,
        project: &str,
        version: &str,
        change: impl FnOnce(&mut StagingVersion) -> FsResult<T>,
    ) -> FsResult<T> {
        let mut folders = lock(&self.folders);
        let slot = folders
            .unpublished_mut(project, version)
            .ok_or_else(|| no_staging_folder(project, version))?;
        let before = slot.state.clone();
        let result = change(slot)?;
        if slot.state != before {
            if let Err(e) = self.spool.save(project, version, &slot.state) {
                slot.state = before;
                return Err(e);
            }
        }
        drop(folders);
        self.write_status();
        Ok(result)
    }

    pub(super) fn write_status(&self) {
        let entries: Vec<StatusEntry> = lock(&self.folders)
            .versions
            .iter()
            .map(|((project, version), slot)| {
                let file = slot.state.file.as_ref();
                let mut entry = StatusEntry {
                    project: project.clone(),
                    version: version.clone(),
                    file: file.map(|f| f.name.clone()),
                    size: slot.bytes.size,
                    state: String::new(),
                    reason: None,
                    by: file.and_then(|f| f.by.clone()),
                    regions: Vec::new(),
                    attempts: None,
                    next_try_seconds: None,
                };
                let (state, reason) = match file.map(|f| &f.status) {
                    None => ("empty", None),
                    Some(FileStatus::Writing) if slot.stage.running => ("staging", None),
                    Some(FileStatus::Writing) => ("writing", None),
                    Some(FileStatus::Staging) if slot.stage.interrupted => (
                        "interrupted",
                        Some(
                            "the daemon stopped during the stage: it resumes at the next start"
                                .to_string(),
                        ),
                    ),
                    Some(FileStatus::Staging) => ("staging", None),
                    Some(FileStatus::Written) => ("awaiting-rename", None),
                    Some(FileStatus::Abandoned { reason }) => ("abandoned", Some(reason.clone())),
                    Some(FileStatus::Failed { reason }) => ("failed", Some(reason.clone())),
                    Some(FileStatus::AwaitingRepair(repair)) => {
                        entry.regions = repair.regions.clone();
                        entry.attempts = Some(repair.attempts);
                        entry.next_try_seconds = Some(repair.next_try_seconds);
                        ("awaiting-repair", Some(repair.last_error.clone()))
                    }
                    Some(FileStatus::Conflict { regions, reason }) => {
                        entry.regions = regions.clone();
                        ("conflict", Some(reason.clone()))
                    }
                };
                entry.state = state.to_string();
                entry.reason = reason;
                entry
            })
            .collect();
        self.spool.write_status(&entries);
    }
}
