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

fn mkfifo(path: &std::path::Path) {
    // The mkfifo(1) tool (coreutils; macOS has it too): rustix's mkfifoat is Linux-only.
    let status = std::process::Command::new("mkfifo")
        .arg("-m")
        .arg("600")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

fn sigterm(d: &Daemon) {
    let pid = d.child.id().unwrap() as i32;
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
}

/// Issue 14 #6: reading the config (`cat`, an SDK, the daemon itself) is not a change. The
/// watcher logs each ignored event at trace, so the test waits for those (an event, not a
/// sleep), then makes one real change and sees exactly one reload, and the daemon's own read
/// of the new file ignored rather than reloaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_the_config_does_not_reload_it() {
    let env = TestEnv::new().await;
    let d = env.start_daemon().await;
    assert!(d.log.wait_for("configuration loaded").await);
    let ignored = "config watcher: not a change, ignored";

    let cat = tokio::process::Command::new("cat")
        .arg(env.config_path())
        .output()
        .await
        .unwrap();
    assert!(cat.status.success());
    let reloads = || d.log.text().matches("configuration loaded").count();
    // (before the fix this waits in vain while the reads reload the file again and again)
    let seen = d.log.wait_for(ignored).await;
    assert_eq!(reloads(), 1, "cat's read caused reloads:\n{}", d.log.text());
    assert!(seen, "cat's read was not seen as a read:\n{}", d.log.text());
    let before = d.log.text().matches(ignored).count();
    {
        use std::io::Read;
        let mut f = std::fs::File::open(env.config_path()).unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
    }
    assert!(
        d.log.wait_for_n(ignored, before + 1).await,
        "{}",
        d.log.text()
    );
    assert_eq!(reloads(), 1, "a read-only open caused a reload");

    let base = std::fs::read_to_string(env.config_path()).unwrap();
    let after_reads = d.log.text().matches(ignored).count();
    replace_atomically(
        &env.config_path(),
        &format!(
            "{base}\n[sso-session dev]\nsso_start_url = {}/dev\nsso_region = eu-west-1\n",
            env.start_url
        ),
    );
    assert!(d.log.wait_for("sessions=2").await, "{}", d.log.text());
    // the reload's own read of the file comes back as events: ignored, not another reload
    assert!(
        d.log.wait_for_n(ignored, after_reads + 1).await,
        "{}",
        d.log.text()
    );
    assert_eq!(
        reloads(),
        2,
        "the start and the one change, nothing for the reads:\n{}",
        d.log.text()
    );
}

/// Issue 14 #9: a FIFO as the AWS config neither stalls the start nor SIGTERM; it is shown
/// as a problem and the daemon serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_as_the_aws_config_is_reported_and_the_daemon_serves() {
    let env = TestEnv::new().await;
    std::fs::remove_file(env.config_path()).unwrap();
    mkfifo(&env.config_path());
    let mut d = env.start_daemon().await;
    let (_, v) = env.http("GET", "/v1/status", None).await;
    let problems = v["data"]["configProblems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{v}");
    let p = problems[0]["problem"].as_str().unwrap();
    assert!(
        p.contains("FIFO") && p.contains("not a regular file"),
        "{p}"
    );
    assert_eq!(
        problems[0]["file"].as_str().unwrap(),
        env.config_path().display().to_string()
    );
    let st = env.run(&["status"]).await;
    assert!(st.stdout.contains("not a regular file"), "{}", st.stdout);
    sigterm(&d);
    let status = tokio::time::timeout(WAIT, d.child.wait())
        .await
        .expect("SIGTERM ends the daemon")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// Issue 14 #9: the same rule for every config read, by clients too: a FIFO, a device, a
/// directory and a file over 16 MiB, as the agent TOML or as the AWS config, are one clear
/// line each (exit 2), and nothing hangs (`run` times out and fails the test if it does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_and_huge_config_files_are_refused_in_one_line() {
    let env = TestEnv::new().await;
    let dir = env.home().join("odd");
    std::fs::create_dir_all(dir.join("a-directory")).unwrap();
    mkfifo(&dir.join("fifo"));
    let big = std::fs::File::create(dir.join("big")).unwrap();
    big.set_len(17 * 1024 * 1024).unwrap();
    let cases = [
        (dir.join("fifo"), "FIFO"),
        (std::path::PathBuf::from("/dev/zero"), "character device"),
        (dir.join("a-directory"), "directory"),
        (dir.join("big"), "larger than 16 MiB"),
    ];
    for (path, what) in &cases {
        for var in ["SSO_AGENT_CONFIG", "AWS_CONFIG_FILE"] {
            let t = TestEnv::new().await;
            t.set_env(var, &path.display().to_string());
            // `token` without a session name reads the settings, then the AWS config.
            let out = t.run(&["token"]).await;
            assert_eq!(out.code, 2, "{var}={}: {}", path.display(), out.stderr);
            assert!(
                out.stderr.contains(what) && out.stderr.contains(&path.display().to_string()),
                "{var}: {}",
                out.stderr
            );
            assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
        }
    }
}

