//! The standing "other user" suite: a second uid (or a planted link) at every path the daemon
//! or a client touches. A socket directory someone else owns, one open to others, a link at
//! the directory or at the socket path: each refused with one line saying what to do, and
//! nothing chmod'ed. A fake daemon run by another uid: every client refuses before sending a
//! byte. A stale socket file with a loose mode is replaced by a fresh one with 0600. (A
//! client of another uid getting FORBIDDEN is `api::another_uid_is_forbidden_and_logged`.)

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::util::*;

/// The uid the "other user" cases hand things to (`nobody` on Debian).
const OTHER_UID: u32 = 65534;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn is_root() -> bool {
    rustix::process::geteuid().as_raw() == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_directory_of_another_user_is_refused() {
    if !is_root() {
        eprintln!("NOTE: not root; cannot hand a directory to another user, skipped");
        return;
    }
    let env = TestEnv::new().await;
    let theirs = env.dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&theirs, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
    let socket = theirs.join("agent.sock");
    env.set_env("SSO_AGENT_SOCKET", socket.to_str().unwrap());

    let out = env.run(&["run"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    // The last stderr line is the error (the lines before are the daemon's log).
    let last = out.stderr.trim().lines().last().unwrap_or_default();
    assert!(last.starts_with("sso-agent: "), "{last}");
    assert!(
        last.contains(theirs.to_str().unwrap()),
        "names the directory: {last}"
    );
    assert!(
        last.contains(&format!("uid {OTHER_UID}")),
        "says whose: {last}"
    );
    assert!(last.contains("SSO_AGENT_SOCKET"), "says what to do: {last}");
    // Nothing was touched: no socket, the other user's mode and owner kept.
    assert!(!socket.exists());
    let meta = std::fs::metadata(&theirs).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (OTHER_UID, 0o700));
    // And no daemon answers there.
    assert_eq!(env.run(&["status"]).await.code, 3);
}

/// HARDENING T2: an existing socket directory open to others is refused with what to do,
/// and its mode is left as it was (the old daemon chmod'ed it to 0700).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_socket_directory_is_refused_and_left_alone() {
    let env = TestEnv::new().await;
    let dir = socket_dir(&env, 0o755);

    let out = env.run(&["run"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    let last = last_line(&out);
    assert!(last.contains(dir.to_str().unwrap()), "names it: {last}");
    assert!(last.contains("open to other users"), "{last}");
    assert!(last.contains("SSO_AGENT_SOCKET"), "says what to do: {last}");
    assert_eq!(mode(&dir), 0o755, "not chmod'ed");
    assert!(!env.socket().exists());
}

/// HARDENING T2: a link planted at the socket directory is never followed: the daemon
/// refuses, and the link's target (a victim's home, or a /tmp-like 1777 directory when the
/// daemon runs as root) keeps its mode and gets no socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_at_the_socket_directory_is_refused_and_its_target_untouched() {
    for victim_mode in [0o755, 0o1777] {
        let env = TestEnv::new().await;
        let victim = env.dir.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(victim_mode)).unwrap();
        let link = env.socket().parent().unwrap().to_path_buf();
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&victim, &link).unwrap();

        let out = env.run(&["run"]).await;
        assert_eq!(out.code, 1, "{out:?}");
        let last = last_line(&out);
        assert!(last.contains("symbolic link"), "{last}");
        assert!(last.contains(link.to_str().unwrap()), "{last}");
        assert_eq!(mode(&victim), victim_mode, "the target's mode is kept");
        assert_eq!(
            std::fs::read_dir(&victim).unwrap().count(),
            0,
            "no socket there"
        );
    }
}

