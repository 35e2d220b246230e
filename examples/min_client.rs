//! The smallest client that does what `sso-agent token SESSION` does on the wire: one raw
//! HTTP/1.1 GET over the daemon's socket (`SSO_AGENT_SOCKET`), then print `accessToken`.
//! std only, no runtime, no config parsing: the floor `benches/bench/process.rs` compares against.
// An example for the benchmark: it reads the env directly and exits on any failure.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::process::ExitCode;

#[cfg(unix)]
fn connect(socket: &OsStr) -> std::io::Result<std::os::unix::net::UnixStream> {
    std::os::unix::net::UnixStream::connect(socket)
}

/// A named pipe opens like a file.
#[cfg(windows)]
fn connect(socket: &OsStr) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(socket)
}

fn main() -> ExitCode {
    let session = std::env::args().nth(1).unwrap_or_else(|| "corp".into());
    let Some(socket) = std::env::var_os("SSO_AGENT_SOCKET") else {
        eprintln!("min_client: set SSO_AGENT_SOCKET");
        return ExitCode::from(2);
    };
    let mut stream = match connect(&socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("min_client: connect: {e}");
            return ExitCode::from(3);
        }
    };
    let request = format!(
        "GET /v1/sessions/{session}/token HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    );
    let mut answer = Vec::with_capacity(1024);
    if let Err(e) = stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.read_to_end(&mut answer))
    {
        eprintln!("min_client: {e}");
        return ExitCode::from(1);
    }
    let text = String::from_utf8_lossy(&answer);
    if !text.starts_with("HTTP/1.1 200") {
        eprintln!("min_client: {}", text.lines().next().unwrap_or("no answer"));
        return ExitCode::from(1);
    }
    let key = "\"accessToken\":\"";
    let Some(start) = text.find(key).map(|i| i + key.len()) else {
        eprintln!("min_client: no accessToken in the answer");
        return ExitCode::from(1);
    };
    let Some(len) = text[start..].find('"') else {
        eprintln!("min_client: truncated answer");
        return ExitCode::from(1);
    };
    println!("{}", &text[start..start + len]);
    ExitCode::SUCCESS
}
