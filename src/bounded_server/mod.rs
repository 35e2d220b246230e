//! Every listener the daemon owns is served here, with the same bounds: the local socket,
//! the PKCE login's loopback callback, and the container-credentials endpoint. Bounded are
//! the time to send a request head and its size, the connections served at once (more wait
//! in the kernel's backlog, costing no descriptor), a client that stops reading, the pace of
//! accepting after an error (out of descriptors), and the connections' life: they end with
//! the server (drained for `Limits::drain`, then cut), so nothing outlives its listener.
//! Must not: route or authorize requests (the caller's service does), or read bodies
//! unbounded (`read_body` is the bounded way).

mod write_timeout;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use write_timeout::WriteTimeout;

/// The bounds of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most connections served at once.
    pub max_connections: usize,
    /// Time a client has to send a request's head (slowloris bound).
    pub header_timeout: Duration,
    /// Largest request head (line + headers).
    pub max_head: usize,
    /// How long a blocked write may wait for the client to read.
    pub write_stall: Duration,
    /// Pause after a failed accept before the next.
    pub accept_pause: Duration,
    /// How long open connections may finish after the server is told to stop; then they are
    /// cut. Zero cuts at once.
    pub drain: Duration,
}

/// Listeners the helper can serve.
pub trait Accept: Send {
    type Conn: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&mut self) -> impl Future<Output = io::Result<Self::Conn>> + Send;
}

impl Accept for tokio::net::TcpListener {
    type Conn = tokio::net::TcpStream;
    async fn accept(&mut self) -> io::Result<Self::Conn> {
        tokio::net::TcpListener::accept(self).await.map(|(s, _)| s)
    }
}

impl Accept for interprocess::local_socket::tokio::Listener {
    type Conn = interprocess::local_socket::tokio::Stream;
    async fn accept(&mut self) -> io::Result<Self::Conn> {
        interprocess::local_socket::traits::tokio::Listener::accept(self).await
    }
}

/// The HTTP/1 settings of every connection (also what the socket fuzz target runs).
pub fn http_builder(limits: &Limits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_head)
        .keep_alive(true);
    builder
}

/// Serves `listener` until `shutdown` resolves (or the returned future is dropped, which
/// cuts every connection at once). `service_for` sees each connection before it is served
/// (to read its peer) and returns the service that answers it.
pub async fn serve<A, F, S, B>(
    mut listener: A,
    limits: Limits,
    mut service_for: F,
    shutdown: impl Future<Output = ()>,
) where
    A: Accept,
    F: FnMut(&A::Conn) -> S,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let builder = http_builder(&limits);
    // Owned here, so dropping this future aborts every connection task.
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while conns.try_join_next().is_some() {}
        // A slot first, then accept: at the cap, new clients wait in the kernel's listen
        // backlog (no descriptor spent) until a connection ends; stalled clients free their
        // slot at the header timeout, so nobody waits forever.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                tracing::debug!(
                    limit = limits.max_connections,
                    "connection limit reached; new clients wait"
                );
                tokio::select! {
                    () = &mut shutdown => break,
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                }
            }
        };
        let conn = tokio::select! {
            () = &mut shutdown => break,
            conn = listener.accept() => conn,
        };
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors (EMFILE) fails every accept at once while the client
                // waits in the backlog: pause instead of spinning and flooding the log.
                tracing::warn!(error = %e, "accept failed; pausing before the next one");
                drop(permit);
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(limits.accept_pause) => continue,
                }
            }
        };
        let svc = service_for(&conn);
        let fut = graceful.watch(builder.serve_connection(
            TokioIo::new(WriteTimeout::new(conn, limits.write_stall)),
            svc,
        ));
        conns.spawn(async move {
            if let Err(e) = fut.await {
                tracing::debug!(error = %crate::error_text::with_causes(&e), "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if !limits.drain.is_zero()
        && tokio::time::timeout(limits.drain, graceful.shutdown())
            .await
            .is_err()
    {
        tracing::warn!("some requests did not finish in time; closing them");
    }
    conns.shutdown().await;
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request body did not arrive within {}s", .0.as_secs())]
    TooSlow(Duration),
    #[error("the request body could not be read: {0}")]
    Broken(String),
}

/// Reads a request body of at most `limit` bytes within `time`. A declared length over the
/// limit is refused before anything is read; the size check is the limiter's own error type,
/// not its wording.
pub async fn read_body<B>(body: B, limit: usize, time: Duration) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if body.size_hint().lower() > limit as u64 {
        return Err(BodyError::TooLarge(limit));
    }
    match tokio::time::timeout(time, Limited::new(body, limit).collect()).await {
        Err(_) => Err(BodyError::TooSlow(time)),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(limit)),
        Ok(Err(e)) => Err(BodyError::Broken(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits(max_connections: usize) -> Limits {
        Limits {
            max_connections,
            header_timeout: Duration::from_secs(5),
            max_head: 16 * 1024,
            write_stall: Duration::from_secs(10),
            accept_pause: Duration::from_millis(100),
            drain: Duration::ZERO,
        }
    }

    #[tokio::test]
    async fn connections_end_with_the_server() {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let limits = Limits {
            header_timeout: Duration::from_secs(60),
            ..limits(4)
        };
        let ok_service = |_: &tokio::net::TcpStream| {
            hyper::service::service_fn(|_req| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
            })
        };
        let server = tokio::spawn(serve(listener, limits, ok_service, async {
            let _ = stopped.await;
        }));
        // An idle client that sent half a head: held open by the server.
        let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        // A full request is answered.
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).await.unwrap();
        assert!(answer.ends_with("ok"), "{answer}");
        // Stopping the server closes the idle connection too (EOF, not a hang).
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server stops")
            .unwrap();
        // (The head timeout is a minute here, so only the stop can explain the close.)
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), idle.read_to_end(&mut rest))
            .await
            .expect("the idle connection is closed with the server");
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "the listener is closed"
        );
    }

    #[tokio::test]
    async fn bodies_are_bounded_by_size_and_time() {
        let big = Full::new(Bytes::from(vec![b'x'; 100]));
        assert!(matches!(
            read_body(big, 10, Duration::from_secs(1)).await,
            Err(BodyError::TooLarge(10))
        ));
        let small = Full::new(Bytes::from_static(b"{}"));
        assert_eq!(
            read_body(small, 10, Duration::from_secs(1)).await.unwrap(),
            Bytes::from_static(b"{}")
        );
    }
}
