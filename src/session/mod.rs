//! Sessions: one task per `sso-session` owns its tokens, login and refresh schedule; the
//! `Manager` holds a handle per session for the daemon's routes.
//! Must not: touch the socket, format output for users, or read the clock or env directly.

mod login;
pub mod policy;
mod registry;
mod task;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use url::Url;

use crate::api::SessionStatus;
use crate::clock::Clock;
use crate::entropy::Entropy;
use crate::oidc::Oidc;
use crate::store::SecretStore;

pub use registry::Registrations;
pub use task::SessionHandle;

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
    pub oidc_endpoint: Url,
    pub portal_endpoint: Url,
}

/// Why a session could not answer. Cloneable: one refresh result goes to every waiter.
/// Messages never contain secrets (upstream errors carry only names and descriptions).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("session `{0}` needs a login: run `sso-agent login {0}`")]
    LoginRequired(String),
    #[error(
        "a login for session `{0}` is pending: complete it, or wait for it with `sso-agent token {0} --wait 300`"
    )]
    LoginPending(String),
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Store(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Internal(String),
}

/// All session tasks of the daemon, by name.
pub struct Manager {
    deps: RwLock<Deps>,
    registrations: Arc<Registrations>,
    sessions: RwLock<BTreeMap<String, SessionHandle>>,
}

impl Manager {
    pub fn new(deps: Deps) -> Self {
        let registrations = Arc::new(Registrations::new(deps.store.clone()));
        Self {
            deps: RwLock::new(deps),
            registrations,
            sessions: RwLock::new(BTreeMap::new()),
        }
    }

    /// Makes the running sessions match `configs`: starts new ones, restarts changed ones,
    /// stops removed ones. Unchanged sessions keep running untouched.
    pub fn apply(&self, configs: Vec<SessionConfig>) {
        let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        let wanted: BTreeMap<String, SessionConfig> =
            configs.into_iter().map(|c| (c.name.clone(), c)).collect();
        sessions.retain(|name, handle| {
            let keep = wanted.get(name) == Some(handle.config());
            if !keep {
                tracing::info!(session = %name, "session removed or changed; stopping its task");
            }
            keep
        });
        for (name, cfg) in wanted {
            if let std::collections::btree_map::Entry::Vacant(slot) = sessions.entry(name) {
                tracing::info!(session = %cfg.name, start_url = %cfg.start_url, region = %cfg.region, "starting session");
                slot.insert(task::spawn(
                    cfg,
                    self.deps.read().unwrap_or_else(|p| p.into_inner()).clone(),
                    self.registrations.clone(),
                ));
            }
        }
    }

    /// Changes the refresh and re-registration margins. Sessions restart with them (each
    /// recovers its tokens from the store, as after a daemon restart).
    pub fn set_margins(&self, refresh: Duration, reregistration: Duration) {
        {
            let mut deps = self.deps.write().unwrap_or_else(|p| p.into_inner());
            if deps.refresh_margin == refresh && deps.reregistration_margin == reregistration {
                return;
            }
            deps.refresh_margin = refresh;
            deps.reregistration_margin = reregistration;
        }
        let configs: Vec<SessionConfig> = {
            let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
            let configs = sessions.values().map(|h| h.config().clone()).collect();
            sessions.clear();
            configs
        };
        tracing::info!(
            ?refresh,
            ?reregistration,
            "margins changed; restarting sessions"
        );
        self.apply(configs);
    }

    pub fn get(&self, name: &str) -> Option<SessionHandle> {
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

    /// Stops every session task (their pending work is dropped; nothing unsaved is lost
    /// because every change is persisted before it is used).
    pub fn shutdown(&self) {
        self.sessions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
