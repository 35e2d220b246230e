//! The `sso-agent` binary: everything lives in the library (`sso_agent::cli`).

fn main() -> std::process::ExitCode {
    sso_agent::cli::main()
}
