//! The AWS SSO OIDC service (`sso-oidc`, restJson1): one async method per operation, request
//! and response shapes exactly as the model (camelCase, unset members omitted, explicit
//! `null` tolerated), and a typed error per modeled exception (WIRE.md §1–§2).
//! Must not: decide when to refresh or poll (session/), or log a secret.

mod client;
mod error;
mod model;
pub mod pkce;

pub use client::{HttpOidc, Oidc};
pub use error::OidcError;
pub use model::*;
