//! The socket API as `curl --unix-socket` sees it: envelope everywhere, error codes, modes,
//! and the peer-uid check.

use std::os::unix::fs::PermissionsExt;

use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_on_every_answer() {
    let env = TestEnv::new().await;
    let _d = env.start_daemon().await;

    let (status, v) = env.http("GET", "/v1/status", None).await;
    assert_eq!(status, 200);
    assert_eq!(v["success"], true);
    for k in [
        "version",
        "pid",
        "startedAt",
        "socket",
        "store",
        "configFile",
        "sessions",
    ] {
        assert!(v["data"].get(k).is_some(), "status lacks {k}: {v}");
    }

    for (method, path, code, http) in [
        ("GET", "/nope", "NOT_FOUND", 404),
        ("GET", "/v1/sessions/corp/bogus", "NOT_FOUND", 404),
        ("DELETE", "/v1/status", "NOT_FOUND", 404),
        ("POST", "/v1/sessions/corp/token", "NOT_FOUND", 404),
        ("GET", "/v1/sessions/nosuch/token", "NOT_FOUND", 404),
        ("GET", "/v1/sessions/corp/token", "LOGIN_REQUIRED", 401),
        (
            "GET",
            "/v1/sessions/corp/token?minValidity=abc",
            "VALIDATION_ERROR",
            400,
        ),
        (
            "GET",
            "/v1/sessions/corp/token?wait=-3",
            "VALIDATION_ERROR",
            400,
        ),
    ] {
        let (status, v) = env.http(method, path, None).await;
        assert_eq!(status, http, "{method} {path}: {v}");
        assert_eq!(v["success"], false, "{method} {path}");
        assert_eq!(v["error"]["code"], code, "{method} {path}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }

    let (status, v) = env
        .http("POST", "/v1/sessions/corp/login", Some("{not json"))
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("VALIDATION_ERROR")),
        "{v}"
    );
    let (status, v) = env
        .http(
            "POST",
            "/v1/sessions/corp/login",
            Some(r#"{"flow":"carrier_pigeon"}"#),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("VALIDATION_ERROR")),
        "{v}"
    );
    let big = format!(
        r#"{{"flow":"device_code","pad":"{}"}}"#,
        "x".repeat(100_000)
    );
    let (status, v) = env
        .http("POST", "/v1/sessions/corp/login", Some(&big))
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE")),
        "{v}"
    );

    // The daemon still answers after all that.
    let (status, _) = env.http("GET", "/v1/status", None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_directory_0700_and_socket_0600() {
    let env = TestEnv::new().await;
    let _d = env.start_daemon().await;
    let dir = std::fs::metadata(env.socket().parent().unwrap()).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o700);
    let sock = std::fs::symlink_metadata(env.socket()).unwrap();
    assert_eq!(sock.permissions().mode() & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_uid_is_forbidden_and_logged() {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("NOTE: not root; cannot act as another user, skipped");
        return;
    }
    let env = TestEnv::new().await;
    let d = env.start_daemon().await;
    // Open the permissions so `nobody` can reach the socket at all; the daemon must still
    // refuse by peer uid.
    for p in [
        env.dir.path().to_path_buf(),
        env.dir.path().join("run"),
        env.socket().parent().unwrap().to_path_buf(),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(env.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = tokio::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "curl",
            "-s",
            "--unix-socket",
        ])
        .arg(env.socket())
        .arg("http://localhost/v1/sessions/corp/token")
        .output()
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(
        v["error"]["code"],
        "FORBIDDEN",
        "{body} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(d.log.wait_for("another user").await);
    assert!(
        d.log.text().contains("65534"),
        "logs the uid: {}",
        d.log.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_cannot_dump_core() {
    let env = TestEnv::new().await;
    let d = env.start_daemon().await;
    let pid = d.child.id().unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert!(
        core.split_whitespace().filter(|w| *w == "0").count() >= 2,
        "{core}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_keyring_still_starts_in_memory_and_says_why() {
    let env = TestEnv::new().await;
    env.set_env("SSO_AGENT_STORE", "keyring");
    env.set_env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    let d = env.start_daemon().await;
    assert_eq!(
        d.log.text().matches("cannot be used").count(),
        1,
        "one clear warning:\n{}",
        d.log.text()
    );
    let (_, v) = env.http("GET", "/v1/status", None).await;
    let store = &v["data"]["store"];
    assert_eq!(store["backend"], "keyring");
    assert_eq!(store["available"], false);
    assert!(
        store["detail"].as_str().is_some_and(|s| !s.is_empty()),
        "{store}"
    );
    let human = env.run(&["status"]).await;
    assert!(human.stdout.contains("UNAVAILABLE"), "{}", human.stdout);
    // Tokens still work, in memory.
    assert_eq!(env.login().await.code, 0);
    assert_eq!(env.run(&["token", "corp"]).await.code, 0);
}
