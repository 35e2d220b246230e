//! Hot reload of the AWS config: watches the file's parent directory (so editors' write-temp-
//! and-rename is seen; a watch on the file itself dies at the first rename), re-runs the same
//! load-and-validate pipeline, and applies the result only if it loads. A broken file is
//! logged with file and line and shown in `status`; the last good sessions keep running.
//! Must not: apply a configuration that did not load.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config;
use crate::env::Env;

use super::AppState;

/// Editors write in bursts (temp file, data, rename); one reload per burst.
const SETTLE: Duration = Duration::from_millis(150);

/// Starts watching `file`. The returned watcher must be kept alive.
pub fn watch(file: PathBuf, env: Env, state: Arc<AppState>) -> Option<notify::RecommendedWatcher> {
    let dir = file
        .parent()
        .map(Path::to_path_buf)
        .filter(|d| !d.as_os_str().is_empty())?;
    let name = file.file_name()?.to_os_string();
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let handler = move |res: notify::Result<notify::Event>| match res {
        Ok(ev)
            if ev
                .paths
                .iter()
                .any(|p| p.file_name() == Some(name.as_os_str())) =>
        {
            // A full channel already holds a pending reload: coalesce.
            let _ = tx.try_send(());
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "config watcher error"),
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the AWS config; changes need a restart");
            return None;
        }
    };
    if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the AWS config's directory; changes need a restart");
        return None;
    }
    tracing::debug!(dir = %dir.display(), "watching the AWS config");
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            tokio::time::sleep(SETTLE).await;
            while rx.try_recv().is_ok() {}
            reload(&file, &env, &state);
        }
    });
    Some(watcher)
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
