//! Benchmark 3, single flight: N concurrent callers, each on a new connection, all needing a
//! refresh; how many CreateToken calls reach the fake, and when the callers get answers.
//! Must not: format the report (report.rs).

use std::time::{Duration, Instant};

use fake_aws::Op;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

use crate::report::{FlightParams, FlightRow};
use crate::setup::{BenchEnv, access_token};
use crate::socket::{get_once, request};
use crate::{ACCESS_TOKEN_TTL, TOKEN_PATH};

pub const CALLERS: [usize; 3] = [10, 100, 1000];
/// A round starts at least this long after the last refresh (see `FlightParams`).
const TOKEN_AGE: Duration = Duration::from_secs(4);

/// The old token must fail `minValidity` and the new one pass it: wait until the current
/// token is ≥ 4 s old and ask for TTL − 3 s; a refreshed token then satisfies every caller
/// for 3 s, so callers that arrive after the refresh (the round lasts far less) must not
/// cause another one.
pub fn params() -> FlightParams {
    FlightParams {
        ttl_secs: ACCESS_TOKEN_TTL.as_secs(),
        min_validity: ACCESS_TOKEN_TTL.as_secs() - 3,
    }
}

/// One row per entry of `CALLERS`; `token` is the token the daemon serves now.
pub fn bench(rt: &tokio::runtime::Runtime, env: &BenchEnv, token: String) -> Vec<FlightRow> {
    let min_validity = params().min_validity;
    let mut rows = Vec::new();
    let mut old = token;
    let mut last_refresh = Instant::now();
    for n in CALLERS {
        let age = last_refresh.elapsed();
        if age < TOKEN_AGE {
            std::thread::sleep(TOKEN_AGE - age);
        }
        let f = rt.block_on(flight(env, n, min_validity, &old));
        last_refresh = Instant::now();
        let (_, body) = rt.block_on(get_once(&env.socket(), TOKEN_PATH));
        old = access_token(&body).unwrap();
        rows.push(f);
    }
    rows
}

async fn flight(env: &BenchEnv, n: usize, min_validity: u64, old: &str) -> FlightRow {
    let before = env.fake.calls(Op::CreateToken);
    let path = format!("{TOKEN_PATH}?minValidity={min_validity}");
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let socket = env.socket();
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let mut retries = 0u64;
            let stream = loop {
                match tokio::net::UnixStream::connect(&socket).await {
                    Ok(s) => break s,
                    // A full listen backlog refuses at once; a real caller would retry too.
                    Err(_) if retries < 10_000 => {
                        retries += 1;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err(e) => panic!("connect: {e}"),
                }
            };
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            let resp = sender.send_request(request(&path, true)).await.unwrap();
            assert_eq!(resp.status(), 200);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (start.elapsed(), access_token(&body).unwrap(), retries)
        }));
    }
    let mut tokens = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut connect_retries = 0;
    for t in tasks {
        let (took, token, retries) = t.await.unwrap();
        times.push(took);
        tokens.push(token);
        connect_retries += retries;
    }
    let all = times.iter().copied().max().unwrap_or_default();
    let first = times.iter().copied().min().unwrap_or_default();
    let fresh = tokens.iter().filter(|t| *t != old).count();
    tokens.sort();
    tokens.dedup();
    FlightRow {
        n,
        create_token: env.fake.calls(Op::CreateToken) - before,
        all,
        first,
        fresh,
        distinct: tokens.len(),
        connect_retries,
    }
}
