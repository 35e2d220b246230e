//! `sso-agent run`: flags and settings, logging, the runtime, the socket (bound or adopted from
//! the service manager), the production seams (system clock, OS entropy, keyring, HTTPS
//! upstream) and SIGTERM/SIGINT; then hands over to `daemon::run`.
//! Must not: contain daemon behaviour itself (that is `daemon::run` and `session`).

use std::sync::Arc;

use tracing_subscriber::EnvFilter;

use crate::clock::SystemClock;
use crate::config::{Flags, Settings};
use crate::daemon;
use crate::entropy::OsEntropy;
use crate::env::Env;
use crate::session::HttpOidcFactory;
use crate::store;

use super::exit::{Exit, Failure};

pub fn run(settings: Settings, flags: Flags, env: Env) -> Result<(), Failure> {
    // Before any thread exists: the activation crate clears LISTEN_FDS/LISTEN_PID (on
    // Windows nothing is ever handed over).
    let activated = daemon::listener::take_activated().map_err(|e| {
        Failure::new(
            Exit::Error,
            format!("cannot use the socket passed by systemd: {e}"),
        )
    })?;
    let filter = EnvFilter::try_new(&settings.log).map_err(|e| {
        Failure::new(
            Exit::Usage,
            format!("log filter {:?} is not valid: {e}", settings.log),
        )
    })?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Every line escaped (outside text cannot forge a line or drive a terminal), so no
        // colours: their escapes would be escaped too.
        .with_writer(crate::outside_text::LogWriter)
        .with_ansi(false)
        .init();
    daemon::ready::harden_process();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(Exit::Error, format!("cannot start the runtime: {e}")))?;
    rt.block_on(run_async(settings, flags, env, activated))
}

async fn run_async(
    settings: Settings,
    flags: Flags,
    env: Env,
    activated: Option<daemon::listener::Activated>,
) -> Result<(), Failure> {
    // 1. Bind first (or adopt the activated socket), so a second daemon stops before
    //    touching anything.
    let bound = match activated {
        Some(a) => daemon::listener::adopt(a),
        None => daemon::bind(&settings.socket).await,
    }
    .map_err(|e| Failure::new(Exit::Error, e.to_string()))?;
    let http = crate::upstream::client()
        .map_err(|e| Failure::new(Exit::Error, format!("cannot build the HTTPS client: {e}")))?;
    let factory = Arc::new(HttpOidcFactory::new(http));

    // 2. The seams the daemon is built from; it loads, serves and drains (daemon::run).
    let deps = daemon::Deps {
        clock: Arc::new(SystemClock),
        entropy: Arc::new(OsEntropy),
        store: store::open(settings.store).await,
        oidc: factory.clone(),
        portal: factory,
        env,
        flags,
    };
    daemon::run(bound, deps, settings, shutdown_signal())
        .await
        .map_err(|e| Failure::new(Exit::Error, format!("serving failed: {e}")))
}

/// Registers the signal handlers now (so a SIGTERM that arrives as soon as we serve is
/// caught, not fatal) and returns the future that resolves on the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                },
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "cannot watch signals; stop the daemon with SIGKILL");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
