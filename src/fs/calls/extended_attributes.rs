//! Extended attributes, the four calls: reading them (`getxattr`, `listxattr`: a
//! staged version's metadata and where it is served from, or what a staging version
//! has been given so far) and setting them (`setxattr`, `removexattr`: metadata as
//! `user.*` attributes of a staging version's folder and file, which its stage
//! publishes, the file's winning over the folder's). Which names are shown, and how
//! long a name or value may be, is decided in `crate::fs::xattr`.

use crate::protocol::Metadata;

use super::filesystem::ArtifactFs;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::inode::Node;
use crate::fs::staging::{AttributeOwner, SetMode};
use crate::fs::xattr::{self, Shown, XattrReply, XATTR_NAME_MAX};

impl ArtifactFs {
    async fn attributes_of(&self, inode: u64) -> FsResult<Shown> {
        let node = self.node(inode)?;
        if let Some(metadata) = self.staging_attributes(&node) {
            return Ok(xattr::shown(Vec::new(), &metadata));
        }
        match node {
            Node::Version(project, version) | Node::File(project, version) => {
                let pinned = self.namespace.pinned(&project, &version).await?;
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
                    let pinned = self.namespace.pinned(&project, &version).await?;
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

/// The attributes the mount shows itself (`user.startifact:…`): copied back from one
/// mount to another (`cp -a`, `rsync -aX`), they are ignored rather than refused.
const SHOWN_ATTRIBUTES: [&str; 5] = ["bucket", "key", "region", "etag", "filename"];

impl ArtifactFs {
    /// The attributes of a staging folder or file, without the `user.` prefix.
    pub(super) fn staging_attributes(&self, node: &Node) -> Option<Metadata> {
        let staging = self.staging.as_ref()?;
        match node {
            Node::Version(p, v) if self.is_staging(p, v) => {
                Some(staging.attributes(p, v, AttributeOwner::Folder))
            }
            Node::File(p, v) if self.is_staging(p, v) => {
                Some(staging.attributes(p, v, AttributeOwner::File))
            }
            _ => None,
        }
    }

    /// Which staging attributes a node has, or why it has none that can change.
    fn attribute_owner(
        &self,
        node: &Node,
        what: &str,
    ) -> FsResult<(String, String, AttributeOwner)> {
        match node {
            Node::Version(p, v) if self.is_staging(p, v) => {
                Ok((p.clone(), v.clone(), AttributeOwner::Folder))
            }
            Node::File(p, v) if self.is_staging(p, v) => {
                Ok((p.clone(), v.clone(), AttributeOwner::File))
            }
            _ => Err(self.refuse_change(what)),
        }
    }

    /// `setxattr` by thread `pid`: while the file is in flight, only from its writers'
    /// tree; EBUSY while its stage runs.
    pub async fn setxattr(
        &self,
        inode: u64,
        name: &str,
        value: &[u8],
        mode: SetMode,
        pid: u32,
    ) -> FsResult<()> {
        let Some(key) = name.strip_prefix("user.") else {
            return Err(FsError::new(
                FsErrorKind::Unsupported,
                format!("{name}: only user.* attributes are kept"),
            ));
        };
        let staging = self.writable_staging("setting an attribute")?;
        // The kernel sends none of these, but a name kept must read back as set.
        if key.is_empty() || key.contains('\0') || name.len() > XATTR_NAME_MAX {
            return Err(FsError::new(
                FsErrorKind::Invalid,
                format!("{name:?} cannot be an attribute name"),
            ));
        }
        if let Some(own) = key.strip_prefix("startifact:") {
            if SHOWN_ATTRIBUTES.contains(&own) {
                tracing::debug!("{name} is the mount's own: ignored");
                return Ok(());
            }
            return Err(FsError::new(
                FsErrorKind::Immutable,
                format!("{name}: keys under startifact: belong to Startifact"),
            ));
        }
        let value = String::from_utf8(value.to_vec()).map_err(|_| {
            FsError::new(
                FsErrorKind::Invalid,
                format!("{name}: metadata values are UTF-8 text"),
            )
        })?;
        let node = self.node(inode)?;
        let (project, version, owner) = self.attribute_owner(&node, "setting an attribute")?;
        self.may_change_in_flight(&project, &version, pid, "setting an attribute")?;
        staging.set_attribute(&project, &version, owner, key, value, mode)?;
        tracing::info!(project, version, ?owner, key, "metadata set");
        Ok(())
    }

    /// `removexattr` by thread `pid`: as `setxattr`.
    pub async fn removexattr(&self, inode: u64, name: &str, pid: u32) -> FsResult<()> {
        let Some(key) = name.strip_prefix("user.") else {
            return Err(FsError::new(
                FsErrorKind::Unsupported,
                format!("{name}: only user.* attributes are kept"),
            ));
        };
        let staging = self.writable_staging("removing an attribute")?;
        let node = self.node(inode)?;
        let (project, version, owner) = self.attribute_owner(&node, "removing an attribute")?;
        self.may_change_in_flight(&project, &version, pid, "removing an attribute")?;
        staging.remove_attribute(&project, &version, owner, key)?;
        tracing::info!(project, version, ?owner, key, "metadata removed");
        Ok(())
    }
}
