//! Platform paths, all computed from an `Env`: home, socket, AWS config, agent config, the
//! AWS CLI token cache.
//! Must not: create anything (callers decide what to create, with which modes).

use std::path::PathBuf;

use crate::env::Env;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PathError(String);

/// `HOME`, else `USERPROFILE`; on Windows the other way round (a `HOME` there is a Unix
/// tool's, e.g. Wine's or Git Bash's, and not a Windows path).
pub fn home(env: &Env) -> Option<PathBuf> {
    let (first, second) = if cfg!(windows) {
        ("USERPROFILE", "HOME")
    } else {
        ("HOME", "USERPROFILE")
    };
    env.get(first)
        .or_else(|| env.get(second))
        .map(PathBuf::from)
}

/// `~/x` → `$HOME/x`.
pub fn expand_tilde(path: &str, env: &Env) -> PathBuf {
    match (path.strip_prefix("~/"), home(env)) {
        (Some(rest), Some(h)) => h.join(rest),
        _ if path == "~" => home(env).unwrap_or_else(|| PathBuf::from(path)),
        _ => PathBuf::from(path),
    }
}

/// `$XDG_RUNTIME_DIR/sso-agent/agent.sock`; macOS `$TMPDIR/sso-agent/agent.sock`; without a
/// runtime dir on Linux, `/tmp/sso-agent-<uid>/agent.sock` (the daemon checks the directory
/// is ours and 0700 before it binds). Windows: the named pipe `\\.\pipe\sso-agent-<user name>`.
pub fn default_socket_path(env: &Env) -> Result<PathBuf, PathError> {
    if cfg!(windows) {
        return default_pipe(env);
    }
    if cfg!(target_os = "macos")
        && let Some(t) = env.get("TMPDIR")
    {
        return Ok(PathBuf::from(t).join("sso-agent/agent.sock"));
    }
    if let Some(r) = env.get("XDG_RUNTIME_DIR") {
        return Ok(PathBuf::from(r).join("sso-agent/agent.sock"));
    }
    #[cfg(unix)]
    {
        let uid = rustix::process::geteuid().as_raw();
        Ok(PathBuf::from(format!("/tmp/sso-agent-{uid}/agent.sock")))
    }
    #[cfg(not(unix))]
    {
        let _ = env;
        Err(PathError(
            "cannot choose a socket path; set SSO_AGENT_SOCKET".into(),
        ))
    }
}

/// `\\.\pipe\sso-agent-<USERNAME>`: per user, as the pipe namespace is shared by all users
/// (the daemon's first-instance flag and both ends' user checks keep others out). A
/// backslash, the one character a pipe name cannot hold, becomes `_`.
pub fn default_pipe(env: &Env) -> Result<PathBuf, PathError> {
    match env.get("USERNAME").filter(|u| !u.is_empty()) {
        Some(user) => Ok(PathBuf::from(format!(
            r"\\.\pipe\sso-agent-{}",
            user.replace('\\', "_")
        ))),
        None => Err(PathError(
            "USERNAME is not set, so there is no default pipe name; set SSO_AGENT_SOCKET (e.g. \\\\.\\pipe\\sso-agent-NAME)"
                .into(),
        )),
    }
}

/// `AWS_CONFIG_FILE` (with `~` expanded), else `~/.aws/config`.
pub fn aws_config_path(env: &Env) -> PathBuf {
    match env.get("AWS_CONFIG_FILE") {
        Some(p) => expand_tilde(p, env),
        None => home(env).unwrap_or_default().join(".aws/config"),
    }
}

/// `SSO_AGENT_CONFIG`, else `$XDG_CONFIG_HOME/sso-agent/config.toml` (`~/.config/…`;
/// macOS `~/Library/Application Support/sso-agent/config.toml`; Windows
/// `%APPDATA%\sso-agent\config.toml`).
pub fn agent_config_path(env: &Env) -> Option<PathBuf> {
    if let Some(p) = env.get("SSO_AGENT_CONFIG") {
        return Some(expand_tilde(p, env));
    }
    if cfg!(target_os = "macos") {
        return home(env).map(|h| h.join("Library/Application Support/sso-agent/config.toml"));
    }
    if cfg!(windows) {
        return env
            .get("APPDATA")
            .map(|d| PathBuf::from(d).join(r"sso-agent\config.toml"));
    }
    env.get("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home(env).map(|h| h.join(".config")))
        .map(|d| d.join("sso-agent/config.toml"))
}

/// `~/.aws/sso/cache`, where the AWS CLI and SDKs read SSO tokens.
pub fn aws_sso_cache_dir(env: &Env) -> Option<PathBuf> {
    home(env).map(|h| h.join(".aws/sso/cache"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_windows_pipe_is_per_user() {
        let env = Env::from_pairs([("USERNAME", r"DOM\ann")]);
        assert_eq!(
            default_pipe(&env).unwrap(),
            PathBuf::from(r"\\.\pipe\sso-agent-DOM_ann")
        );
        let e = default_pipe(&Env::from_pairs([("USERNAME", "")])).unwrap_err();
        assert!(e.to_string().contains("SSO_AGENT_SOCKET"), "{e}");
        if cfg!(windows) {
            // Wine passes the Unix XDG_RUNTIME_DIR on; a pipe is still the default there.
            let env = env.with("XDG_RUNTIME_DIR", "/run/user/1");
            assert_eq!(
                default_socket_path(&env).unwrap(),
                PathBuf::from(r"\\.\pipe\sso-agent-DOM_ann")
            );
        }
    }

    #[test]
    fn paths_follow_the_environment() {
        let env = Env::from_pairs([("HOME", "/h"), ("XDG_RUNTIME_DIR", "/run/user/1")]);
        if !cfg!(any(target_os = "macos", windows)) {
            assert_eq!(
                default_socket_path(&env).unwrap(),
                PathBuf::from("/run/user/1/sso-agent/agent.sock")
            );
            assert_eq!(
                agent_config_path(&env).unwrap(),
                PathBuf::from("/h/.config/sso-agent/config.toml")
            );
        }
        assert_eq!(aws_config_path(&env), PathBuf::from("/h/.aws/config"));
        let env = env
            .with("AWS_CONFIG_FILE", "~/cfg")
            .with("SSO_AGENT_CONFIG", "/etc/x.toml");
        assert_eq!(aws_config_path(&env), PathBuf::from("/h/cfg"));
        assert_eq!(
            agent_config_path(&env).unwrap(),
            PathBuf::from("/etc/x.toml")
        );
        assert_eq!(
            aws_sso_cache_dir(&env).unwrap(),
            PathBuf::from("/h/.aws/sso/cache")
        );
    }
}
