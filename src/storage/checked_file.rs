//! A file streamed as the body of one request, checked as it goes: the bytes sent are
//! fingerprinted, and when they are not the bytes the request's Content-MD5 names (the
//! file changed since it was hashed), the body fails in place of its last bytes, so the
//! request never completes. S3 checks the Content-MD5 too; some S3-compatible servers
//! do not, and a stage must never publish bytes other than those it recorded. The check
//! is the CRC taken with the MD5 when the caller has it (each region's body is read and
//! checked on its own, and MD5 would cost each of them a core), else the MD5 itself.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::body::SdkBody;
use base64::Engine;
use bytes::Bytes;
use futures::Stream;
use http_body::{Frame, SizeHint};

use super::store::PutOptions;
use crate::digest::{Crc64, Md5};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bytes read from the file at once.
const READ_SIZE: usize = 1 << 20;

/// What the bytes sent must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expected {
    Anything,
    /// Their CRC-64/NVME, taken in the same pass as their Content-MD5.
    Crc64(u64),
    /// Their Content-MD5 (base64), when no CRC was taken.
    Md5(String),
}

impl Expected {
    pub(super) fn of(options: &PutOptions) -> Self {
        match (options.body_crc64, &options.content_md5) {
            (Some(crc), _) => Expected::Crc64(crc),
            (None, Some(md5)) => Expected::Md5(md5.clone()),
            (None, None) => Expected::Anything,
        }
    }
}

/// The file at `path` as a body of `size` bytes that must be as `expected`; each attempt
/// of the request reads the file again.
pub(super) fn checked_file_body(path: &Path, size: u64, expected: Expected) -> ByteStream {
    let path = path.to_path_buf();
    ByteStream::new(SdkBody::retryable(move || {
        SdkBody::from_body_1_x(CheckedFile {
            bytes: Box::pin(file_bytes(path.clone(), size, expected.clone())),
            size,
            sent: 0,
        })
    }))
}

struct CheckedFile {
    bytes: Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send + Sync>>,
    size: u64,
    /// Bytes handed out so far.
    sent: u64,
}

impl http_body::Body for CheckedFile {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let next = self.bytes.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(bytes))) = &next {
            self.sent += bytes.len() as u64;
        }
        next.map(|next| next.map(|bytes| bytes.map(Frame::data)))
    }

    /// True once every byte went (checked): hyper, knowing the length, stops polling
    /// there, and the SDK's stalled-stream protection stops watching the upload only
    /// when the body says it ended. Without it, a server that takes longer than the
    /// grace period to answer after the last byte (moto storing 1 GiB) had the upload
    /// failed as stalled and sent again.
    fn is_end_stream(&self) -> bool {
        self.sent >= self.size
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.size)
    }
}

/// Where the reading of the file is.
struct Reading {
    path: PathBuf,
    file: Option<Arc<std::fs::File>>,
    left: u64,
    check: Check,
}

/// The running fingerprint of the bytes sent, and what it must come to.
enum Check {
    None,
    Crc64(Box<Crc64>, u64),
    Md5(Md5, String),
}

impl Check {
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Check::None => {}
            Check::Crc64(crc, _) => crc.update(bytes),
            Check::Md5(md5, _) => md5.update(bytes),
        }
    }

    /// Why the bytes sent are not those expected, if they are not.
    fn mismatch(&mut self) -> Option<String> {
        match std::mem::replace(self, Check::None) {
            Check::None => None,
            Check::Crc64(crc, expected) => (crc.finalize() != expected).then(|| {
                format!(
                    "CRC-64 {expected:016x} when hashed, {:016x} now",
                    crc.finalize()
                )
            }),
            Check::Md5(md5, expected) => {
                let sent = base64::engine::general_purpose::STANDARD.encode(md5.finalize());
                (sent != expected).then(|| format!("Content-MD5 {expected}, its bytes now {sent}"))
            }
        }
    }
}

/// The file's first `size` bytes, then an error instead of the end when they are not
/// `expected` (or the file is shorter).
fn file_bytes(
    path: PathBuf,
    size: u64,
    expected: Expected,
) -> impl Stream<Item = Result<Bytes, BoxError>> + Send + Sync {
    let check = match expected {
        Expected::Anything => Check::None,
        Expected::Crc64(crc) => Check::Crc64(Box::default(), crc),
        Expected::Md5(md5) => Check::Md5(Md5::new(), md5),
    };
    let reading = Reading {
        path,
        file: None,
        left: size,
        check,
    };
    futures::stream::unfold(Some(reading), |state| async move {
        let mut reading = state?;
        match next_piece(&mut reading).await {
            Ok(Some(bytes)) => Some((Ok(bytes), Some(reading))),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(path = %reading.path.display(), "not sent: {e}");
                Some((Err(e.into()), None))
            }
        }
    })
}