/// Issue 14 #11 and #14: each file has its own problem slot, cleared when that file loads;
/// a file that does not parse is named at the faulty line in plain words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_config_file_has_its_own_problem_cleared_when_it_loads() {
    let env = TestEnv::new().await;
    let toml_dir = env.home().join(".config/sso-agent");
    std::fs::create_dir_all(&toml_dir).unwrap();
    let toml = toml_dir.join("config.toml");
    let d = env.start_daemon().await;
    let good_aws = std::fs::read_to_string(env.config_path()).unwrap();
    let problems = |v: &serde_json::Value| -> Vec<(String, String)> {
        v["data"]["configProblems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["file"].as_str().unwrap().to_string(),
                    p["problem"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };

    replace_atomically(&toml, "refresh_margin = \"soon\"\n");
    assert!(d.log.wait_for("keeping the running ones").await);
    // a good AWS config load does not clear the TOML's problem (they shared one slot)
    replace_atomically(&env.config_path(), &format!("{good_aws}# edited\n"));
    assert!(d.log.wait_for_n("configuration loaded", 2).await);
    let (_, v) = env.http("GET", "/v1/status", None).await;
    let p = problems(&v);
    assert_eq!(p.len(), 1, "{v}");
    assert_eq!(p[0].0, toml.display().to_string());
    replace_atomically(
        &env.config_path(),
        &format!(
            "{good_aws}\n[profile dev]\nsso_session = corp\n\n[sso-session broken\nsso_region = eu-west-1\n# end\n"
        ),
    );
    assert!(d.log.wait_for("keeping the last good configuration").await);
    let (_, v) = env.http("GET", "/v1/status", None).await;
    let p = problems(&v);
    assert_eq!(p.len(), 2, "{v}");
    let aws_file = env.config_path().display().to_string();
    assert_eq!(p[0].0, aws_file);
    // line 9: the 4 good lines, a blank, the profile (2 lines), a blank
    let want = format!(
        "{aws_file}:9: \"[sso-session broken\" opens a section header but has no closing ']'"
    );
    assert!(p[0].1.starts_with(&want), "{}", p[0].1);
    assert!(!p[0].1.contains("expecting"), "{}", p[0].1);
    assert_eq!(p[1].0, toml.display().to_string());
    assert!(p[1].1.contains("refresh_margin"), "{}", p[1].1);
    assert!(d.log.text().contains(&want), "the log says the same");

    // fixing the TOML clears its slot only
    replace_atomically(&toml, "refresh_margin = \"20m\"\n");
    assert!(d.log.wait_for("agent settings reloaded").await);
    let (_, v) = env.http("GET", "/v1/status", None).await;
    let p = problems(&v);
    assert_eq!(p.len(), 1, "{v}");
    assert_eq!(p[0].0, aws_file);
    let legacy = v["data"]["configError"].as_str().unwrap();
    assert!(!legacy.contains("refresh_margin"), "{legacy}");

    // fixing the AWS config clears the rest
    replace_atomically(&env.config_path(), &good_aws);
    assert!(d.log.wait_for_n("configuration loaded", 3).await);
    let (_, v) = env.http("GET", "/v1/status", None).await;
    assert!(problems(&v).is_empty(), "{v}");
    assert!(v["data"]["configError"].is_null(), "{v}");
}

/// Issue 14 #16: the optional settings directory does not exist (the default): no warning at
/// start, and creating it and the file later is picked up without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_settings_directory_is_watched_through_its_parent() {
    let env = TestEnv::new().await;
    let dir = env.home().join(".config/sso-agent");
    assert!(!dir.exists());
    // "serving" comes after the watches are set up
    let d = env.start_daemon().await;
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), "refresh_margin = \"30m\"\n").unwrap();
    assert!(
        d.log.wait_for("refresh_margin=1800s").await,
        "{}",
        d.log.text()
    );
    assert!(
        !d.log.text().contains("cannot watch"),
        "no warning for an optional file:\n{}",
        d.log.text()
    );
    assert!(d.log.text().contains("watching its nearest parent"));
}
