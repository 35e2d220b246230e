//! Sessions: one task per `sso-session` owns its tokens, login and refresh schedule; the
//! `Manager` holds a handle per session for the daemon's routes.
//! Must not: touch the socket, format output for users, or read the clock or env directly.

pub mod accounts;
mod chain;
mod flight;
mod handle;
pub mod keep_fresh;
mod login;
mod pending_login;
pub mod policy;
mod problem;
mod registry;
mod roles;
mod saved;
mod task;
#[cfg(test)]
mod tests;
mod upkeep;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use std::time::Duration;
use tokio::sync::watch;

use url::Url;

use crate::api::SessionStatus;
use crate::clock::Clock;
use crate::entropy::Entropy;
use crate::oidc::Oidc;
use crate::store::SecretStore;

pub use handle::{Finished, SessionHandle};
pub use problem::{Problem, UpstreamError};
pub use registry::{RegistrationError, Registrations};

/// Builds an OIDC client for an endpoint (tests inject a scripted one).
pub trait OidcFactory: Send + Sync + 'static {
    fn for_endpoint(&self, endpoint: &Url) -> Arc<dyn Oidc>;
}

/// The production factory: one shared reqwest client, one `HttpOidc` per endpoint.
pub struct HttpOidcFactory {
    http: reqwest::Client,
}

impl HttpOidcFactory {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }
}

impl OidcFactory for HttpOidcFactory {
    fn for_endpoint(&self, endpoint: &Url) -> Arc<dyn Oidc> {
        Arc::new(crate::oidc::HttpOidc::new(
            self.http.clone(),
            endpoint.clone(),
        ))
    }
}

/// What the session code does not control, injected (STYLE §3).
#[derive(Clone)]
pub struct Deps {
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub store: Arc<dyn SecretStore>,
    pub oidc: Arc<dyn OidcFactory>,
    pub portal: Arc<dyn PortalFactory>,
    /// The margins at start-up: `Manager::new` moves them into its watch, the one source
    /// every session task reads (a live settings change goes there, `Manager::set_margins`).
    pub refresh_margin: Duration,
    pub reregistration_margin: Duration,
    /// The AWS CLI token cache directory, when the user opted into exporting to it.
    pub aws_cli_cache: Option<std::path::PathBuf>,
}

/// Builds a portal client for an endpoint (tests inject a scripted one).
pub trait PortalFactory: Send + Sync + 'static {
    fn for_endpoint(&self, endpoint: &Url) -> Arc<dyn crate::portal::Portal>;
}

impl PortalFactory for HttpOidcFactory {
    fn for_endpoint(&self, endpoint: &Url) -> Arc<dyn crate::portal::Portal> {
        Arc::new(crate::portal::HttpPortal::new(
            self.http.clone(),
            endpoint.clone(),
        ))
    }
}

/// One configured `[sso-session]`, validated, with its resolved OIDC endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub name: String,
    pub start_url: String,
    pub region: String,
    pub scopes: Vec<String>,
    /// Derived from legacy profiles: its token is also exported as sha1(start URL).json.
    pub legacy: bool,
    pub oidc_endpoint: Url,
    pub portal_endpoint: Url,
}

/// Why a session could not answer. Cloneable: one refresh result goes to every waiter.
/// Messages never contain secrets (upstream errors carry only names and descriptions).
#[derive(Debug, Clone, thiserror::Error)]
pub enum SessionError {
    #[error("session `{0}` needs a login: run `sso-agent login {0}`")]
    LoginRequired(String),
    #[error(
        "a login for session `{0}` is pending: complete it, or wait for it with `sso-agent token {0} --wait 300`"
    )]
    LoginPending(String),
    #[error(transparent)]
    Upstream(UpstreamError),
    #[error("{0}")]
    Store(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Internal(String),
}

/// The refresh and re-registration margins, changed live by a settings reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Margins {
    pub refresh: Duration,
    pub reregistration: Duration,
}

