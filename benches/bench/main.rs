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
// A benchmark measures wall-clock time and reads its env; a failed setup is a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

#[path = "../../tests/integration/util/daemon_env.rs"]
mod daemon_env;
mod flight;
mod process;
mod report;
mod setup;
mod socket;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use report::{Memory, Report};
use setup::{Proc, access_token, proc_status_kib};

const BIN: &str = env!("CARGO_BIN_EXE_sso-agent");
const TARGET_TMP: &str = env!("CARGO_TARGET_TMPDIR");
const TOKEN_PATH: &str = "/v1/sessions/corp/token";
const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// How long the daemon settles before an idle memory reading.
const SETTLE: Duration = Duration::from_secs(1);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--baseline-server") {
        socket::baseline_server(Path::new(&args[2]), Path::new(&args[3]));
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let text = run(&rt).render();
    println!("{text}");
    let out = Path::new(TARGET_TMP)
        .parent()
        .unwrap_or(Path::new("target"))
        .join("bench-report.md");
    std::fs::write(&out, &text).unwrap();
    println!("written to {}", out.display());
}

/// The element at fraction `p` of `v` (sorted here), zero when empty.
fn percentile(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

fn run(rt: &tokio::runtime::Runtime) -> Report {
    let machine = setup::machine();
    let env = setup::setup(rt);
    let daemon = Proc::spawn(env.command(BIN, &["run"]), "serving");
    let pid = daemon.pid();

    // 4a. Memory idle, before and after a login.
    std::thread::sleep(SETTLE);
    let idle_fresh = proc_status_kib(pid, "VmRSS");
    setup::login(rt, &env);
    std::thread::sleep(SETTLE);
    let idle_logged_in = proc_status_kib(pid, "VmRSS");

    // The daemon's exact answer is the baseline's fixed body.
    let (status, body) = rt.block_on(socket::get_once(&env.socket(), TOKEN_PATH));
    assert_eq!(
        status,
        200,
        "token answer: {}",
        String::from_utf8_lossy(&body)
    );
    let token = access_token(&body).unwrap();
    let body_file = env.dir.path().join("body.json");
    std::fs::write(&body_file, &body).unwrap();
    let base_socket = env.dir.path().join("baseline.sock");
    let mut base_cmd = Command::new(std::env::current_exe().unwrap());
    base_cmd
        .arg("--baseline-server")
        .arg(&base_socket)
        .arg(&body_file);
    let baseline = Proc::spawn(base_cmd, "serving");

    // 1. Socket API, with RSS sampling during the daemon's 64-connection rounds.
    let (socket, load_peak) = socket::bench(rt, &env.socket(), &base_socket, pid);
    drop(baseline);
    let hwm = proc_status_kib(pid, "VmHWM");

    // 2. Whole process.
    let process = process::bench(&env, &token);

    // 3. Single-flight.
    let flights = flight::bench(rt, &env, token);

    // 4b. Memory.
    let memory = Memory {
        idle_fresh,
        idle_logged_in,
        load_peak,
        hwm,
        end: proc_status_kib(pid, "VmRSS"),
    };
    drop(daemon);
    Report {
        machine,
        socket,
        process,
        flight: flight::params(),
        flights,
        memory,
    }
}
