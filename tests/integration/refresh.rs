//! The token lifecycle through the real socket: a thousand callers share one refresh;
//! upstream faults are survived while the token is served; a daemon killed while a refresh
//! is in flight comes back without a new login.

use std::time::Duration;

use fake_aws::{FakeConfig, Fault, Op};

use crate::util::*;

/// Logs in with a 20-minute token, then makes later tokens last an hour, so a caller asking
/// for 30 minutes needs exactly one refresh to be satisfied.
async fn logged_in(env: &TestEnv) {
    assert_eq!(env.login().await.code, 0);
    env.fake
        .set_config(|c| c.access_token_ttl = Duration::from_secs(3600));
}

async fn short_env() -> TestEnv {
    TestEnv::with_fake(FakeConfig {
        device_interval_secs: 1,
        access_token_ttl: Duration::from_secs(1200),
        ..FakeConfig::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_callers_share_one_create_token() {
    let env = short_env().await;
    let _d = env.start_daemon().await;
    logged_in(&env).await;
    let before = env.fake.calls(Op::CreateToken);
    let mut joins = Vec::new();
    for _ in 0..1000 {
        let socket = env.socket();
        joins.push(tokio::spawn(async move {
            raw_http(
                &socket,
                "GET",
                "/v1/sessions/corp/token?minValidity=1800",
                None,
            )
            .await
        }));
    }
    let mut tokens = std::collections::HashSet::new();
    for j in joins {
        let (status, v) = j.await.unwrap();
        assert_eq!(status, 200, "{v}");
        tokens.insert(v["data"]["accessToken"].as_str().unwrap().to_string());
    }
    assert_eq!(
        env.fake.calls(Op::CreateToken) - before,
        1,
        "exactly one refresh"
    );
    assert_eq!(tokens.len(), 1, "all 1,000 got the same new token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_faults_keep_serving_and_recover() {
    let env = short_env().await;
    let d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);
    let mut token = env.run(&["token", "corp"]).await.stdout.trim().to_string();
    let mut ttl = 1200;
    for (i, fault) in [
        Fault::internal(),
        Fault::Reset,
        Fault::Garbage,
        Fault::Html(503),
    ]
    .into_iter()
    .enumerate()
    {
        // Ask for a little more than the current token has; the next one will have more.
        let ask = (ttl + 10).to_string();
        ttl += 100;
        env.fake
            .set_config(|c| c.access_token_ttl = Duration::from_secs(ttl));
        env.fake.push_fault(Op::CreateToken, fault.clone());
        let out = env.run(&["token", "corp", "--min-validity", &ask]).await;
        assert_eq!(out.code, 0, "{fault:?}: {out:?}");
        assert_eq!(
            out.stdout.trim(),
            token,
            "{fault:?}: the still-valid token is served"
        );
        let (_, v) = env.http("GET", "/v1/status", None).await;
        let last = v["data"]["sessions"][0]["lastError"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(last.contains("retrying"), "{fault:?}: {last}");
        // The back-off timer retries by itself; the fault was one-shot, so it succeeds.
        assert!(
            d.log.wait_for_n("refreshed", i + 1).await,
            "{fault:?}: no recovery\n{}",
            d.log.text()
        );
        let out = env.run(&["token", "corp", "--min-validity", &ask]).await;
        assert_eq!(out.code, 0);
        assert_ne!(
            out.stdout.trim(),
            token,
            "{fault:?}: a new token after recovery"
        );
        token = out.stdout.trim().to_string();
        let (_, v) = env.http("GET", "/v1/status", None).await;
        assert_eq!(
            v["data"]["sessions"][0]["lastError"],
            serde_json::Value::Null
        );
    }
    assert_eq!(env.fake.refresh_token_reuse_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_ends_the_chain_and_exit_4_after_expiry() {
    let env = TestEnv::with_fake(FakeConfig {
        device_interval_secs: 1,
        access_token_ttl: Duration::from_secs(8),
        ..FakeConfig::default()
    })
    .await;
    let d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);
    env.fake.revoke_all_refresh_tokens();
    // The proactive refresh (lifetime 8 s: at 4 s left) hits invalid_grant by itself.
    assert!(
        d.log.wait_for("the refresh chain ended").await,
        "{}",
        d.log.text()
    );
    // Once the access token expires: login required, exit 4.
    assert!(
        d.log.wait_for("the access token expired").await,
        "{}",
        d.log.text()
    );
    let (_, v) = env.http("GET", "/v1/status", None).await;
    let s = &v["data"]["sessions"][0];
    assert_eq!(s["refreshable"], false);
    assert_eq!(s["state"], "login_required");
    assert!(
        s["lastError"]
            .as_str()
            .unwrap()
            .contains("sso-agent login corp")
    );
    let out = env.run(&["token", "corp"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(env.run(&["status"]).await.code, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_a_refresh_recovers_without_login() {
    if !keyring_available() {
        eprintln!("NOTE: no Secret Service; kill-and-recover skipped");
        return;
    }
    let env = short_env().await;
    let mut d = env.start_daemon().await;
    logged_in(&env).await;
    let logins = env.fake.calls(Op::StartDeviceAuthorization);
    // Kill while the upstream holds the refresh (the old refresh token is still valid:
    // the fake rotates only when it answers).
    env.fake.push_fault(Op::CreateToken, Fault::Hang);
    let before = env.fake.calls(Op::CreateToken);
    let asker = env
        .command(&["token", "corp", "--min-validity", "1800"])
        .spawn()
        .unwrap();
    assert!(
        env.fake
            .wait_for_calls(Op::CreateToken, before + 1, WAIT)
            .await
    );
    d.child.kill().await.unwrap();
    let _ = asker.wait_with_output().await;
    let _d2 = env.start_daemon().await;
    let out = env.run(&["token", "corp", "--min-validity", "1800"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        env.fake.calls(Op::StartDeviceAuthorization),
        logins,
        "no new login"
    );
    assert_eq!(env.fake.refresh_token_reuse_count(), 0);
}
