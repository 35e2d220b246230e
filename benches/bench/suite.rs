//! The benchmark run: builds the world, runs each benchmark, writes the report.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::report::{Memory, Report};
use crate::setup::{self, Proc, access_token, proc_status_kib};
use crate::{flight, process, socket};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_sso-agent");
pub(crate) const TARGET_TMP: &str = env!("CARGO_TARGET_TMPDIR");
pub(crate) const TOKEN_PATH: &str = "/v1/sessions/corp/token";
pub(crate) const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// How long the daemon settles before an idle memory reading.
pub(crate) const SETTLE: Duration = Duration::from_secs(1);

pub(crate) fn main() {
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
pub(crate) fn percentile(v: &mut [Duration], p: f64) -> Duration {
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
