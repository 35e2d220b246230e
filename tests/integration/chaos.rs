//! Random-kill chaos (issue 8): the real daemon against the fake AWS with 6-second access
//! tokens and strict refresh-token rotation, SIGKILLed at seeded random moments, restarted,
//! and checked after every restart: each session refreshes (its chain is alive), the fake
//! accepts the token, no new login happened, and no refresh token was presented twice.
//!
//! Half the kills land at a uniformly random moment (0 to two refresh intervals after the
//! daemon is ready, so start-up refreshes and idle time are both hit); the other half are
//! aimed: 0 to 30 ms (seeded) after the daemon logs that a session's next scheduled refresh
//! starts, so kills land mid-refresh often.
//!
//! The one loss the daemon cannot prevent is exact, not hidden: a kill after the fake has
//! rotated a refresh token but before the new one reached the keyring. The new token then
//! existed only in the dead process, so the restarted daemon presents the old one once (a
//! reuse), the chain ends, and the session needs a login. The test classifies each kill
//! from evidence independent of the outcome (the killed daemon's log shows the session's
//! refresh in flight; the token in the keyring after the kill had already been presented to
//! the fake) and asserts that reuses and new logins equal exactly those window hits. Any
//! other reuse (a stale record loaded, writes out of order, two refreshes of one chain) fails.
//!
//! `SSO_AGENT_CHAOS_SEED=N` replays a run's kill schedule (the seed is printed first and in
//! every failure); `SSO_AGENT_CHAOS_KILLS=150` is the long mode (default 10, for CI).

use std::collections::HashMap;
use std::time::Duration;

use fake_aws::{FakeConfig, Op};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sso_agent::store::SecretStore;
use sso_agent::store::keyring::KeyringStore;
use sso_agent::store::records::{TokenRecord, token_key};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::util::*;

const SESSIONS: [&str; 3] = ["alpha", "bravo", "charlie"];
/// Access-token lifetime. The daemon refreshes at half of it (the default 10-minute margin
/// is capped at half the lifetime) and treats the last 5 s as expired, so 6 s is the
/// shortest lifetime that still leaves a usable token.
const TTL: Duration = Duration::from_secs(6);
/// How often each session refreshes by itself.
const INTERVAL: Duration = Duration::from_secs(3);
/// Aimed kills land this far (at most) after a refresh starts.
const AIM_SPREAD_MS: u64 = 30;
const DEFAULT_KILLS: usize = 10;

/// The number in environment variable `name`, else `default()`; anything else stops the test.
fn env_number<T: std::str::FromStr>(name: &str, default: impl FnOnce() -> T) -> T {
    match std::env::var(name) {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={s:?} is not a whole number")),
        Err(_) => default(),
    }
}

fn seed() -> u64 {
    env_number("SSO_AGENT_CHAOS_SEED", rand::random)
}

fn kills() -> usize {
    env_number("SSO_AGENT_CHAOS_KILLS", || DEFAULT_KILLS)
}

fn config(start_url: &str) -> String {
    SESSIONS
        .iter()
        .map(|s| {
            format!(
                "[sso-session {s}]\nsso_start_url = {start_url}\nsso_region = us-east-1\nsso_registration_scopes = sso:account:access\n\n"
            )
        })
        .collect()
}

/// Logins the fake has seen (device authorizations and PKCE authorizations).
fn logins(env: &TestEnv) -> usize {
    env.fake.calls(Op::StartDeviceAuthorization) + env.fake.calls(Op::Authorize)
}

/// How often each refresh token was presented to CreateToken, in the fake's own log.
fn presentations(env: &TestEnv) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for r in env.fake.requests() {
        if r.op != Op::CreateToken {
            continue;
        }
        let Some(body) = r.body_json() else { continue };
        if body["grantType"] == "refresh_token"
            && let Some(rt) = body["refreshToken"].as_str()
        {
            *seen.entry(rt.to_string()).or_insert(0) += 1;
        }
    }
    seen
}

/// Whether the fake's portal accepts `token` (a live access token of a live chain).
async fn fake_accepts(fake_url: &str, token: &str) -> bool {
    use http_body_util::{BodyExt, Full};
    let addr = fake_url.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/assignment/accounts")
        .header("host", addr)
        .header("x-amz-sso_bearer_token", token)
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let ok = resp.status() == 200;
    let _ = resp.into_body().collect().await;
    ok
}

