//! The daemon's lifecycle: bind, load, ready, serve, drain (STYLE §7). The only module that
//! spawns long-lived tasks besides the session manager.
//! Must not: hold token policy (session/) or format output for users (cli/).

pub mod listener;
pub mod ready;
pub mod reload;
pub mod routes;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;

use crate::api::ErrorCode;
use crate::bounded_server::Limits;
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
/// How long a blocked write may wait for the client to read.
pub const WRITE_STALL: Duration = Duration::from_secs(10);

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
                legacy: s.legacy,
                oidc_endpoint: ep.oidc,
                portal_endpoint: ep.portal,
            }),
            Err(e) if s.legacy => problems.push(format!(
                "{}: legacy session {} (sso_start_url {}): {e}",
                s.location, s.name, s.start_url
            )),
            Err(e) => problems.push(format!("{}: [sso-session {}]: {e}", s.location, s.name)),
        }
    }
    (out, problems)
}

/// The bounds of the local socket (SPEC: request size and header time bounded; a slow or
/// hostile client never stalls the others).
pub const SOCKET_LIMITS: Limits = Limits {
    max_connections: MAX_CONNECTIONS,
    header_timeout: HEADER_TIMEOUT,
    max_head: MAX_HEAD,
    write_stall: WRITE_STALL,
    accept_pause: ACCEPT_PAUSE,
    drain: DRAIN_TIMEOUT,
};

/// The HTTP/1 server settings of every connection (also what the socket fuzz target runs).
pub fn http_builder() -> hyper::server::conn::http1::Builder {
    crate::bounded_server::http_builder(&SOCKET_LIMITS)
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
    ready();
    tracing::info!(socket = %path.display(), "serving");
    let service_for = |conn: &interprocess::local_socket::tokio::Stream| {
        let peer = listener::peer(conn);
        let allowed = listener::peer_allowed(&peer);
        if !allowed {
            tracing::warn!(peer = %peer.user.as_ref().map_or_else(|| "an unknown user".to_string(), ToString::to_string), pid = ?peer.pid, "refusing a connection from another user");
        }
        let state = state.clone();
        service_fn(move |req| {
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
        })
    };
    let stopping = async {
        shutdown.await;
        ready::stopping();
        tracing::info!("stopping: no new connections; draining");
    };
    crate::bounded_server::serve(listener, SOCKET_LIMITS, service_for, stopping).await;
    if owns_path && let Err(e) = std::fs::remove_file(&path) {
        tracing::warn!(socket = %path.display(), error = %e, "could not remove the socket file");
    }
    state.manager.shutdown(DRAIN_TIMEOUT).await;
    tracing::info!("stopped");
    Ok(())
}
