//! oidc (in progress)