/// One parsed daemon log line about a session's refresh.
enum Event {
    Start,
    End,
}

fn refresh_events(log: &str, session: &str) -> Vec<(OffsetDateTime, Event)> {
    let field = format!("session={session}");
    log.lines()
        .filter(|l| l.split_whitespace().any(|w| w == field))
        .filter_map(|l| {
            let ev = if l.contains("task: refreshing the access token") {
                Event::Start
            } else if l.contains("task: refreshed ")
                || l.contains("task: refresh failed")
                || l.contains("task: the refresh chain ended")
                || l.contains("task: dropping the result of a refresh")
            {
                Event::End
            } else {
                return None;
            };
            let ts = OffsetDateTime::parse(l.split_whitespace().next()?, &Rfc3339).ok()?;
            Some((ts, ev))
        })
        .collect()
}

/// Whether the log ends with a refresh of `session` started and not finished (persisted),
/// and the durations of the refreshes it shows finished.
fn in_flight(log: &str, session: &str) -> (bool, Vec<Duration>) {
    let mut started: Option<OffsetDateTime> = None;
    let mut done = Vec::new();
    for (ts, ev) in refresh_events(log, session) {
        match ev {
            Event::Start => started = Some(ts),
            Event::End => {
                if let Some(s) = started.take() {
                    done.push(Duration::try_from(ts - s).unwrap_or_default());
                }
            }
        }
    }
    (started.is_some(), done)
}

async fn stored_refresh_token(store: &KeyringStore, env: &TestEnv, session: &str) -> String {
    let endpoint = url::Url::parse(&env.fake.url()).expect("the fake's URL");
    let key = token_key(session, &env.start_url, "us-east-1", endpoint.as_str());
    let secret = store.get(&key).await.unwrap().expect("a stored record");
    let rec = TokenRecord::from_secret(&secret).unwrap();
    rec.refresh_token
        .expect("a stored refresh token")
        .expose()
        .to_string()
}