/// All session tasks of the daemon, by name.
pub struct Manager {
    deps: Deps,
    margins: watch::Sender<Margins>,
    registrations: Arc<Registrations>,
    /// Behind an `Arc` so a request takes one reference count, not one per channel inside.
    sessions: RwLock<BTreeMap<String, Arc<SessionHandle>>>,
    /// Stopped tasks still saving a refresh, by session name: a new task for that name waits
    /// for them before it reads the store (two tasks must never drive one refresh chain).
    stopping: Mutex<BTreeMap<String, Vec<Finished>>>,
}

impl Manager {
    pub fn new(deps: Deps) -> Self {
        let registrations = Arc::new(Registrations::new(deps.store.clone()));
        let (margins, _) = watch::channel(Margins {
            refresh: deps.refresh_margin,
            reregistration: deps.reregistration_margin,
        });
        Self {
            deps,
            margins,
            registrations,
            sessions: RwLock::new(BTreeMap::new()),
            stopping: Mutex::new(BTreeMap::new()),
        }
    }

    /// Makes the running sessions match `configs`: starts new ones, restarts changed ones,
    /// stops removed ones. Unchanged sessions keep running untouched. A stopped session
    /// finishes and saves a refresh in flight; its successor starts only after that.
    pub fn apply(&self, configs: Vec<SessionConfig>) {
        let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        let mut stopping = self.stopping.lock().unwrap_or_else(|p| p.into_inner());
        let wanted: BTreeMap<String, SessionConfig> =
            configs.into_iter().map(|c| (c.name.clone(), c)).collect();
        sessions.retain(|name, handle| {
            let keep = wanted.get(name) == Some(handle.config());
            if !keep {
                tracing::info!(session = %name, "session removed or changed; stopping its task");
                stopping
                    .entry(name.clone())
                    .or_default()
                    .push(handle.stop());
            }
            keep
        });
        stopping.retain(|_, tasks| {
            tasks.retain(|t| !t.is_done());
            !tasks.is_empty()
        });
        for (name, cfg) in wanted {
            if let std::collections::btree_map::Entry::Vacant(slot) = sessions.entry(name) {
                tracing::info!(session = %cfg.name, start_url = %cfg.start_url, region = %cfg.region, "starting session");
                let after = stopping.get(&cfg.name).cloned().unwrap_or_default();
                slot.insert(Arc::new(handle::spawn(
                    cfg,
                    self.deps.clone(),
                    self.registrations.clone(),
                    self.margins.subscribe(),
                    after,
                )));
            }
        }
    }

    /// Changes the refresh and re-registration margins of every session, live: each
    /// re-evaluates its schedule; nothing restarts and no refresh is cut off.
    pub fn set_margins(&self, refresh: Duration, reregistration: Duration) {
        let new = Margins {
            refresh,
            reregistration,
        };
        if self.margins.send_if_modified(|m| {
            let changed = *m != new;
            *m = new;
            changed
        }) {
            tracing::info!(?refresh, ?reregistration, "margins changed");
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<SessionHandle>> {
        self.sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    pub fn statuses(&self) -> Vec<SessionStatus> {
        self.sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|h| h.status())
            .collect()
    }

    /// Stops every session task and waits (at most `within`) until each has saved a refresh
    /// it had in flight; pending logins are dropped.
    pub async fn shutdown(&self, within: Duration) {
        let mut finished: Vec<Finished> = {
            let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *sessions)
                .values()
                .map(|h| h.stop())
                .collect()
        };
        finished.extend(
            std::mem::take(&mut *self.stopping.lock().unwrap_or_else(|p| p.into_inner()))
                .into_values()
                .flatten(),
        );
        let all = async {
            for f in finished {
                f.wait().await;
            }
        };
        if tokio::time::timeout(within, all).await.is_err() {
            tracing::warn!("a session did not finish saving a refresh in time");
        }
    }
}
