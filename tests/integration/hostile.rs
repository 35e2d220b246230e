//! Hostile local clients against the real daemon: slowloris, oversize heads and bodies,
//! stalled bodies, thousands of garbage connections, a flood past the connection cap, and
//! pipelining clients that never read; meanwhile a well-behaved client keeps getting its
//! token. Waits are on events (EOF, a write error, a log line) under generous guards; no test
//! asserts a duration.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::task::JoinSet;

use crate::util::*;

/// Failure guard for anything the daemon must end by itself (header timeout 5 s, body
/// timeout 10 s, write stall 10 s): far above those, so a loaded machine never trips it.
const GUARD: Duration = Duration::from_secs(90);

/// A logged-in daemon and the token it serves.
async fn logged_in() -> (TestEnv, Daemon, String) {
    raise_open_files();
    let env = TestEnv::new().await;
    let d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);
    let out = env.run(&["token", "corp"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let token = out.stdout.trim().to_string();
    assert!(!token.is_empty());
    (env, d, token)
}

/// The test opens up to a thousand sockets at once; a 1,024 soft limit would be too tight.
fn raise_open_files() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    let want = now.maximum.unwrap_or(u64::MAX).min(8192);
    if now.current.is_some_and(|c| c < want) {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(want),
                maximum: now.maximum,
            },
        );
    }
}

/// One well-behaved request: the token, exactly, within the guard (else it was starved).
async fn good_token(env: &TestEnv, token: &str) {
    let (status, v) = tokio::time::timeout(GUARD, env.http("GET", "/v1/sessions/corp/token", None))
        .await
        .expect("a well-behaved client was starved");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["accessToken"].as_str(), Some(token), "{v}");
}

/// Runs `attack` to its end while a well-behaved client asks for the token again and again
/// (at least `min` times); every answer must be the token. Returns how many it got.
async fn while_serving(
    env: &TestEnv,
    token: &str,
    min: usize,
    attack: impl Future<Output = ()>,
) -> usize {
    tokio::pin!(attack);
    let mut done = false;
    let mut answers = 0;
    while !done || answers < min {
        if done {
            good_token(env, token).await;
            answers += 1;
            continue;
        }
        tokio::select! {
            () = &mut attack => done = true,
            () = good_token(env, token) => answers += 1,
        }
    }
    answers
}

/// Waits for every task of an attack, failing on a panic or the guard.
async fn all_done<T: 'static>(mut set: JoinSet<T>) -> Vec<T> {
    let mut out = Vec::new();
    let joined = tokio::time::timeout(GUARD, async {
        while let Some(r) = set.join_next().await {
            out.push(r.expect("attack task"));
        }
    })
    .await;
    assert!(joined.is_ok(), "the daemon did not end some connections");
    out
}

/// Reads until the server closes (EOF or reset); what it sent before that.
async fn read_until_closed(s: &mut UnixStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `bytes` (from another task, so a server that stops reading cannot block us) and
/// returns everything the server answered until it closed the connection.
async fn exchange(socket: &Path, bytes: Vec<u8>) -> Vec<u8> {
    let s = UnixStream::connect(socket).await.expect("connect");
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        let _ = w.write_all(&bytes).await;
        w // kept open: half-closing would look like a client that went away
    });
    let got = tokio::time::timeout(GUARD, async {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the daemon never closed the connection");
    writer.abort();
    got
}

/// Status and JSON body of the first answer in `raw` (None if there is none).
fn first_answer(raw: &[u8]) -> Option<(u16, serde_json::Value)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(body.len());
    let json = serde_json::from_str(&body[..len.min(body.len())]).unwrap_or_default();
    Some((status, json))
}

