//! The AWS SSO OIDC service (`sso-oidc`, restJson1): one async method per operation, request
//! and response shapes exactly as the model (camelCase, unset members omitted, explicit
//! `null` tolerated), and a typed error per modeled exception (WIRE.md §1–§2).
//! Must not: decide when to refresh or poll (session/), or log a secret.

mod client;
mod error;
mod model;
pub mod pkce;

pub use client::{HttpOidc, Oidc, http_client};

/// Shared HTTP helpers (path joining, capped body reads) for the portal client.
pub mod http_client_helpers {
    pub use super::client::{join, read_capped, refused_redirect};
}
pub use error::{OidcError, error_name};
pub use model::*;
