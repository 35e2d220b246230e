//! The daemon's lifecycle: bind, load, ready, serve, drain (STYLE §7). The only module that
//! spawns long-lived tasks besides the session manager.
//! Must not: hold token policy (session/) or format output for users (cli/).

pub mod io;
pub mod listener;
pub mod ready;
pub mod reload;
pub mod routes;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use interprocess::local_socket::tokio::prelude::*;
use tokio::sync::Semaphore;

use crate::api::ErrorCode;
use crate::config::AwsConfig;
use crate::env::Env;
use crate::session::SessionConfig;

pub use listener::{BindError, Bound, bind};
pub use routes::AppState;

/// Most connections served at once; more wait in the listen backlog until one ends.
pub const MAX_CONNECTIONS: usize = 512;
/// Time a client has to send a request's headers (slowloris bound).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head (line + headers) accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// How long in-flight requests may take to finish after SIGTERM.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The sessions of an AWS config, each with its resolved OIDC endpoint; sessions whose
/// endpoint cannot be resolved are left out and reported.
pub fn sessions_from(aws: &AwsConfig, env: &Env) -> (Vec<SessionConfig>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for s in aws.sessions.values() {
        match crate::endpoint::resolve(&s.region, env, aws) {
            Ok(ep) => out.push(SessionConfig {
                name: s.name.clone(),
                start_url: s.start_url.clone(),
                region: s.region.clone(),
                scopes: s.scopes.clone(),
                oidc_endpoint: ep.oidc,
                portal_endpoint: ep.portal,
            }),
            Err(e) => problems.push(format!("{}: [sso-session {}]: {e}", s.location, s.name)),
        }
    }
    (out, problems)
}

/// The HTTP/1 server settings of every connection (also what the socket fuzz target runs).
pub fn http_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .keep_alive(true);
    builder
}

/// Serves `bound` until `shutdown` resolves, then drains and removes the socket file if we
/// created it. `ready` is called once the socket is being served.
pub async fn serve(
    bound: Bound,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(),
) -> std::io::Result<()> {
    let Bound {
        listener,
        path,
        owns_path,
    } = bound;
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let builder = http_builder();
    ready();
    tracing::info!(socket = %path.display(), "serving");
    tokio::pin!(shutdown);
    loop {
        // A slot first, then accept: at the cap, new clients wait in the kernel's listen
        // backlog (no file descriptor spent) until a connection ends; stalled clients free
        // their slot at the header timeout, so nobody waits forever.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                tracing::debug!(
                    limit = MAX_CONNECTIONS,
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
                    () = tokio::time::sleep(ACCEPT_PAUSE) => continue,
                }
            }
        };
        let peer = listener::peer(&conn);
        let allowed = listener::peer_allowed(&peer);
        if !allowed {
            #[cfg(unix)]
            tracing::warn!(uid = ?peer.uid, pid = ?peer.pid, "refusing a connection from another user");
            #[cfg(windows)]
            tracing::warn!(user = ?peer.user, pid = ?peer.pid, "refusing a connection from another user");
        }
        let state = state.clone();
        let svc = service_fn(move |req| {
            let state = state.clone();
            async move {
                if allowed {
                    Ok::<_, std::convert::Infallible>(routes::handle(state, req).await)
                } else {
                    Ok(routes::error(
                        ErrorCode::Forbidden,
                        "this socket serves only the user who runs the daemon",
                    ))
                }
            }
        });
        let fut = graceful.watch(builder.serve_connection(
            TokioIo::new(io::WriteTimeout::new(conn, io::WRITE_STALL)),
            svc,
        ));
        tokio::spawn(async move {
            if let Err(e) = fut.await {
                tracing::debug!(error = %crate::error_text::with_causes(&e), "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    ready::stopping();
    tracing::info!("stopping: no new connections; draining");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some requests did not finish in time; closing them");
    }
    if owns_path && let Err(e) = std::fs::remove_file(&path) {
        tracing::warn!(socket = %path.display(), error = %e, "could not remove the socket file");
    }
    state.manager.shutdown(DRAIN_TIMEOUT).await;
    tracing::info!("stopped");
    Ok(())
}
