//! Login-client upkeep of one session: which registration new logins use (the flow of the
//! last login picks it), when to register a fresh one ahead of its lapse, and what a
//! re-registration result does.
//! Must not: register by itself (`registry.rs` does, single-flight per key), or touch tokens.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::api::LoginFlow;
use crate::clock::BoxFuture;
use crate::oidc::Oidc;
use crate::store::records::ClientRecord;

use super::chain::{self, Chain};
use super::login;
use super::problem::Problem;
use super::registry::{RegistrationError, RegistrationSpec, Registrations};
use super::{Margins, SessionConfig, policy};

pub(super) type RegisterResult = Result<ClientRecord, RegistrationError>;

pub(super) struct Upkeep {
    /// The client new logins of this session use, kept fresh ahead of its lapse.
    pub registration: Option<ClientRecord>,
    /// The flow of the last login: its registration is the one kept fresh.
    pub flow: LoginFlow,
    retry_at: Option<OffsetDateTime>,
}

impl Default for Upkeep {
    fn default() -> Self {
        Self {
            registration: None,
            flow: LoginFlow::DeviceCode,
            retry_at: None,
        }
    }
}

impl Upkeep {
    pub fn spec(&self, cfg: &SessionConfig) -> RegistrationSpec {
        let endpoint = cfg.oidc_endpoint.as_str();
        match self.flow {
            LoginFlow::DeviceCode => login::device_spec(endpoint, &cfg.region, &cfg.scopes),
            LoginFlow::AuthorizationCode => {
                login::pkce_spec(endpoint, &cfg.region, &cfg.scopes, &cfg.start_url)
            }
        }
    }

    /// The flow the stored chain came from picks which login client is kept fresh.
    pub async fn recover(
        &mut self,
        chain: &Chain,
        cfg: &SessionConfig,
        registrations: &Registrations,
    ) {
        if chain.record.as_ref().is_some_and(|r| {
            r.client
                .grant_types
                .iter()
                .any(|g| g == crate::oidc::GRANT_AUTHORIZATION_CODE)
        }) {
            self.flow = LoginFlow::AuthorizationCode;
        }
        self.registration = registrations.peek(&self.spec(cfg)).await;
    }

    /// A login succeeded with `client`: later logins of this flow use it.
    pub fn logged_in(&mut self, client: ClientRecord, flow: LoginFlow) {
        self.registration = Some(client);
        self.flow = flow;
    }

    pub fn due_at(&self, chain: &Chain, margins: Margins) -> Option<OffsetDateTime> {
        chain::reregister_at(chain, self.registration.as_ref(), self.retry_at, margins)
    }

    pub fn start(
        &self,
        cfg: &SessionConfig,
        registrations: Arc<Registrations>,
        oidc: Arc<dyn Oidc>,
        now: OffsetDateTime,
        margins: Margins,
    ) -> BoxFuture<'static, RegisterResult> {
        let spec = self.spec(cfg);
        tracing::info!(session = %cfg.name, "the login client's secret lapses soon; registering a fresh one");
        Box::pin(async move {
            registrations
                .get_or_register(oidc.as_ref(), &spec, now, margins.reregistration)
                .await
        })
    }

    /// Applies a re-registration result; a failure retries after a back-off.
    pub fn landed(
        &mut self,
        session: &str,
        out: RegisterResult,
        now: OffsetDateTime,
        jitter: impl FnOnce() -> f64,
    ) -> Option<Problem> {
        match out {
            Ok(reg) => {
                tracing::info!(session, client_expires_at = %reg.client_secret_expires_at, "later logins use the fresh client");
                self.registration = Some(reg);
                self.retry_at = None;
                None
            }
            Err(e) => {
                let delay = policy::backoff(5, jitter());
                tracing::warn!(session, error = %e, retry_in_s = delay.as_secs(), "re-registration failed");
                self.retry_at = Some(now + delay);
                Some(Problem::Registration(e))
            }
        }
    }
}
