//! sso-agent: one long-running owner of AWS IAM Identity Center logins for a user.
//!
//! Dependency direction (see STYLE.md): `cli -> api <- daemon -> session -> oidc, portal, store`;
//! `cli -> service, config`. Nothing imports `cli`. `oidc` and `portal` share the
//! `upstream` leaf (HTTP plumbing); `BoxFuture` is `futures_core`'s.

pub mod api;
pub mod bounded_server;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod endpoint;
pub mod entropy;
pub mod env;
pub mod error_text;
pub mod oidc;
pub mod outside_text;
pub mod paths;
pub mod platform;
pub mod portal;
pub mod safe_fs;
pub mod secret;
pub mod service;
pub mod session;
pub mod signin;
pub mod store;
pub mod upstream;
