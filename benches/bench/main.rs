//! Benchmarks (issue 9): every figure next to a baseline measured in the same run, as a ratio.
//! A module per benchmark, each returning typed rows (`report.rs`), which alone formats them:
//!
//! 1. `socket`: `GET /v1/sessions/corp/token` over 1 and 64 keep-alive connections, daemon
//!    against a minimal hyper server in its own process.
//! 2. `process`: `sso-agent token corp` against `examples/min_client` (std, one raw GET).
//! 3. `flight`: N concurrent callers that all need a refresh → CreateToken calls.
//! 4. Daemon VmRSS idle (10 sessions configured) and under the 64-connection load (here).
//!
//! `setup` builds the world (fake AWS, config, the daemon's environment from the integration
//! tests' `daemon_env` recipe). Prints the report and writes it to `target/bench-report.md`.
//! Reports only: nothing asserts a duration. Run with `scripts/bench`.
//! The suite measures the daemon on its Unix socket against a raw Unix-socket baseline, so it
//! runs on Unix only; elsewhere the binary says so (it builds everywhere, so `cargo check
//! --all-targets` covers every target). The run itself is `suite.rs`.
// A benchmark measures wall-clock time and reads its env; a failed setup is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

#[cfg(unix)]
#[path = "../../tests/integration/util/daemon_env.rs"]
mod daemon_env;
#[cfg(unix)]
mod flight;
#[cfg(unix)]
mod process;
#[cfg(unix)]
mod report;
#[cfg(unix)]
mod setup;
#[cfg(unix)]
mod socket;
#[cfg(unix)]
mod suite;

#[cfg(unix)]
use suite::{ACCESS_TOKEN_TTL, BIN, TOKEN_PATH, percentile};

fn main() {
    #[cfg(unix)]
    suite::main();
    #[cfg(not(unix))]
    eprintln!("the benchmarks measure the Unix socket daemon; run them on Linux or macOS");
}
