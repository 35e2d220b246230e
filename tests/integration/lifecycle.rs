//! The user's path end to end: run, login (device code), token, status, SIGKILL, restart,
//! token without a new login, logout; exit codes 3 and 4.

use fake_aws::Op;

use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_token_status_kill_restart_logout() {
    let env = TestEnv::new().await;
    let mut daemon = env.start_daemon().await;

    // Before login: token says login required (exit 4), status exits 4 too.
    let out = env.run(&["token", "corp"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(
        out.stderr.contains("sso-agent login corp"),
        "{}",
        out.stderr
    );
    assert_eq!(env.run(&["status"]).await.code, 4);

    let out = env.login().await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("/device"),
        "prints the verification URL: {}",
        out.stdout
    );
    assert!(out.stdout.contains("enter the code"), "{}", out.stdout);

    let out = env.run(&["token", "corp"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let token = out.stdout.trim().to_string();
    assert!(token.starts_with("fake-at-"), "{token}");
    assert_eq!(out.stdout.lines().count(), 1, "exactly one line");

    let out = env.run(&["token", "corp", "--json"]).await;
    assert_eq!(out.code, 0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["session"], "corp");
    assert_eq!(v["accessToken"], token.as_str());
    assert_eq!(v["region"], "us-east-1");
    assert_eq!(v["startUrl"], env.start_url.as_str());
    assert!(v["expiresAt"].as_str().unwrap().ends_with('Z'));

    let out = env.run(&["status", "--json"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let s = &v["sessions"][0];
    assert_eq!(s["name"], "corp");
    assert_eq!(s["state"], "valid");
    assert_eq!(s["refreshable"], true);
    for field in [
        "startUrl",
        "region",
        "accessTokenExpiresAt",
        "registrationExpiresAt",
        "nextRefreshAt",
        "lastRefreshAt",
        "lastError",
    ] {
        assert!(s.get(field).is_some(), "status lacks {field}: {s}");
    }
    assert_eq!(v["store"]["backend"], env.store);
    let human = env.run(&["status"]).await;
    assert_eq!(human.code, 0);
    assert!(human.stdout.contains("[corp] valid"), "{}", human.stdout);

    // --min-validity beyond the token's lifetime makes the daemon refresh first.
    let before = env.fake.calls(Op::CreateToken);
    let out = env
        .run(&["token", "corp", "--min-validity", "999999"])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(env.fake.calls(Op::CreateToken), before + 1, "one refresh");
    let refreshed = out.stdout.trim().to_string();
    assert_ne!(refreshed, token);

    // SIGKILL, restart: the token comes back from the store with no new login.
    if env.store == "keyring" {
        daemon.child.kill().await.unwrap();
        let logins = env.fake.calls(Op::StartDeviceAuthorization);
        let mut daemon2 = env.start_daemon().await;
        let out = env.run(&["token", "corp"]).await;
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.stdout.trim(), refreshed);
        assert_eq!(
            env.fake.calls(Op::StartDeviceAuthorization),
            logins,
            "no new login"
        );
        assert_eq!(env.fake.refresh_token_reuse_count(), 0);

        let out = env.run(&["logout", "corp"]).await;
        assert_eq!(out.code, 0, "{out:?}");
        let out = env.run(&["token", "corp"]).await;
        assert_eq!(out.code, 4, "{out:?}");
        // and the keyring forgot it too: another restart still needs a login
        daemon2.child.kill().await.unwrap(); // SIGKILL and reap
        let _daemon3 = env.start_daemon().await;
        assert_eq!(env.run(&["token", "corp"]).await.code, 4);
    } else {
        eprintln!("NOTE: no Secret Service; restart-from-keyring part skipped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_daemon_is_exit_3_with_how_to_start() {
    let env = TestEnv::new().await;
    for args in [
        &["token", "corp"][..],
        &["status"],
        &["logout", "corp"],
        &["login", "corp", "--device-code"],
    ] {
        let out = env.run(args).await;
        assert_eq!(out.code, 3, "{args:?}: {out:?}");
        assert!(out.stderr.contains("sso-agent run"), "{}", out.stderr);
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "one line: {}",
            out.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_are_exit_2() {
    let env = TestEnv::new().await;
    let out = env.run(&["token", "corp", "--min-validity", "soon"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    let out = env.run(&["bogus"]).await;
    assert_eq!(out.code, 2);
    env.set_env("SSO_AGENT_REFRESH_MARGIN", "10");
    let out = env.run(&["run"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("SSO_AGENT_REFRESH_MARGIN"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_and_expired_logins_fail_clearly() {
    let env = TestEnv::new().await;
    let _d = env.start_daemon().await;
    let child = env
        .command(&["login", "corp", "--device-code", "--no-browser"])
        .spawn()
        .unwrap();
    let code = env.fake.wait_for_pending_user_code(WAIT).await.unwrap();
    assert!(env.fake.deny(&code));
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("denied"), "{stderr}");

    let env = TestEnv::with_fake(fake_aws::FakeConfig {
        device_interval_secs: 1,
        device_code_ttl: std::time::Duration::from_secs(2),
        ..Default::default()
    })
    .await;
    let _d = env.start_daemon().await;
    let out = env
        .run(&["login", "corp", "--device-code", "--no-browser"])
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("expired"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_daemon_refuses_and_stale_socket_is_replaced() {
    let env = TestEnv::new().await;
    let mut first = env.start_daemon().await;
    let second = env.spawn_daemon();
    let out = second.child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        second.log.wait_for("already running").await,
        "{}",
        second.log.text()
    );
    assert_eq!(env.run(&["status"]).await.code, 4, "first still serves");

    first.child.kill().await.unwrap(); // SIGKILL leaves the socket file behind
    assert!(env.socket().exists());
    let _third = env.start_daemon().await;
    assert!(_third.log.text().contains("stale"), "{}", _third.log.text());
    assert_eq!(env.run(&["status"]).await.code, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_removes_the_socket() {
    let env = TestEnv::new().await;
    let mut d = env.start_daemon().await;
    let pid = d.child.id().unwrap() as i32;
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = tokio::time::timeout(WAIT, d.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!env.socket().exists(), "socket file removed");
}

/// A stored registration the service no longer knows (revoked upstream, or a reset service
/// on the same endpoint) is dropped and replaced once: the login goes on with a new client
/// instead of failing with InvalidClientException from now on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_the_service_forgot_is_replaced_once() {
    use fake_aws::Fault;
    let env = TestEnv::new().await;
    let _d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);
    assert_eq!(env.run(&["logout", "corp"]).await.code, 0);
    assert_eq!(env.fake.calls(Op::RegisterClient), 1);
    env.fake
        .push_fault(Op::StartDeviceAuthorization, Fault::invalid_client());
    let out = env.login().await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        env.fake.calls(Op::RegisterClient),
        2,
        "one new registration"
    );
    assert_eq!(env.run(&["token", "corp"]).await.code, 0);
}
