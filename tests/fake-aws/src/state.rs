//! The fake's whole memory behind one mutex: configuration, clients, device authorizations,
//! token chains, authorization codes, queued faults, the request log and counters; plus the
//! clock seam (tokio time for deadlines, so a paused runtime moves expiries too).
//! Must not: parse requests or build HTTP answers (see `oidc`, `portal`, `authorize`).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::wire::{OidcError, OidcErrorKind, random_alnum};
use crate::{FakeConfig, Fault, Op, Recorded};

/// The scope whose presence in a registration makes refresh tokens possible (WIRE.md §5.4).
pub(crate) const REFRESH_SCOPE: &str = "sso:account:access";
pub(crate) const GRANT_DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub(crate) const GRANT_REFRESH: &str = "refresh_token";
pub(crate) const GRANT_AUTH_CODE: &str = "authorization_code";
/// Authorization codes live this long (RFC 6749 §4.1.2 recommends at most 10 minutes).
pub(crate) const AUTH_CODE_TTL: Duration = Duration::from_secs(300);
/// RFC 8628 §3.5: each slow_down adds this to the polling interval.
pub(crate) const SLOW_DOWN_STEP: u64 = 5;

/// Wall time anchored once, advanced by tokio's clock.
pub(crate) struct Clock {
    wall0: SystemTime,
    t0: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        // The fake's only wall-clock read: epoch values on the wire derive from it.
        #[allow(clippy::disallowed_methods)]
        let wall0 = SystemTime::now();
        Clock {
            wall0,
            t0: Instant::now(),
        }
    }

    pub fn now(&self) -> Instant {
        Instant::now()
    }

    fn since_epoch(&self, at: Instant) -> Duration {
        let wall = self.wall0 + at.saturating_duration_since(self.t0);
        wall.duration_since(UNIX_EPOCH).unwrap_or_default()
    }

    pub fn epoch_secs(&self, at: Instant) -> u64 {
        self.since_epoch(at).as_secs()
    }

    pub fn epoch_millis(&self, at: Instant) -> u64 {
        u64::try_from(self.since_epoch(at).as_millis()).unwrap_or(u64::MAX)
    }
}

pub(crate) struct Client {
    pub secret: String,
    pub secret_expires: Instant,
    pub scopes: Vec<String>,
    /// `None`: the registration declared no grant types, so any supported grant is allowed.
    pub grant_types: Option<Vec<String>>,
    pub redirect_uris: Vec<String>,
}

impl Client {
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types
            .as_ref()
            .is_none_or(|g| g.iter().any(|x| x == grant))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeviceStatus {
    Pending,
    Approved,
    Denied,
    Consumed,
}

pub(crate) struct Device {
    pub user_code: String,
    pub client_id: String,
    pub status: DeviceStatus,
    pub expires: Instant,
    /// Current minimum gap between polls in seconds (grows by 5 on each slow_down).
    pub interval: u64,
    pub last_poll: Option<Instant>,
    pub seq: u64,
}

/// One login's token family: the access tokens and refresh tokens descending from one grant.
pub(crate) struct Chain {
    pub client_id: String,
    pub scopes: Vec<String>,
    /// Portal Logout ended the whole chain.
    pub logged_out: bool,
}

pub(crate) struct AccessToken {
    pub chain: usize,
    pub expires: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RtState {
    Current,
    /// Replaced by rotation; presenting it again is a reuse.
    RotatedOut,
    Revoked,
}

pub(crate) struct RefreshToken {
    pub chain: usize,
    pub state: RtState,
}

pub(crate) struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: String,
    pub scopes: Vec<String>,
    pub expires: Instant,
    pub used: bool,
}

/// An /authorize request waiting for the human's click (AuthorizeMode::Page).
pub(crate) struct PendingAuthorize {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: String,
    pub challenge: String,
    pub scopes: Vec<String>,
}

/// Role credentials as GetRoleCredentials issued them (for the sign-in federation).
pub(crate) struct IssuedRoleCredentials {
    pub secret: String,
    pub session_token: String,
    pub expires: Instant,
}

pub(crate) struct State {
    pub cfg: FakeConfig,
    pub clock: Clock,
    pub clients: HashMap<String, Client>,
    pub devices: HashMap<String, Device>,
    pub chains: Vec<Chain>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    pub codes: HashMap<String, AuthCode>,
    pub pending_authorize: HashMap<String, PendingAuthorize>,
    pub faults: HashMap<Op, VecDeque<Fault>>,
    pub calls: HashMap<Op, usize>,
    pub requests: Vec<Recorded>,
    pub issued_secrets: Vec<String>,
    /// Role credential access key ids handed out, in order (not secret; SDK probes print them).
    pub issued_key_ids: Vec<String>,
    /// By access key id.
    pub role_credentials: HashMap<String, IssuedRoleCredentials>,
    /// Sign-in token → when it lapses.
    pub signin_tokens: HashMap<String, Instant>,
    pub reuse_count: usize,
    next_seq: u64,
}

impl State {
    pub fn new(cfg: FakeConfig) -> State {
        State {
            cfg,
            clock: Clock::new(),
            clients: HashMap::new(),
            devices: HashMap::new(),
            chains: Vec::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            codes: HashMap::new(),
            pending_authorize: HashMap::new(),
            faults: HashMap::new(),
            calls: HashMap::new(),
            requests: Vec::new(),
            issued_secrets: Vec::new(),
            issued_key_ids: Vec::new(),
            role_credentials: HashMap::new(),
            signin_tokens: HashMap::new(),
            reuse_count: 0,
            next_seq: 0,
        }
    }

