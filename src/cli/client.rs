//! HTTP/1.1 over the daemon's local socket, for the client subcommands.
//! Must not: retry on its own or hide which socket it tried.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use interprocess::local_socket::tokio::{Stream, prelude::*};
use interprocess::local_socket::traits::StreamCommon;
use interprocess::local_socket::{GenericFilePath, ToFsName};
use serde::de::DeserializeOwned;

use crate::api::Envelope;
use crate::platform;

use super::exit::{Exit, Failure};

/// Largest answer accepted from the daemon.
const MAX_ANSWER: usize = 4 * 1024 * 1024;

pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: &Path) -> Self {
        Self {
            socket: socket.to_path_buf(),
        }
    }

    fn unreachable(&self, why: impl std::fmt::Display) -> Failure {
        Failure::new(
            Exit::Unreachable,
            format!(
                "no sso-agent daemon answers on {} ({why}); start one with `sso-agent run`{}",
                self.socket.display(),
                // No service install on Windows yet.
                if cfg!(windows) {
                    ""
                } else {
                    ", or install the service with `sso-agent install`"
                }
            ),
        )
    }

    /// The socket's name as the local-socket crate takes it (a path; a pipe on Windows).
    fn name(&self) -> Result<interprocess::local_socket::Name<'_>, Failure> {
        self.socket
            .as_path()
            .to_fs_name::<GenericFilePath>()
            .map_err(|e| self.unreachable(e))
    }

    /// The one trust check of every client path: before a byte is sent, the process serving
    /// the socket must run as this user. Anyone who can create the socket's path first (the
    /// `/tmp` fallback, a shared directory) could otherwise serve fake tokens, keys or a
    /// phishing device code. A server we cannot identify is refused too.
    fn verify_server(&self, stream: &impl StreamCommon) -> Result<(), Failure> {
        let refuse = |why: String| {
            Failure::new(
                Exit::Error,
                format!(
                    "refusing to use {}: {why}; another user may be impersonating sso-agent. Remove that socket, or set SSO_AGENT_SOCKET to a path in a directory only you can write",
                    self.socket.display()
                ),
            )
        };
        let me = platform::current_user()
            .map_err(|e| refuse(format!("cannot tell which user this is ({e})")))?;
        match platform::peer_user(stream) {
            Ok(them) if them == me => Ok(()),
            Ok(them) => Err(refuse(format!("it is served by {them}, not by you ({me})"))),
            Err(e) => Err(refuse(format!("cannot tell who serves it ({e})"))),
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.send(Method::GET, path, None).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, Failure> {
        self.send(Method::POST, path, body).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, Failure> {
        let name = self.name()?;
        let stream = Stream::connect(name)
            .await
            .map_err(|e| self.unreachable(e))?;
        self.verify_server(&stream)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.unreachable(e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| Failure::new(Exit::Error, format!("cannot build the request: {e}")))?;
        let resp = sender.send_request(req).await.map_err(|e| {
            Failure::new(
                Exit::Error,
                format!("the daemon closed the connection: {e}"),
            )
        })?;
        let bytes = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| {
                Failure::new(
                    Exit::Error,
                    format!("could not read the daemon's answer: {e}"),
                )
            })?
            .to_bytes();
        decode(&bytes)
    }

    /// `POST path` whose answer is held open: returns the first JSON line (an envelope) and
    /// the connection, which must be kept while the daemon should know we are alive (`exec`:
    /// the token dies when it closes). A non-200 answer is read whole as the error.
    pub async fn post_held<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(T, Held), Failure> {
        let name = self.name()?;
        let stream = Stream::connect(name)
            .await
            .map_err(|e| self.unreachable(e))?;
        self.verify_server(&stream)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.unreachable(e))?;
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Failure::new(Exit::Error, format!("cannot build the request: {e}")))?;
        let resp = sender.send_request(req).await.map_err(|e| {
            Failure::new(
                Exit::Error,
                format!("the daemon closed the connection: {e}"),
            )
        })?;
        let unreadable = |e: &dyn std::fmt::Display| {
            Failure::new(
                Exit::Error,
                format!("could not read the daemon's answer: {e}"),
            )
        };
        let mut body = resp.into_body();
        let mut line = Vec::new();
        while !line.contains(&b'\n') {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        line.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Err(unreadable(&e)),
                None => break,
            }
            if line.len() > MAX_ANSWER {
                return Err(unreadable(&format!("larger than {MAX_ANSWER} bytes")));
            }
        }
        let first = line.split(|b| *b == b'\n').next().unwrap_or_default();
        let data = decode(first)?;
        Ok((
            data,
            Held {
                _body: body,
                _conn: conn,
                _sender: sender,
            },
        ))
    }

    /// `GET path` with blocking I/O and no runtime, for `token`: the command that shell
    /// prompts, build tools and `credential_process` run over and over, so its process
    /// should cost little more than a connect and one exchange (docs/BENCHMARKS.md). The
    /// request is the async client's; the answer is parsed by `httparse` (hyper's parser),
    /// read to the daemon's close (`Connection: close`) and checked against its length.
    pub fn get_blocking<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        use interprocess::local_socket::Stream as BlockingStream;
        use interprocess::local_socket::traits::Stream as _;
        use std::io::{Read, Write};

        let name = self.name()?;
        let mut stream = BlockingStream::connect(name).map_err(|e| self.unreachable(e))?;
        self.verify_server(&stream)?;
        let request =
            format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
        let closed = |e: std::io::Error| {
            Failure::new(
                Exit::Error,
                format!("the daemon closed the connection: {e}"),
            )
        };
        stream.write_all(request.as_bytes()).map_err(closed)?;
        let mut answer = Vec::new();
        stream
            .take(MAX_ANSWER as u64 + 1)
            .read_to_end(&mut answer)
            .map_err(closed)?;
        decode(answer_body(&answer)?)
    }
}

