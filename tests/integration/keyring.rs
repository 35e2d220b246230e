//! The real keyring going away under a running daemon: a private D-Bus with its own
//! gnome-keyring per test (so it can be restarted or frozen without touching other tests).
//! HARDENING T4: after the keyring restarts, writes reconnect and nothing is lost across a
//! daemon restart. T5: a keyring that stops answering costs a call a few seconds, never a
//! session.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::util::*;

/// A D-Bus session bus and a gnome-keyring on it, both ours.
struct PrivateKeyring {
    _bus: Child,
    keyring: Option<Child>,
    address: String,
    data: PathBuf,
}

fn have(cmd: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl PrivateKeyring {
    /// `None` (the test is skipped) when the run provides no keyring at all.
    async fn start(dir: &Path) -> Option<PrivateKeyring> {
        if !keyring_available() || !have("dbus-daemon") || !have("gnome-keyring-daemon") {
            eprintln!("NOTE: no dbus-daemon/gnome-keyring here; skipped");
            return None;
        }
        let mut bus = Command::new("dbus-daemon")
            .args([
                "--session",
                "--nofork",
                "--print-address=1",
                &format!("--address=unix:path={}", dir.join("bus").display()),
            ])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = bus.stdout.take().unwrap();
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let address = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let data = dir.join("keyring-data");
        std::fs::create_dir_all(&data).unwrap();
        let mut k = PrivateKeyring {
            _bus: bus,
            keyring: None,
            address,
            data,
        };
        k.start_keyring().await;
        Some(k)
    }

    async fn start_keyring(&mut self) {
        use tokio::io::AsyncWriteExt;
        let mut child = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("XDG_DATA_HOME", &self.data)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // The unlock password (a line; a bare EOF creates no login collection).
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"test-keyring\n").await.unwrap();
        drop(stdin);
        self.keyring = Some(child);
        self.wait_for_owner(true).await;
    }

    async fn stop_keyring(&mut self) {
        let mut child = self.keyring.take().unwrap();
        child.kill().await.unwrap();
        self.wait_for_owner(false).await;
    }

    fn signal(&self, sig: rustix::process::Signal) {
        let pid = self.keyring.as_ref().unwrap().id().unwrap();
        rustix::process::kill_process(rustix::process::Pid::from_raw(pid as i32).unwrap(), sig)
            .unwrap();
    }

    /// Waits until the Secret Service name is (or is no longer) owned on our bus: asked of
    /// the bus every 50 ms, for at most `WAIT`.
    async fn wait_for_owner(&self, owned: bool) {
        let want = if owned {
            "boolean true"
        } else {
            "boolean false"
        };
        let ask = async {
            loop {
                let out = Command::new("dbus-send")
                    .args([
                        &format!("--bus={}", self.address),
                        "--print-reply",
                        "--dest=org.freedesktop.DBus",
                        "/org/freedesktop/DBus",
                        "org.freedesktop.DBus.NameHasOwner",
                        "string:org.freedesktop.secrets",
                    ])
                    .output()
                    .await
                    .unwrap();
                if String::from_utf8_lossy(&out.stdout).contains(want) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(WAIT, ask)
            .await
            .unwrap_or_else(|_| panic!("the keyring did not become owned={owned}"));
    }
}

async fn env_on(k: &PrivateKeyring) -> TestEnv {
    let env = TestEnv::new().await;
    env.set_env("DBUS_SESSION_BUS_ADDRESS", &k.address);
    env.set_env("SSO_AGENT_STORE", "keyring");
    env
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

/// HARDENING T4: the Secret Service restarts (same data) under a running daemon; the next
/// refresh reconnects and saves the rotated refresh token; status says the keyring is fine;
/// a restarted daemon serves and refreshes without a new login. (The old daemon kept its
/// stale session: every write failed with NoSession, status said ok, and after a restart it
/// loaded the stale record and burned the rotated refresh token.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyring_restart_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut k) = PrivateKeyring::start(dir.path()).await else {
        return;
    };
    let env = env_on(&k).await;
    let mut d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);

    k.stop_keyring().await;
    k.start_keyring().await;
    // A refresh now: the rotated refresh token must reach the keyring.
    let out = env.run(&["token", "corp", "--min-validity", "3600"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let status = json(&env.run(&["status", "--json"]).await);
    assert_eq!(status["store"]["available"], true, "{status}");
    assert!(
        status["sessions"][0]["lastError"].is_null(),
        "no hidden write failure: {status}"
    );

    d.child.kill().await.unwrap();
    let _d = env.start_daemon().await;
    // Without a login: the saved record is the rotated one, so this refresh works and the
    // chain goes on (with the stale one it ends in invalid_grant: state "expiring").
    let out = env.run(&["token", "corp", "--min-validity", "3600"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let status = json(&env.run(&["status", "--json"]).await);
    let s = &status["sessions"][0];
    assert_eq!(s["state"], "valid", "{status}");
    assert_eq!(s["refreshable"], true, "{status}");
    assert!(s["lastError"].is_null(), "{status}");
}

/// HARDENING T5: a keyring that stops answering (SIGSTOP) costs each call at most a few
/// seconds and ends in a clear store error; the daemon keeps answering meanwhile. (The old
/// daemon's logout and login hung for minutes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_keyring_never_stalls_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let Some(k) = PrivateKeyring::start(dir.path()).await else {
        return;
    };
    let env = env_on(&k).await;
    let _d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);

    k.signal(rustix::process::Signal::STOP);
    let out = env.run(&["logout", "corp"]).await; // `run` gives up after 30 s
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("keyring"), "{out:?}");
    assert!(out.stderr.contains("did not answer"), "{out:?}");
    let status = env.run(&["status", "--json"]).await;
    let status = json(&status);
    assert_eq!(status["store"]["available"], false, "{status}");
    k.signal(rustix::process::Signal::CONT);
}
