//! HTTP/1.1 over the daemon's local socket, for the client subcommands.
//! Must not: retry on its own or hide which socket it tried.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use interprocess::local_socket::tokio::{Stream, prelude::*};
use interprocess::local_socket::{GenericFilePath, ToFsName};
use serde::de::DeserializeOwned;

use crate::api::Envelope;

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
                "no sso-agent daemon answers on {} ({why}); start one with `sso-agent run`, or install the service with `sso-agent install`",
                self.socket.display()
            ),
        )
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
        let name = self
            .socket
            .as_path()
            .to_fs_name::<GenericFilePath>()
            .map_err(|e| self.unreachable(e))?;
        let stream = Stream::connect(name)
            .await
            .map_err(|e| self.unreachable(e))?;
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
        let env: Envelope<T> = serde_json::from_slice(&bytes).map_err(|e| {
            Failure::new(
                Exit::Error,
                format!("the daemon's answer is not understood ({e}); is it the same version?"),
            )
        })?;
        env.into_result().map_err(Failure::from)
    }
}
