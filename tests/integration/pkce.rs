//! The authorization-code + PKCE login, with the test playing the browser; flow choice;
//! one login per session.

use fake_aws::{AuthorizeMode, FakeConfig, Op};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::util::*;

fn browser() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Starts `login corp --no-browser` on a simulated desktop and returns the child and the
/// URL it printed.
async fn start_login(env: &TestEnv, extra_env: &[(&str, &str)]) -> (tokio::process::Child, String) {
    let mut cmd = env.command(&["login", "corp", "--no-browser"]);
    cmd.env("DISPLAY", ":99");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(WAIT, async {
        while let Ok(Some(l)) = lines.next_line().await {
            if let Some(u) = l.strip_prefix("Open ") {
                return u.trim().to_string();
            }
        }
        String::new()
    })
    .await
    .unwrap();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_round_trip_logs_in() {
    let env = TestEnv::new().await;
    let _d = env.start_daemon().await;
    let (child, url) = start_login(&env, &[]).await;
    assert!(url.contains("/authorize?"), "{url}");
    let q: std::collections::HashMap<String, String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43, "unpadded base64url SHA-256");
    assert_eq!(q["scopes"], "sso:account:access");
    let redirect = url::Url::parse(&q["redirect_uri"]).unwrap();
    assert_eq!(redirect.host_str(), Some("127.0.0.1"));
    assert_eq!(redirect.path(), "/oauth/callback");

    // The listener is bound to 127.0.0.1 only: another loopback address is refused.
    let port = redirect.port().unwrap();
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.2", port))
            .await
            .is_err(),
        "bound beyond 127.0.0.1"
    );

    // A callback with a wrong state is rejected and the login stays pending.
    let wrong = format!("{}?code=x&state=wrong", q["redirect_uri"]);
    let resp = browser().get(&wrong).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let (_, v) = env.http("GET", "/v1/sessions/corp/login", None).await;
    assert_eq!(v["data"]["state"], "pending", "{v}");

    // The browser: the fake's /authorize redirects to the daemon's callback.
    let resp = browser().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("close this tab"));
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.run(&["token", "corp"]).await;
    assert_eq!(out.code, 0, "{out:?}");

    // Registered for the auth-code flow exactly as WIRE.md §4.2 says.
    let reg = env
        .fake
        .requests()
        .into_iter()
        .find(|r| r.op == Op::RegisterClient)
        .unwrap();
    let body = reg.body_json().unwrap();
    assert_eq!(
        body["grantTypes"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        body["redirectUris"],
        serde_json::json!(["http://127.0.0.1/oauth/callback"])
    );
    assert_eq!(body["issuerUrl"], env.start_url.as_str());
    // The exchange repeated the redirect URI with its port.
    let exchange = env
        .fake
        .requests()
        .into_iter()
        .rfind(|r| r.op == Op::CreateToken)
        .unwrap()
        .body_json()
        .unwrap();
    assert_eq!(exchange["redirectUri"], q["redirect_uri"].as_str());
    // After the login the listener is closed.
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "callback listener still open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_in_the_browser() {
    let env = TestEnv::with_fake(FakeConfig {
        authorize_mode: AuthorizeMode::Deny,
        ..FakeConfig::default()
    })
    .await;
    let _d = env.start_daemon().await;
    let (child, url) = start_login(&env, &[]).await;
    let _ = browser().get(&url).send().await.unwrap();
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("denied"));
    let (_, v) = env.http("GET", "/v1/sessions/corp/login", None).await;
    assert_eq!(v["data"]["state"], "denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_share_one_authorization() {
    let env = TestEnv::new().await;
    let _d = env.start_daemon().await;
    let mut joins = Vec::new();
    for _ in 0..20 {
        let socket = env.socket();
        joins.push(tokio::spawn(async move {
            raw_http(
                &socket,
                "POST",
                "/v1/sessions/corp/login",
                Some(r#"{"flow":"authorization_code"}"#),
            )
            .await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut urls = std::collections::HashSet::new();
    for j in joins {
        let (status, v) = j.await.unwrap();
        assert_eq!(status, 200, "{v}");
        ids.insert(v["data"]["loginId"].as_str().unwrap().to_string());
        urls.insert(v["data"]["authorizeUrl"].as_str().unwrap().to_string());
    }
    assert_eq!((ids.len(), urls.len()), (1, 1), "one login, one URL");
    assert_eq!(env.fake.calls(Op::RegisterClient), 1);
    // `token --wait` returns once someone completes it.
    let waiter = env
        .command(&["token", "corp", "--wait", "30"])
        .spawn()
        .unwrap();
    let url = urls.into_iter().next().unwrap();
    assert_eq!(browser().get(&url).send().await.unwrap().status(), 200);
    let out = tokio::time::timeout(WAIT, waiter.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("fake-at-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_sessions_get_the_device_flow_and_are_told_why() {
    let env = TestEnv::new().await;
    let _d = env.start_daemon().await;
    let (child, url) =
        start_login(&env, &[("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22")]).await;
    assert!(url.contains("/device"), "device verification URL: {url}");
    let code = env.fake.wait_for_pending_user_code(WAIT).await.unwrap();
    assert!(env.fake.approve(&code));
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(env.fake.calls(Op::Authorize), 0);
}

/// HARDENING T3: any local uid can connect to the login's loopback callback port. Idle
/// connections are closed at the head timeout, at most a few are held at once (the rest wait
/// in the backlog, costing the daemon no descriptor), the daemon keeps answering, and once
/// the login ends the port is closed. (The old listener had no timeout or cap: 20,000 fds.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_callback_connections_is_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = TestEnv::new().await;
    let d = env.start_daemon().await;
    let pid = d.child.id().unwrap();
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let before = fds();
    let (child, url) = start_login(&env, &[]).await;
    let q: std::collections::HashMap<String, String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let port = url::Url::parse(&q["redirect_uri"]).unwrap().port().unwrap();

    // One slowloris: half a head, then nothing. The daemon closes it.
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    slow.write_all(b"GET /oauth/callback HTTP/1.1\r\n")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(WAIT, slow.read_to_end(&mut sink)).await;
    assert!(
        closed.is_ok(),
        "an idle callback connection was never closed"
    );

    // A hundred idle connections: the daemon holds at most its cap of them.
    let mut flood = Vec::new();
    for _ in 0..100 {
        flood.push(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        env.run(&["status"]).await.code,
        4,
        "the daemon still answers"
    );
    let during = fds();
    assert!(
        during <= before + 16 + 8,
        "{during} descriptors during the flood (before the login: {before})"
    );

    // The flood goes away (else the browser waits its turn behind it in the backlog); the
    // browser gets through and the login ends.
    drop(flood);
    let resp = browser().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The login is over: its port is closed.
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "the callback port outlived the login"
    );
}