/// A held connection to the daemon (see `post_held`); dropping it closes the connection.
pub struct Held {
    _body: hyper::body::Incoming,
    _conn: tokio::task::JoinHandle<()>,
    _sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

/// The body of a whole HTTP/1.1 answer read to the end of the connection.
fn answer_body(answer: &[u8]) -> Result<&[u8], Failure> {
    let bad = |why: String| {
        Failure::new(
            Exit::Error,
            format!("could not read the daemon's answer: {why}"),
        )
    };
    if answer.len() > MAX_ANSWER {
        return Err(bad(format!("larger than {MAX_ANSWER} bytes")));
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut head = httparse::Response::new(&mut headers);
    let head_len = match head.parse(answer) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(bad("it ended early".into())),
        Err(e) => return Err(bad(e.to_string())),
    };
    let body = &answer[head_len..];
    let header = |name: &str| {
        head.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    if header("transfer-encoding").is_some() {
        return Err(bad("a chunked answer (the daemon sends sized ones)".into()));
    }
    match header("content-length").map(|v| v.parse::<usize>()) {
        Some(Ok(n)) if n == body.len() => Ok(body),
        Some(Ok(n)) => Err(bad(format!("{} of {n} bytes arrived", body.len().min(n)))),
        Some(Err(_)) => Err(bad("its length is not a number".into())),
        None => Ok(body),
    }
}

/// The envelope's data, or its error as the failure the CLI reports.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Failure> {
    let env: Envelope<T> = serde_json::from_slice(bytes).map_err(|e| {
        Failure::new(
            Exit::Error,
            format!("the daemon's answer is not understood ({e}); is it the same version?"),
        )
    })?;
    env.into_result().map_err(Failure::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_body_takes_sized_answers_only_whole() {
        let ok =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(answer_body(ok).unwrap(), b"{}");
        let short = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n{}";
        assert!(
            answer_body(short)
                .unwrap_err()
                .message
                .contains("2 of 5 bytes")
        );
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        assert!(answer_body(chunked).is_err());
        assert!(answer_body(b"HTTP/1.1 200 OK\r\ncontent-le").is_err());
        assert!(answer_body(b"garbage\r\n\r\n").is_err());
        let unsized_ = b"HTTP/1.1 502 Bad Gateway\r\n\r\n{\"success\":false}";
        assert_eq!(answer_body(unsized_).unwrap(), b"{\"success\":false}");
    }
}
