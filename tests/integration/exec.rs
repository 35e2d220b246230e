//! `sso-agent exec` and the container-credentials endpoint: real botocore under exec gets the
//! fake's credentials (and fresh ones past their lifetime); every refusal, tried from outside
//! (raw TCP, and curl as another uid); revocation after a normal exit and after SIGKILL of
//! the exec client; exit status, signal forwarding and the exits before the child starts.

use std::process::Stdio;
use std::time::Duration;

use fake_aws::{FakeConfig, Op};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::util::*;

const PROFILES: &str = "\n[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\nregion = eu-central-1\n\n[profile nope]\nsso_session = corp\nsso_account_id = 999999999999\nsso_role_name = Admin\n";

async fn exec_env(cfg: FakeConfig) -> TestEnv {
    let env = TestEnv::with_fake(cfg).await;
    let base = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&format!("{base}{PROFILES}"));
    env
}

async fn logged_in(cfg: FakeConfig) -> (TestEnv, Daemon) {
    let env = exec_env(cfg).await;
    let d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);
    (env, d)
}

fn fake_cfg() -> FakeConfig {
    FakeConfig {
        device_interval_secs: 1,
        ..FakeConfig::default()
    }
}

/// A running exec whose child printed its URI and token and waits for its stdin to close.
struct Held {
    exec: tokio::process::Child,
    uri: String,
    token: String,
    port: u16,
}

