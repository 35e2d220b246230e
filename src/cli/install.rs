//! `sso-agent install [--dry-run]` / `sso-agent uninstall [--dry-run]`: the per-user service.

use clap::Args;

use crate::config::Settings;
use crate::env::Env;
use crate::service::{self, Context, Plan};

use super::exit::{Exit, Failure};

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Print the files and commands instead of writing and running them
    #[arg(long)]
    dry_run: bool,
}

/// Windows has no service install yet: said plainly, before anything is looked up.
#[cfg(windows)]
fn context(_settings: &Settings, _env: &Env) -> Result<Context, Failure> {
    Err(Failure::new(
        Exit::Error,
        "installing sso-agent as a Windows service is not offered yet; start it with `sso-agent run` (for example from a scheduled task at logon)",
    ))
}

#[cfg(unix)]
fn context(settings: &Settings, env: &Env) -> Result<Context, Failure> {
    let binary = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| Failure::new(Exit::Error, format!("cannot find this program's path: {e}")))?;
    let home = crate::paths::home(env).ok_or_else(|| {
        Failure::new(Exit::Error, "HOME is not set; cannot tell where to install")
    })?;
    Ok(Context {
        binary,
        home,
        socket: settings.socket.clone(),
        uid: crate::daemon::listener::current_uid(),
    })
}

fn carry_out(
    plan: Plan,
    dry_run: bool,
    ctx: &Context,
    env: &Env,
    verb: &str,
) -> Result<(), Failure> {
    if dry_run {
        print!("{}", plan.describe());
        return Ok(());
    }
    let runtime_dir = env.get("XDG_RUNTIME_DIR").map(std::path::PathBuf::from);
    service::check_manager(ctx, runtime_dir.as_deref())
        .map_err(|e| Failure::new(Exit::Error, e.to_string()))?;
    let done = plan
        .execute()
        .map_err(|e| Failure::new(Exit::Error, format!("{verb} failed: {e}")))?;
    for line in done {
        eprintln!("{line}");
    }
    for line in &plan.next_steps {
        eprintln!("{line}");
    }
    Ok(())
}

pub fn install(args: InstallArgs, settings: &Settings, env: &Env) -> Result<(), Failure> {
    let ctx = context(settings, env)?;
    carry_out(
        service::install_plan(&ctx),
        args.dry_run,
        &ctx,
        env,
        "install",
    )
}

pub fn uninstall(args: InstallArgs, settings: &Settings, env: &Env) -> Result<(), Failure> {
    let ctx = context(settings, env)?;
    carry_out(
        service::uninstall_plan(&ctx),
        args.dry_run,
        &ctx,
        env,
        "uninstall",
    )
}
