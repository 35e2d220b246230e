//! Upstream misbehaviour through the real daemon: redirects are never followed, huge bodies
//! are capped (and memory stays bounded), dripping or silent answers end at the request
//! timeout, and a TLS endpoint that does not speak TLS fails at once. Each is an
//! `UPSTREAM_ERROR` (502) naming what went wrong, never a hang, and the socket keeps serving.

use std::time::Duration;

use fake_aws::{Fault, Op};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::*;

/// Failure guard: far above the client's 30 s request timeout.
const GUARD: Duration = Duration::from_secs(120);

const DEVICE: &str = r#"{"flow":"device_code"}"#;

/// An env whose AWS config also has role profiles `dev` (Admin) and `ro` (ReadOnly) on
/// session `corp`.
async fn env_with_profile() -> TestEnv {
    let env = TestEnv::new().await;
    let base = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&format!(
        "{base}\n[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\nregion = us-east-1\n\n[profile ro]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = ReadOnly\n"
    ));
    env
}

/// `(status, body)` of a socket request, within the guard.
async fn call(env: &TestEnv, method: &str, path: &str, body: Option<&str>) -> serde_json::Value {
    let (status, v) = tokio::time::timeout(GUARD, env.http(method, path, body))
        .await
        .unwrap_or_else(|_| panic!("{method} {path} hung"));
    serde_json::json!({ "status": status, "body": v })
}

/// Asserts a 502 UPSTREAM_ERROR whose message contains every one of `words`.
#[track_caller]
fn assert_upstream_error(answer: &serde_json::Value, words: &[&str]) {
    assert_eq!(answer["status"], 502, "{answer}");
    let e = &answer["body"]["error"];
    assert_eq!(e["code"], "UPSTREAM_ERROR", "{answer}");
    let message = e["message"].as_str().unwrap_or_default();
    for w in words {
        assert!(message.contains(w), "{w:?} not in {message:?}");
    }
}

async fn login_fails_with(env: &TestEnv, words: &[&str]) {
    let a = call(env, "POST", "/v1/sessions/corp/login", Some(DEVICE)).await;
    assert_upstream_error(&a, words);
}

async fn credentials_fail_with(env: &TestEnv, words: &[&str]) {
    let a = call(env, "GET", "/v1/profiles/dev/credentials", None).await;
    assert_upstream_error(&a, words);
}

/// The answers of a login and two role-credential calls, all started at once.
async fn login_and_credentials(
    env: &TestEnv,
) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
    tokio::join!(
        call(env, "POST", "/v1/sessions/corp/login", Some(DEVICE)),
        call(env, "GET", "/v1/profiles/dev/credentials", None),
        call(env, "GET", "/v1/profiles/ro/credentials", None),
    )
}

