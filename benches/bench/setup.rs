//! The benchmark's world: the fake AWS, an AWS config with 10 sessions and two profiles, the
//! daemon's environment (the integration tests' `daemon_env` recipe: memory store, default
//! log level), child processes whose stderr is drained, the one login, and `/proc` readings.
//! Must not: measure or format anything.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fake_aws::{FakeAws, FakeConfig};

use crate::daemon_env::DaemonEnv;
use crate::report::Machine;
use crate::{ACCESS_TOKEN_TTL, BIN};

pub struct BenchEnv {
    pub dir: tempfile::TempDir,
    pub fake: FakeAws,
    daemon: DaemonEnv,
}

impl BenchEnv {
    pub fn socket(&self) -> PathBuf {
        self.daemon.socket()
    }

    /// `program args` in the daemon's environment, nothing else inherited, no stdin.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .envs(self.daemon.vars())
            .stdin(Stdio::null());
        cmd
    }
}

/// The fake (token TTL `ACCESS_TOKEN_TTL`) and an AWS config with 10 sessions: `corp`
/// (logged in later) and `s1`..`s9` (configured, never used), plus profiles `dev` (a role
/// on corp) and `proc` (`credential_process` = sso-agent for `dev`).
pub fn setup(rt: &tokio::runtime::Runtime) -> BenchEnv {
    let fake = rt
        .block_on(FakeAws::start(FakeConfig {
            device_interval_secs: 1,
            access_token_ttl: ACCESS_TOKEN_TTL,
            ..FakeConfig::default()
        }))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let daemon = DaemonEnv {
        root: dir.path().to_path_buf(),
        upstream: fake.url(),
        store: "memory",
        log: None,
    };
    std::fs::create_dir_all(daemon.home().join(".aws")).unwrap();
    let mut config = String::new();
    for name in std::iter::once("corp".to_string()).chain((1..10).map(|i| format!("s{i}"))) {
        writeln!(
            config,
            "[sso-session {name}]\nsso_start_url = https://d-{name}-bench.awsapps.com/start\nsso_region = us-east-1\nsso_registration_scopes = sso:account:access\n"
        )
        .unwrap();
    }
    writeln!(
        config,
        "[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\nregion = us-east-1\n\n[profile proc]\ncredential_process = {BIN} credentials --profile dev\nregion = us-east-1"
    )
    .unwrap();
    std::fs::write(daemon.aws_config(), config).unwrap();
    BenchEnv { dir, fake, daemon }
}

/// A child process whose stderr is drained by a thread (a full pipe would stall it).
pub struct Proc {
    child: Child,
}

impl Proc {
    /// Spawns `cmd` and waits (30 s at most) for a stderr line containing `ready_line`.
    pub fn spawn(mut cmd: Command, ready_line: &'static str) -> Proc {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains(ready_line) {
                    let _ = tx.send(());
                }
            }
        });
        ready
            .recv_timeout(Duration::from_secs(30))
            .expect("the process did not become ready");
        Proc { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Logs `corp` in with the device flow, approving the code at the fake.
pub fn login(rt: &tokio::runtime::Runtime, env: &BenchEnv) {
    let child = env
        .command(BIN, &["login", "corp", "--device-code", "--no-browser"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let code = rt
        .block_on(env.fake.wait_for_pending_user_code(Duration::from_secs(30)))
        .expect("a user code");
    assert!(env.fake.approve(&code));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "login failed");
}

/// VmRSS (or another `/proc/PID/status` field) in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The `accessToken` of a token answer.
pub fn access_token(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("data")?
        .get("accessToken")?
        .as_str()
        .map(str::to_string)
}

/// What the numbers were measured on.
pub fn machine() -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_string();
    let mem_kib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    Machine {
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu,
        mem_kib,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
    }
}