async fn hold(env: &TestEnv) -> Held {
    let mut cmd = env.command(&[
        "exec",
        "--profile",
        "dev",
        "--",
        "sh",
        "-c",
        "echo \"$AWS_CONTAINER_CREDENTIALS_FULL_URI $AWS_CONTAINER_AUTHORIZATION_TOKEN\"; read x || true",
    ]);
    cmd.stdin(Stdio::piped());
    let mut exec = cmd.spawn().unwrap();
    let mut lines = BufReader::new(exec.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("the child prints")
        .unwrap()
        .expect("a line");
    let (uri, token) = line.split_once(' ').unwrap();
    let port = uri
        .strip_prefix("http://127.0.0.1:")
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a loopback URI: {uri}"));
    Held {
        exec,
        uri: uri.to_string(),
        token: token.to_string(),
        port,
    }
}

/// One raw request to the endpoint; returns (status, JSON body).
async fn raw(port: u16, head: &str) -> (u16, serde_json::Value) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("{head}connection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WAIT, s.read_to_string(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or_default())
}

fn get(port: u16, token: Option<&str>, extra: &str) -> String {
    let auth = token.map_or(String::new(), |t| format!("authorization: {t}\r\n"));
    format!("GET /v1/role-credentials HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n{auth}{extra}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_and_revocation_and_the_daemon_keeps_serving() {
    let (env, d) = logged_in(fake_cfg()).await;
    let mut a = hold(&env).await;
    let p = a.port;
    let t = a.token.clone();
    assert!(t.len() >= 22, "at least 128 bits of token");

    // The right request: the container-credentials JSON of WIRE.md §8.2.
    let (status, v) = raw(p, &get(p, Some(&t), "")).await;
    assert_eq!(status, 200, "{v}");
    for k in ["AccessKeyId", "SecretAccessKey", "Token", "AccountId"] {
        assert!(v[k].as_str().is_some_and(|s| !s.is_empty()), "{k} in {v}");
    }
    assert!(v["Expiration"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["AccountId"], "111122223333");
    let served_secret = v["SecretAccessKey"].as_str().unwrap().to_string();

    // Refusals, each with {"Code","Message"}.
    let cases = [
        ("no token", get(p, None, ""), 401),
        ("wrong token", get(p, Some("not-the-token"), ""), 401),
        (
            "Origin",
            get(p, Some(&t), "origin: https://evil.example\r\n"),
            403,
        ),
        (
            "wrong Host",
            format!(
                "GET /v1/role-credentials HTTP/1.1\r\nhost: localhost:{p}\r\nauthorization: {t}\r\n"
            ),
            403,
        ),
        (
            "POST",
            format!(
                "POST /v1/role-credentials HTTP/1.1\r\nhost: 127.0.0.1:{p}\r\nauthorization: {t}\r\ncontent-length: 0\r\n"
            ),
            403,
        ),
    ];
    for (what, head, want) in &cases {
        let (status, v) = raw(p, head).await;
        assert_eq!(status, *want, "{what}: {v}");
        assert!(
            v["Code"].is_string() && v["Message"].is_string(),
            "{what}: {v}"
        );
    }

    // The right token from another uid: refused by the kernel's socket owner, and logged.
    let out = tokio::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "curl",
            "-s",
        ])
        .args(["-H", &format!("Authorization: {t}"), &a.uri])
        .output()
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(
        v["Code"],
        "Forbidden",
        "{body} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        d.log
            .wait_for("refusing a connection from another user")
            .await
    );
    assert!(d.log.text().contains("65534"), "the uid is logged");

    // Another exec's token, after that exec ended normally: revoked.
    let mut b = hold(&env).await;
    assert_eq!(b.port, p, "one endpoint for every exec");
    assert_eq!(raw(p, &get(p, Some(&b.token), "")).await.0, 200);
    drop(b.exec.stdin.take());
    assert_eq!(b.exec.wait().await.unwrap().code(), Some(0));
    assert!(d.log.wait_for("token revoked").await);
    assert_eq!(raw(p, &get(p, Some(&b.token), "")).await.0, 401);

    // The daemon still serves the live exec, from memory: many children asking at once
    // cause no GetRoleCredentials at all (the first was fetched when the exec started).
    let fetched = |env: &TestEnv| {
        env.fake
            .requests()
            .into_iter()
            .filter(|r| r.op == Op::GetRoleCredentials)
            .count()
    };
    let before = fetched(&env);
    let head = get(p, Some(&t), "");
    let answers = futures_join_all(
        (0..32)
            .map(|_| {
                let head = head.clone();
                async move { raw(p, &head).await }
            })
            .collect::<Vec<_>>(),
    )
    .await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    assert_eq!(fetched(&env), before, "answered from memory");

    // A session that needs a login answers at once with Code LoginRequired.
    assert_eq!(env.run(&["logout", "corp"]).await.code, 0);
    let (status, v) = raw(p, &get(p, Some(&t), "")).await;
    assert_eq!(
        (status, v["Code"].as_str()),
        (403, Some("LoginRequired")),
        "{v}"
    );
    assert_eq!(env.login().await.code, 0);
    assert_eq!(raw(p, &get(p, Some(&t), "")).await.0, 200);
    drop(a.exec.stdin.take());
    assert_eq!(a.exec.wait().await.unwrap().code(), Some(0));
    assert!(d.log.wait_for_n("token revoked", 2).await);
    assert_eq!(raw(p, &get(p, Some(&t), "")).await.0, 401);
    // No token, nor a credential the endpoint served, in the daemon's log.
    let log = d.log.text();
    for secret in [&t, &b.token, &served_secret] {
        assert!(
            !log.contains(secret.as_str()),
            "a secret leaked into the log"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_exec_client_revokes_its_token() {
    let (env, d) = logged_in(fake_cfg()).await;
    let mut a = hold(&env).await;
    assert_eq!(raw(a.port, &get(a.port, Some(&a.token), "")).await.0, 200);
    // Kill exec itself (not its child): its socket connection closes with it.
    a.exec.start_kill().unwrap();
    a.exec.wait().await.unwrap();
    assert!(d.log.wait_for("token revoked").await, "{}", d.log.text());
    assert_eq!(raw(a.port, &get(a.port, Some(&a.token), "")).await.0, 401);
    // (The orphaned child ends when its stdin, held by this test, closes.)
    drop(a.exec.stdin.take());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_status_signals_and_the_exits_before_the_child() {
    let env = exec_env(fake_cfg()).await;
    let marker = env.dir.path().join("child-ran");
    let touch = format!("touch {}", marker.display());

    // 3: no daemon.
    let out = env
        .run(&["exec", "--profile", "dev", "--", "sh", "-c", &touch])
        .await;
    assert_eq!(out.code, 3, "{out:?}");

    let _d = env.start_daemon().await;
    // 4: login required, not a terminal; the child never starts.
    let out = env
        .run(&["exec", "--profile", "dev", "--", "sh", "-c", &touch])
        .await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("login"), "{out:?}");
    // 2: no profile, an unknown profile, no command.
    for args in [
        &["exec", "--", "true"][..],
        &["exec", "--profile", "ghost", "--", "sh", "-c", &touch][..],
        &["exec", "--profile", "dev"][..],
    ] {
        let out = env.run(args).await;
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
    }
    assert!(
        !marker.exists(),
        "no child ran before exec could grant a token"
    );

    assert_eq!(env.login().await.code, 0);
    // The environment: set and removed exactly as SPEC says.
    let mut cmd = env.command(&["exec", "--profile", "dev", "--", "env"]);
    cmd.env("AWS_PROFILE", "dev")
        .env("AWS_ACCESS_KEY_ID", "AKIASTALE")
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/nope");
    let out = cmd.output().await.unwrap();
    let vars = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{vars}");
    for want in [
        "AWS_REGION=eu-central-1",
        "AWS_DEFAULT_REGION=eu-central-1",
        "SSO_AGENT_PROFILE=dev",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN=",
    ] {
        assert!(
            vars.lines().any(|l| l.starts_with(want)),
            "{want} in {vars}"
        );
    }
    for gone in [
        "AWS_PROFILE=",
        "AWS_ACCESS_KEY_ID=",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=",
    ] {
        assert!(
            !vars.lines().any(|l| l.starts_with(gone)),
            "{gone} in {vars}"
        );
    }

    // Exit status passed through; a signal death is 128 + N.
    let out = env
        .run(&["exec", "--profile", "dev", "--", "sh", "-c", "exit 7"])
        .await;
    assert_eq!(out.code, 7, "{out:?}");
    let out = env
        .run(&[
            "exec",
            "--profile",
            "dev",
            "--",
            "sh",
            "-c",
            "kill -TERM $$",
        ])
        .await;
    assert_eq!(out.code, 128 + 15, "{out:?}");
    // A command that does not exist: 127, as a shell says.
    let out = env
        .run(&["exec", "--profile", "dev", "--", "/nonexistent/cmd"])
        .await;
    assert_eq!(out.code, 127, "{out:?}");

    // SIGINT, SIGTERM and SIGHUP sent to exec reach the child (which exits 40 + N).
    for (sig, n) in [
        (rustix::process::Signal::INT, 2),
        (rustix::process::Signal::TERM, 15),
        (rustix::process::Signal::HUP, 1),
    ] {
        let script = "import signal,sys\nfor s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):\n    signal.signal(s, lambda n, f: sys.exit(40 + n))\nprint('ready', flush=True)\nwhile True:\n    signal.pause()\n";
        let mut child = env
            .command(&[
                "exec",
                "--profile",
                "dev",
                "--",
                "/usr/bin/python3",
                "-c",
                script,
            ])
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ready.as_deref(), Some("ready"));
        let pid = rustix::process::Pid::from_raw(child.id().unwrap() as i32).unwrap();
        rustix::process::kill_process(pid, sig).unwrap();
        let status = tokio::time::timeout(WAIT, child.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.code(), Some(40 + n), "signal {n}");
    }
}

/// botocore's container provider under exec: the fake's credentials, and with a 3-second
/// role lifetime, fresh ones after the first have expired, with no user action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botocore_under_exec_gets_fresh_credentials_past_their_lifetime() {
    let Some(python) = crate::interop::python() else {
        return;
    };
    let (env, _d) = logged_in(FakeConfig {
        role_credentials_ttl: Duration::from_secs(3),
        ..fake_cfg()
    })
    .await;
    // The child keeps asking botocore until it is past the first credentials' expiry.
    let script = r#"
import datetime, json, time
import botocore.session
s = botocore.session.get_session()
c = s.get_credentials()
seen = []
first = None
while True:
    f = c.get_frozen_credentials()
    now = datetime.datetime.now(datetime.timezone.utc)
    exp = c._expiry_time
    seen.append({"key": f.access_key, "exp": exp.isoformat(), "left": (exp - now).total_seconds()})
    first = first or exp
    if now > first + datetime.timedelta(seconds=1) and len({x["key"] for x in seen}) >= 2:
        break
    time.sleep(0.5)
print(json.dumps({"method": c.method, "seen": seen, "region": s.get_config_variable("region")}))
"#;
    let out = env
        .run(&["exec", "--profile", "dev", "--", &python, "-c", script])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["method"], "container-role", "{v}");
    assert_eq!(v["region"], "eu-central-1");
    let seen = v["seen"].as_array().unwrap();
    let keys: std::collections::BTreeSet<&str> =
        seen.iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert!(keys.len() >= 2, "fresh credentials arrived: {v}");
    assert!(
        seen.iter().all(|s| s["left"].as_f64().unwrap() > 0.0),
        "every credential served was still valid: {v}"
    );
    let issued = env
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.op == Op::GetRoleCredentials)
        .count();
    assert!(issued >= 2, "the daemon fetched again: {issued}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_wait_waits_for_a_login() {
    let env = exec_env(fake_cfg()).await;
    let _d = env.start_daemon().await;
    let out = env.run(&["credentials", "--profile", "dev"]).await;
    assert_eq!(out.code, 4, "no wait: login required at once: {out:?}");
    let waiting = env
        .command(&["credentials", "--profile", "dev", "--wait", "60"])
        .spawn()
        .unwrap();
    assert_eq!(env.login().await.code, 0);
    let out = tokio::time::timeout(WAIT, waiting.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Version"], 1);
}

/// Runs every future at once on this runtime and collects their outputs in order.
async fn futures_join_all<F: std::future::Future + Send + 'static>(futs: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_daemon_ends_held_execs_without_waiting_for_them() {
    let (env, mut d) = logged_in(fake_cfg()).await;
    let mut a = hold(&env).await;
    let pid = rustix::process::Pid::from_raw(d.child.id().unwrap() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = tokio::time::timeout(WAIT, d.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(d.log.wait_for("<eof>").await);
    let log = d.log.text();
    assert!(
        !log.contains("did not finish in time"),
        "the held exec connection was ended, not waited for: {log}"
    );
    // The child keeps running (its credentials are gone with the daemon); exec still waits.
    drop(a.exec.stdin.take());
    assert_eq!(a.exec.wait().await.unwrap().code(), Some(0));
}

/// On a terminal (a pty from `script`), a needed login runs first, as `sso-agent login`
/// would, and then the child starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_exec_logs_in_first() {
    let env = exec_env(fake_cfg()).await;
    let _d = env.start_daemon().await;
    let marker = env.dir.path().join("child-ran");
    let envs: Vec<_> = env
        .command(&[])
        .as_std()
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
        .collect();
    let inner = format!("{BIN} exec --profile dev -- touch {}", marker.display());
    let mut script = tokio::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env_clear()
        .envs(envs)
        // Whatever the login "opens" is a no-op here.
        .env("BROWSER", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let code = env
        .fake
        .wait_for_pending_user_code(WAIT)
        .await
        .expect("exec started a login");
    assert!(env.fake.approve(&code));
    let status = tokio::time::timeout(WAIT, script.wait())
        .await
        .expect("exec finished after the login")
        .unwrap();
    let mut out = String::new();
    let _ = script.stdout.take().unwrap().read_to_string(&mut out).await;
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(marker.exists(), "the child ran after the login: {out}");
    assert!(out.contains("Logged in to corp"), "{out}");
}
