//! The report: typed rows from each benchmark, the targets (issue 9) derived from them, and
//! the one place that formats markdown (`Report::render`, the table docs/BENCHMARKS.md
//! quotes; keep its layout, so runs stay comparable).
//! Must not: measure anything.

use std::fmt::Write as _;
use std::time::Duration;

use crate::TOKEN_PATH;
use crate::socket::{ROUND, ROUNDS};

pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub mem_kib: Option<u64>,
    pub kernel: String,
}

/// One side of a socket row.
pub struct LoadSummary {
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub errors: u64,
}

pub struct SocketRow {
    pub conns: usize,
    pub daemon: LoadSummary,
    pub baseline: LoadSummary,
}

impl SocketRow {
    pub fn ratio(&self) -> f64 {
        self.daemon.rps / self.baseline.rps
    }
}

pub struct Timing {
    pub median: Duration,
    pub p90: Duration,
    pub runs: usize,
}

pub enum AwsCli {
    NotInstalled,
    /// AWS CLI v1 has no `configure export-credentials`.
    NoExportCredentials {
        version: String,
    },
    /// The median of its runs.
    Timed(Duration),
}

pub struct Process {
    pub token: Timing,
    /// `None` when the example could not be built.
    pub min_client: Option<Timing>,
    pub version: Timing,
    pub aws_cli: AwsCli,
}

impl Process {
    /// `sso-agent token` over the minimal client, medians.
    pub fn ratio(&self) -> Option<f64> {
        let m = self.min_client.as_ref()?;
        Some(self.token.median.as_secs_f64() / m.median.as_secs_f64())
    }
}

/// How the single-flight rounds were set up (for the note under the report).
pub struct FlightParams {
    pub ttl_secs: u64,
    pub min_validity: u64,
}

pub struct FlightRow {
    pub n: usize,
    pub create_token: usize,
    pub all: Duration,
    pub first: Duration,
    pub fresh: usize,
    pub distinct: usize,
    pub connect_retries: u64,
}

/// The daemon's VmRSS (KiB) at each point of the run.
pub struct Memory {
    pub idle_fresh: u64,
    pub idle_logged_in: u64,
    pub load_peak: u64,
    pub hwm: u64,
    pub end: u64,
}

