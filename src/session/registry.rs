//! Client registrations shared by sessions: one per (endpoint, region, scopes, grant types,
//! issuer), loaded from the store or registered, single-flight per key.
//! Must not: decide when tokens refresh, or keep a registration that cannot start a login.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use crate::oidc::{Oidc, RegisterClientRequest};
use crate::store::SecretStore;
use crate::store::records::{ClientRecord, registration_key};

use super::policy;

/// Why no registration could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistrationError {
    #[error("RegisterClient failed: {0}")]
    Upstream(crate::oidc::OidcError),
    #[error("RegisterClient answered an invalid clientSecretExpiresAt")]
    InvalidExpiry,
}

/// What a registration is for.
#[derive(Debug, Clone)]
pub struct RegistrationSpec {
    pub endpoint: String,
    pub region: String,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub issuer_url: Option<String>,
}

impl RegistrationSpec {
    fn key(&self) -> String {
        registration_key(
            &self.endpoint,
            &self.region,
            &self.scopes,
            &self.grant_types,
            self.issuer_url.as_deref(),
        )
    }
}

pub struct Registrations {
    store: Arc<dyn SecretStore>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<ClientRecord>>>>>,
}

impl Registrations {
    pub fn new(store: Arc<dyn SecretStore>) -> Self {
        Self {
            store,
            locks: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, key: &str) -> Arc<tokio::sync::Mutex<Option<ClientRecord>>> {
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    async fn load_into(
        &self,
        spec: &RegistrationSpec,
        key: &str,
        cached: &mut Option<ClientRecord>,
    ) {
        if cached.is_some() {
            return;
        }
        match self.store.get(key).await {
            Ok(Some(s)) => match ClientRecord::from_secret(&s) {
                // A client secret is only ever sent to the endpoint that issued it.
                Ok(rec) if rec.endpoint != spec.endpoint => {
                    tracing::warn!(%key, record_endpoint = %rec.endpoint, endpoint = %spec.endpoint, "ignoring a stored registration of another endpoint")
                }
                Ok(rec) => *cached = Some(rec),
                Err(e) => tracing::warn!(%key, error = %e, "ignoring a stored registration"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(%key, error = %e, "could not read a stored registration"),
        }
    }

    /// Drops the registration `client_id` of `spec` (memory and store) after the upstream
    /// refused it as an unknown client, so the next login registers afresh instead of failing
    /// for good. A newer registration that replaced it meanwhile is kept.
    pub async fn forget(&self, spec: &RegistrationSpec, client_id: &str) {
        let key = spec.key();
        let slot = self.slot(&key);
        let mut cached = slot.lock().await;
        if cached.as_ref().is_some_and(|r| r.client_id != client_id) {
            return;
        }
        *cached = None;
        tracing::warn!(%key, "the OIDC service no longer knows this client registration; registering a new one");
        if let Err(e) = self.store.delete(&key).await {
            tracing::warn!(%key, error = %e, "could not remove the refused registration");
        }
    }

    /// The current registration for `spec`, if any (never registers).
    pub async fn peek(&self, spec: &RegistrationSpec) -> Option<ClientRecord> {
        let key = spec.key();
        let slot = self.slot(&key);
        let mut cached = slot.lock().await;
        self.load_into(spec, &key, &mut cached).await;
        cached.clone()
    }

    /// A registration that may start a login now: the cached or stored one if it is still
    /// usable (policy::registration_usable), else a fresh RegisterClient, persisted before
    /// it is returned. Concurrent callers for one key share a single RegisterClient.
    pub async fn get_or_register(
        &self,
        oidc: &dyn Oidc,
        spec: &RegistrationSpec,
        now: OffsetDateTime,
        margin: Duration,
    ) -> Result<ClientRecord, RegistrationError> {
        let key = spec.key();
        let slot = self.slot(&key);
        let mut cached = slot.lock().await;
        self.load_into(spec, &key, &mut cached).await;
        if let Some(rec) = cached.as_ref() {
            let usable = policy::registration_usable(
                rec.client_id_issued_at,
                rec.client_secret_expires_at,
                now,
                margin,
            );
            tracing::debug!(%key, usable, expires_at = %rec.client_secret_expires_at, "registration found");
            if usable {
                return Ok(rec.clone());
            }
        }
        let req = RegisterClientRequest {
            client_name: "sso-agent".to_string(),
            client_type: "public".to_string(),
            scopes: Some(spec.scopes.clone()),
            redirect_uris: spec.redirect_uris.clone(),
            grant_types: Some(spec.grant_types.clone()),
            issuer_url: spec.issuer_url.clone(),
            entitled_application_arn: None,
        };
        let resp = oidc
            .register_client(req)
            .await
            .map_err(RegistrationError::Upstream)?;
        let issued = OffsetDateTime::from_unix_timestamp(resp.client_id_issued_at).unwrap_or(now);
        let expires = OffsetDateTime::from_unix_timestamp(resp.client_secret_expires_at)
            .map_err(|_| RegistrationError::InvalidExpiry)?;
        let rec = ClientRecord {
            client_id: resp.client_id,
            client_secret: resp.client_secret,
            // a missing (0) issue time would make the lifetime look huge; use now instead
            client_id_issued_at: if resp.client_id_issued_at > 0 {
                issued
            } else {
                now
            },
            client_secret_expires_at: expires,
            region: spec.region.clone(),
            scopes: spec.scopes.clone(),
            grant_types: spec.grant_types.clone(),
            issuer_url: spec.issuer_url.clone(),
            endpoint: spec.endpoint.clone(),
        };
        tracing::info!(%key, client_expires_at = %rec.client_secret_expires_at, "registered a new OIDC client");
        match rec.to_secret() {
            Ok(secret) => {
                if let Err(e) = self.store.set(&key, secret).await {
                    tracing::warn!(%key, error = %e, "could not persist the registration; it lives in memory only");
                }
            }
            Err(e) => tracing::warn!(%key, error = %e, "could not encode the registration"),
        }
        *cached = Some(rec.clone());
        Ok(rec)
    }
}
