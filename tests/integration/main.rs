//! Integration tests: the real `sso-agent` binary on a real Unix socket, the real OS keyring
//! (Secret Service under `scripts/with-keyring`), and the in-repo fake AWS as upstream.
//! One test binary (linking once matters on two cores); a module per topic.

// Test support may unwrap (a failure is the test's answer) and reads the real environment
// (whether the run provides a Secret Service).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]
// Unix sockets throughout; on Windows the named-pipe daemon is tested under Wine by
// scripts/test-windows instead, so this binary is empty there (and still builds).
#![cfg(unix)]

mod accounts;
mod api;
mod chaos;
mod completions;
mod console;
mod exec;
mod hostile;
mod interop;
mod keyring;
mod legacy;
mod lifecycle;
mod other_users;
mod pkce;
mod refresh;
mod reload;
mod sdk_matrix;
mod secrets;
mod service;
mod upstream;
mod util;