impl Memory {
    fn rows(&self) -> [(&'static str, u64); 5] {
        [
            (
                "idle, 10 sessions configured, none logged in",
                self.idle_fresh,
            ),
            (
                "idle, 10 sessions configured, 1 logged in",
                self.idle_logged_in,
            ),
            (
                "under 64-connection load (peak of 50 ms samples)",
                self.load_peak,
            ),
            ("VmHWM after the socket benchmark", self.hwm),
            ("after everything (incl. 1000 callers)", self.end),
        ]
    }
}

pub struct Report {
    pub machine: Machine,
    pub socket: Vec<SocketRow>,
    pub process: Process,
    pub flight: FlightParams,
    pub flights: Vec<FlightRow>,
    pub memory: Memory,
}

/// A target of issue 9 and whether this run met it.
pub struct Target {
    pub name: &'static str,
    pub wanted: &'static str,
    pub measured: String,
    pub met: bool,
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn times(ratio: f64) -> String {
    format!("{ratio:.2}×")
}

impl Report {
    pub fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        if let Some(r) = self.socket.iter().find(|r| r.conns == 64) {
            out.push(Target {
                name: "socket throughput, 64 conns",
                wanted: "≥ 0.5× baseline",
                measured: times(r.ratio()),
                met: r.ratio() >= 0.5,
            });
            out.push(Target {
                name: "socket p99, 64 conns",
                wanted: "< 1 ms",
                measured: us(r.daemon.p99),
                met: r.daemon.p99 < Duration::from_millis(1),
            });
        }
        if let Some(ratio) = self.process.ratio() {
            out.push(Target {
                name: "`sso-agent token` process",
                wanted: "≤ 1.5× minimal client",
                measured: times(ratio),
                met: ratio <= 1.5,
            });
        }
        if let Some(f) = self.flights.iter().find(|f| f.n == 1000) {
            out.push(Target {
                name: "1000 concurrent callers needing a refresh",
                wanted: "1 CreateToken",
                measured: format!("{} CreateToken", f.create_token),
                met: f.create_token == 1 && f.fresh == f.n,
            });
        }
        let idle = self.memory.idle_fresh.max(self.memory.idle_logged_in);
        out.push(Target {
            name: "RSS idle",
            wanted: "< 12 MiB",
            measured: mib(idle),
            met: idle < 12 * 1024,
        });
        out.push(Target {
            name: "RSS under load",
            wanted: "< 24 MiB",
            measured: mib(self.memory.load_peak),
            met: self.memory.load_peak < 24 * 1024,
        });
        out
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let w = &mut s;
        writeln!(w, "# sso-agent benchmark report\n").unwrap();
        let m = &self.machine;
        let mem = m
            .mem_kib
            .map(|k| format!("{:.1} GiB", k as f64 / 1024.0 / 1024.0))
            .unwrap_or_default();
        for (k, v) in [
            ("cores (nproc)", m.cores.to_string()),
            ("CPU", m.cpu.clone()),
            ("memory", mem),
            ("kernel", m.kernel.clone()),
        ] {
            writeln!(w, "- {k}: {v}").unwrap();
        }
        writeln!(
            w,
            "\n## 1. Socket API: `GET {TOKEN_PATH}`, keep-alive, {} × {} s per row, alternating\n",
            ROUNDS,
            ROUND.as_secs()
        )
        .unwrap();
        writeln!(w, "| conns | daemon req/s | p50 | p99 | baseline req/s | p50 | p99 | daemon / baseline | errors d / b |").unwrap();
        writeln!(w, "|---|---|---|---|---|---|---|---|---|").unwrap();
        for r in &self.socket {
            let (d, b) = (&r.daemon, &r.baseline);
            writeln!(
                w,
                "| {} | {:.1} k | {} | {} | {:.1} k | {} | {} | **{}** | {} / {} |",
                r.conns,
                d.rps / 1e3,
                us(d.p50),
                us(d.p99),
                b.rps / 1e3,
                us(b.p50),
                us(b.p99),
                times(r.ratio()),
                d.errors,
                b.errors,
            )
            .unwrap();
        }
        writeln!(w, "\n## 2. Whole process (wall time, stdout checked)\n").unwrap();
        writeln!(w, "| command | median | p90 | runs |").unwrap();
        writeln!(w, "|---|---|---|---|").unwrap();
        let timed = |w: &mut String, what: &str, t: &Timing| {
            writeln!(
                w,
                "| {what} | {} | {} | {} |",
                ms(t.median),
                ms(t.p90),
                t.runs
            )
            .unwrap();
        };
        let p = &self.process;
        timed(w, "`sso-agent token corp`", &p.token);
        match (&p.min_client, p.ratio()) {
            (Some(mc), Some(ratio)) => {
                timed(w, "`examples/min_client corp` (std, raw GET)", mc);
                writeln!(
                    w,
                    "| **ratio token / min_client** | **{}** | | |",
                    times(ratio)
                )
                .unwrap();
            }
            _ => writeln!(
                w,
                "| `examples/min_client` | skipped: could not build it | | |"
            )
            .unwrap(),
        }
        timed(
            w,
            "`sso-agent --version` (start-up only, no socket)",
            &p.version,
        );
        let aws = match &p.aws_cli {
            AwsCli::NotInstalled => "skipped: AWS CLI not installed".to_string(),
            AwsCli::NoExportCredentials { version } => format!(
                "skipped: this AWS CLI ({version}) has no `configure export-credentials` (v2 only)"
            ),
            AwsCli::Timed(median) => ms(*median),
        };
        writeln!(
            w,
            "| `aws configure export-credentials --profile proc` (credential_process = sso-agent) | {aws} | | |"
        )
        .unwrap();
        writeln!(
            w,
            "\n## 3. Single-flight: N concurrent callers, each a new connection, all needing a refresh\n"
        )
        .unwrap();
        writeln!(w, "| N | CreateToken calls | all answered after | first answer after | callers with the new token | distinct tokens | connect retries |").unwrap();
        writeln!(w, "|---|---|---|---|---|---|---|").unwrap();
        for f in &self.flights {
            writeln!(
                w,
                "| {} | {} | {} | {} | {} / {} | {} | {} |",
                f.n,
                f.create_token,
                ms(f.all),
                ms(f.first),
                f.fresh,
                f.n,
                f.distinct,
                f.connect_retries
            )
            .unwrap();
        }
        writeln!(w, "\n## 4. Daemon resident memory (VmRSS)\n").unwrap();
        writeln!(w, "| state | VmRSS |").unwrap();
        writeln!(w, "|---|---|").unwrap();
        for (state, kib) in self.memory.rows() {
            writeln!(w, "| {state} | {} |", mib(kib)).unwrap();
        }
        writeln!(w, "\n## Targets (issue 9)\n").unwrap();
        writeln!(w, "| target | wanted | measured | |").unwrap();
        writeln!(w, "|---|---|---|---|").unwrap();
        for t in self.targets() {
            let m = if t.met { "met" } else { "**not met**" };
            writeln!(w, "| {} | {} | {} | {m} |", t.name, t.wanted, t.measured).unwrap();
        }
        writeln!(
            w,
            "\nSingle-flight: token TTL {} s; each round starts ≥ 4 s after the last refresh and asks \
             `minValidity={}`, so the held token fails it and a refreshed one passes; \
             the time runs from spawning the N callers (connect included) to the last answer.",
            self.flight.ttl_secs, self.flight.min_validity
        )
        .unwrap();
        s
    }
}
