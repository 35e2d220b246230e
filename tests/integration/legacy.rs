//! Legacy SSO profiles (SPEC "Legacy profiles"): `sso_start_url`/`sso_region` in each
//! `[profile]`, no `[sso-session]`. One session per (start URL, region), addressed by
//! `--profile`, exported under sha1(start URL) for the AWS CLI and older SDKs (real botocore
//! reads it), mixed with the new form, added and removed by hot reload.

use fake_aws::Op;
use sha1::{Digest, Sha1};

use crate::util::*;

fn legacy_profiles(start_url: &str) -> String {
    format!(
        "[profile a]\nsso_start_url = {start_url}\nsso_region = us-east-1\nsso_account_id = 111122223333\nsso_role_name = Admin\nregion = us-east-1\n\n\
         [profile b]\nsso_start_url = {start_url}\nsso_region = us-east-1\nsso_account_id = 111122223333\nsso_role_name = ReadOnly\n"
    )
}

/// `legacy-<first host label>-<region>`, as config derives it.
fn derived_name(start_url: &str) -> String {
    let host = url::Url::parse(start_url).unwrap();
    let label = host
        .host_str()
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .to_string();
    format!("legacy-{label}-us-east-1")
}

fn start_url_cache_file(env: &TestEnv, start_url: &str) -> std::path::PathBuf {
    let hex: String = Sha1::digest(start_url.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    env.home().join(format!(".aws/sso/cache/{hex}.json"))
}

async fn login_profile(env: &TestEnv, profile: &str) -> Output {
    let child = env
        .command(&[
            "login",
            "--profile",
            profile,
            "--device-code",
            "--no-browser",
        ])
        .spawn()
        .unwrap();
    let code = env
        .fake
        .wait_for_pending_user_code(WAIT)
        .await
        .expect("a user code");
    assert!(env.fake.approve(&code));
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn sessions(v: &serde_json::Value) -> Vec<(String, bool, String)> {
    v["data"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["legacy"].as_bool().unwrap(),
                s["startUrl"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_only_config_is_one_session_served_by_profile() {
    let env = TestEnv::new().await;
    env.set_env("SSO_AGENT_EXPORT_AWS_CLI_CACHE", "true");
    env.write_config(&legacy_profiles(&env.start_url));
    let name = derived_name(&env.start_url);
    let _d = env.start_daemon().await;

    let (_, v) = env.http("GET", "/v1/status", None).await;
    assert_eq!(
        sessions(&v),
        [(name.clone(), true, env.start_url.clone())],
        "two profiles, one start URL: one legacy session"
    );
    let out = env.run(&["status"]).await;
    assert!(
        out.stdout.contains(&format!("[{name}]")) && out.stdout.contains("legacy profiles"),
        "{}",
        out.stdout
    );

    let out = login_profile(&env, "a").await;
    assert_eq!(out.code, 0, "{out:?}");
    let reg = env
        .fake
        .requests()
        .into_iter()
        .find(|r| r.op == Op::RegisterClient)
        .unwrap();
    assert!(
        reg.body_text().contains("sso:account:access"),
        "registered with sso:account:access so it refreshes: {}",
        reg.body_text()
    );

    // token by profile and by session name; the export under sha1(start URL).
    let by_profile = env.run(&["token", "--profile", "b"]).await;
    assert_eq!(by_profile.code, 0, "{by_profile:?}");
    let token = by_profile.stdout.trim().to_string();
    assert_eq!(env.run(&["token", &name]).await.stdout.trim(), token);
    let file = start_url_cache_file(&env, &env.start_url);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(v["accessToken"], token.as_str());
    assert_eq!(v["startUrl"], env.start_url.as_str());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // credentials as today, for both profiles.
    for p in ["a", "b"] {
        let out = env.run(&["credentials", "--profile", p]).await;
        assert_eq!(out.code, 0, "{p}: {out:?}");
        let c: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(c["Version"], 1);
    }
    let creds: Vec<_> = env
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.op == Op::GetRoleCredentials)
        .collect();
    assert!(creds.iter().any(|r| r.path.contains("role_name=ReadOnly")));

    // real botocore, which can only read a legacy profile's token from sha1(start URL).
    if let Some(python) = crate::interop::python() {
        let got = crate::interop::botocore(&env, &python, "a").await;
        assert_eq!(got["method"], "sso", "{got}");
        assert_eq!(crate::interop::last_bearer(&env), token);
    }

    // a refresh rewrites it; logout by profile removes it.
    let refreshed = env
        .run(&["token", "--profile", "a", "--min-validity", "999999"])
        .await;
    assert_ne!(refreshed.stdout.trim(), token, "it refreshes");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(v["accessToken"], refreshed.stdout.trim());
    let out = env.run(&["logout", "--profile", "b"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!file.exists(), "logout removes the start-URL export");
    let out = env.run(&["token", "--profile", "a"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    let out = env.run(&["token", "--profile", "nosuch"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("no profile named `nosuch`"),
        "{}",
        out.stderr
    );
}

fn replace_atomically(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_forms_and_hot_reload_adding_and_removing_a_legacy_profile() {
    let env = TestEnv::new().await;
    let base = std::fs::read_to_string(env.config_path()).unwrap();
    let legacy_url = format!("{}/legacy", env.start_url);
    let name = derived_name(&legacy_url);
    let mixed = format!(
        "{base}\n[profile new]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\n\n{}",
        legacy_profiles(&legacy_url)
    );
    env.write_config(&mixed);
    let d = env.start_daemon().await;
    let (_, v) = env.http("GET", "/v1/status", None).await;
    assert_eq!(
        sessions(&v),
        [
            ("corp".into(), false, env.start_url.clone()),
            (name.clone(), true, legacy_url.clone())
        ]
    );
    // each profile reaches its own session
    assert_eq!(login_profile(&env, "a").await.code, 0);
    assert_eq!(env.run(&["token", "--profile", "b"]).await.code, 0);
    assert_eq!(
        env.run(&["token", "--profile", "new"]).await.code,
        4,
        "corp is not logged in"
    );

    // removing the legacy profiles removes their session
    replace_atomically(&env.config_path(), &base);
    assert!(
        d.log.wait_for_n("configuration loaded", 2).await,
        "{}",
        d.log.text()
    );
    let (_, v) = env.http("GET", "/v1/status", None).await;
    assert_eq!(
        sessions(&v),
        [("corp".into(), false, env.start_url.clone())]
    );

    // adding one back brings it back, its login kept in the store
    replace_atomically(&env.config_path(), &mixed);
    assert!(
        d.log.wait_for_n("configuration loaded", 3).await,
        "{}",
        d.log.text()
    );
    let (_, v) = env.http("GET", "/v1/status", None).await;
    assert_eq!(sessions(&v)[1], (name.clone(), true, legacy_url.clone()));
    let out = env.run(&["token", "--profile", "a"]).await;
    assert_eq!(out.code, 0, "the token was kept: {out:?}");

    // a profile with both forms whose keys disagree: a config error at its line, old kept
    let bad = format!(
        "{base}\n[profile both]\nsso_session = corp\nsso_start_url = {legacy_url}\nsso_account_id = 1\nsso_role_name = R\n"
    );
    replace_atomically(&env.config_path(), &bad);
    assert!(
        d.log.wait_for("keeping the last good configuration").await,
        "{}",
        d.log.text()
    );
    let (_, v) = env.http("GET", "/v1/status", None).await;
    let problem = v["data"]["configError"].as_str().unwrap_or_default();
    let line = base.lines().count() + 2;
    assert!(
        problem.contains(&format!(
            "{}:{line}: profile both sets sso_start_url differently from [sso-session corp]",
            env.config_path().display()
        )),
        "{problem}"
    );
    assert_eq!(sessions(&v).len(), 2, "the last good sessions are kept");
}
