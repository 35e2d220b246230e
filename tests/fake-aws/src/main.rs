//! `cargo run -p fake-aws`: the fake AWS as a process for the offline demo and out-of-process
//! tests. Prints its URL and the endpoint exports, logs one line per request to stderr (never
//! a secret), stops on Ctrl-C.
//! Must not: hold any fake logic (the library does).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use fake_aws::{AuthorizeMode, FakeAws, FakeConfig};

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Approve,
    Deny,
    Page,
}

/// A strict fake of AWS SSO OIDC and the SSO portal on 127.0.0.1.
#[derive(Parser)]
#[command(name = "fake-aws", version)]
struct Args {
    /// Port to bind on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Device codes approve themselves (no browser step).
    #[arg(long)]
    auto_approve: bool,
    /// Access token lifetime, e.g. 1h, 90s.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
    access_token_ttl: Duration,
    /// Client registration (secret) lifetime.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "90d")]
    client_secret_ttl: Duration,
    /// Device and user code lifetime.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
    device_code_ttl: Duration,
    /// Role credential lifetime.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
    role_credentials_ttl: Duration,
    /// Device flow polling interval in seconds.
    #[arg(long, default_value_t = 1)]
    interval: u64,
    /// Keep refresh tokens across refreshes instead of rotating them.
    #[arg(long)]
    no_rotate: bool,
    /// Never issue refresh tokens.
    #[arg(long)]
    no_refresh_tokens: bool,
    /// Do not answer early device-code polls with SlowDownException.
    #[arg(long)]
    no_enforce_interval: bool,
    /// What GET /authorize does: show a page, or approve / deny at once.
    #[arg(long, value_enum, default_value = "page")]
    authorize_mode: Mode,
    /// A role assignment ACCOUNT:ROLE[,ROLE…]; repeat for more accounts.
    /// Default: 111122223333:Admin,ReadOnly.
    #[arg(long = "account", value_name = "ACCOUNT:ROLES", value_parser = parse_account)]
    accounts: Vec<(String, Vec<String>)>,
    /// The most accounts or roles one ListAccounts / ListAccountRoles page holds (1 makes
    /// every item its own page).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=100))]
    page_size: u64,
    /// Do not log requests.
    #[arg(long)]
    quiet: bool,
}

fn parse_account(s: &str) -> Result<(String, Vec<String>), String> {
    let (id, roles) = s.split_once(':').ok_or("expected ACCOUNT:ROLE[,ROLE…]")?;
    let roles: Vec<String> = roles
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    if id.is_empty() || roles.is_empty() {
        return Err("expected ACCOUNT:ROLE[,ROLE…]".to_owned());
    }
    Ok((id.to_owned(), roles))
}

impl Args {
    fn config(self) -> FakeConfig {
        let defaults = FakeConfig::default();
        FakeConfig {
            access_token_ttl: self.access_token_ttl,
            client_secret_ttl: self.client_secret_ttl,
            device_code_ttl: self.device_code_ttl,
            device_interval_secs: self.interval,
            rotate_refresh_tokens: !self.no_rotate,
            issue_refresh_tokens: !self.no_refresh_tokens,
            auto_approve: self.auto_approve,
            authorize_mode: match self.authorize_mode {
                Mode::Approve => AuthorizeMode::Approve,
                Mode::Deny => AuthorizeMode::Deny,
                Mode::Page => AuthorizeMode::Page,
            },
            role_credentials_ttl: self.role_credentials_ttl,
            accounts: if self.accounts.is_empty() {
                defaults.accounts
            } else {
                self.accounts
            },
            page_size: usize::try_from(self.page_size).unwrap_or(1),
            enforce_poll_interval: !self.no_enforce_interval,
            log_requests: !self.quiet,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let fake = match FakeAws::start_on(addr, args.config()).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fake-aws: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let url = fake.url();
    println!("fake-aws listening on {url}");
    println!("export AWS_ENDPOINT_URL_SSO_OIDC={url}");
    println!("export AWS_ENDPOINT_URL_SSO={url}");
    eprintln!("fake-aws: device page {url}/device; control API {url}/_fake/state; Ctrl-C to stop");
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("fake-aws: cannot wait for Ctrl-C: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("fake-aws: stopping");
    drop(fake);
    ExitCode::SUCCESS
}
