//! Hot reload of the AWS config and the agent TOML: watches each file through its directory
//! (so editors' write-temp-and-rename is seen; a watch on the file itself dies at the first
//! rename), or through the nearest existing parent while that directory does not exist yet
//! (the optional settings directory, usually), moving the watch down as directories appear;
//! a symlinked file's target directory is watched too (dotfiles are edited, and `profiles
//! --write` writes, at the target).
//! Only a change (create, write, rename, remove) reloads; a read never does (the daemon's
//! own read of the file would otherwise start a reload loop). Each reload re-runs the same
//! load-and-validate pipeline off the async workers and applies the result only if it loads;
//! a broken file is logged with file and line and shown in `status`, one slot per file,
//! cleared when that file loads again; the last good configuration keeps running.
//! Must not: apply a configuration that did not load, or read a file itself (config/ does,
//! through safe_fs).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::api::ConfigProblem;
use crate::config::{self, ConfigErrors, Flags, Settings};
use crate::env::Env;

use super::AppState;

/// Editors write in bursts (temp file, data, rename); one reload per burst.
const SETTLE: Duration = Duration::from_millis(150);

/// The current problem of each watched file: one slot per file, so fixing one file does not
/// hide (or keep) the other's problem.
#[derive(Debug, Default)]
pub struct ConfigProblems {
    aws: RwLock<Option<ConfigProblem>>,
    settings: RwLock<Option<ConfigProblem>>,
}

impl ConfigProblems {
    fn set(slot: &RwLock<Option<ConfigProblem>>, value: Option<ConfigProblem>) {
        *slot.write().unwrap_or_else(|p| p.into_inner()) = value;
    }

    pub fn set_aws(&self, value: Option<ConfigProblem>) {
        Self::set(&self.aws, value);
    }

    pub fn set_settings(&self, value: Option<ConfigProblem>) {
        Self::set(&self.settings, value);
    }

    /// The current problems, AWS config first.
    pub fn list(&self) -> Vec<ConfigProblem> {
        [&self.aws, &self.settings]
            .into_iter()
            .filter_map(|s| s.read().unwrap_or_else(|p| p.into_inner()).clone())
            .collect()
    }
}

/// Keeps a file watched; dropping it ends the watch.
pub struct Watch {
    _watcher: Arc<Mutex<notify::RecommendedWatcher>>,
}

/// Whether an event is a change to the file's content or name. Opens, reads and closes
/// without writing are not (the daemon's own read would reload forever); metadata (atime,
/// chmod) is not either.
pub fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any => true,
        EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Modify(ModifyKind::Metadata(_) | ModifyKind::Other)
        | EventKind::Access(_)
        | EventKind::Other => false,
    }
}

/// The directory to watch for `file`: its parent if that exists, else the nearest existing
/// ancestor (whose events include the creation of the next missing directory).
fn anchor(file: &Path) -> Option<PathBuf> {
    file.parent()?
        .ancestors()
        .find(|d| !d.as_os_str().is_empty() && d.is_dir())
        .map(Path::to_path_buf)
}

/// Points the watch at the current anchor of `file` if it moved (a directory on the way
/// appeared or went away). Returns the directory now watched.
fn rearm(
    watcher: &Mutex<notify::RecommendedWatcher>,
    file: &Path,
    current: Option<PathBuf>,
    what: &'static str,
) -> Option<PathBuf> {
    let next = anchor(file);
    if next == current {
        return current;
    }
    let mut w = watcher.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(old) = &current {
        // Fails when the directory is gone (the kernel dropped the watch): nothing to undo.
        let _ = w.unwatch(old);
    }
    let dir = next?;
    match w.watch(&dir, RecursiveMode::NonRecursive) {
        Ok(()) => {
            if Some(dir.as_path()) == file.parent() {
                tracing::debug!(dir = %dir.display(), what, "watching");
            } else {
                tracing::debug!(dir = %dir.display(), file = %file.display(), what, "the file's directory does not exist yet; watching its nearest parent for it");
            }
            Some(dir)
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, what, "cannot watch the directory; changes need a restart");
            None
        }
    }
}

