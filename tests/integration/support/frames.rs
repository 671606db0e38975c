//! What the proxy's body wrappers share: the next frame of the body they wrap, with
//! the bytes of a data frame handed to the wrapper on the way.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame};

use super::proxy::BoxError;

/// Polls `inner` for its next frame; a data frame's bytes go through `on_data` (which
/// may watch, change or shorten them), any other frame, an error or the end as they are.
pub(super) fn poll_data<B>(
    inner: Pin<&mut B>,
    cx: &mut Context<'_>,
    on_data: impl FnOnce(Bytes) -> Bytes,
) -> Poll<Option<Result<Frame<Bytes>, BoxError>>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let frame = match ready!(inner.poll_frame(cx)) {
        Some(Ok(frame)) => frame,
        Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
        None => return Poll::Ready(None),
    };
    Poll::Ready(Some(Ok(match frame.into_data() {
        Ok(data) => Frame::data(on_data(data)),
        Err(frame) => frame,
    })))
}
