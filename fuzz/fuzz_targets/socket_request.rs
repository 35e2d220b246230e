//! Raw bytes on the daemon's socket: hyper's HTTP/1 parser with the daemon's limits (request
//! line, headers, chunked or sized body), then the route step (path segments, percent-decoding
//! of names, query parameters) and, for a login, the bounded body read and its JSON.
//! Session work is left out: it is not parsing, and it would call upstream.
#![no_main]

use std::convert::Infallible;
use std::sync::OnceLock;

use http::{Method, Request};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use sso_agent::api;
use sso_agent::daemon::routes::{self, Action, Params, Resp, Route};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// What `routes::route` does before it needs a session.
async fn answer(req: Request<Incoming>) -> Result<Resp, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    Ok(match routes::parse_route(&method, &path, &query) {
        Err(resp) => *resp,
        Ok(Route::Session {
            action: Action::StartLogin,
            ..
        }) => match routes::read_login(req).await {
            Ok(login) => routes::ok(login.flow),
            Err(resp) => *resp,
        },
        Ok(_) => routes::ok(()),
    })
}

async fn serve(data: &[u8]) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let conn = sso_agent::daemon::http_builder()
        .serve_connection(TokioIo::new(server), service_fn(answer));
    let (mut rx, mut tx) = tokio::io::split(client);
    // Write and read at once: many pipelined requests can fill the answer direction.
    let write = async move {
        let _ = tx.write_all(data).await;
        let _ = tx.shutdown().await;
    };
    let read = async move {
        let mut out = Vec::new();
        let _ = rx.read_to_end(&mut out).await;
    };
    let _ = tokio::join!(conn, write, read);
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(serve(data));

    // Any name survives the client's path encoding and the daemon's decoding unchanged.
    if let Ok(name) = std::str::from_utf8(data) {
        let route = routes::parse_route(&Method::GET, &api::paths::token(name), "");
        assert_eq!(
            route.ok(),
            Some(Route::Session {
                name: name.to_string(),
                params: Params::default(),
                action: Action::Token,
            })
        );
        let route = routes::parse_route(&Method::GET, &api::paths::credentials(name), "");
        assert_eq!(
            route.ok(),
            Some(Route::Credentials {
                profile: name.to_string(),
                wait: std::time::Duration::ZERO,
            })
        );
        // The query alone, and a body alone.
        let _ = Params::parse(name);
    }
    let _ = routes::parse_login(data);
});
