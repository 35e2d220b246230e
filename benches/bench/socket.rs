//! Benchmark 1, the socket API: `GET /v1/sessions/corp/token` over 1 and 64 keep-alive
//! connections against the daemon and against a minimal hyper server (this binary re-executed
//! with `--baseline-server`, a separate process like the daemon) that returns the daemon's
//! exact answer body. Rounds alternate daemon/baseline so drift hits both; the daemon's RSS
//! is sampled during its 64-connection rounds.
//! Must not: format the report (report.rs).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::report::{LoadSummary, SocketRow};
use crate::setup::proc_status_kib;
use crate::{TOKEN_PATH, percentile};

/// Measured seconds per socket configuration, split in alternating rounds.
pub const ROUNDS: u32 = 5;
pub const ROUND: Duration = Duration::from_secs(1);
const WARM_UP: Duration = Duration::from_millis(300);

/// The baseline server: minimal hyper on a Unix socket, a fixed body, 2 workers like the
/// daemon. Runs until killed.
pub fn baseline_server(socket: &Path, body_file: &Path) {
    let body = Bytes::from(std::fs::read(body_file).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::UnixListener::bind(socket).unwrap();
        eprintln!("serving");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    let body = body.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(body))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// One request on a fresh connection: status and body.
pub async fn get_once(socket: &Path, path: &str) -> (u16, Bytes) {
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = sender.send_request(request(path, true)).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

pub fn request(path: &str, close: bool) -> hyper::Request<Full<Bytes>> {
    let mut b = hyper::Request::get(path).header("host", "localhost");
    if close {
        b = b.header("connection", "close");
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

#[derive(Default)]
struct Load {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Load {
    fn merge(&mut self, other: Load) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
    }

    fn summary(mut self) -> LoadSummary {
        LoadSummary {
            rps: self.requests as f64 / self.elapsed.as_secs_f64(),
            p50: percentile(&mut self.latencies, 0.50),
            p99: percentile(&mut self.latencies, 0.99),
            errors: self.errors,
        }
    }
}

/// `conns` keep-alive connections, each sending requests back to back for `dur`.
async fn load(socket: &Path, conns: usize, dur: Duration) -> Load {
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let socket = socket.to_path_buf();
        tasks.push(tokio::spawn(async move {
            let mut out = Load::default();
            let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let ok = match sender.send_request(request(TOKEN_PATH, false)).await {
                    Ok(resp) => {
                        let ok = resp.status() == 200;
                        ok && resp.into_body().collect().await.is_ok()
                    }
                    Err(_) => false,
                };
                if ok {
                    out.latencies.push(t0.elapsed());
                    out.requests += 1;
                } else {
                    out.errors += 1;
                    break;
                }
            }
            out
        }));
    }
    let mut total = Load::default();
    for t in tasks {
        total.merge(t.await.unwrap());
    }
    total.elapsed = start.elapsed();
    total
}

/// The rows for 1 and 64 connections, and the daemon's peak RSS (KiB) sampled every 50 ms
/// during its 64-connection rounds.
pub fn bench(
    rt: &tokio::runtime::Runtime,
    daemon: &Path,
    baseline: &Path,
    daemon_pid: u32,
) -> (Vec<SocketRow>, u64) {
    let peak = Arc::new(AtomicU64::new(0));
    let mut rows = Vec::new();
    for conns in [1usize, 64] {
        let (mut d, mut b) = (Load::default(), Load::default());
        // Warm-up, not counted.
        rt.block_on(load(daemon, conns, WARM_UP));
        rt.block_on(load(baseline, conns, WARM_UP));
        for _ in 0..ROUNDS {
            let sampling = Arc::new(AtomicBool::new(conns == 64));
            let sampler = {
                let (sampling, peak) = (sampling.clone(), peak.clone());
                std::thread::spawn(move || {
                    while sampling.load(Ordering::Relaxed) {
                        peak.fetch_max(proc_status_kib(daemon_pid, "VmRSS"), Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(50));
                    }
                })
            };
            d.merge(rt.block_on(load(daemon, conns, ROUND)));
            sampling.store(false, Ordering::Relaxed);
            sampler.join().unwrap();
            b.merge(rt.block_on(load(baseline, conns, ROUND)));
        }
        rows.push(SocketRow {
            conns,
            daemon: d.summary(),
            baseline: b.summary(),
        });
    }
    (rows, peak.load(Ordering::Relaxed))
}
