//! Typed problems of a session: what `lastError` shows (`Problem`, one `Display`) and what
//! an upstream failure handed to a caller carries (`UpstreamError`, with its cause).
//! Code branches on these variants, never on their text; tests assert variants.
//! Must not: hold a secret (upstream errors carry only names and descriptions), or decide
//! anything (the chain and the task pick the variant).

use time::OffsetDateTime;

use crate::api::LoginState;
use crate::oidc::OidcError;
use crate::portal::PortalError;

use super::registry::RegistrationError;

/// Why a session is not as well as it could be; shown as `lastError` in `status`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Problem {
    /// The last write to the store failed: the tokens live in memory only.
    #[error("could not save tokens to the store: {0}")]
    StoreWrite(String),
    #[error("could not read the store: {0}")]
    StoreRead(String),
    #[error("stored tokens were unreadable: {0}")]
    StoredUnreadable(String),
    /// A transient refresh failure; the chain goes on after a back-off.
    #[error("refresh failed ({0}); retrying")]
    RefreshFailed(OidcError),
    /// Upstream ended the refresh chain; only a login goes on.
    #[error("refresh rejected ({cause}); run `sso-agent login {session}`")]
    ChainEnded { session: String, cause: OidcError },
    #[error("registering a fresh client failed ({0}); retrying")]
    Registration(RegistrationError),
    /// A login that ended without tokens.
    #[error("login {}: {message}", login_state_word(*state))]
    Login { state: LoginState, message: String },
}

/// An upstream failure handed to a caller, with its cause.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// The token expired and the refresh that should have replaced it failed.
    #[error("the token expired and refreshing it failed: {0}")]
    TokenExpired(Problem),
    #[error("GetRoleCredentials failed: {0}")]
    RoleCredentials(PortalError),
    #[error("listing the accounts of session {session} failed: {cause}")]
    ListAccounts { session: String, cause: PortalError },
    /// The portal handed out credentials that the local clock says have expired.
    #[error(
        "the portal's role credentials for role {role} in account {account} expire at {expiration}, which the local clock ({now}) says is past: the local clock is probably wrong; fix it (e.g. enable NTP) and ask again"
    )]
    ClockSkew {
        account: String,
        role: String,
        expiration: OffsetDateTime,
        now: OffsetDateTime,
    },
    /// The login a caller was waiting to start ended first.
    #[error("{message}")]
    LoginEnded { state: LoginState, message: String },
}

pub(super) fn login_state_word(s: LoginState) -> &'static str {
    match s {
        LoginState::Pending => "pending",
        LoginState::Succeeded => "succeeded",
        LoginState::Denied => "denied",
        LoginState::Expired => "expired",
        LoginState::Failed => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_read_as_one_line_that_says_what_to_do() {
        let ended = Problem::ChainEnded {
            session: "corp".into(),
            cause: OidcError::InvalidGrant {
                message: "revoked".into(),
            },
        };
        assert_eq!(
            ended.to_string(),
            "refresh rejected (InvalidGrantException: revoked); run `sso-agent login corp`"
        );
        let login = Problem::Login {
            state: LoginState::Denied,
            message: "the login was denied".into(),
        };
        assert_eq!(login.to_string(), "login denied: the login was denied");
        assert!(!ended.to_string().contains('\n'));
    }
}
