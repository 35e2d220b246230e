//! Benchmarks of `exec` (issue 16), each next to a baseline from the same run:
//!
//! 1. The container-credentials endpoint: `GET` over loopback TCP at 1 and 64 keep-alive
//!    connections against the real daemon, and against a minimal hyper TCP server (this binary
//!    re-executed with `--baseline-server`, a separate process like the daemon) returning the
//!    daemon's exact answer bytes. Rounds alternate so drift hits both.
//! 2. 10 execs (10 roles) started at once, then 1,000 children (100 per exec) asking at once:
//!    GetRoleCredentials calls at the fake.
//! 3. `sso-agent exec --profile p0 -- true` against `true` alone, median of whole processes.
//!
//! Prints a table and writes it to `target/bench-exec-report.md`. Reports only: nothing
//! asserts a duration. Run with `cargo bench --bench exec` (scripts/bench runs it too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fake_aws::{FakeAws, FakeConfig, Op};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

const BIN: &str = env!("CARGO_BIN_EXE_sso-agent");
const TARGET_TMP: &str = env!("CARGO_TARGET_TMPDIR");
const ROLES: usize = 10;
const ROUNDS: u32 = 5;
const ROUND: Duration = Duration::from_secs(1);
const PROCESS_RUNS: usize = 50;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--baseline-server") {
        baseline_server(Path::new(&args[2]));
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let text = run(&rt);
    println!("{text}");
    let out = Path::new(TARGET_TMP)
        .parent()
        .unwrap_or(Path::new("target"))
        .join("bench-exec-report.md");
    std::fs::write(&out, &text).unwrap();
    println!("written to {}", out.display());
}

struct Env {
    dir: tempfile::TempDir,
    fake: FakeAws,
}

impl Env {
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args).env_clear();
        for k in ["PATH", "LANG"] {
            if let Ok(v) = std::env::var(k) {
                cmd.env(k, v);
            }
        }
        let run = self.dir.path().join("run");
        cmd.env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", &run)
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env("AWS_CONFIG_FILE", self.home().join(".aws/config"))
            .env("SSO_AGENT_SOCKET", run.join("sso-agent/agent.sock"))
            .env("SSO_AGENT_STORE", "memory")
            .env("SSO_AGENT_LOG", "info")
            .env("AWS_ENDPOINT_URL_SSO_OIDC", self.fake.url())
            .env("AWS_ENDPOINT_URL_SSO", self.fake.url())
            .env("NO_PROXY", "127.0.0.1,localhost")
            .stdin(Stdio::null());
        cmd
    }
}

/// A process whose stderr is drained by a thread; ready once a line contains `ready`.
struct Proc(Child);

