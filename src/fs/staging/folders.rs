//! The staging folders: what the mount lists of them, `mkdir` and `rmdir` of project,
//! version and hidden subfolders, and dropping a version kept only for repair.

use std::time::SystemTime;

use crate::protocol::DigestWriter;

use super::model::VersionView;
use super::model::{key, no_staging_folder, StagingVersion};
use super::spool::{seconds_of, VersionState};
use super::state::Staging;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::sync::lock;

impl Staging {
    // ---- what the mount shows ----

    /// Projects with a staging folder here.
    pub fn projects(&self) -> Vec<String> {
        let folders = lock(&self.folders);
        let mut projects = folders.projects.clone();
        projects.extend(
            folders
                .versions
                .iter()
                .filter(|(_, slot)| !slot.published())
                .map(|((p, _), _)| p.clone()),
        );
        projects.into_iter().collect()
    }

    pub fn has_project(&self, project: &str) -> bool {
        self.projects().iter().any(|p| p == project)
    }

    /// The staging (unpublished) versions of a project.
    pub fn versions_of(&self, project: &str) -> Vec<String> {
        lock(&self.folders)
            .versions
            .iter()
            .filter(|((p, _), slot)| p == project && !slot.published())
            .map(|((_, v), _)| v.clone())
            .collect()
    }

    /// Whether a version is staging here (and unpublished).
    pub fn is_staging(&self, project: &str, version: &str) -> bool {
        lock(&self.folders).unpublished(project, version).is_some()
    }

    /// A staging version, unless it was published.
    pub fn view(&self, project: &str, version: &str) -> Option<VersionView> {
        lock(&self.folders)
            .unpublished(project, version)
            .map(StagingVersion::view)
    }

    // ---- mkdir and rmdir ----

    pub fn create_project(&self, project: &str) -> FsResult<()> {
        self.spool.create_project(project)?;
        lock(&self.folders).projects.insert(project.to_string());
        tracing::info!(project, "staging project folder made");
        Ok(())
    }

    pub fn remove_project(&self, project: &str) -> FsResult<()> {
        let mut folders = lock(&self.folders);
        if folders.versions.keys().any(|(p, _)| p == project) {
            return Err(FsError::new(
                FsErrorKind::NotEmpty,
                format!("{project} holds staging versions"),
            ));
        }
        if !folders.projects.remove(project) {
            return Err(FsError::not_found(format!("no staging folder {project}")));
        }
        self.spool.remove_project(project)
    }

    pub fn create_version(&self, project: &str, version: &str) -> FsResult<()> {
        let state = VersionState {
            created_seconds: seconds_of(SystemTime::now()),
            ..VersionState::default()
        };
        self.spool.create_version(project, version, &state)?;
        let digest = DigestWriter::new(
            self.stage_options.part_size,
            self.stage_options.multipart_threshold,
        )
        .with_parts_rule(self.parts_rule.clone());
        lock(&self.folders)
            .versions
            .insert(key(project, version), StagingVersion::new(state, 0, digest));
        tracing::info!(project, version, "staging version folder made");
        self.write_status();
        Ok(())
    }

    /// `rmdir` of an empty staging version folder.
    pub fn remove_version(&self, project: &str, version: &str) -> FsResult<()> {
        let mut folders = lock(&self.folders);
        let slot = folders
            .unpublished(project, version)
            .ok_or_else(|| no_staging_folder(project, version))?;
        if slot.state.file.is_some() || !slot.state.subfolders.is_empty() {
            return Err(FsError::new(
                FsErrorKind::NotEmpty,
                format!("{project}/{version} is not empty"),
            ));
        }
        folders.versions.remove(&key(project, version));
        drop(folders);
        self.spool.remove_version(project, version)?;
        self.drop_unmade_project(project);
        self.write_status();
        Ok(())
    }

    /// Removes the spool's folder of a project that holds no staging version and was
    /// not made by `mkdir` (the folder made with its first staging version), so that
    /// the next start does not show a project this mount no longer showed. A folder
    /// that cannot be removed is logged: the version it held is gone all the same.
    fn drop_unmade_project(&self, project: &str) {
        let folders = lock(&self.folders);
        let held = folders.versions.keys().any(|(p, _)| p == project);
        if held || folders.projects.contains(project) {
            return;
        }
        if let Err(e) = self.spool.remove_project(project) {
            tracing::warn!(project, "the staging folder of the project stays: {e}");
        }
    }

    pub fn create_subfolder(&self, project: &str, version: &str, name: &str) -> FsResult<()> {
        if !name.starts_with('.') {
            return Err(FsError::new(
                FsErrorKind::Immutable,
                format!(
                    "{project}/{version} holds one file; only hidden folders (rsync's .~tmp~) may be made in it"
                ),
            ));
        }
        self.update(project, version, |slot| {
            if slot
                .state
                .file
                .as_ref()
                .is_some_and(|f| f.name == name && f.folder.is_none())
                || !slot.state.subfolders.insert(name.to_string())
            {
                return Err(FsError::new(FsErrorKind::Exists, format!("{name} exists")));
            }
            Ok(())
        })
    }

    pub fn remove_subfolder(&self, project: &str, version: &str, name: &str) -> FsResult<()> {
        self.update(project, version, |slot| {
            if slot
                .state
                .file
                .as_ref()
                .is_some_and(|f| f.folder.as_deref() == Some(name))
            {
                return Err(FsError::new(
                    FsErrorKind::NotEmpty,
                    format!("{project}/{version}/{name} is not empty"),
                ));
            }
            if !slot.state.subfolders.remove(name) {
                return Err(FsError::not_found(format!("no folder {name}")));
            }
            Ok(())
        })
    }

    /// Drops a kept spool (awaiting repair) of a version that was yanked.
    pub fn forget_published(&self, project: &str, version: &str) -> FsResult<()> {
        let removed = lock(&self.folders)
            .versions
            .remove(&key(project, version))
            .is_some();
        if removed {
            self.spool.remove_version(project, version)?;
            self.drop_unmade_project(project);
            self.write_status();
        }
        Ok(())
    }
}
