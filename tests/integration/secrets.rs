//! No secret leaks: login, refresh, status, errors and logout at `trace` logging; then every
//! captured output and every file under the temp home is searched for every secret the fake
//! issued. Only `token`'s stdout may hold one.

use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_status_errors_or_files() {
    let env = TestEnv::new().await;
    let base = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&format!("{base}\n[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\n"));
    let mut d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);
    // role credentials are secrets too (stdout of `credentials` is their only way out)
    assert_eq!(env.run(&["credentials", "--profile", "dev"]).await.code, 0);
    assert_eq!(
        env.run(&["credentials", "--profile", "dev", "--format", "env"])
            .await
            .code,
        0
    );
    assert_eq!(env.run(&["token", "corp"]).await.code, 0);
    assert_eq!(
        env.run(&["token", "corp", "--json", "--min-validity", "999999"])
            .await
            .code,
        0
    );
    env.fake.revoke_all_refresh_tokens();
    env.run(&["token", "corp", "--min-validity", "999999"])
        .await; // invalid_grant path
    env.run(&["status", "--json"]).await;
    env.run(&["status"]).await;
    let (_, status) = env.http("GET", "/v1/status", None).await;
    env.run(&["logout", "corp"]).await;
    env.run(&["token", "corp"]).await;
    d.child.kill().await.unwrap();
    let _ = d.child.wait().await;

    let secrets = env.fake.issued_secrets();
    assert!(
        secrets.len() >= 5,
        "the fake issued secrets: {}",
        secrets.len()
    );
    let log = d.log.text();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "logging ran at trace"
    );
    let status = status.to_string();
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "daemon log leaks a secret");
        assert!(!status.contains(s.as_str()), "status leaks a secret");
        for (args, out) in env.transcript.lock().unwrap().iter() {
            assert!(
                !out.stderr.contains(s.as_str()),
                "stderr of {args:?} leaks a secret"
            );
            if !matches!(
                args.first().map(String::as_str),
                Some("token" | "credentials")
            ) {
                assert!(
                    !out.stdout.contains(s.as_str()),
                    "stdout of {args:?} leaks a secret"
                );
            }
        }
        for (path, bytes) in all_files(env.dir.path()) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(s.as_str()),
                "{} holds a secret",
                path.display()
            );
        }
    }
}
