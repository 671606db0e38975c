//! Metadata as `user.*` attributes of a staging version's folder and file: `setxattr`
//! and `removexattr` (reading them is `xattr` and the tree's `getxattr`). What a stage
//! publishes is these attributes, the file's winning over the folder's.

use crate::protocol::Metadata;

use super::error::{FsError, FsErrorKind, FsResult};
use super::inode::Node;
use super::staging::{AttributeOwner, SetMode};
use super::tree::ArtifactFs;
use super::xattr::XATTR_NAME_MAX;

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