/// HARDENING T2: the README's old demo, `SSO_AGENT_SOCKET=/tmp/x.sock`: a shared 1777
/// directory as the socket's directory is refused (as root, the old daemon stripped /tmp's
/// sticky bit and mode).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_sticky_directory_is_not_a_socket_directory() {
    let env = TestEnv::new().await;
    let shared = env.dir.path().join("tmp-like");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let socket = shared.join("sso-agent-demo.sock");
    env.set_env("SSO_AGENT_SOCKET", socket.to_str().unwrap());

    let out = env.run(&["run"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(last_line(&out).contains("open to other users"), "{out:?}");
    assert_eq!(mode(&shared), 0o1777);
    assert!(!socket.exists());
}

/// HARDENING T2: a link at the socket path itself is refused, never connected through or
/// removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_at_the_socket_path_is_refused() {
    let env = TestEnv::new().await;
    socket_dir(&env, 0o700);
    let elsewhere = env.dir.path().join("elsewhere.sock");
    let _theirs = std::os::unix::net::UnixListener::bind(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, env.socket()).unwrap();

    let out = env.run(&["run"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(last_line(&out).contains("symbolic link"), "{out:?}");
    assert!(
        std::fs::symlink_metadata(env.socket())
            .unwrap()
            .file_type()
            .is_symlink(),
        "left in place"
    );
}

/// HARDENING T1: another user who got to the socket path first (the `/tmp/sso-agent-<uid>`
/// fallback) runs a fake daemon there. Every client refuses before sending a byte, naming
/// the socket and the other uid (the old clients printed the fake token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_refuse_a_daemon_run_by_another_user() {
    if !is_root() {
        eprintln!("NOTE: not root; cannot run a server as another user, skipped");
        return;
    }
    let env = TestEnv::new().await;
    let theirs = env.dir.path().join("sso-agent-squatted");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
    // The temp root is root's 0700: let the other user reach its own directory.
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let socket = theirs.join("agent.sock");
    env.set_env("SSO_AGENT_SOCKET", socket.to_str().unwrap());
    let mut fake = FakeDaemon::start(&socket).await;

    for args in [
        &["token", "corp"][..],
        &["status"][..],
        &["credentials", "--profile", "dev"][..],
        &["login", "corp", "--device-code", "--no-browser"][..],
        &["logout", "corp"][..],
    ] {
        let out = env.run(args).await;
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert!(!out.stdout.contains("attacker"), "{args:?}: {out:?}");
        let last = last_line(&out);
        assert!(last.contains(socket.to_str().unwrap()), "{args:?}: {last}");
        assert!(
            last.contains(&format!("uid {OTHER_UID}")),
            "{args:?}: {last}"
        );
        assert!(last.contains("SSO_AGENT_SOCKET"), "{args:?}: {last}");
    }
    assert_eq!(
        fake.connections().await,
        vec![0; 5],
        "each client connected, checked, and sent nothing"
    );
}

/// A server run as `OTHER_UID` that answers every request with an "attacker" token and
/// prints, per connection, how many bytes it was sent (`conn N`), or `probe` for the test's
/// own last connection.
struct FakeDaemon {
    _child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    socket: std::path::PathBuf,
}

impl FakeDaemon {
    const SCRIPT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(16)
print("ready", flush=True)
body = b'{"success":true,"data":{"session":"corp","accessToken":"attacker-token","expiresAt":"2099-01-01T00:00:00Z","region":"us-east-1","startUrl":"https://x"}}'
while True:
    c, _ = s.accept()
    c.settimeout(5)
    data = b""
    try:
        data = c.recv(65536)
    except Exception:
        pass
    if data == b"PROBE":
        print("probe", flush=True)
        break
    print("conn", len(data), flush=True)
    if data:
        try:
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body)
        except Exception:
            pass
    c.close()
"#;

    async fn start(socket: &std::path::Path) -> FakeDaemon {
        let mut child = tokio::process::Command::new("setpriv")
            .args([
                &format!("--reuid={OTHER_UID}"),
                &format!("--regid={OTHER_UID}"),
                "--clear-groups",
                // Debian's own (a pyenv shim under /root is not reachable by another user).
                "/usr/bin/python3",
                "-c",
                Self::SCRIPT,
                socket.to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let first = tokio::time::timeout(WAIT, lines.next_line()).await;
        assert!(
            matches!(&first, Ok(Ok(Some(l))) if l == "ready"),
            "the fake daemon did not start: {first:?}"
        );
        FakeDaemon {
            _child: child,
            lines,
            socket: socket.to_path_buf(),
        }
    }

    /// Bytes received on each connection so far (ended by the test's own probe).
    async fn connections(&mut self) -> Vec<usize> {
        use tokio::io::AsyncWriteExt;
        let mut probe = tokio::net::UnixStream::connect(&self.socket).await.unwrap();
        probe.write_all(b"PROBE").await.unwrap();
        let mut conns = Vec::new();
        loop {
            let line = tokio::time::timeout(WAIT, self.lines.next_line())
                .await
                .expect("the fake daemon went quiet")
                .unwrap()
                .expect("the fake daemon ended");
            match line.strip_prefix("conn ") {
                Some(n) => conns.push(n.parse().unwrap()),
                None if line == "probe" => return conns,
                None => panic!("unexpected line {line}"),
            }
        }
    }
}

fn last_line(out: &Output) -> &str {
    out.stderr.trim().lines().last().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_world_writable_socket_is_replaced_with_0600() {
    let env = TestEnv::new().await;
    socket_dir(&env, 0o700);
    // A socket file nobody listens on any more (as a SIGKILLed daemon leaves it), 0666.
    drop(std::os::unix::net::UnixListener::bind(env.socket()).unwrap());
    std::fs::set_permissions(env.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();

    let d = env.start_daemon().await;
    assert!(d.log.text().contains("stale"), "{}", d.log.text());
    // (The inode number cannot tell old from new: the filesystem may reuse it at once.)
    assert_eq!(mode(&env.socket()), 0o600);
    assert_eq!(env.run(&["status"]).await.code, 4, "serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_a_socket_is_never_replaced() {
    let env = TestEnv::new().await;
    socket_dir(&env, 0o700);
    std::fs::write(env.socket(), "precious").unwrap();

    let out = env.run(&["run"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    let last = out.stderr.trim().lines().last().unwrap_or_default();
    assert!(last.contains(env.socket().to_str().unwrap()), "{last}");
    assert!(last.contains("not a socket"), "{last}");
    assert_eq!(std::fs::read_to_string(env.socket()).unwrap(), "precious");
}

/// The socket's directory, created beforehand with `mode`.
fn socket_dir(env: &TestEnv, mode: u32) -> std::path::PathBuf {
    let dir = env.socket().parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
    dir
}
