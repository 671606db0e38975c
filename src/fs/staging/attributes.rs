//! The `user.*` attributes of a staging version folder and of its file, which the stage
//! publishes as the version's metadata (the file's winning over the folder's).

use crate::protocol::Metadata;

use super::model::StagingVersion;
use super::Staging;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::lock;

/// Whose attributes: the version folder's or the file's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeOwner {
    Folder,
    File,
}

/// How `setxattr` was asked to behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetMode {
    Any,
    /// XATTR_CREATE: fail when it exists.
    Create,
    /// XATTR_REPLACE: fail when it does not.
    Replace,
}

impl StagingVersion {
    /// What the stage publishes: the folder's attributes, the file's winning.
    pub(super) fn metadata(&self) -> Metadata {
        let mut all = self.state.attributes.clone();
        if let Some(file) = &self.state.file {
            all.extend(file.attributes.clone());
        }
        all
    }

    /// The attributes of the folder or of the file.
    fn attributes_mut(&mut self, owner: AttributeOwner) -> FsResult<&mut Metadata> {
        match owner {
            AttributeOwner::Folder => Ok(&mut self.state.attributes),
            AttributeOwner::File => match self.state.file.as_mut() {
                Some(file) => Ok(&mut file.attributes),
                None => Err(FsError::not_found("no file")),
            },
        }
    }
}

impl Staging {
    pub fn attributes(&self, project: &str, version: &str, owner: AttributeOwner) -> Metadata {
        let folders = lock(&self.folders);
        let Some(slot) = folders.unpublished(project, version) else {
            return Metadata::new();
        };
        match owner {
            AttributeOwner::Folder => slot.state.attributes.clone(),
            AttributeOwner::File => slot.metadata(),
        }
    }

    pub fn set_attribute(
        &self,
        project: &str,
        version: &str,
        owner: AttributeOwner,
        name: &str,
        value: String,
        mode: SetMode,
    ) -> FsResult<()> {
        self.update(project, version, |slot| {
            // What a running stage publishes was taken at its start.
            slot.not_staging(project, version)?;
            let attributes = slot.attributes_mut(owner)?;
            match (mode, attributes.contains_key(name)) {
                (SetMode::Create, true) => Err(FsError::new(
                    FsErrorKind::Exists,
                    format!("user.{name} exists"),
                )),
                (SetMode::Replace, false) => Err(FsError::new(
                    FsErrorKind::NoAttribute,
                    format!("no user.{name}"),
                )),
                _ => {
                    attributes.insert(name.to_string(), value);
                    Ok(())
                }
            }
        })
    }

    pub fn remove_attribute(
        &self,
        project: &str,
        version: &str,
        owner: AttributeOwner,
        name: &str,
    ) -> FsResult<()> {
        self.update(project, version, |slot| {
            slot.not_staging(project, version)?;
            let attributes = slot.attributes_mut(owner)?;
            attributes
                .remove(name)
                .map(|_| ())
                .ok_or_else(|| FsError::new(FsErrorKind::NoAttribute, format!("no user.{name}")))
        })
    }
}
