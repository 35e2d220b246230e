//! Test support: `TestEnv` (temp home, AWS config, socket, own fake AWS, a daemon process
//! whose stderr is captured) and `run` for client subcommands. The layout and variables are
//! `daemon_env`'s, the recipe the benchmarks share.

mod daemon_env;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use daemon_env::DaemonEnv;
use fake_aws::{FakeAws, FakeConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

pub const BIN: &str = env!("CARGO_BIN_EXE_sso-agent");
pub const WAIT: Duration = Duration::from_secs(30);

/// Whether the test run provides a Secret Service (scripts/test always does).
pub fn keyring_available() -> bool {
    let required = std::env::var("SSO_AGENT_TEST_REQUIRE_KEYRING").is_ok_and(|v| v == "1");
    let present = std::env::var("DBUS_SESSION_BUS_ADDRESS").is_ok_and(|v| !v.is_empty());
    assert!(
        present || !required,
        "SSO_AGENT_TEST_REQUIRE_KEYRING=1 but there is no session bus"
    );
    present
}

/// Output of one client command.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Captured daemon stderr, with a notification on every new line.
#[derive(Default)]
pub struct Log {
    lines: Mutex<Vec<String>>,
    notify: Notify,
}

impl Log {
    pub fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits for a line containing `needle` (an event, not a sleep).
    pub async fn wait_for(&self, needle: &str) -> bool {
        self.wait_for_n(needle, 1).await
    }

    /// Waits until `n` lines contain `needle`.
    pub async fn wait_for_n(&self, needle: &str, n: usize) -> bool {
        let fut = async {
            loop {
                let notified = self.notify.notified();
                if self
                    .lines
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|l| l.contains(needle))
                    .count()
                    >= n
                {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(WAIT, fut).await.is_ok()
    }
}

pub struct Daemon {
    pub child: Child,
    pub log: Arc<Log>,
}

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub fake: FakeAws,
    pub start_url: String,
    pub store: &'static str,
    /// Every client command's stdout/stderr (for the secret-leak checks).
    pub transcript: Mutex<Vec<(Vec<String>, Output)>>,
    extra_env: Mutex<Vec<(String, String)>>,
}

impl TestEnv {
    pub async fn new() -> TestEnv {
        Self::with_fake(FakeConfig {
            device_interval_secs: 1,
            ..FakeConfig::default()
        })
        .await
    }

    pub async fn with_fake(cfg: FakeConfig) -> TestEnv {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = FakeAws::start(cfg).await.expect("fake aws");
        let unique: u64 = rand_suffix();
        let start_url = format!("https://d-{unique:010}.awsapps.com/start");
        let env = TestEnv {
            dir,
            fake,
            start_url,
            store: if keyring_available() {
                "keyring"
            } else {
                "memory"
            },
            transcript: Mutex::new(Vec::new()),
            extra_env: Mutex::new(Vec::new()),
        };
        std::fs::create_dir_all(env.home().join(".aws")).unwrap();
        env.write_config(&format!(
            "[sso-session corp]\nsso_start_url = {}\nsso_region = us-east-1\nsso_registration_scopes = sso:account:access\n",
            env.start_url
        ));
        env
    }

    /// The daemon's layout and variables (shared with the benchmarks).
    pub fn daemon_env(&self) -> DaemonEnv {
        DaemonEnv {
            root: self.dir.path().to_path_buf(),
            upstream: self.fake.url(),
            store: self.store,
            log: Some("trace"),
        }
    }

    pub fn home(&self) -> PathBuf {
        self.daemon_env().home()
    }

    pub fn config_path(&self) -> PathBuf {
        self.daemon_env().aws_config()
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).unwrap();
    }

    pub fn socket(&self) -> PathBuf {
        self.daemon_env().socket()
    }

    pub fn set_env(&self, k: &str, v: &str) {
        self.extra_env.lock().unwrap().push((k.into(), v.into()));
    }

    fn apply_env(&self, cmd: &mut Command) {
        cmd.env_clear().envs(self.daemon_env().vars());
        for (k, v) in self.extra_env.lock().unwrap().iter() {
            cmd.env(k, v);
        }
    }

    /// Starts `sso-agent run` and waits until it serves.
    pub async fn start_daemon(&self) -> Daemon {
        let d = self.spawn_daemon();
        assert!(
            d.log.wait_for("serving").await,
            "daemon did not start:\n{}",
            d.log.text()
        );
        d
    }

    /// Starts `sso-agent run` without waiting.
    pub fn spawn_daemon(&self) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.arg("run");
        self.apply_env(&mut cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn daemon");
        let log = Arc::new(Log::default());
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lines.lock().unwrap().push(line);
                sink.notify.notify_waiters();
            }
            sink.lines.lock().unwrap().push("<eof>".into());
            sink.notify.notify_waiters();
        });
        Daemon { child, log }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        self.apply_env(&mut cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs a client subcommand to completion.
    pub async fn run(&self, args: &[&str]) -> Output {
        let out = tokio::time::timeout(WAIT, self.command(args).output())
            .await
            .expect("command timed out")
            .expect("command runs");
        let out = Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.transcript.lock().unwrap().push((
            args.iter().map(|s| s.to_string()).collect(),
            Output {
                code: out.code,
                stdout: out.stdout.clone(),
                stderr: out.stderr.clone(),
            },
        ));
        out
    }

    /// Runs `login corp --device-code --no-browser`, approves the code at the fake, and
    /// returns the command's output.
    pub async fn login(&self) -> Output {
        let child = self
            .command(&["login", "corp", "--device-code", "--no-browser"])
            .spawn()
            .unwrap();
        let Some(code) = self.fake.wait_for_pending_user_code(WAIT).await else {
            // Say why: the login command's own answer is the clue.
            let mut child = child;
            let _ = child.start_kill();
            let out = child.wait_with_output().await.unwrap();
            panic!(
                "no user code reached the fake; login said: {} {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        assert!(self.fake.approve(&code));
        let out = tokio::time::timeout(WAIT, child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let out = Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.transcript.lock().unwrap().push((
            vec!["login".into()],
            Output {
                code: out.code,
                stdout: out.stdout.clone(),
                stderr: out.stderr.clone(),
            },
        ));
        out
    }

    /// Sends a raw HTTP request over the socket and returns (status, JSON body).
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        raw_http(&self.socket(), method, path, body).await
    }
}

pub async fn raw_http(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    use http_body_util::{BodyExt, Full};
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .body(Full::new(bytes::Bytes::from(
            body.unwrap_or("").to_string(),
        )))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

pub fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::process::id() as u128);
    h.finish() % 10_000_000_000
}

/// Every file under `dir`, recursively, with its bytes.
pub fn all_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file()
                && let Ok(b) = std::fs::read(&p)
            {
                out.push((p, b));
            }
        }
    }
    out
}

/// Reads a child's output until a line contains `needle`: `Ok(true)` when one does,
/// `Ok(false)` when the output ends first, `Err` when `within` passes. Then keeps draining
/// it in the background so the child never blocks on a full pipe.
pub async fn wait_for_line<R>(
    output: R,
    needle: &str,
    within: Duration,
) -> Result<bool, tokio::time::error::Elapsed>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let mut lines = BufReader::new(output).lines();
    let found = tokio::time::timeout(within, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(needle) {
                return true;
            }
        }
        false
    })
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    found
}
