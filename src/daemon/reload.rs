//! Hot reload of the AWS config (and the agent TOML): watches the file's parent directory, and
//! a symlinked file's target directory too (so editors' write-temp-and-rename is seen; a watch
//! on the file itself dies at the first rename), re-runs the same
//! load-and-validate pipeline, and applies the result only if it loads. A broken file is
//! logged with file and line and shown in `status`; the last good sessions keep running.
//! Must not: apply a configuration that did not load.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::{self, Flags, Settings};
use crate::env::Env;

use super::AppState;

/// Editors write in bursts (temp file, data, rename); one reload per burst.
const SETTLE: Duration = Duration::from_millis(150);

/// Watches `file` (through its directory) and calls `on_change` once per burst of changes.
/// The returned watcher must be kept alive.
pub fn watch_file(
    file: &Path,
    what: &'static str,
    on_change: impl Fn() + Send + 'static,
) -> Option<notify::RecommendedWatcher> {
    let dir = file
        .parent()
        .map(Path::to_path_buf)
        .filter(|d| !d.as_os_str().is_empty())?;
    let mut names = vec![file.file_name()?.to_os_string()];
    let mut dirs = vec![dir.clone()];
    // A symlinked file (dotfiles) is edited, and written by `profiles --write`, at its
    // target: watch the target's directory too.
    if let Ok(target) = std::fs::canonicalize(file)
        && let (Some(tdir), Some(tname)) = (target.parent(), target.file_name())
        && std::fs::canonicalize(&dir).ok().as_deref() != Some(tdir)
    {
        dirs.push(tdir.to_path_buf());
        names.push(tname.to_os_string());
    }
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let handler = move |res: notify::Result<notify::Event>| match res {
        Ok(ev)
            if ev
                .paths
                .iter()
                .any(|p| names.iter().any(|n| p.file_name() == Some(n.as_os_str()))) =>
        {
            // A full channel already holds a pending reload: coalesce.
            let _ = tx.try_send(());
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, what, "config watcher error"),
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, what, "cannot watch; changes need a restart");
            return None;
        }
    };
    for dir in &dirs {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %e, what, "cannot watch the directory; changes need a restart");
            return None;
        }
    }
    tracing::debug!(dir = %dir.display(), what, "watching");
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            tokio::time::sleep(SETTLE).await;
            while rx.try_recv().is_ok() {}
            on_change();
        }
    });
    Some(watcher)
}

/// Watches the AWS config and the agent's TOML; returns the watchers to keep alive.
pub fn watch(
    settings: &Settings,
    flags: Flags,
    env: Env,
    state: Arc<AppState>,
) -> Vec<notify::RecommendedWatcher> {
    let mut out = Vec::new();
    let file = settings.aws_config_file.clone();
    let (e, st) = (env.clone(), state.clone());
    out.extend(watch_file(
        &settings.aws_config_file,
        "AWS config",
        move || reload(&file, &e, &st),
    ));
    if let Some(toml) = crate::paths::agent_config_path(&env) {
        let running = settings.clone();
        out.extend(watch_file(&toml, "agent settings", move || {
            reload_settings(&running, &flags, &env, &state)
        }));
    }
    out
}

/// Applies a changed agent TOML: the margins take effect at once (each session re-evaluates
/// its schedule); the socket, store and log filter need a restart and say so.
pub fn reload_settings(running: &Settings, flags: &Flags, env: &Env, state: &AppState) {
    match config::load_settings(flags, env) {
        Ok(new) => {
            state
                .manager
                .set_margins(new.refresh_margin, new.reregistration_margin);
            let needs_restart = new.socket != running.socket
                || new.store != running.store
                || new.log != running.log
                || new.export_aws_cli_cache != running.export_aws_cli_cache;
            if needs_restart {
                tracing::warn!(
                    "socket, store, log or export settings changed; they take effect after a restart"
                );
            }
            tracing::info!(refresh_margin = ?new.refresh_margin, reregistration_margin = ?new.reregistration_margin, "agent settings reloaded");
        }
        Err(e) => {
            tracing::error!(error = %e, "the agent settings do not load; keeping the running ones");
            *state
                .config_error
                .write()
                .unwrap_or_else(|p| p.into_inner()) =
                Some(format!("{e} (the running settings stay in force)"));
        }
    }
}

/// Loads, validates and applies the AWS config; on failure keeps the running sessions.
pub fn reload(file: &Path, env: &Env, state: &AppState) {
    match config::load_aws_config(file) {
        Ok(aws) => {
            let (sessions, problems) = super::sessions_from(&aws, env);
            for p in &problems {
                tracing::error!(problem = %p, "session left out");
            }
            if sessions.is_empty() {
                tracing::warn!(file = %file.display(), "no [sso-session] is configured; add one (it is picked up without a restart)");
            }
            tracing::info!(file = %file.display(), sessions = sessions.len(), "configuration loaded");
            state.manager.apply(sessions);
            *state.aws.write().unwrap_or_else(|p| p.into_inner()) = aws;
            // For `status`: which profiles the sso-agent blocks hold (never written here).
            let blocks = config::profiles_file::read_block_assignments(file).unwrap_or_default();
            for (session, entries) in &blocks {
                tracing::trace!(%session, ?entries, "profiles block read");
            }
            *state
                .profile_blocks
                .write()
                .unwrap_or_else(|p| p.into_inner()) = blocks;
            *state
                .config_error
                .write()
                .unwrap_or_else(|p| p.into_inner()) =
                (!problems.is_empty()).then(|| problems.join("; "));
        }
        Err(e) => {
            tracing::error!(file = %file.display(), error = %e, "the AWS config does not load; keeping the last good configuration");
            *state
                .config_error
                .write()
                .unwrap_or_else(|p| p.into_inner()) =
                Some(format!("{e} (the last good configuration stays in force)"));
        }
    }
}