    /// A new findable secret `<prefix><random>`, remembered for leak checks.
    pub fn issue_secret(&mut self, prefix: &str) -> String {
        let value = format!("{prefix}{}", random_alnum(32));
        self.issued_secrets.push(value.clone());
        value
    }

    pub fn record(&mut self, rec: Recorded) {
        *self.calls.entry(rec.op).or_default() += 1;
        self.requests.push(rec);
    }

    pub fn pop_fault(&mut self, op: Op) -> Option<Fault> {
        self.faults.get_mut(&op).and_then(VecDeque::pop_front)
    }

    /// Checks `clientId` + `clientSecret` (unknown, wrong or expired → InvalidClientException).
    pub fn authenticate(&self, client_id: &str, secret: &str) -> Result<&Client, OidcError> {
        let invalid = || {
            OidcError::new(
                OidcErrorKind::InvalidClient,
                "Client credentials are invalid",
            )
        };
        let client = self.clients.get(client_id).ok_or_else(invalid)?;
        if client.secret != secret {
            return Err(invalid());
        }
        if self.clock.now() >= client.secret_expires {
            return Err(OidcError::new(
                OidcErrorKind::InvalidClient,
                "Client secret has expired",
            ));
        }
        Ok(client)
    }

    /// Starts a device authorization; returns (device code, user code).
    pub fn new_device(&mut self, client_id: &str) -> (String, String) {
        let device_code = self.issue_secret("fake-dc-");
        let user_code = loop {
            let code = user_code();
            if !self.devices.values().any(|d| d.user_code == code) {
                break code;
            }
        };
        self.next_seq += 1;
        let status = if self.cfg.auto_approve {
            DeviceStatus::Approved
        } else {
            DeviceStatus::Pending
        };
        let device = Device {
            user_code: user_code.clone(),
            client_id: client_id.to_owned(),
            status,
            expires: self.clock.now() + self.cfg.device_code_ttl,
            interval: self.cfg.device_interval_secs,
            last_poll: None,
            seq: self.next_seq,
        };
        self.devices.insert(device_code.clone(), device);
        (device_code, user_code)
    }

    fn device_by_user_code(&mut self, user_code: &str) -> Option<&mut Device> {
        let wanted = normalize_user_code(user_code);
        let now = self.clock.now();
        self.devices
            .values_mut()
            .find(|d| d.user_code == wanted && now < d.expires)
    }

    pub fn approve(&mut self, user_code: &str) -> bool {
        match self.device_by_user_code(user_code) {
            Some(d) if matches!(d.status, DeviceStatus::Pending | DeviceStatus::Approved) => {
                d.status = DeviceStatus::Approved;
                true
            }
            _ => false,
        }
    }

    pub fn deny(&mut self, user_code: &str) -> bool {
        match self.device_by_user_code(user_code) {
            Some(d) if d.status != DeviceStatus::Consumed => {
                d.status = DeviceStatus::Denied;
                true
            }
            _ => false,
        }
    }

    /// Pending, unexpired user codes, oldest first.
    pub fn pending_user_codes(&self) -> Vec<String> {
        let now = self.clock.now();
        let mut pending: Vec<&Device> = self
            .devices
            .values()
            .filter(|d| d.status == DeviceStatus::Pending && now < d.expires)
            .collect();
        pending.sort_by_key(|d| d.seq);
        pending.into_iter().map(|d| d.user_code.clone()).collect()
    }

    /// An injected slow_down also binds the fake: it counts as that device code's poll, and
    /// the code's interval grows by 5 s, so a client that ignores it is slowed down again.
    pub fn note_slow_down(&mut self, device_code: &str) {
        let now = self.clock.now();
        if let Some(d) = self.devices.get_mut(device_code) {
            d.interval += SLOW_DOWN_STEP;
            d.last_poll = Some(now);
        }
    }

    /// Issues an access token (and, if the registration allows, a refresh token) for a new
    /// login chain.
    pub fn issue_for_new_chain(&mut self, client_id: &str, scopes: Vec<String>) -> Issued {
        self.chains.push(Chain {
            client_id: client_id.to_owned(),
            scopes,
            logged_out: false,
        });
        let chain = self.chains.len() - 1;
        let access_token = self.new_access_token(chain);
        let refresh_token = self
            .may_refresh(chain)
            .then(|| self.new_refresh_token(chain));
        Issued {
            access_token,
            refresh_token,
        }
    }

