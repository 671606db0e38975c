//! A slow connection, as S3 gives each (tens of MB/s): the fault proxy can pace the
//! body of every artifact it serves to a rate of its own, and counts how many such
//! answers flow at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::proxy::{BoxError, ProxyBody};

/// Artifact answers flowing now, and the most seen at once.
#[derive(Debug, Default)]
pub struct Flowing {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Flowing {
    pub fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }

    pub fn reset(&self) {
        self.most
            .store(self.now.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// `body`, sent at no more than `rate` bytes a second.
pub(super) fn paced(body: ProxyBody, rate: u64, flowing: Arc<Flowing>) -> Paced {
    let now = flowing.now.fetch_add(1, Ordering::SeqCst) + 1;
    flowing.most.fetch_max(now, Ordering::SeqCst);
    Paced {
        inner: body,
        rate: rate.max(1),
        started: Instant::now(),
        sent: 0,
        sleep: None,
        flowing,
    }
}

pub(super) struct Paced {
    inner: ProxyBody,
    rate: u64,
    started: Instant,
    sent: u64,
    sleep: Option<Pin<Box<Sleep>>>,
    flowing: Arc<Flowing>,
}

impl Drop for Paced {
    fn drop(&mut self) {
        self.flowing.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Body for Paced {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(sleep) = this.sleep.as_mut() {
            ready!(sleep.as_mut().poll(cx));
            this.sleep = None;
        }
        let (started, rate) = (this.started, this.rate);
        let (sent, sleep) = (&mut this.sent, &mut this.sleep);
        super::frames::poll_data(Pin::new(&mut this.inner), cx, |data| {
            *sent += data.len() as u64;
            let due = started + Duration::from_secs_f64(*sent as f64 / rate as f64);
            if due > Instant::now() {
                *sleep = Some(Box::pin(tokio::time::sleep_until(due)));
            }
            data
        })
    }

    fn is_end_stream(&self) -> bool {
        self.sleep.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
