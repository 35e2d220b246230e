//! The command line: parses, calls, prints, and picks an exit code. Nothing imports `cli`.
//! Must not: hold policy or talk to AWS (the daemon does), or print a secret other than the
//! token that `token` was asked for.

mod accounts;
mod client;
mod completions;
mod console;
mod credentials;
mod exec;
mod exit;
mod install;
mod login;
mod logout;
mod profiles;
mod run;
mod status;
mod target;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::config::{self, Flags, Settings};
use crate::env::Env;

pub use exit::{Exit, Failure};

#[derive(Debug, Parser)]
#[command(
    name = "sso-agent",
    version,
    about = "Keeps AWS IAM Identity Center (SSO) logins alive and serves tokens to local processes",
    long_about = None,
)]
struct Cli {
    /// Socket path of the daemon [env: SSO_AGENT_SOCKET]
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon in the foreground (what systemd or launchd start)
    Run(RunArgs),
    /// Log a session in (the daemon runs the flow; this prints what to open and waits)
    Login(login::LoginArgs),
    /// Print a valid access token for a session
    Token(token::TokenArgs),
    /// Show the daemon and every session
    Status(status::StatusArgs),
    /// Forget a session's tokens (memory and keyring)
    Logout(logout::LogoutArgs),
    /// Print role credentials for an SSO profile (for credential_process, or --format env)
    Credentials(credentials::CredentialsArgs),
    /// Run a command with a profile's role credentials served live by the daemon
    Exec(exec::ExecArgs),
    /// List every account the session can use and its roles
    Accounts(accounts::AccountsArgs),
    /// Print the AWS config profiles for every account and role, or keep them in the config
    /// file (--write)
    Profiles(profiles::ProfilesArgs),
    /// Install and start the per-user service (systemd user units or a launchd agent)
    Install(install::InstallArgs),
    /// Stop and remove the per-user service
    Uninstall(install::InstallArgs),
    /// Sign in to the AWS console as a profile's role (opens the browser, or --print)
    Console(console::ConsoleArgs),
    /// Print the shell completion script (README: how to install it)
    Completions(completions::CompletionsArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// tracing filter, e.g. info or sso_agent=debug [env: SSO_AGENT_LOG]
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
    /// Refresh when less than this remains, e.g. 10m [env: SSO_AGENT_REFRESH_MARGIN]
    #[arg(long, value_name = "DURATION")]
    refresh_margin: Option<String>,
    /// Register a fresh client when its secret expires sooner than this, e.g. 7d
    /// [env: SSO_AGENT_REREGISTRATION_MARGIN]
    #[arg(long, value_name = "DURATION")]
    reregistration_margin: Option<String>,
    /// Where tokens are kept: keyring or memory [env: SSO_AGENT_STORE]
    #[arg(long, value_name = "BACKEND")]
    store: Option<String>,
}

/// Entry point of the binary: returns the process exit code.
pub fn main() -> ExitCode {
    // A Tab press: the registration script runs us with COMPLETE=<shell>; answer and exit.
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(completions::VAR)
        .bin("sso-agent")
        .completer("sso-agent")
        .complete();
    let env = Env::from_process();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            };
            let _ = e.print();
            return code.into();
        }
    };
    let result = match cli.command {
        // exec exits with its child's status, any number.
        Command::Exec(args) => {
            let flags = Flags {
                socket: cli.socket,
                ..Flags::default()
            };
            settings(&flags, &env).and_then(|s| exec::exec(args, &s, &env))
        }
        command => dispatch(cli.socket, command, env).map(|()| Exit::Ok.into()),
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("sso-agent: {}", crate::outside_text::escape(&f.message));
            f.exit.into()
        }
    }
}

fn dispatch(socket: Option<PathBuf>, command: Command, env: Env) -> Result<(), Failure> {
    let mut flags = Flags {
        socket,
        ..Flags::default()
    };
    match command {
        Command::Run(args) => {
            flags.log = args.log;
            flags.refresh_margin = args.refresh_margin;
            flags.reregistration_margin = args.reregistration_margin;
            flags.store = args.store;
            let settings = settings(&flags, &env)?;
            run::run(settings, flags, env)
        }
        Command::Login(args) => {
            client_rt()?.block_on(login::login(args, &settings(&flags, &env)?, &env))
        }
        Command::Token(args) => token::token(args, &settings(&flags, &env)?, &env),
        Command::Status(args) => {
            client_rt()?.block_on(status::status(args, &settings(&flags, &env)?))
        }
        Command::Logout(args) => {
            client_rt()?.block_on(logout::logout(args, &settings(&flags, &env)?, &env))
        }
        Command::Credentials(args) => client_rt()?.block_on(credentials::credentials(
            args,
            &settings(&flags, &env)?,
            &env,
        )),
        Command::Accounts(args) => {
            client_rt()?.block_on(accounts::accounts(args, &settings(&flags, &env)?, &env))
        }
        Command::Profiles(args) => {
            client_rt()?.block_on(profiles::profiles(args, &settings(&flags, &env)?, &env))
        }
        Command::Install(args) => install::install(args, &settings(&flags, &env)?, &env),
        Command::Uninstall(args) => install::uninstall(args, &settings(&flags, &env)?, &env),
        Command::Exec(_) => Err(Failure::new(Exit::Error, "exec is run by main")),
        Command::Console(args) => {
            client_rt()?.block_on(console::console(args, &settings(&flags, &env)?, &env))
        }
        Command::Completions(args) => completions::completions(args),
    }
}

fn settings(flags: &Flags, env: &Env) -> Result<Settings, Failure> {
    config::load_settings(flags, env).map_err(|e| Failure::new(Exit::Usage, e.to_string()))
}

/// Client commands make one or a few socket round trips: a current-thread runtime starts
/// fastest.
fn client_rt() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(Exit::Error, format!("cannot start the runtime: {e}")))
}

/// The session a command is about: the one named, else the only one configured, else the
/// one `AWS_PROFILE` points at (SPEC "SESSION may be omitted when …").
fn resolve_session(
    explicit: Option<String>,
    settings: &Settings,
    env: &Env,
) -> Result<String, Failure> {
    if let Some(name) = explicit {
        return Ok(name);
    }
    let aws = config::load_aws_config(&settings.aws_config_file)
        .map_err(|e| Failure::new(Exit::Usage, e.to_string()))?;
    aws.resolve_session(None, env)
        .map(|s| s.name.clone())
        .map_err(|e| Failure::new(Exit::Usage, e.to_string()))
}

/// `--profile NAME`, else `AWS_PROFILE`, else a usage error (the commands that act on one
/// profile: credentials, exec, console).
fn profile_or_env(flag: Option<String>, env: &Env) -> Result<String, Failure> {
    flag.or_else(|| env.get("AWS_PROFILE").map(String::from))
        .ok_or_else(|| {
            Failure::new(
                Exit::Usage,
                "name a profile with --profile (or set AWS_PROFILE)",
            )
        })
}
