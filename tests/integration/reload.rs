//! Hot reload: an editor's atomic replace adds a session without a restart; a broken file
//! keeps the last good sessions and is reported with file and line.

use crate::util::*;

fn replace_atomically(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_changes_apply_live_and_broken_files_keep_the_old() {
    let env = TestEnv::new().await;
    let d = env.start_daemon().await;
    let base = std::fs::read_to_string(env.config_path()).unwrap();
    replace_atomically(
        &env.config_path(),
        &format!(
            "{base}\n[sso-session dev]\nsso_start_url = {}/dev\nsso_region = eu-west-1\n",
            env.start_url
        ),
    );
    assert!(
        d.log.wait_for_n("configuration loaded", 2).await,
        "{}",
        d.log.text()
    );
    let (_, v) = env.http("GET", "/v1/status", None).await;
    let names: Vec<&str> = v["data"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["corp", "dev"]);

    replace_atomically(
        &env.config_path(),
        "[sso-session corp]\nsso_start_url = https://x\n[broken\n",
    );
    assert!(
        d.log.wait_for("keeping the last good configuration").await,
        "{}",
        d.log.text()
    );
    let (_, v) = env.http("GET", "/v1/status", None).await;
    assert_eq!(
        v["data"]["sessions"].as_array().unwrap().len(),
        2,
        "old sessions kept"
    );
    let problem = v["data"]["configError"].as_str().unwrap_or_default();
    assert!(
        problem.contains(&env.config_path().display().to_string()),
        "names the file: {problem}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_settings_reload_live() {
    let env = TestEnv::new().await;
    let dir = env.home().join(".config/sso-agent");
    std::fs::create_dir_all(&dir).unwrap();
    let d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);
    let next_refresh = |v: &serde_json::Value| {
        let s = &v["data"]["sessions"][0];
        let at = |k: &str| {
            time::OffsetDateTime::parse(
                s[k].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        };
        at("accessTokenExpiresAt") - at("nextRefreshAt")
    };
    let (_, v) = env.http("GET", "/v1/status", None).await;
    assert!(
        next_refresh(&v) < time::Duration::minutes(12),
        "default margin 10m: {v}"
    );

    replace_atomically(&dir.join("config.toml"), "refresh_margin = \"30m\"\n");
    assert!(
        d.log.wait_for("agent settings reloaded").await,
        "{}",
        d.log.text()
    );
    // the running session re-evaluated its schedule with the new margin (no restart)
    assert!(
        d.log.wait_for("schedule re-evaluated").await,
        "{}",
        d.log.text()
    );
    let (_, v) = env.http("GET", "/v1/status", None).await;
    assert!(
        next_refresh(&v) >= time::Duration::minutes(30),
        "new margin applied: {v}"
    );
    assert_eq!(env.run(&["token", "corp"]).await.code, 0, "no login lost");

    replace_atomically(&dir.join("config.toml"), "refresh_margin = \"soon\"\n");
    assert!(d.log.wait_for("keeping the running ones").await);
    let (_, v) = env.http("GET", "/v1/status", None).await;
    assert!(
        v["data"]["configError"]
            .as_str()
            .unwrap()
            .contains("refresh_margin"),
        "{v}"
    );
}
