//! Extended attributes as read (`getxattr`, `listxattr`): a staged version's
//! metadata, or what a staging version has been given so far.

use super::ArtifactFs;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::inode::Node;
use crate::fs::xattr::{self, XattrReply};

impl ArtifactFs {
    async fn attributes_of(&self, inode: u64) -> FsResult<Vec<(String, Vec<u8>)>> {
        if let Some(attributes) = self.staging_attributes(&self.node(inode)?) {
            return Ok(attributes
                .into_iter()
                .map(|(k, v)| (format!("user.{k}"), v.into_bytes()))
                .collect());
        }
        match self.node(inode)? {
            Node::Version(project, version) | Node::File(project, version) => {
                let pinned = self.pinned(&project, &version).await?;
                Ok(xattr::attributes(&pinned))
            }
            _ => Ok(Vec::new()),
        }
    }

    pub async fn getxattr(&self, inode: u64, name: &str, size: u32) -> FsResult<XattrReply> {
        if xattr::is_foreign_namespace(name) {
            return Err(FsError::new(FsErrorKind::NoAttribute, format!("no {name}")));
        }
        if self.is_status_attribute(inode, name) {
            return xattr::reply_for(self.status_document(), size);
        }
        let value = self
            .attributes_of(inode)
            .await?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| FsError::new(FsErrorKind::NoAttribute, format!("no {name}")))?;
        xattr::reply_for(value, size)
    }

    pub async fn listxattr(&self, inode: u64, size: u32) -> FsResult<XattrReply> {
        let names = self.attributes_of(inode).await?.into_iter().map(|(n, _)| n);
        xattr::reply_for(xattr::name_list(names), size)
    }
}