async fn log_in(env: &TestEnv, session: &str) {
    let out = env
        .run(&["login", session, "--device-code", "--no-browser"])
        .await;
    assert_eq!(out.code, 0, "login {session}: {out:?}");
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() - 1) * p / 100]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_lose_no_session() {
    if !keyring_available() {
        eprintln!("NOTE: no Secret Service; nothing survives a restart in memory, skipped");
        return;
    }
    let (seed, kills) = (seed(), kills());
    eprintln!("chaos: seed {seed}, {kills} kills (replay: SSO_AGENT_CHAOS_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let begun = tokio::time::Instant::now();

    let env = TestEnv::with_fake(FakeConfig {
        device_interval_secs: 1,
        access_token_ttl: TTL,
        rotate_refresh_tokens: true,
        auto_approve: true,
        ..FakeConfig::default()
    })
    .await;
    env.set_env("SSO_AGENT_LOG", "info");
    env.write_config(&config(&env.start_url));
    let store = KeyringStore::open().await.expect("the test's keyring");

    let mut daemon = env.start_daemon().await;
    for s in SESSIONS {
        log_in(&env, s).await;
    }
    let mut expected_logins = logins(&env);
    assert_eq!(expected_logins, SESSIONS.len());

    let (mut aimed, mut mid_refresh, mut window_hits) = (0, 0, 0);
    let mut durations: Vec<Duration> = Vec::new();
    for k in 1..=kills {
        let ctx = format!("[seed {seed}, kill {k}/{kills}]");
        // When to kill: at random, or aimed into a session's next scheduled refresh.
        let aim = rng.random_bool(0.5);
        let target = SESSIONS[rng.random_range(0..SESSIONS.len())];
        let spread = Duration::from_millis(rng.random_range(0..=AIM_SPREAD_MS));
        let random = Duration::from_millis(rng.random_range(0..=2 * INTERVAL.as_millis() as u64));
        if aim {
            // Aimed: wait for the target's next refresh to start (the daemon logs it just
            // before the request), then a few random milliseconds into it.
            aimed += 1;
            let needle = format!("refreshing the access token session={target} ");
            let n = daemon.log.text().matches(&needle).count();
            let _ = daemon.log.wait_for_n(&needle, n + 1).await;
            tokio::time::sleep(spread).await;
        } else {
            // Waiting a random time before the kill is the point: the moment is arbitrary.
            tokio::time::sleep(random).await;
        }
        daemon.child.kill().await.unwrap(); // SIGKILL, reaped
        assert!(daemon.log.wait_for("<eof>").await, "{ctx} log closed");
        let log = daemon.log.text();

        // Evidence taken before the restart: which refreshes were in flight, and what the
        // keyring holds now.
        let mut stored = HashMap::new();
        let mut flying = HashMap::new();
        for s in SESSIONS {
            let (f, done) = in_flight(&log, s);
            durations.extend(done);
            flying.insert(s, f);
            stored.insert(s, stored_refresh_token(&store, &env, s).await);
        }
        if flying.values().any(|f| *f) {
            mid_refresh += 1;
        }
        let reuse_before = env.fake.refresh_token_reuse_count();

        daemon = env.start_daemon().await;
        // Every session must refresh now (3600 s is more than any token has), so its chain
        // is proven alive; the token served must be one the fake accepts.
        let mut outs = HashMap::new();
        for s in SESSIONS {
            let out = env.run(&["token", s, "--min-validity", "3600"]).await;
            // Asked at once: the token is seconds old, well inside its 6 s.
            let accepted = out.code == 0 && fake_accepts(&env.fake.url(), out.stdout.trim()).await;
            outs.insert(s, (out, accepted));
        }
        let (_, status) = env.http("GET", "/v1/status", None).await;

        // Which sessions lost their chain to the window: the refresh token the keyring held
        // after the kill was presented twice (by the killed daemon, then by this one).
        let seen = presentations(&env);
        let mut lost = Vec::new();
        for s in SESSIONS {
            if seen.get(&stored[s]).copied().unwrap_or(0) >= 2 {
                assert!(
                    flying[s],
                    "{ctx} session {s}: its stored refresh token was presented twice, but no \
                     refresh of it was in flight at the kill (a stale record or a second \
                     refresh, not the unavoidable window)\n{log}"
                );
                lost.push(s);
            }
        }
        let reuses = env.fake.refresh_token_reuse_count() - reuse_before;
        assert_eq!(
            reuses,
            lost.len(),
            "{ctx} refresh-token reuses not explained by a kill in the window (lost: {lost:?})\n\
             last log:\n{log}\nnew log:\n{}",
            daemon.log.text()
        );
        for s in SESSIONS {
            let state = status["data"]["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["name"] == s)
                .unwrap()
                .clone();
            if lost.contains(&s) {
                eprintln!(
                    "chaos: {ctx} WINDOW HIT: session {s} was killed after the fake rotated \
                     its refresh token and before the keyring had the new one; logging in again"
                );
                assert_eq!(state["refreshable"], false, "{ctx} {s}: {state}");
                log_in(&env, s).await;
                expected_logins += 1;
                window_hits += 1;
                continue;
            }
            let (out, accepted) = &outs[s];
            assert_eq!(
                out.code,
                0,
                "{ctx} token {s}: {out:?}\n{}",
                daemon.log.text()
            );
            assert!(accepted, "{ctx} the fake rejects {s}'s token");
            assert_eq!(state["refreshable"], true, "{ctx} {s}: {state}");
            assert_eq!(
                state["lastError"],
                serde_json::Value::Null,
                "{ctx} {s}: {state}"
            );
        }
        assert_eq!(
            logins(&env),
            expected_logins,
            "{ctx} a login nobody asked for"
        );
    }

    let refreshes: usize = presentations(&env).values().sum();
    durations.sort();
    eprintln!(
        "chaos: seed {seed}: {kills} kills ({aimed} aimed into a refresh), {mid_refresh} \
         with a refresh in flight, {window_hits} in the unrecoverable window; {refreshes} \
         refreshes; refresh in flight (start to persisted) median {:?}, p90 {:?}, max {:?} \
         over {}; {:.0?} in all",
        percentile(&durations, 50),
        percentile(&durations, 90),
        percentile(&durations, 100),
        durations.len(),
        begun.elapsed(),
    );
    assert_eq!(
        env.fake.refresh_token_reuse_count(),
        window_hits,
        "[seed {seed}] every reuse is a window hit"
    );
    assert_eq!(logins(&env), SESSIONS.len() + window_hits, "[seed {seed}]");
}
