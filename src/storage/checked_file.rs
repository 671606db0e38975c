//! A file streamed as the body of one request, checked as it goes: the bytes sent are
//! hashed, and when they are not the bytes the request's Content-MD5 names (the file
//! changed since it was hashed), the body fails in place of its last bytes, so the
//! request never completes. S3 checks the Content-MD5 too; some S3-compatible servers do not, and a
//! stage must never publish bytes other than those it recorded.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::body::SdkBody;
use base64::Engine;
use bytes::Bytes;
use futures::Stream;
use http_body::{Frame, SizeHint};
use tokio::io::AsyncReadExt;

use crate::digest::Md5;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bytes read from the file at once.
const READ_SIZE: usize = 256 << 10;

/// The file at `path` as a body of `size` bytes whose MD5 must be `md5_base64` (when
/// given); each attempt of the request reads the file again.
pub(super) fn checked_file_body(path: &Path, size: u64, md5_base64: Option<String>) -> ByteStream {
    let path = path.to_path_buf();
    ByteStream::new(SdkBody::retryable(move || {
        SdkBody::from_body_1_x(CheckedFile {
            bytes: Box::pin(file_bytes(path.clone(), size, md5_base64.clone())),
            size,
        })
    }))
}

struct CheckedFile {
    bytes: Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send + Sync>>,
    size: u64,
}

impl http_body::Body for CheckedFile {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.bytes
            .as_mut()
            .poll_next(cx)
            .map(|next| next.map(|bytes| bytes.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.size)
    }
}

/// Where the reading of the file is.
struct Reading {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    left: u64,
    hasher: Md5,
    expected: Option<String>,
}

/// The file's first `size` bytes, then an error instead of the end when they are not
/// `expected` (or the file is shorter).
fn file_bytes(
    path: PathBuf,
    size: u64,
    expected: Option<String>,
) -> impl Stream<Item = Result<Bytes, BoxError>> + Send + Sync {
    let reading = Reading {
        path,
        file: None,
        left: size,
        hasher: Md5::new(),
        expected,
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

async fn next_piece(reading: &mut Reading) -> Result<Option<Bytes>, String> {
    let path = reading.path.display().to_string();
    if reading.left == 0 {
        return Ok(None);
    }
    if reading.file.is_none() {
        let file = tokio::fs::File::open(&reading.path)
            .await
            .map_err(|e| format!("opening {path}: {e}"))?;
        reading.file = Some(file);
    }
    let Some(file) = reading.file.as_mut() else {
        return Err(format!("{path} is not open"));
    };
    let want = reading.left.min(READ_SIZE as u64) as usize;
    let mut buffer = vec![0u8; want];
    let mut filled = 0;
    while filled < want {
        let n = file
            .read(&mut buffer[filled..])
            .await
            .map_err(|e| format!("reading {path}: {e}"))?;
        if n == 0 {
            return Err(format!("{path} is shorter than when it was hashed"));
        }
        filled += n;
    }
    reading.hasher.update(&buffer);
    reading.left -= want as u64;
    // Checked before the last bytes go: a server that knows the length may not ask for
    // the body's end, and without its last bytes the request cannot complete.
    if reading.left == 0 {
        if let Some(expected) = reading.expected.take() {
            let sent =
                base64::engine::general_purpose::STANDARD.encode(reading.hasher.finalize_reset());
            if sent != expected {
                return Err(format!(
                    "{path} changed since it was hashed (Content-MD5 {expected}, its bytes now {sent})"
                ));
            }
        }
    }
    Ok(Some(Bytes::from(buffer)))
}