async fn token_is_served(env: &TestEnv) {
    let out = env.run(&["token", "corp"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.trim().starts_with("fake-at-"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_redirects_are_refused_not_followed() {
    let env = env_with_profile().await;
    let _d = env.start_daemon().await;
    // To the same operation on the same fake: a follower would be counted twice.
    let again = format!("{}/client/register", env.fake.url());
    env.fake
        .push_fault(Op::RegisterClient, Fault::Redirect(307, again.clone()));
    login_fails_with(&env, &["RegisterClient", "307", "not followed", &again]).await;
    assert_eq!(env.fake.calls(Op::RegisterClient), 1, "redirect followed");

    assert_eq!(env.login().await.code, 0, "a later login works");
    let creds = format!(
        "{}/federation/credentials?role_name=Admin&account_id=111122223333",
        env.fake.url()
    );
    for status in [301, 302, 303, 307, 308] {
        env.fake.push_fault(
            Op::GetRoleCredentials,
            Fault::Redirect(status, creds.clone()),
        );
        let before = env.fake.calls(Op::GetRoleCredentials);
        credentials_fail_with(
            &env,
            &["GetRoleCredentials", &status.to_string(), "not followed"],
        )
        .await;
        assert_eq!(
            env.fake.calls(Op::GetRoleCredentials),
            before + 1,
            "{status} followed"
        );
    }
    // The CLI says so with exit 1, and the bearer token never went anywhere else.
    env.fake
        .push_fault(Op::GetRoleCredentials, Fault::Redirect(307, creds.clone()));
    let out = env.run(&["credentials", "--profile", "dev"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("307"), "{out:?}");
    // Without a fault it works.
    let out = env.run(&["credentials", "--profile", "dev"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    token_is_served(&env).await;
}

/// Peak resident memory of a process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_upstream_bodies_are_capped_in_memory() {
    let env = env_with_profile().await;
    let d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);
    // 512 MiB each: had the daemon read them, its peak memory would show it.
    const HUGE: u64 = 512 * 1024 * 1024;
    env.fake
        .push_fault(Op::StartDeviceAuthorization, Fault::HugeBody(HUGE));
    login_fails_with(
        &env,
        &["StartDeviceAuthorization", "larger than 1048576 bytes"],
    )
    .await;
    env.fake
        .push_fault(Op::GetRoleCredentials, Fault::HugeBody(HUGE));
    credentials_fail_with(&env, &["GetRoleCredentials", "larger than 1048576 bytes"]).await;
    // A refresh that gets one keeps serving the still-valid token (SPEC) and says why.
    env.fake.push_fault(Op::CreateToken, Fault::HugeBody(HUGE));
    let out = env.run(&["token", "corp", "--min-validity", "7200"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let (_, v) = env.http("GET", "/v1/status", None).await;
    let last = v["data"]["sessions"][0]["lastError"].as_str().unwrap_or("");
    assert!(last.contains("larger than 1048576 bytes"), "{v}");

    let pid = d.child.id().expect("daemon pid");
    let peak = peak_rss(pid);
    assert!(
        peak < 128 * 1024 * 1024,
        "daemon peak memory {peak} bytes after 1.5 GiB of offered bodies"
    );
    token_is_served(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dripping_and_silent_upstreams_end_at_the_request_timeout() {
    let env = env_with_profile().await;
    let _d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);
    let token = env.run(&["token", "corp"]).await.stdout.trim().to_string();
    let drip = Fault::Drip(Duration::from_secs(1));
    env.fake
        .push_fault(Op::StartDeviceAuthorization, drip.clone());
    env.fake.push_fault(Op::GetRoleCredentials, drip);
    env.fake.push_fault(Op::GetRoleCredentials, Fault::Hang);
    // Meanwhile the socket serves: all three upstream calls are under way.
    let served = async {
        assert!(
            env.fake
                .wait_for_calls(Op::StartDeviceAuthorization, 2, WAIT)
                .await
        );
        assert!(
            env.fake
                .wait_for_calls(Op::GetRoleCredentials, 2, WAIT)
                .await
        );
        let (status, v) = env.http("GET", "/v1/sessions/corp/token", None).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["data"]["accessToken"].as_str(), Some(token.as_str()));
    };
    let ((login, dev, ro), ()) = tokio::join!(login_and_credentials(&env), served);
    assert_upstream_error(&login, &["StartDeviceAuthorization", "timed out"]);
    assert_upstream_error(&dev, &["GetRoleCredentials", "timed out"]);
    assert_upstream_error(&ro, &["GetRoleCredentials", "timed out"]);
    token_is_served(&env).await;
}

/// A "TLS" endpoint on loopback that answers every connection with `reply` (or nothing),
/// then holds it open until the peer leaves.
async fn not_tls(reply: &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(reply).await;
                let mut sink = [0u8; 4096];
                while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    format!("https://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_endpoint_that_is_not_tls_fails_clearly() {
    let env = TestEnv::new().await;
    let url =
        not_tls(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}garbage\x00\xff\x16\x03").await;
    env.set_env("AWS_ENDPOINT_URL_SSO_OIDC", &url);
    let _d = env.start_daemon().await;
    login_fails_with(&env, &["RegisterClient", &url]).await;
    let out = env
        .run(&["login", "corp", "--device-code", "--no-browser"])
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains(&url), "{out:?}");
    let (status, _) = env.http("GET", "/v1/status", None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_tls_endpoint_times_out() {
    let env = TestEnv::new().await;
    let url = not_tls(b"").await;
    env.set_env("AWS_ENDPOINT_URL_SSO_OIDC", &url);
    let _d = env.start_daemon().await;
    login_fails_with(&env, &["RegisterClient", "timed out"]).await;
    let (status, _) = env.http("GET", "/v1/status", None).await;
    assert_eq!(status, 200);
}

/// HARDENING T10: an upstream `error_description` carrying terminal escapes and a line
/// break reaches `status` and the log escaped: no raw control character, no forged line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_upstream_text_is_escaped_in_status_and_log() {
    let env = TestEnv::new().await;
    let d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);
    env.fake.push_fault(
        Op::CreateToken,
        Fault::Error {
            status: 500,
            error_type: "InternalServerException".into(),
            error: "server_error".into(),
            description: "boom\u{1b}]0;pwned\u{7}\nERROR forged line".into(),
        },
    );
    // A refresh now: it fails, the still-valid token is served, the error is kept.
    assert_eq!(
        env.run(&["token", "corp", "--min-validity", "3600"])
            .await
            .code,
        0
    );
    let status = env.run(&["status"]).await;
    assert!(
        status.stdout.contains("boom"),
        "the error is shown: {status:?}"
    );
    assert!(d.log.wait_for("boom").await, "{}", d.log.text());
    for (what, text) in [("status", status.stdout.as_str()), ("log", &d.log.text())] {
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{what}: raw control characters:\n{text}"
        );
        assert!(
            !text
                .lines()
                .any(|l| l.trim_start().starts_with("ERROR forged")),
            "{what}: a forged line:\n{text}"
        );
    }
}