impl Proc {
    fn spawn(mut cmd: Command, ready: &'static str) -> (Proc, String) {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains(ready) {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("not ready");
        (Proc(child), line)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running exec whose child printed the endpoint URI and token, held by its stdin.
struct HeldExec {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
    token: String,
}

fn start_exec(env: &Env, profile: &str) -> HeldExec {
    let mut cmd = env.command(
        BIN,
        &[
            "exec",
            "--profile",
            profile,
            "--",
            "sh",
            "-c",
            "echo \"$AWS_CONTAINER_CREDENTIALS_FULL_URI $AWS_CONTAINER_AUTHORIZATION_TOKEN\"; read x || true",
        ],
    );
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let (uri, token) = line.trim().split_once(' ').expect("uri and token");
    let port = uri
        .strip_prefix("http://127.0.0.1:")
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("a loopback uri");
    HeldExec {
        child,
        _stdin: stdin,
        port,
        token: token.to_string(),
    }
}

fn setup(rt: &tokio::runtime::Runtime) -> Env {
    let roles: Vec<String> = (0..ROLES).map(|i| format!("Role{i}")).collect();
    let fake = rt
        .block_on(FakeAws::start(FakeConfig {
            device_interval_secs: 1,
            accounts: vec![("111122223333".to_string(), roles.clone())],
            ..FakeConfig::default()
        }))
        .unwrap();
    let env = Env {
        dir: tempfile::tempdir().unwrap(),
        fake,
    };
    std::fs::create_dir_all(env.home().join(".aws")).unwrap();
    let mut config = String::from(
        "[sso-session corp]\nsso_start_url = https://d-exec-bench.awsapps.com/start\nsso_region = us-east-1\nsso_registration_scopes = sso:account:access\n\n",
    );
    for (i, role) in roles.iter().enumerate() {
        writeln!(
            config,
            "[profile p{i}]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = {role}\nregion = us-east-1\n"
        )
        .unwrap();
    }
    std::fs::write(env.home().join(".aws/config"), config).unwrap();
    env
}

fn login(rt: &tokio::runtime::Runtime, env: &Env) {
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
    assert!(child.wait_with_output().unwrap().status.success());
}

fn baseline_server(body_file: &Path) {
    let body = Bytes::from(std::fs::read(body_file).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        eprintln!("serving {}", listener.local_addr().unwrap().port());
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    let body = body.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .header("cache-control", "no-store")
                                .body(Full::new(body))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

fn request(port: u16, token: &str) -> hyper::Request<Full<Bytes>> {
    hyper::Request::get("/v1/role-credentials")
        .header("host", format!("127.0.0.1:{port}"))
        .header("authorization", token)
        .header("accept", "application/json")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn connect(port: u16) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn get_once(port: u16, token: &str) -> (u16, Bytes) {
    let mut s = connect(port).await;
    let resp = s.send_request(request(port, token)).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

#[derive(Default)]
struct Load {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Load {
    fn merge(&mut self, o: Load) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.elapsed += o.elapsed;
        self.latencies.extend(o.latencies);
    }
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&mut self, p: f64) -> Duration {
        percentile(&mut self.latencies, p)
    }
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

async fn load(port: u16, token: &str, conns: usize, dur: Duration) -> Load {
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let token = token.to_string();
        tasks.push(tokio::spawn(async move {
            let mut out = Load::default();
            let mut s = connect(port).await;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let ok = match s.send_request(request(port, &token)).await {
                    Ok(r) => r.status() == 200 && r.into_body().collect().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    out.latencies.push(t0.elapsed());
                    out.requests += 1;
                } else {
                    out.errors += 1;
                    break;
                }
            }
            out
        }));
    }
    let mut total = Load::default();
    for t in tasks {
        total.merge(t.await.unwrap());
    }
    total.elapsed = start.elapsed();
    total
}

fn median_process(mut make: impl FnMut() -> Command) -> Duration {
    let mut v: Vec<Duration> = (0..PROCESS_RUNS)
        .map(|_| {
            let mut cmd = make();
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let t0 = Instant::now();
            let st = cmd.status().unwrap();
            let took = t0.elapsed();
            assert!(st.success());
            took
        })
        .collect();
    percentile(&mut v, 0.5)
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn run(rt: &tokio::runtime::Runtime) -> String {
    let env = setup(rt);
    let (_daemon, _) = Proc::spawn(env.command(BIN, &["run"]), "serving");
    login(rt, &env);
    let calls = || env.fake.calls(Op::GetRoleCredentials);
    let mut out = String::new();

    // 2 first (a cold cache): 10 execs at once, then 1,000 children at once.
    let before = calls();
    let t0 = Instant::now();
    let execs: Vec<HeldExec> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..ROLES)
            .map(|i| {
                let env = &env;
                s.spawn(move || start_exec(env, &format!("p{i}")))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let started = t0.elapsed();
    let at_start = calls() - before;
    let port = execs[0].port;
    let tokens: Vec<String> = execs.iter().map(|e| e.token.clone()).collect();
    let before = calls();
    let t0 = Instant::now();
    let oks = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..1000 {
            let token = tokens[i % ROLES].clone();
            tasks.push(tokio::spawn(async move {
                get_once(port, &token).await.0 == 200
            }));
        }
        let mut oks = 0;
        for t in tasks {
            oks += usize::from(t.await.unwrap());
        }
        oks
    });
    let children = t0.elapsed();
    let at_children = calls() - before;

    // 1. Endpoint throughput against the baseline serving the same bytes.
    let token = tokens[0].clone();
    let (status, body) = rt.block_on(get_once(port, &token));
    assert_eq!(status, 200);
    let body_file = env.dir.path().join("answer.json");
    std::fs::write(&body_file, &body).unwrap();
    let me = std::env::current_exe().unwrap();
    let mut bcmd = Command::new(me);
    bcmd.arg("--baseline-server").arg(&body_file);
    let (_baseline, line) = Proc::spawn(bcmd, "serving");
    let bport: u16 = line.trim().rsplit(' ').next().unwrap().parse().unwrap();
    writeln!(
        out,
        "### Endpoint `GET` over loopback TCP, keep-alive ({} B answer)\n",
        body.len()
    )
    .unwrap();
    writeln!(
        out,
        "| conns | daemon req/s | p50 | p99 | baseline req/s | p50 | p99 | daemon / baseline |"
    )
    .unwrap();
    writeln!(out, "|---|---|---|---|---|---|---|---|").unwrap();
    for conns in [1, 64] {
        let (mut d, mut b) = (Load::default(), Load::default());
        for _ in 0..ROUNDS {
            d.merge(rt.block_on(load(port, &token, conns, ROUND)));
            b.merge(rt.block_on(load(bport, &token, conns, ROUND)));
        }
        assert_eq!(d.errors + b.errors, 0, "errors under load");
        writeln!(
            out,
            "| {conns} | {:.1} k | {} | {} | {:.1} k | {} | {} | **{:.2}×** |",
            d.rps() / 1e3,
            us(d.pct(0.5)),
            us(d.pct(0.99)),
            b.rps() / 1e3,
            us(b.pct(0.5)),
            us(b.pct(0.99)),
            d.rps() / b.rps()
        )
        .unwrap();
    }
    assert_eq!(
        calls() - before,
        at_children,
        "the load was answered from memory"
    );

    writeln!(out, "\n### Many children, few roles\n").unwrap();
    writeln!(out, "| step | GetRoleCredentials calls | took |").unwrap();
    writeln!(out, "|---|---|---|").unwrap();
    writeln!(
        out,
        "| {ROLES} execs (one role each) started at once, cold cache | {at_start} | {} |",
        ms(started)
    )
    .unwrap();
    writeln!(out, "| 1,000 children (100 per exec) asking at once | {at_children} ({oks}/1000 answered 200) | {} |", ms(children)).unwrap();

    // 3. exec -- true against true.
    let plain = median_process(|| env.command("true", &[]));
    let exec = median_process(|| env.command(BIN, &["exec", "--profile", "p0", "--", "true"]));
    writeln!(out, "\n### Whole process (median of {PROCESS_RUNS})\n").unwrap();
    writeln!(out, "| command | median |").unwrap();
    writeln!(out, "|---|---|").unwrap();
    writeln!(out, "| `true` | {} |", ms(plain)).unwrap();
    writeln!(
        out,
        "| `sso-agent exec --profile p0 -- true` | {} |",
        ms(exec)
    )
    .unwrap();
    writeln!(
        out,
        "| **overhead** | **{}** |",
        ms(exec.saturating_sub(plain))
    )
    .unwrap();

    for mut e in execs {
        drop(e._stdin);
        let _ = e.child.wait();
    }
    out
}
