//! `sso-agent run`: wires settings, logging, store, sessions and the socket, then serves
//! until SIGTERM/SIGINT.
//! Must not: contain daemon behaviour itself (that is `daemon::serve` and `session`).

use std::io::IsTerminal;
use std::sync::{Arc, RwLock};

use tracing_subscriber::EnvFilter;

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Flags, Settings};
use crate::daemon::{self, AppState};
use crate::entropy::OsEntropy;
use crate::env::Env;
use crate::session::{Deps, HttpOidcFactory, Manager};
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
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
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

    // 2. Load: store, configuration, sessions (each task recovers its tokens).
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = store::open(settings.store).await;
    let http = crate::oidc::http_client()
        .map_err(|e| Failure::new(Exit::Error, format!("cannot build the HTTPS client: {e}")))?;
    let factory = Arc::new(HttpOidcFactory::new(http));
    let aws_cli_cache = if settings.export_aws_cli_cache {
        let dir = crate::paths::aws_sso_cache_dir(&env);
        if dir.is_none() {
            tracing::warn!("export_aws_cli_cache is on but HOME is not set; not exporting");
        }
        dir
    } else {
        None
    };
    let deps = Deps {
        clock: clock.clone(),
        entropy: Arc::new(OsEntropy),
        store: store.clone(),
        oidc: factory.clone(),
        portal: factory,
        refresh_margin: settings.refresh_margin,
        reregistration_margin: settings.reregistration_margin,
        aws_cli_cache,
    };
    let state = Arc::new(AppState {
        manager: Arc::new(Manager::new(deps)),
        store,
        started_at: clock.now(),
        socket: settings.socket.display().to_string(),
        config_file: settings.aws_config_file.display().to_string(),
        config_error: RwLock::new(None),
        aws: RwLock::new(config::AwsConfig::default()),
    });
    // The same load-validate-apply pipeline as a live reload.
    daemon::reload::reload(&settings.aws_config_file, &env, &state);

    let _watchers = daemon::reload::watch(&settings, flags, env, state.clone());

    // 3 + 4. Serve; ready once accepting. 5. Drain on a signal.
    daemon::serve(bound, state, shutdown_signal(), daemon::ready::ready)
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
