//! Why a cached copy is not served: the check it failed (`check`), or the fetch into
//! the cache that failed (`disk`), each with its cause (the I/O error, the regions'
//! failures, the digests that differ). A reader sees EIO for any of them (see
//! `CachedFile::read`); the log and `FsError`'s source keep which.

use std::path::PathBuf;

use crate::checksum::Checksum;
use crate::protocol::copies::Unserved;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    // The check of a complete entry before it is first served.
    #[error("{got} bytes, not {expected}")]
    Size { expected: u64, got: u64 },
    #[error("{got}, not {expected}")]
    Checksum { expected: Checksum, got: Checksum },
    #[error("no usual part size gives its multipart ETag {expected}-{parts}")]
    MultipartEtag { expected: String, parts: u64 },
    #[error("the store gives no checksum to check it against")]
    NothingToCheckAgainst,
    #[error("its record is of another object")]
    RecordOfAnother,
    #[error("it has no record")]
    NoRecord,
    #[error("opening {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading the cache: {source}")]
    Read { source: std::io::Error },
    #[error("the check stopped: {source}")]
    CheckStopped { source: tokio::task::JoinError },

    // A fetch into the cache.
    /// No region could serve the rest of the artifact.
    #[error(transparent)]
    Unserved(#[from] Unserved),
    #[error("writing the cache: {source}")]
    Write { source: std::io::Error },
    /// The whole artifact arrived, but not with the checksum the store gives.
    #[error("{key} arrived with {got}, not {expected}, from {}", served.join(", "))]
    Arrived {
        key: String,
        expected: Checksum,
        got: Checksum,
        /// The regions that served its bytes.
        served: Vec<String>,
    },
    #[error("encoding its record: {source}")]
    EncodeRecord { source: serde_json::Error },
    #[error("writing {path}: {source}")]
    WriteRecord {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("filing the cache entry: {source}")]
    File { source: std::io::Error },
}