/// Why a file's bytes were not sent to the end.
#[derive(Debug, thiserror::Error)]
enum NotSent {
    #[error("opening {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("reading {path}: {source}")]
    ReadTask {
        path: String,
        source: tokio::task::JoinError,
    },
    #[error("{path} is shorter than when it was hashed")]
    Shorter { path: String },
    #[error("{path} changed since it was hashed ({mismatch})")]
    Changed { path: String, mismatch: String },
}

async fn next_piece(reading: &mut Reading) -> Result<Option<Bytes>, NotSent> {
    let path = reading.path.display().to_string();
    if reading.left == 0 {
        return Ok(None);
    }
    let file = match &reading.file {
        Some(file) => Arc::clone(file),
        None => {
            let opened = std::fs::File::open(&reading.path);
            let file = Arc::new(opened.map_err(|source| NotSent::Open {
                path: path.clone(),
                source,
            })?);
            reading.file = Some(Arc::clone(&file));
            file
        }
    };
    let want = reading.left.min(READ_SIZE as u64) as usize;
    // One hop to a blocking thread a piece, read straight into the piece's buffer (no
    // zeroing, no copy through a runtime buffer).
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut buffer = Vec::with_capacity(want);
        (&*file).take(want as u64).read_to_end(&mut buffer)?;
        Ok(buffer)
    })
    .await
    .map_err(|source| NotSent::ReadTask {
        path: path.clone(),
        source,
    })?;
    let buffer = read.map_err(|source| NotSent::Read {
        path: path.clone(),
        source,
    })?;
    if buffer.len() < want {
        return Err(NotSent::Shorter { path });
    }
    reading.check.update(&buffer);
    reading.left -= want as u64;
    // Checked before the last bytes go: a server that knows the length may not ask for
    // the body's end, and without its last bytes the request cannot complete.
    if reading.left == 0 {
        if let Some(mismatch) = reading.check.mismatch() {
            return Err(NotSent::Changed { path, mismatch });
        }
    }
    Ok(Some(Bytes::from(buffer)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    /// Every piece of the body, or the error that ended it.
    async fn send(path: &Path, size: u64, expected: Expected) -> Result<Vec<u8>, String> {
        let mut sent = Vec::new();
        let mut bytes = Box::pin(file_bytes(path.to_path_buf(), size, expected));
        while let Some(piece) = bytes.next().await {
            sent.extend_from_slice(&piece.map_err(|e| e.to_string())?);
        }
        Ok(sent)
    }

    /// A file of `len` patterned bytes in a new folder (kept while the folder lives).
    fn patterned_file(len: u32) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        (dir, path, data)
    }

    #[tokio::test]
    async fn the_body_says_it_ended_with_its_last_bytes() {
        use http_body_util::BodyExt;
        let (_dir, path, data) = patterned_file(2_500_000);
        let size = data.len() as u64;
        let mut body = CheckedFile {
            bytes: Box::pin(file_bytes(path, size, Expected::Crc64(Crc64::of(&data)))),
            size,
            sent: 0,
        };
        let mut sent = Vec::new();
        while !http_body::Body::is_end_stream(&body) {
            let frame = body.frame().await.unwrap().unwrap();
            sent.extend_from_slice(&frame.into_data().unwrap());
        }
        assert_eq!(sent, data, "ended exactly after the last byte");
    }

    #[tokio::test]
    async fn a_file_changed_since_it_was_hashed_fails_before_its_last_bytes() {
        let (_dir, path, data) = patterned_file(700_000);
        let size = data.len() as u64;
        let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&data));
        let crc = Crc64::of(&data);
        for expected in [
            Expected::Crc64(crc),
            Expected::Md5(md5.clone()),
            Expected::Anything,
        ] {
            assert_eq!(send(&path, size, expected).await.unwrap(), data);
        }

        let mut changed = data.clone();
        changed[650_000] ^= 0x40;
        std::fs::write(&path, &changed).unwrap();
        for expected in [Expected::Crc64(crc), Expected::Md5(md5)] {
            let err = send(&path, size, expected).await.unwrap_err();
            assert!(err.contains("changed since it was hashed"), "{err}");
        }
        // Shorter than hashed: an error too, whatever is expected.
        std::fs::write(&path, &data[..1000]).unwrap();
        let err = send(&path, size, Expected::Anything).await.unwrap_err();
        assert!(err.contains("shorter"), "{err}");
    }
}
