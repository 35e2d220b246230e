//! `sso-agent completions bash|zsh|fish|powershell`: the shell's registration script, from the
//! clap definition (clap_complete's dynamic engine), and the candidates it offers for session
//! and profile names, read from the AWS config each time the user presses Tab.
//! Must not: talk to the daemon (completion must answer at once, daemon or not) or print
//! anything but candidates while completing.

use clap::{Args, ValueEnum};
use clap_complete::engine::CompletionCandidate;
use clap_complete::env::{Bash, EnvCompleter, Fish, Powershell, Zsh};

use crate::config;
use crate::env::Env;

use super::exit::{Exit, Failure};

/// The variable the registration script sets when it asks the binary for candidates.
pub const VAR: &str = "COMPLETE";

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for
    #[arg(value_enum)]
    shell: Shell,
}

fn completer(shell: Shell) -> &'static dyn EnvCompleter {
    match shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
        Shell::Powershell => &Powershell,
    }
}

/// The script to source (README: how to install it). It calls `sso-agent` from `PATH` with
/// `COMPLETE=<shell>` to get candidates, so it stays right across upgrades.
pub fn script(shell: Shell) -> Result<String, std::io::Error> {
    let mut buf = Vec::new();
    completer(shell).write_registration(VAR, "sso-agent", "sso-agent", "sso-agent", &mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

pub fn completions(args: CompletionsArgs) -> Result<(), Failure> {
    let text = script(args.shell)
        .map_err(|e| Failure::new(Exit::Error, format!("cannot write the script: {e}")))?;
    print!("{text}");
    Ok(())
}

/// The AWS config as the settings find it; `None` when it cannot be read (no candidates,
/// never an error on the user's command line).
fn aws_config() -> Option<config::AwsConfig> {
    let env = Env::from_process();
    let settings = config::load_settings(&config::Flags::default(), &env).ok()?;
    config::load_aws_config(&settings.aws_config_file).ok()
}

/// Candidates for a SESSION argument: every sso-session, legacy ones included.
pub fn session_names() -> Vec<CompletionCandidate> {
    aws_config()
        .map(|c| {
            c.sessions
                .values()
                .map(|s| CompletionCandidate::new(&s.name).help(Some(s.start_url.clone().into())))
                .collect()
        })
        .unwrap_or_default()
}

/// Candidates for `--profile`: every profile that names an SSO session (or is a legacy one).
pub fn profile_names() -> Vec<CompletionCandidate> {
    aws_config()
        .map(|c| {
            c.profiles
                .values()
                .filter(|p| p.sso_session.is_some())
                .map(|p| CompletionCandidate::new(&p.name))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_that_calls_back_into_the_binary() {
        for (shell, marker) in [
            (Shell::Bash, "_clap_complete_sso_agent"),
            (Shell::Zsh, "compdef"),
            (
                Shell::Fish,
                "complete --keep-order --exclusive --command sso-agent",
            ),
            (Shell::Powershell, "Register-ArgumentCompleter"),
        ] {
            let s = script(shell).unwrap();
            assert!(s.contains(marker), "{shell:?}: {s}");
            assert!(s.contains("COMPLETE"), "{shell:?}: {s}");
        }
    }
}
