//! The `data` of each route. Field names are camelCase on the wire, as SPEC.md lists them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::serde_rfc3339;
use crate::secret::Secret;

/// `GET /v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusData {
    pub version: String,
    pub pid: u32,
    #[serde(with = "serde_rfc3339")]
    pub started_at: OffsetDateTime,
    pub socket: String,
    pub store: StoreStatus,
    pub config_file: String,
    /// Every current configuration problem in one line (file and line), `null` when both
    /// files load; kept for clients that read only this (the detail is `config_problems`).
    #[serde(default)]
    pub config_error: Option<String>,
    /// The current problem of each config file (AWS config, agent TOML), if any; a file's
    /// entry goes away when it loads.
    #[serde(default)]
    pub config_problems: Vec<ConfigProblem>,
    pub sessions: Vec<SessionStatus>,
    /// Profiles in the AWS config that will not work as written (e.g. `sso_*` keys beside a
    /// `credential_process` calling sso-agent, which every SDK then ignores).
    #[serde(default)]
    pub profile_warnings: Vec<ProfileWarning>,
    /// Each session with an sso-agent profiles block in the config file, compared with the
    /// account list the daemon last fetched (after each login, or by `accounts`/`profiles`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<ProfilesFreshness>,
}

/// One profile problem `status` reports; `message` says what to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileWarning {
    pub profile: String,
    /// `path:line` of the profile's section.
    pub location: String,
    pub message: String,
}

/// Whether a session's profiles block still matches its accounts and roles. The daemon never
/// writes the block itself; `sso-agent profiles SESSION --write` does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfilesFreshness {
    pub session: String,
    pub up_to_date: bool,
    /// `ACCOUNT/ROLE` assignments that no profile of the session in the config names.
    pub missing: Vec<String>,
    /// `ACCOUNT/ROLE` entries of the block that are no longer assigned.
    pub gone: Vec<String>,
    /// When the compared account list was fetched.
    #[serde(with = "serde_rfc3339")]
    pub checked_at: OffsetDateTime,
}

/// One config file's current problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigProblem {
    pub file: String,
    /// One line per problem, each naming file and line.
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStatus {
    /// `keyring` or `memory`.
    pub backend: String,
    pub available: bool,
    #[serde(default)]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Valid,
    Refreshing,
    Expiring,
    LoginRequired,
    LoginPending,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Valid => "valid",
            SessionState::Refreshing => "refreshing",
            SessionState::Expiring => "expiring",
            SessionState::LoginRequired => "login_required",
            SessionState::LoginPending => "login_pending",
        }
    }
}

/// One session in `status`. Never a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionStatus {
    pub name: String,
    pub start_url: String,
    pub region: String,
    /// Derived from legacy profiles (SPEC "Legacy profiles"), not an `[sso-session]`.
    #[serde(default)]
    pub legacy: bool,
    pub state: SessionState,
    #[serde(default, with = "serde_rfc3339::option")]
    pub access_token_expires_at: Option<OffsetDateTime>,
    pub refreshable: bool,
    /// When the client registration bound to the current refresh chain lapses.
    #[serde(default, with = "serde_rfc3339::option")]
    pub registration_expires_at: Option<OffsetDateTime>,
    #[serde(default, with = "serde_rfc3339::option")]
    pub last_refresh_at: Option<OffsetDateTime>,
    #[serde(default, with = "serde_rfc3339::option")]
    pub next_refresh_at: Option<OffsetDateTime>,
    /// When a new login will be needed because the refresh chain cannot go on
    /// (its client registration lapses, or the chain already ended).
    #[serde(default, with = "serde_rfc3339::option")]
    pub login_needed_by: Option<OffsetDateTime>,
    #[serde(default)]
    pub last_error: Option<String>,
}

/// `GET /v1/sessions/{name}/token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenData {
    pub session: String,
    #[serde(serialize_with = "crate::secret::serialize_exposed")]
    pub access_token: Secret,
    #[serde(with = "serde_rfc3339")]
    pub expires_at: OffsetDateTime,
    pub region: String,
    pub start_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginFlow {
    DeviceCode,
    AuthorizationCode,
}

impl LoginFlow {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginFlow::DeviceCode => "device_code",
            LoginFlow::AuthorizationCode => "authorization_code",
        }
    }
}

/// Body of `POST /v1/sessions/{name}/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    #[serde(default = "default_flow")]
    pub flow: LoginFlow,
}

fn default_flow() -> LoginFlow {
    LoginFlow::DeviceCode
}

/// Answer of `POST /v1/sessions/{name}/login`: what the user must open or type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginStarted {
    pub login_id: String,
    pub flow: LoginFlow,
    #[serde(default)]
    pub verification_uri: Option<String>,
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    #[serde(default)]
    pub user_code: Option<String>,
    #[serde(default)]
    pub authorize_url: Option<String>,
    #[serde(with = "serde_rfc3339")]
    pub expires_at: OffsetDateTime,
    /// True when this request joined a login that was already pending.
    #[serde(default)]
    pub joined: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginState {
    Pending,
    Succeeded,
    Denied,
    Expired,
    Failed,
}

/// Answer of `GET /v1/sessions/{name}/login?wait=S`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginStatus {
    #[serde(default)]
    pub login_id: Option<String>,
    pub state: LoginState,
    pub message: String,
    #[serde(default, with = "serde_rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// Answer of `POST /v1/sessions/{name}/logout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogoutData {
    pub session: String,
    /// Whether there were tokens to forget.
    pub forgotten: bool,
    /// How ending the session upstream (portal Logout) went, when it was tried.
    #[serde(default)]
    pub upstream_logout: Option<String>,
}

/// `GET /v1/profiles/{name}/credentials`: role credentials for an SSO profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsData {
    pub profile: String,
    pub session: String,
    pub account_id: String,
    pub role_name: String,
    pub access_key_id: String,
    #[serde(serialize_with = "crate::secret::serialize_exposed")]
    pub secret_access_key: Secret,
    #[serde(serialize_with = "crate::secret::serialize_exposed")]
    pub session_token: Secret,
    #[serde(with = "serde_rfc3339")]
    pub expiration: OffsetDateTime,
}

/// `POST /v1/exec` body: the profile whose role credentials the exec's child gets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecRequest {
    pub profile: String,
}

/// `POST /v1/exec`: the first line of the held answer (docs/CONTRACT-NOTES.md). The token
/// lives until this connection closes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecGrant {
    pub profile: String,
    pub session: String,
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` for the child.
    pub uri: String,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN` for the child.
    #[serde(serialize_with = "crate::secret::serialize_exposed")]
    pub token: Secret,
    /// The profile's `region`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// `GET /v1/sessions/{name}/accounts`: every account the session can use, with its roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountsData {
    pub session: String,
    /// When the portal was asked (the daemon caches the list briefly; `?refresh=true` asks again).
    #[serde(with = "serde_rfc3339")]
    pub fetched_at: OffsetDateTime,
    pub accounts: Vec<AccountEntry>,
}

/// One account (as ListAccounts names it) and its role names (ListAccountRoles).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountEntry {
    pub account_id: String,
    #[serde(default)]
    pub account_name: Option<String>,
    #[serde(default)]
    pub email_address: Option<String>,
    pub roles: Vec<String>,
}
