//! Running as a service: the unit files verified by systemd's own tool, the plist parsed,
//! socket activation through `systemd-socket-activate`, readiness on a notify socket, and
//! `install --dry-run` touching nothing.

use crate::util::*;

fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn systemd_units_verify() {
    if !have("systemd-analyze") {
        eprintln!("NOTE: systemd-analyze missing; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sso-agent.service"),
        sso_agent::service::render_systemd_service(std::path::Path::new(BIN)),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sso-agent.socket"),
        sso_agent::service::render_systemd_socket(),
    )
    .unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["--user", "--man=no", "verify"])
        .arg(dir.path().join("sso-agent.service"))
        .arg(dir.path().join("sso-agent.socket"))
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("Unknown key"), "typo in a unit: {stderr}");
    assert!(!stderr.contains("Unknown section"), "{stderr}");
}

#[test]
fn launchd_plist_parses_with_the_keys() {
    let out = std::process::Command::new("python3")
        .args(["-c", "import plistlib,sys,json; d=plistlib.load(open(sys.argv[1],'rb')); print(json.dumps(d))"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/launchd/sso-agent.plist"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Label"], "io.github.sso-agent");
    assert_eq!(v["ProgramArguments"][1], "run");
    assert_eq!(v["RunAtLoad"], true);
    assert_eq!(v["KeepAlive"], true);
    assert_eq!(v["ProcessType"], "Background");
    assert!(
        v["StandardErrorPath"]
            .as_str()
            .unwrap()
            .contains("Library/Logs")
    );
    assert!(v["EnvironmentVariables"]["SSO_AGENT_SOCKET"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_dry_run_prints_and_touches_nothing() {
    let env = TestEnv::new().await;
    let out = env.run(&["install", "--dry-run"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let exe = std::fs::canonicalize(BIN).unwrap();
    assert!(
        out.stdout
            .contains(&format!("ExecStart={} run", exe.display())),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&format!(
            "would write {}",
            env.home()
                .join(".config/systemd/user/sso-agent.service")
                .display()
        )));
    assert!(
        out.stdout
            .contains("systemctl --user enable --now sso-agent.socket")
    );
    assert!(
        !env.home().join(".config/systemd").exists(),
        "dry run wrote files"
    );
    let out = env.run(&["uninstall", "--dry-run"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("would remove"));
    // Without a systemd user instance, a real install says what to do instead.
    let out = env.run(&["install"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("sso-agent run"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_activation_and_readiness() {
    if !have("systemd-socket-activate") {
        eprintln!("NOTE: systemd-socket-activate missing; skipped");
        return;
    }
    let env = TestEnv::new().await;
    std::fs::create_dir_all(env.socket().parent().unwrap()).unwrap();
    let notify_path = env.dir.path().join("notify.sock");
    let notify = tokio::net::UnixDatagram::bind(&notify_path).unwrap();
    env.set_env("NOTIFY_SOCKET", notify_path.to_str().unwrap());
    // systemd-socket-activate passes only LISTEN_* and what -E names to the daemon.
    let cmd = env.command(&[]);
    let mut activator = tokio::process::Command::new("systemd-socket-activate");
    activator.arg("-l").arg(env.socket());
    for (k, v) in cmd.as_std().get_envs() {
        if let Some(v) = v {
            activator
                .arg("-E")
                .arg(format!("{}={}", k.to_string_lossy(), v.to_string_lossy()));
        }
    }
    activator.args([BIN, "run"]);
    activator
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = activator.spawn().unwrap();
    // systemd-socket-activate listens first (and says so); the daemon starts on the first
    // connection.
    let listening = wait_for_line(child.stderr.take().unwrap(), "Listening on", WAIT).await;
    assert_eq!(
        listening,
        Ok(true),
        "systemd-socket-activate did not listen"
    );
    let out = env.run(&["status", "--json"]).await;
    assert_eq!(out.code, 4, "status through the activated socket: {out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["sessions"][0]["name"], "corp");

    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(WAIT, notify.recv(&mut buf))
        .await
        .expect("READY=1 arrives")
        .unwrap();
    assert_eq!(&buf[..n], b"READY=1\n");

    let pid = child.id().unwrap() as i32;
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let n = tokio::time::timeout(WAIT, notify.recv(&mut buf))
        .await
        .expect("STOPPING=1 arrives")
        .unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1\n");
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        env.socket().exists(),
        "the activated socket belongs to the service manager; not removed"
    );
}
