//! The daemon's lifecycle and composition root: `run` builds the daemon from a bound
//! listener, its injected dependencies, the settings and a stop signal, then loads, serves
//! and drains (STYLE §7); tests start it in-process the same way (`tests.rs`). The only module
//! that spawns long-lived tasks besides the session manager.
//! Must not: hold token policy (session/), format output for users (cli/), or read the process
//! environment, the clock or signals itself (the caller passes them in).

pub mod exec_endpoint;
pub mod listener;
pub mod ready;
pub mod reload;
pub mod routes;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper::service::service_fn;

use crate::api::ErrorCode;
use crate::bounded_server::Limits;
use crate::clock::Clock;
use crate::config::{AwsConfig, Flags, Settings};
use crate::entropy::Entropy;
use crate::env::Env;
use crate::session::{Manager, OidcFactory, PortalFactory, SessionConfig};
use crate::store::SecretStore;

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

/// What the daemon is built from besides its settings: the seams it does not control
/// (STYLE §3), and the sources the settings were merged from (a settings reload re-reads them
/// with the TOML file).
pub struct Deps {
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub store: Arc<dyn SecretStore>,
    pub oidc: Arc<dyn OidcFactory>,
    pub portal: Arc<dyn PortalFactory>,
    pub env: Env,
    pub flags: Flags,
}

/// Runs the daemon on `bound` until `shutdown` resolves: loads the configuration and starts a
/// task per session (each recovers its tokens from the store), watches the config files,
/// serves (telling the service manager it is ready once accepting), then drains. The caller
/// binds (or adopts) the socket first, so a second daemon stops before touching anything.
pub async fn run(
    bound: Bound,
    deps: Deps,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let Deps {
        clock,
        entropy,
        store,
        oidc,
        portal,
        env,
        flags,
    } = deps;
    let aws_cli_cache = if settings.export_aws_cli_cache {
        let dir = crate::paths::aws_sso_cache_dir(&env);
        if dir.is_none() {
            tracing::warn!("export_aws_cli_cache is on but HOME is not set; not exporting");
        }
        dir
    } else {
        None
    };
    let session_deps = crate::session::Deps {
        clock: clock.clone(),
        entropy: entropy.clone(),
        store: store.clone(),
        oidc,
        portal,
        refresh_margin: settings.refresh_margin,
        reregistration_margin: settings.reregistration_margin,
        aws_cli_cache,
    };
    let manager = Arc::new(Manager::new(session_deps));
    let state = Arc::new(AppState {
        exec: Arc::new(exec_endpoint::ExecEndpoint::new(
            clock.clone(),
            entropy,
            manager.clone(),
        )),
        manager,
        store,
        started_at: clock.now(),
        socket: settings.socket.display().to_string(),
        config_file: settings.aws_config_file.display().to_string(),
        config_problems: reload::ConfigProblems::default(),
        aws: RwLock::new(AwsConfig::default()),
        profile_blocks: RwLock::default(),
    });
    // The same load-validate-apply pipeline as a live reload.
    reload::reload(&settings.aws_config_file, &env, &state).await;
    let _watchers = reload::watch(&settings, flags, env, state.clone());
    serve(bound, state, shutdown, ready::ready).await
}

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
    tracing::info!(
        "next, in another shell: `sso-agent status` shows every session; `sso-agent login SESSION` logs one in; `sso-agent token SESSION` prints its token (set SSO_AGENT_SOCKET there too if you set it here)"
    );
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
                use http_body_util::Either;
                if !allowed {
                    Ok(routes::error(
                        ErrorCode::Forbidden,
                        "this socket serves only the user who runs the daemon",
                    )
                    .map(Either::Left))
                } else if exec_endpoint::is_exec_route(&req) {
                    Ok(exec_endpoint::route(&state, req).await)
                } else {
                    Ok::<_, std::convert::Infallible>(
                        routes::handle(state, req).await.map(Either::Left),
                    )
                }
            }
        })
    };
    let exec = state.exec.clone();
    let stopping = async move {
        shutdown.await;
        // Held exec connections end now, so the drain does not wait on them.
        exec.close();
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
