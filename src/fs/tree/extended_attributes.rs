//! Extended attributes as read (`getxattr`, `listxattr`): a staged version's
//! metadata and where it is served from, or what a staging version has been given so
//! far; which of them are listed is decided in `crate::fs::xattr`.

use super::ArtifactFs;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::inode::Node;
use crate::fs::xattr::{self, Shown, XattrReply};

impl ArtifactFs {
    async fn attributes_of(&self, inode: u64) -> FsResult<Shown> {
        let node = self.node(inode)?;
        if let Some(metadata) = self.staging_attributes(&node) {
            return Ok(xattr::shown(Vec::new(), &metadata));
        }
        match node {
            Node::Version(project, version) | Node::File(project, version) => {
                let pinned = self.pinned(&project, &version).await?;
                Ok(xattr::attributes(&pinned))
            }
            _ => Ok(Shown::default()),
        }
    }

    pub async fn getxattr(&self, inode: u64, name: &str, size: u32) -> FsResult<XattrReply> {
        if xattr::is_foreign_namespace(name) {
            return Err(FsError::new(FsErrorKind::NoAttribute, format!("no {name}")));
        }
        if self.is_status_attribute(inode, name) {
            return xattr::reply_for(self.status_document(), size);
        }
        let node = self.node(inode)?;
        let found = match self.staging_attributes(&node) {
            Some(metadata) => xattr::value_of(&[], &metadata, name),
            None => match node {
                Node::Version(project, version) | Node::File(project, version) => {
                    let pinned = self.pinned(&project, &version).await?;
                    match xattr::value_of(&xattr::own(&pinned), &pinned.metadata, name) {
                        // Not "no such attribute": the object that would say is unread.
                        None if pinned.metadata_withheld.is_some() => {
                            return Err(FsError::new(
                                FsErrorKind::TooBig,
                                format!(
                                    "{name} of {project}@{version} cannot be read: {}",
                                    pinned.metadata_withheld.as_deref().unwrap_or_default()
                                ),
                            ));
                        }
                        found => found,
                    }
                }
                _ => None,
            },
        };
        let value =
            found.ok_or_else(|| FsError::new(FsErrorKind::NoAttribute, format!("no {name}")))?;
        xattr::reply_for(value, size)
    }

    pub async fn listxattr(&self, inode: u64, size: u32) -> FsResult<XattrReply> {
        let shown = self.attributes_of(inode).await?;
        xattr::reply_for(xattr::name_list(shown.listed_names()), size)
    }
}
