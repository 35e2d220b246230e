//! Response bodies for the fault answers that misbehave in the body itself: a huge body,
//! streamed without ever being held in memory, and a body that drips one byte at a time
//! forever. Every other answer is a plain buffered body.
//! Must not: decide when a fault applies (server.rs does) or hold state.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Frame, SizeHint};
use tokio::time::Sleep;

/// What a huge body is made of: JSON whitespace, so no prefix of it parses as a value.
static FILLER: [u8; 64 * 1024] = [b' '; 64 * 1024];

/// Every answer's body.
pub(crate) enum Body {
    Full(Full<Bytes>),
    /// `left` more bytes of filler.
    Huge {
        left: u64,
    },
    /// One byte each time `next` fires, then `next` moves on by `every`.
    Drip {
        every: Duration,
        next: Pin<Box<Sleep>>,
    },
}

impl Body {
    pub(crate) fn huge(len: u64) -> Body {
        Body::Huge { left: len }
    }

    pub(crate) fn drip(every: Duration) -> Body {
        Body::Drip {
            every,
            next: Box::pin(tokio::time::sleep(every)),
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(full) => Pin::new(full).poll_frame(cx),
            Body::Huge { left } => {
                if *left == 0 {
                    return Poll::Ready(None);
                }
                let n = usize::try_from(*left).map_or(FILLER.len(), |l| l.min(FILLER.len()));
                *left -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&FILLER[..n])))))
            }
            Body::Drip { every, next } => match next.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(()) => {
                    let at = next.deadline() + *every;
                    next.as_mut().reset(at);
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b" ")))))
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(full) => full.is_end_stream(),
            Body::Huge { left } => *left == 0,
            Body::Drip { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(full) => full.size_hint(),
            // Exact, so hyper sends Content-Length.
            Body::Huge { left } => SizeHint::with_exact(*left),
            Body::Drip { .. } => SizeHint::default(),
        }
    }
}
