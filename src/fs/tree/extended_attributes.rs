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
        let shown = self.attributes_of(inode).await?;
        let value = shown
            .value(name)
            .ok_or_else(|| FsError::new(FsErrorKind::NoAttribute, format!("no {name}")))?;
        xattr::reply_for(value.to_vec(), size)
    }

    pub async fn listxattr(&self, inode: u64, size: u32) -> FsResult<XattrReply> {
        let shown = self.attributes_of(inode).await?;
        xattr::reply_for(xattr::name_list(shown.listed_names()), size)
    }
}