/// Watches `file` (through its directory, or the nearest existing parent) and runs
/// `on_change` once per burst of changes.
pub fn watch_file<F, Fut>(file: &Path, what: &'static str, on_change: F) -> Option<Watch>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let file = std::path::absolute(file).ok()?;
    let (tx, mut rx) = mpsc::channel::<()>(1);
    // The file itself, or a directory on its way (created, removed, renamed). By name, not
    // whole path: some backends (FSEvents) report canonical paths (/private/var/… for /var/…).
    let mut names: Vec<std::ffi::OsString> = file
        .ancestors()
        .filter_map(|a| a.file_name().map(ToOwned::to_owned))
        .collect();
    // A symlinked file (dotfiles) is edited, and written by `profiles --write`, at its
    // target: watch the target's directory too, and its name.
    let target_dir = std::fs::canonicalize(&file).ok().and_then(|target| {
        let (tdir, tname) = (
            target.parent()?.to_path_buf(),
            target.file_name()?.to_owned(),
        );
        let own_dir = file.parent().and_then(|d| std::fs::canonicalize(d).ok());
        (own_dir.as_deref() != Some(tdir.as_path())).then(|| {
            names.push(tname);
            tdir
        })
    });
    let handler = move |res: notify::Result<notify::Event>| match res {
        Ok(ev) => {
            let relevant = ev
                .paths
                .iter()
                .any(|p| p.file_name().is_some_and(|n| names.iter().any(|m| m == n)));
            if !relevant {
                return;
            }
            if is_change(&ev.kind) {
                // A full channel already holds a pending reload: coalesce.
                let _ = tx.try_send(());
            } else {
                tracing::trace!(kind = ?ev.kind, what, "config watcher: not a change, ignored");
            }
        }
        Err(e) => tracing::warn!(error = %e, what, "config watcher error"),
    };
    let watcher = match notify::recommended_watcher(handler) {
        Ok(w) => Arc::new(Mutex::new(w)),
        Err(e) => {
            tracing::warn!(error = %e, what, "cannot watch; changes need a restart");
            return None;
        }
    };
    let mut watched = rearm(&watcher, &file, None, what);
    watched.as_ref()?;
    if let Some(tdir) = &target_dir {
        let mut w = watcher.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = w.watch(tdir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %tdir.display(), error = %e, what, "cannot watch the link's target directory; edits there need a restart");
        }
    }
    let weak: Weak<Mutex<notify::RecommendedWatcher>> = Arc::downgrade(&watcher);
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            tokio::time::sleep(SETTLE).await;
            while rx.try_recv().is_ok() {}
            let Some(w) = weak.upgrade() else { break };
            watched = rearm(&w, &file, watched, what);
            drop(w);
            on_change().await;
        }
    });
    Some(Watch { _watcher: watcher })
}

/// Watches the AWS config and the agent's TOML; returns the watches to keep alive.
pub fn watch(settings: &Settings, flags: Flags, env: Env, state: Arc<AppState>) -> Vec<Watch> {
    let mut out = Vec::new();
    let file = settings.aws_config_file.clone();
    let (e, st) = (env.clone(), state.clone());
    out.extend(watch_file(
        &settings.aws_config_file,
        "AWS config",
        move || {
            let (file, e, st) = (file.clone(), e.clone(), st.clone());
            async move { reload(&file, &e, &st).await }
        },
    ));
    if let Some(toml) = crate::paths::agent_config_path(&env) {
        let running = Arc::new(settings.clone());
        let flags = Arc::new(flags);
        out.extend(watch_file(&toml, "agent settings", move || {
            let (running, flags, env, state) =
                (running.clone(), flags.clone(), env.clone(), state.clone());
            async move { reload_settings(&running, &flags, &env, &state).await }
        }));
    }
    out
}

/// Runs a blocking config load on the blocking pool (file reads must not stall the
/// workers that serve the socket).
async fn off_workers<T: Send + 'static>(
    what: &str,
    load: impl FnOnce() -> Result<T, ConfigErrors> + Send + 'static,
) -> Result<T, ConfigErrors> {
    tokio::task::spawn_blocking(load).await.unwrap_or_else(|e| {
        Err(ConfigErrors(vec![format!(
            "reading the {what} failed: {e}"
        )]))
    })
}

/// Applies a changed agent TOML: the margins take effect at once (each session re-evaluates
/// its schedule); the socket, store and log filter need a restart and say so.
pub async fn reload_settings(running: &Settings, flags: &Flags, env: &Env, state: &AppState) {
    let file = crate::paths::agent_config_path(env)
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let (f, e) = (flags.clone(), env.clone());
    match off_workers("agent settings", move || config::load_settings(&f, &e)).await {
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
            state.config_problems.set_settings(None);
            tracing::info!(refresh_margin = ?new.refresh_margin, reregistration_margin = ?new.reregistration_margin, "agent settings reloaded");
        }
        Err(e) => {
            state.config_problems.set_settings(Some(ConfigProblem {
                file,
                problem: format!("{e} (the running settings stay in force)"),
            }));
            tracing::error!(error = %e, "the agent settings do not load; keeping the running ones");
        }
    }
}

