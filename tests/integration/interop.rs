//! AWS interop with the real botocore: the exported token cache and `credential_process`,
//! across refreshes; cache file format, mode and atomic rewrites; role credentials routes.

use std::os::unix::fs::PermissionsExt;

use fake_aws::Op;

use crate::util::*;

/// The venv python with botocore that scripts/test prepares; required when it says so.
pub fn python() -> Option<String> {
    let p = std::env::var("SSO_AGENT_TEST_PYTHON")
        .ok()
        .filter(|p| !p.is_empty());
    if p.is_none() {
        assert!(
            std::env::var("SSO_AGENT_TEST_REQUIRE_BOTOCORE").is_err(),
            "botocore required but SSO_AGENT_TEST_PYTHON is unset"
        );
        eprintln!(
            "NOTE: SSO_AGENT_TEST_PYTHON unset; botocore interop skipped (scripts/test sets it)"
        );
    }
    p
}

async fn interop_env() -> TestEnv {
    let env = TestEnv::new().await;
    env.set_env("SSO_AGENT_EXPORT_AWS_CLI_CACHE", "true");
    let base = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&format!(
        "{base}\n[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\nregion = us-east-1\n\n[profile nope]\nsso_session = corp\nsso_account_id = 999999999999\nsso_role_name = Admin\n\n[profile proc]\ncredential_process = {BIN} credentials --profile dev\nregion = us-east-1\n"
    ));
    env
}

fn cache_file(env: &TestEnv) -> std::path::PathBuf {
    // sha1("corp"), WIRE.md §6.1
    env.home()
        .join(".aws/sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json")
}

pub fn last_bearer(env: &TestEnv) -> String {
    env.fake
        .requests()
        .into_iter()
        .rfind(|r| r.op == Op::GetRoleCredentials)
        .and_then(|r| r.header("x-amz-sso_bearer_token").map(String::from))
        .unwrap_or_default()
}

pub async fn botocore(env: &TestEnv, python: &str, profile: &str) -> serde_json::Value {
    let cmd = env.command(&[]);
    let std = cmd.as_std();
    let envs: Vec<_> = std
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
        .collect();
    let out = tokio::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/interop/botocore_creds.py"
        ))
        .arg(profile)
        .env_clear()
        .envs(envs)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "botocore failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_cache_and_credential_process_work_in_botocore() {
    let env = interop_env().await;
    let _d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);

    // The exported file: botocore's format, 0600 in a 0700 directory, no refresh secrets.
    let path = cache_file(&env);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["accessToken", "expiresAt", "region", "startUrl"]);
    let token = env.run(&["token", "corp"]).await.stdout.trim().to_string();
    assert_eq!(v["accessToken"], token.as_str());
    assert!(
        v["expiresAt"].as_str().unwrap().ends_with('Z')
            && v["expiresAt"].as_str().unwrap().len() == 20
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    // sso-agent's own credentials command: credential_process JSON and env exports.
    let out = env.run(&["credentials", "--profile", "dev"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let c: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(c["Version"], 1);
    assert!(c["Expiration"].as_str().unwrap().ends_with('Z'));
    let out = env
        .run(&["credentials", "--profile", "dev", "--format", "env"])
        .await;
    assert!(
        out.stdout.contains("export AWS_SESSION_TOKEN="),
        "{}",
        out.stdout
    );
    let out = env.run(&["credentials", "--profile", "nope"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("999999999999") && out.stderr.contains("Admin"),
        "{}",
        out.stderr
    );

    let Some(python) = python() else { return };
    // botocore's SSO provider uses the exported token.
    let got = botocore(&env, &python, "dev").await;
    assert_eq!(got["method"], "sso", "{got}");
    assert_eq!(last_bearer(&env), token);

    // After a daemon refresh, botocore uses the new token.
    let refreshed = env
        .run(&["token", "corp", "--min-validity", "999999"])
        .await
        .stdout
        .trim()
        .to_string();
    assert_ne!(refreshed, token);
    botocore(&env, &python, "dev").await;
    assert_eq!(
        last_bearer(&env),
        refreshed,
        "botocore read the rewritten cache"
    );

    // credential_process through botocore.
    let got = botocore(&env, &python, "proc").await;
    assert_eq!(got["method"], "custom-process", "{got}");
    assert_eq!(got["hasToken"], true);

    // Logout removes the export and ends the session upstream.
    let out = env.run(&["logout", "corp"]).await;
    assert_eq!(out.code, 0);
    assert!(out.stderr.contains("ended upstream"), "{}", out.stderr);
    assert!(!cache_file(&env).exists());
    assert_eq!(env.fake.calls(Op::Logout), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_see_a_partial_cache_file() {
    let env = interop_env().await;
    let _d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);
    let path = cache_file(&env);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let bytes = std::fs::read(&path).expect("the file is always there");
                let v: serde_json::Value =
                    serde_json::from_slice(&bytes).expect("always whole JSON");
                assert!(
                    v["accessToken"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("fake-at-"))
                );
                reads += 1;
            }
            reads
        })
    };
    for _ in 0..20 {
        assert_eq!(
            env.run(&["token", "corp", "--min-validity", "999999"])
                .await
                .code,
            0
        );
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let reads = reader.join().unwrap();
    assert!(reads > 0);
    assert!(
        env.fake.calls(Op::CreateToken) >= 21,
        "20 refreshes rewrote the file"
    );
}

/// Issue 14 #7, end to end: after `logout`, `credentials` no longer hands out the cached
/// role credentials; it exits 4 (login required) without asking the portal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_drops_role_credentials_and_credentials_needs_a_login() {
    let env = interop_env().await;
    let _d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);
    let out = env.run(&["credentials", "--profile", "dev"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let out = env.run(&["logout", "corp"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let portal_calls = env.fake.calls(Op::GetRoleCredentials);
    let out = env.run(&["credentials", "--profile", "dev"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(
        env.fake.calls(Op::GetRoleCredentials),
        portal_calls,
        "nothing fetched or served after logout"
    );
}
