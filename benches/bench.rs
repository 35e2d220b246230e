//! The benchmark binary (`scripts/bench`): the suite in `bench/unix.rs` measures the daemon on
//! its Unix socket against a raw Unix-socket baseline, so it runs on Unix only; elsewhere this
//! binary says so. It builds everywhere, so `cargo check --all-targets` covers every target.
//! Must not: hold any measurement itself.

#[cfg(unix)]
#[path = "bench/unix.rs"]
mod unix;

fn main() {
    #[cfg(unix)]
    unix::main();
    #[cfg(not(unix))]
    eprintln!("the benchmarks measure the Unix socket daemon; run them on Linux or macOS");
}
