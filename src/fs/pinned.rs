//! A staged version as the mount pins it: the content a majority of regions hold (see
//! `protocol::census`) and where it may be read (`protocol::copies`), for the life of the
//! mount, with its time and its metadata read from that majority. Every later read goes
//! through `Copies::read` (the majority first, each region asked for its own copy's
//! ETag), so the kernel may cache the file's pages safely and a region holding other
//! bytes is never served.

use std::ops::Range;
use std::time::SystemTime;

use bytes::Bytes;
use semver::Version;

use crate::protocol::copies::Copies;
use crate::protocol::metadata::{usable_filename, Metadata};
use crate::protocol::{Error as ProtocolError, Session};

use super::error::{FsError, FsResult};

#[derive(Debug, Clone)]
pub struct PinnedVersion {
    pub project: String,
    pub version: Version,
    /// The bytes, their size and digests, and the regions that hold them.
    pub copies: Copies,
    pub mtime: SystemTime,
    pub metadata: Metadata,
    /// Why the metadata was not read, when its object was larger than readers accept:
    /// its keys cannot be known, so `getxattr` of any `user.` name answers E2BIG with
    /// this reason rather than ENODATA ("no such attribute" would be a wrong answer).
    pub metadata_withheld: Option<String>,
    /// The saved file name when it is a usable one, else `{project}@{version}`.
    pub file_name: String,
}

impl PinnedVersion {
    /// Looks the version up: `HeadObject` in every region, decided by the majority
    /// rule, then its metadata from the majority.
    pub async fn resolve(session: &Session, project: &str, version: &Version) -> FsResult<Self> {
        let artifact = session.get(project, Some(version)).await?;
        let majority = artifact.majority().await?;
        let copies = Copies::of(majority);
        let mtime = majority
            .first()
            .info
            .last_modified
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut metadata_withheld = None;
        let metadata = match artifact.metadata().await {
            Ok(metadata) => metadata.clone(),
            // Whoever wrote that object, the artifact's own bytes are checked apart
            // from it: serve them, under `P@V` and with no attributes, rather than hide
            // the version. `startifact --info` reports the object's fault.
            Err(e @ ProtocolError::BadMetadata { .. }) => {
                tracing::warn!("{e}: {project}@{version} is shown without metadata");
                Metadata::new()
            }
            Err(e @ ProtocolError::OversizedMetadata { .. }) => {
                tracing::warn!(
                    "{e}: {project}@{version} is shown under its default name, and its \
                     attributes answer E2BIG"
                );
                metadata_withheld = Some(e.to_string());
                Metadata::new()
            }
            Err(e) => return Err(e.into()),
        };
        let file_name = usable_filename(&metadata)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{project}@{version}"));
        Ok(PinnedVersion {
            project: project.to_string(),
            version: version.clone(),
            copies,
            mtime,
            metadata,
            metadata_withheld,
            file_name,
        })
    }

    /// Reads `range` of the pinned object (see `Copies::read`).
    pub async fn fetch(&self, session: &Session, range: Range<u64>) -> FsResult<Bytes> {
        self.copies
            .fetch(session, range)
            .await
            .map_err(|e| FsError::unavailable(e.to_string()))
    }
}
