//! The `user.*` attributes of a staging version folder and of its file, which the stage
//! publishes as the version's metadata (the file's winning over the folder's).

use crate::protocol::metadata::{encoded_len, FILENAME_KEY, MAX_METADATA_BYTES};
use crate::protocol::Metadata;

use super::model::StagingVersion;
use super::state::Staging;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::sync::lock;

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

    /// How large the metadata object of the stage will be at most: these attributes
    /// and the file name, counted at the longest a name can be written (255 bytes,
    /// each a control character escaped in six), since the file may still be renamed.
    fn staged_len(&self) -> usize {
        staged_len_of(self.metadata())
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
                    let value_len = value.len();
                    let alone = staged_len_of([(name.to_string(), value.clone())].into());
                    let previous = attributes.insert(name.to_string(), value);
                    let staged = slot.staged_len();
                    if staged <= MAX_METADATA_BYTES {
                        return Ok(());
                    }
                    // Undone here: `update` saves only what succeeds, but keeps the slot.
                    let attributes = slot.attributes_mut(owner)?;
                    match previous {
                        Some(previous) => attributes.insert(name.to_string(), previous),
                        None => attributes.remove(name),
                    };
                    Err(too_large(project, version, name, value_len, staged, alone))
                }
            }
        })
    }

    #[cfg(test)]
    pub(crate) fn staged_metadata_len(&self, project: &str, version: &str) -> Option<usize> {
        let folders = lock(&self.folders);
        folders
            .unpublished(project, version)
            .map(StagingVersion::staged_len)
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

/// How large the object staged with `attributes` would be, the longest file name added.
fn staged_len_of(mut attributes: Metadata) -> usize {
    attributes.insert(FILENAME_KEY.to_string(), "\u{1}".repeat(255));
    encoded_len(&attributes)
}

/// The refusal of an attribute that would make the staged metadata object larger than
/// readers accept: E2BIG when that one value (`alone`: the object it would make by
/// itself) could never fit, else ENOSPC.
fn too_large(
    project: &str,
    version: &str,
    name: &str,
    value_len: usize,
    staged: usize,
    alone: usize,
) -> FsError {
    let (kind, why) = if alone > MAX_METADATA_BYTES {
        (FsErrorKind::TooBig, "this value alone would pass")
    } else {
        (
            FsErrorKind::NoSpace,
            "with the attributes already set it would pass",
        )
    };
    FsError::new(
        kind,
        format!(
            "user.{name} of {value_len} bytes refused on {project}/{version}: the metadata \
             object staged would be {staged} bytes (file name counted at its longest); \
             {why} the {MAX_METADATA_BYTES} bytes readers accept"
        ),
    )
}