/// Loads, validates and applies the AWS config; on failure keeps the running sessions.
/// State first, log line after: whoever sees the line (a test, a user tailing the log) and
/// then asks `status` sees the new state.
pub async fn reload(file: &Path, env: &Env, state: &AppState) {
    let path = file.to_path_buf();
    // The config and (for `status`) the profiles its sso-agent blocks hold, both read off
    // the async workers; the block is never written here.
    let loaded = off_workers("AWS config", move || {
        let aws = config::load_aws_config(&path)?;
        let blocks = config::profiles_file::read_block_assignments(&path).unwrap_or_default();
        Ok((aws, blocks))
    })
    .await;
    let shown = file.display().to_string();
    match loaded {
        Ok((aws, blocks)) => {
            for (session, entries) in &blocks {
                tracing::trace!(%session, ?entries, "profiles block read");
            }
            *state
                .profile_blocks
                .write()
                .unwrap_or_else(|p| p.into_inner()) = blocks;
            let (sessions, problems) = super::sessions_from(&aws, env);
            for p in &problems {
                tracing::error!(problem = %p, "session left out");
            }
            if sessions.is_empty() {
                tracing::warn!(file = %file.display(), "no [sso-session] is configured; add one (it is picked up without a restart)");
            }
            let count = sessions.len();
            state.manager.apply(sessions);
            *state.aws.write().unwrap_or_else(|p| p.into_inner()) = aws;
            state
                .config_problems
                .set_aws((!problems.is_empty()).then(|| ConfigProblem {
                    file: shown,
                    problem: problems.join("; "),
                }));
            tracing::info!(file = %file.display(), sessions = count, "configuration loaded");
        }
        Err(e) => {
            state.config_problems.set_aws(Some(ConfigProblem {
                file: shown,
                problem: format!("{e} (the last good configuration stays in force)"),
            }));
            tracing::error!(file = %file.display(), error = %e, "the AWS config does not load; keeping the last good configuration");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, MetadataKind, RemoveKind, RenameMode};

    #[test]
    fn only_changes_reload() {
        use AccessKind as A;
        for (kind, change) in [
            (EventKind::Access(A::Open(AccessMode::Read)), false),
            (EventKind::Access(A::Open(AccessMode::Any)), false),
            (EventKind::Access(A::Read), false),
            (EventKind::Access(A::Close(AccessMode::Read)), false),
            (EventKind::Access(A::Any), false),
            (
                EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)),
                false,
            ),
            (EventKind::Other, false),
            (EventKind::Access(A::Close(AccessMode::Write)), true),
            (EventKind::Create(CreateKind::File), true),
            (EventKind::Remove(RemoveKind::File), true),
            (
                EventKind::Modify(ModifyKind::Data(DataChange::Content)),
                true,
            ),
            (EventKind::Modify(ModifyKind::Name(RenameMode::To)), true),
            (EventKind::Modify(ModifyKind::Any), true),
        ] {
            assert_eq!(is_change(&kind), change, "{kind:?}");
        }
    }

    #[test]
    fn anchor_is_the_nearest_existing_parent() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a/b/config.toml");
        assert_eq!(anchor(&file).as_deref(), Some(dir.path()));
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        assert_eq!(
            anchor(&file).as_deref(),
            Some(dir.path().join("a/b").as_path())
        );
    }

    /// Issue 14 #16: an absent settings directory is watched through its parent, so a file
    /// created later (directory and all) is picked up, with no warning at start.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_in_a_directory_made_later_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sso-agent/deeper/config.toml");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let probe = file.clone();
        let watch = watch_file(&file, "test", move || {
            let _ = tx.send(probe.exists());
            async {}
        });
        assert!(watch.is_some(), "watched through the nearest parent");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "log = \"debug\"\n").unwrap();
        let seen = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(exists) = rx.recv().await {
                if exists {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(seen, Ok(true), "the new file was seen");
        // and a later edit of it, now watched in its own directory, is seen too
        while rx.try_recv().is_ok() {}
        std::fs::write(&file, "log = \"info\"\n").unwrap();
        let again = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert_eq!(again, Ok(Some(true)));
    }
}
