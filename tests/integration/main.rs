//! Integration tests: the real `sso-agent` binary on a real Unix socket, the real OS keyring
//! (Secret Service under `scripts/with-keyring`), and the in-repo fake AWS as upstream.
//! One test binary (linking once matters on two cores); a module per topic.

mod api;
mod lifecycle;
mod reload;
mod secrets;
mod service;
mod util;