#[track_caller]
fn assert_envelope(raw: &[u8], status: u16, code: &str) {
    let (got, v) = first_answer(raw)
        .unwrap_or_else(|| panic!("no answer: {:?}", String::from_utf8_lossy(raw)));
    assert_eq!(got, status, "{v}");
    assert_eq!(v["success"], false, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
}

/// A 4xx from hyper itself, or nothing at all: never a served request.
#[track_caller]
fn refused_or_closed(raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    assert!(
        raw.is_empty() || text.starts_with("HTTP/1.1 4"),
        "a hostile request got {text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_and_others_served() {
    let (env, _d, token) = logged_in().await;
    const SLOW: usize = 240;
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(SLOW);
    let mut lorises = JoinSet::new();
    for i in 0..SLOW {
        let socket = env.socket();
        let ready = ready_tx.clone();
        lorises.spawn(async move {
            let mut s = UnixStream::connect(&socket).await.expect("connect");
            // Half stop mid request line, half trickle a header that never ends.
            let start: &[u8] = if i % 2 == 0 {
                b"GET /v1/sessions/corp/to"
            } else {
                b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
            };
            s.write_all(start).await.expect("first bytes");
            let _ = ready.send(()).await;
            let mut buf = [0u8; 1024];
            let mut got = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    r = s.read(&mut buf) => match r {
                        Ok(0) | Err(_) => return got,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    },
                    _ = tick.tick(), if i % 2 == 1 => {
                        if s.write_all(b"a").await.is_err() {
                            got.extend(read_until_closed(&mut s).await);
                            return got;
                        }
                    }
                }
            }
        });
    }
    drop(ready_tx);
    for _ in 0..SLOW {
        tokio::time::timeout(GUARD, ready_rx.recv())
            .await
            .expect("lorises connect")
            .expect("loris ready");
    }
    let answers = while_serving(&env, &token, 3, async {
        for raw in all_done(lorises).await {
            refused_or_closed(&raw);
        }
    })
    .await;
    assert!(answers >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_heads_and_bodies_are_refused() {
    let (env, mut d, token) = logged_in().await;
    let socket = env.socket();

    // A 100 KiB header, and a thousand small ones: hyper refuses (431) or closes.
    let mut big = b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 100 * 1024));
    big.extend_from_slice(b"\r\n\r\n");
    refused_or_closed(&exchange(&socket, big).await);
    let mut many = b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\n".to_vec();
    for i in 0..1000 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    refused_or_closed(&exchange(&socket, many).await);
    good_token(&env, &token).await;

    // Bodies over 16 KiB: declared, chunked without a length, and absurdly declared.
    let login = "POST /v1/sessions/corp/login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
    let mut declared =
        format!("{login}Content-Type: application/json\r\nContent-Length: 20480\r\n\r\n")
            .into_bytes();
    declared.extend(std::iter::repeat_n(b' ', 20480));
    assert_envelope(&exchange(&socket, declared).await, 413, "PAYLOAD_TOO_LARGE");
    let mut chunked = format!("{login}Transfer-Encoding: chunked\r\n\r\n").into_bytes();
    for _ in 0..20 {
        chunked.extend_from_slice(b"400\r\n");
        chunked.extend(std::iter::repeat_n(b' ', 1024));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_envelope(&exchange(&socket, chunked).await, 413, "PAYLOAD_TOO_LARGE");
    let absurd = format!("{login}Content-Length: 999999999999\r\n\r\n{{").into_bytes();
    assert_envelope(&exchange(&socket, absurd).await, 413, "PAYLOAD_TOO_LARGE");

    // A body that stops arriving: TIMEOUT after the body timeout, then the connection ends
    // (no `Connection: close`: the daemon must close it by itself).
    let stalled = b"POST /v1/sessions/corp/login HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{\"flow\":"
        .to_vec();
    let (raw, ()) = tokio::join!(exchange(&socket, stalled), good_token(&env, &token));
    assert_envelope(&raw, 504, "TIMEOUT");
    // No login was started by any of it.
    assert_eq!(env.fake.calls(fake_aws::Op::StartDeviceAuthorization), 1);

    good_token(&env, &token).await;
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon died");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_garbage_connections_leave_the_daemon_serving() {
    let (env, mut d, token) = logged_in().await;
    const GARBAGE: usize = 3000;
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut set = JoinSet::new();
    for i in 0..GARBAGE {
        let socket = env.socket();
        let gate = gate.clone();
        set.spawn(async move {
            let _slot = gate.acquire_owned().await.expect("gate");
            let len = 1 + rand::random_range(0..2048usize);
            let mut bytes: Vec<u8> = (0..len).map(|_| rand::random()).collect();
            if i % 3 == 0 {
                // Garbage that starts like HTTP, to get past the first byte.
                bytes.splice(0..0, b"GET /\x00\xff HTTP/1.1\r\n".iter().copied());
            }
            let Ok(mut s) = UnixStream::connect(&socket).await else {
                return Vec::new();
            };
            let _ = s.write_all(&bytes).await;
            if i % 2 == 0 {
                // Hang up at once.
                return Vec::new();
            }
            // Or say nothing more and see what the daemon does: answer 4xx or close.
            let _ = s.shutdown().await;
            read_until_closed(&mut s).await
        });
    }
    let answers = while_serving(&env, &token, 3, async {
        for raw in all_done(set).await {
            refused_or_closed(&raw);
        }
    })
    .await;
    assert!(answers >= 3);
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon died");
    let (status, _) = env.http("GET", "/v1/status", None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_the_connection_cap_delays_but_never_starves() {
    let (env, _d, token) = logged_in().await;
    // Well past the cap of 512: the rest wait in the listen backlog.
    const FLOOD: usize = 900;
    let mut idle = Vec::new();
    for _ in 0..FLOOD {
        idle.push(UnixStream::connect(env.socket()).await.expect("connect"));
    }
    // All held open and silent: a newcomer waits for the header timeout to free slots.
    good_token(&env, &token).await;
    good_token(&env, &token).await;
    // Every silent connection, accepted at once or later from the backlog, is closed.
    let mut set = JoinSet::new();
    for mut s in idle {
        set.spawn(async move { read_until_closed(&mut s).await });
    }
    let answers = while_serving(&env, &token, 3, async {
        for raw in all_done(set).await {
            refused_or_closed(&raw);
        }
    })
    .await;
    assert!(answers >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelining_clients_that_never_read_are_dropped() {
    let (env, d, token) = logged_in().await;
    const READERS_NOT: usize = 4;
    // 40,000 pipelined requests a round (1.5 MB): far more answers than socket buffers hold.
    let one = b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let round: Vec<u8> = one.repeat(40_000);
    let mut set = JoinSet::new();
    for _ in 0..READERS_NOT {
        let socket = env.socket();
        let round = round.clone();
        set.spawn(async move {
            let mut s = UnixStream::connect(&socket).await.expect("connect");
            // Write until the daemon gives up on us: the write fails once it has dropped
            // the connection (it stalled on writing answers nobody reads).
            loop {
                if let Err(e) = s.write_all(&round).await {
                    return e.kind();
                }
            }
        });
    }
    let answers = while_serving(&env, &token, 3, async {
        for kind in all_done(set).await {
            assert!(
                matches!(
                    kind,
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ),
                "{kind:?}"
            );
        }
    })
    .await;
    assert!(answers >= 3);
    assert!(
        d.log.wait_for("the client stopped reading").await,
        "{}",
        d.log.text()
    );
}

/// Open descriptors of a process.
#[cfg(target_os = "linux")]
fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// Linux only: `prlimit` on another process and `/proc/PID/fd`.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_descriptors_pauses_accepting_and_recovers() {
    let (env, mut d, token) = logged_in().await;
    let pid = d.child.id().expect("daemon pid");
    // Leave the daemon 16 descriptors to spare, as if its limit were low (macOS starts
    // agents at 256) and a flood had used the rest.
    let spare = 16;
    let limit = open_fds(pid) + spare;
    // The daemon inherited our hard limit and only raises its soft one.
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
    rustix::process::prlimit(
        rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()),
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(limit),
            maximum: hard,
        },
    )
    .expect("lower the daemon's open-file limit");
    let mut idle = Vec::new();
    for _ in 0..2 * spare {
        idle.push(UnixStream::connect(env.socket()).await.expect("connect"));
    }
    assert!(
        d.log.wait_for("accept failed").await,
        "the daemon never ran out: {}",
        d.log.text()
    );
    // The newcomer waits in the backlog until idle connections time out and free
    // descriptors; then it is served.
    good_token(&env, &token).await;
    let mut set = JoinSet::new();
    for mut s in idle {
        set.spawn(async move { read_until_closed(&mut s).await });
    }
    for raw in all_done(set).await {
        refused_or_closed(&raw);
    }
    good_token(&env, &token).await;
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon died");
    // Paused, not spinning: a busy accept loop logs a failure per microsecond or so.
    let failures = d.log.text().matches("accept failed").count();
    assert!(failures < 2000, "{failures} accept failures logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_raises_a_low_open_file_limit() {
    let env = TestEnv::new().await;
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX);
    // Started as a service manager might: soft limit 256 (the hard one is inherited).
    let template = env.command(&[]);
    let envs: Vec<_> = template
        .as_std()
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
        .collect();
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -S -n 256 && exec \"$0\" run")
        .arg(BIN)
        .env_clear()
        .envs(envs)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn daemon");
    let serving = wait_for_line(child.stderr.take().unwrap(), "serving", GUARD).await;
    assert_eq!(serving, Ok(true), "the daemon did not start");
    let pid = child.id().expect("pid");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .expect("Max open files");
    assert_eq!(soft, hard.min(8192), "{limits}");
}
