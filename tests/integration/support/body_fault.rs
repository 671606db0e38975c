//! The damage the fault proxy can do to the body of an artifact it serves: bytes
//! flipped, the connection dropped half way, or half the body with headers that agree.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_RANGE};

use super::proxy::{BoxError, ProxyBody, DROPPED};

/// What the proxy does to the body of an artifact it serves (a GET of an object
/// whose key holds `@` and is not a `/metadata` object, answered 200 or 206).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFault {
    /// Every 4096th byte flipped: the length and the headers are right.
    Corrupt,
    /// The connection closes half way through, short of the Content-Length.
    Cut,
    /// Half of the bytes, with a Content-Length (and Content-Range) that says so.
    Shorten,
}

/// Applies `fault` to an answer's body (and, for `Shorten`, to its headers). A body
/// whose length the headers do not give is left intact: `Err` gives it back.
pub(super) fn damage(
    fault: BodyFault,
    headers: &mut HeaderMap,
    body: ProxyBody,
) -> Result<ProxyBody, ProxyBody> {
    let length = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(length) = length.filter(|l| *l > 0) else {
        return Err(body);
    };
    let half = length / 2;
    if fault == BodyFault::Shorten {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(half));
        // "bytes 100-199/1000" -> "bytes 100-149/1000".
        let range = headers.get(CONTENT_RANGE).and_then(|v| v.to_str().ok());
        let shortened = range.and_then(|range| {
            let (first, total) = range.strip_prefix("bytes ")?.split_once('/')?;
            let start: u64 = first.split_once('-')?.0.parse().ok()?;
            let last = (start + half).checked_sub(1)?;
            HeaderValue::from_str(&format!("bytes {start}-{last}/{total}")).ok()
        });
        if let Some(value) = shortened {
            headers.insert(CONTENT_RANGE, value);
        }
    }
    Ok(Damaged {
        inner: body,
        fault,
        at: 0,
        stop: match fault {
            BodyFault::Corrupt => length,
            BodyFault::Cut | BodyFault::Shorten => half,
        },
    }
    .boxed())
}

/// A response body on its way through, damaged as `fault` says.
struct Damaged {
    inner: ProxyBody,
    fault: BodyFault,
    /// Bytes passed on so far.
    at: u64,
    /// Where the body ends (for `Cut`, where the connection is dropped).
    stop: u64,
}

impl Body for Damaged {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.at >= this.stop {
            return Poll::Ready(match this.fault {
                BodyFault::Cut => Some(Err(DROPPED.into())),
                BodyFault::Corrupt | BodyFault::Shorten => None,
            });
        }
        let (fault, at, stop) = (this.fault, &mut this.at, this.stop);
        super::frames::poll_data(Pin::new(&mut this.inner), cx, |data| {
            let keep = data.len().min((stop - *at) as usize);
            let mut data = data.slice(..keep).to_vec();
            if fault == BodyFault::Corrupt {
                for (i, byte) in data.iter_mut().enumerate() {
                    if (*at + i as u64) % 4096 == 0 {
                        *byte ^= 0xff;
                    }
                }
            }
            *at += keep as u64;
            Bytes::from(data)
        })
    }

    fn is_end_stream(&self) -> bool {
        self.fault != BodyFault::Cut && self.at >= self.stop
    }

    fn size_hint(&self) -> SizeHint {
        match self.fault {
            BodyFault::Cut => SizeHint::default(),
            BodyFault::Corrupt | BodyFault::Shorten => SizeHint::with_exact(self.stop - self.at),
        }
    }
}
