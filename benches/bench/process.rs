//! Benchmark 2, the whole process: `sso-agent token corp` against `examples/min_client` (std,
//! one raw GET), alternating so drift hits both; `sso-agent --version` (start-up only); and
//! the AWS CLI through `credential_process` when it has `configure export-credentials`.
//! Must not: format the report (report.rs).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::report::{AwsCli, Process, Timing};
use crate::setup::BenchEnv;
use crate::{BIN, percentile};

pub const RUNS: usize = 100;
const AWS_CLI_RUNS: usize = 10;

/// Wall time of running `cmd` to completion, checking its stdout.
fn time_process(mut cmd: Command, expect_stdout: &str) -> Duration {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let t0 = Instant::now();
    let out = cmd.output().unwrap();
    let took = t0.elapsed();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == expect_stdout,
        "unexpected output: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn timing(mut runs: Vec<Duration>) -> Timing {
    Timing {
        median: percentile(&mut runs, 0.5),
        p90: percentile(&mut runs, 0.9),
        runs: runs.len(),
    }
}

fn min_client_path() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SSO_AGENT_BENCH_MIN_CLIENT") {
        return Some(PathBuf::from(p));
    }
    let built = Path::new(BIN).parent()?.join("examples/min_client");
    if built.exists() {
        return Some(built);
    }
    eprintln!("building examples/min_client (release)…");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let ok = Command::new(cargo)
        .args(["build", "--release", "--example", "min_client"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .is_ok_and(|s| s.success());
    (ok && built.exists()).then_some(built)
}

/// Times the three commands `RUNS` times each (`token` and the minimal client must print
/// `token`), then the AWS CLI.
pub fn bench(env: &BenchEnv, token: &str) -> Process {
    let min_client = min_client_path();
    let mut token_runs = Vec::new();
    let mut min_runs = Vec::new();
    let mut version_runs = Vec::new();
    for _ in 0..RUNS {
        token_runs.push(time_process(env.command(BIN, &["token", "corp"]), token));
        if let Some(mc) = &min_client {
            min_runs.push(time_process(
                env.command(mc.to_str().unwrap(), &["corp"]),
                token,
            ));
        }
        let mut v = env.command(BIN, &["--version"]);
        v.stdout(Stdio::null());
        let t0 = Instant::now();
        v.status().unwrap();
        version_runs.push(t0.elapsed());
    }
    Process {
        token: timing(token_runs),
        min_client: min_client.map(|_| timing(min_runs)),
        version: timing(version_runs),
        aws_cli: aws_cli(env),
    }
}

fn aws_cli(env: &BenchEnv) -> AwsCli {
    let args = ["configure", "export-credentials", "--profile", "proc"];
    let probe = env
        .command("aws", &args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match probe {
        Err(_) => AwsCli::NotInstalled,
        Ok(out) if !out.status.success() => {
            let version = Command::new("aws")
                .arg("--version")
                .output()
                .map(|o| {
                    let s = String::from_utf8_lossy(&o.stdout).into_owned()
                        + &String::from_utf8_lossy(&o.stderr);
                    s.split_whitespace().next().unwrap_or("?").to_string()
                })
                .unwrap_or_default();
            AwsCli::NoExportCredentials { version }
        }
        Ok(_) => {
            let mut runs = Vec::new();
            for _ in 0..AWS_CLI_RUNS {
                let mut cmd = env.command("aws", &args);
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
                let t0 = Instant::now();
                cmd.status().unwrap();
                runs.push(t0.elapsed());
            }
            AwsCli::Timed(percentile(&mut runs, 0.5))
        }
    }
}
