//! Other users and the socket's place on disk: what `sso-agent run` re-checks at start.
//! A directory someone else owns is refused with one line saying what to do; our own
//! directory left too open is tightened to 0700 with a warning; a stale socket file with a
//! loose mode is replaced by a fresh one with 0600. (A client of another uid getting
//! FORBIDDEN is `api::another_uid_is_forbidden_and_logged`.)

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
        & 0o777
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_socket_directory_is_tightened_with_a_warning() {
    let env = TestEnv::new().await;
    let dir = socket_dir(&env, 0o755);

    let d = env.start_daemon().await;
    assert_eq!(mode(&dir), 0o700);
    let log = d.log.text();
    let warning = log
        .lines()
        .find(|l| l.contains("socket directory was accessible to others"))
        .unwrap_or_else(|| panic!("no warning:\n{log}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("755"), "says the old mode: {warning}");
    assert_eq!(mode(&env.socket()), 0o600);
    assert_eq!(env.run(&["status"]).await.code, 4, "serves");
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