    fn may_refresh(&self, chain: usize) -> bool {
        // The chain's scopes are the registration's (device flow) or the subset granted at
        // /authorize, so this is "the registration allows refresh" for both flows.
        let has_scope = self
            .chains
            .get(chain)
            .is_some_and(|c| c.scopes.iter().any(|s| s == REFRESH_SCOPE));
        self.cfg.issue_refresh_tokens && has_scope
    }

    fn new_access_token(&mut self, chain: usize) -> String {
        let token = self.issue_secret("fake-at-");
        let expires = self.clock.now() + self.cfg.access_token_ttl;
        self.access_tokens
            .insert(token.clone(), AccessToken { chain, expires });
        token
    }

    fn new_refresh_token(&mut self, chain: usize) -> String {
        let token = self.issue_secret("fake-rt-");
        self.refresh_tokens.insert(
            token.clone(),
            RefreshToken {
                chain,
                state: RtState::Current,
            },
        );
        token
    }

    /// The refresh_token grant. With rotation a new refresh token replaces the presented one;
    /// without it the answer carries no refresh token and the presented one stays valid.
    pub fn refresh(&mut self, client_id: &str, presented: &str) -> Result<Issued, OidcError> {
        let invalid = |d: &str| OidcError::new(OidcErrorKind::InvalidGrant, d);
        let Some(rt) = self.refresh_tokens.get(presented) else {
            return Err(invalid("Invalid refresh token provided"));
        };
        let (chain, state) = (rt.chain, rt.state);
        match state {
            RtState::RotatedOut => {
                self.reuse_count += 1;
                return Err(invalid("Refresh token has already been used"));
            }
            RtState::Revoked => return Err(invalid("Refresh token has been revoked")),
            RtState::Current => {}
        }
        let Some(c) = self.chains.get(chain) else {
            return Err(invalid("Invalid refresh token"));
        };
        if c.client_id != client_id {
            return Err(invalid("Refresh token was issued to another client"));
        }
        if c.logged_out {
            return Err(invalid("Refresh token has been revoked"));
        }
        let access_token = self.new_access_token(chain);
        let refresh_token = if self.cfg.rotate_refresh_tokens && self.may_refresh(chain) {
            if let Some(old) = self.refresh_tokens.get_mut(presented) {
                old.state = RtState::RotatedOut;
            }
            Some(self.new_refresh_token(chain))
        } else {
            None
        };
        Ok(Issued {
            access_token,
            refresh_token,
        })
    }

    pub fn revoke_all_refresh_tokens(&mut self) {
        for rt in self.refresh_tokens.values_mut() {
            if rt.state == RtState::Current {
                rt.state = RtState::Revoked;
            }
        }
    }

    /// The chain of a live (known, unexpired, not logged out) access token.
    pub fn live_access_token(&self, token: &str) -> Option<usize> {
        let at = self.access_tokens.get(token)?;
        let chain = self.chains.get(at.chain)?;
        (self.clock.now() < at.expires && !chain.logged_out).then_some(at.chain)
    }

    /// Portal Logout: ends the chain (its access tokens and refresh tokens).
    pub fn logout(&mut self, chain: usize) {
        if let Some(c) = self.chains.get_mut(chain) {
            c.logged_out = true;
        }
        for rt in self.refresh_tokens.values_mut() {
            if rt.chain == chain && rt.state == RtState::Current {
                rt.state = RtState::Revoked;
            }
        }
    }
}

/// Tokens handed out by one successful CreateToken.
pub(crate) struct Issued {
    pub access_token: String,
    pub refresh_token: Option<String>,
}

/// `ABCD-EFGH` from consonants only (RFC 8628 §6.1: no vowels, no look-alikes).
fn user_code() -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let pick = || {
        let i = rand::random_range(0..ALPHABET.len());
        char::from(ALPHABET[i])
    };
    let a: String = (0..4).map(|_| pick()).collect();
    let b: String = (0..4).map(|_| pick()).collect();
    format!("{a}-{b}")
}

/// Users may type the code in lower case or without the dash.
fn normalize_user_code(input: &str) -> String {
    let letters: String = input
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if letters.len() == 8 {
        format!("{}-{}", &letters[..4], &letters[4..])
    } else {
        letters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_have_the_aws_shape() {
        let c = user_code();
        assert_eq!(c.len(), 9);
        assert_eq!(&c[4..5], "-");
        assert!(
            c.chars()
                .filter(|c| *c != '-')
                .all(|c| c.is_ascii_uppercase())
        );
    }

    #[test]
    fn typed_user_codes_are_normalized() {
        assert_eq!(normalize_user_code("bcdf-ghjk"), "BCDF-GHJK");
        assert_eq!(normalize_user_code("BCDFGHJK"), "BCDF-GHJK");
        assert_eq!(normalize_user_code(" bcdf ghjk "), "BCDF-GHJK");
    }
}
