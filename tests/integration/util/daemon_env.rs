//! The one recipe for a daemon's environment in tests and benchmarks: the file layout under a
//! temp directory (home, AWS config, runtime dir, socket) and the variables that aim
//! `sso-agent` (daemon and clients alike) at it and at the fake AWS. Used by the integration
//! tests' `util` and by `benches/bench` (included there by path), so both run the binary the
//! same way.
//! Must not: write files (callers write their own AWS config) or start anything.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Variables passed through from the caller's environment when set (the command line tools
/// need PATH; the keyring needs the session bus).
const PASS_THROUGH: &[&str] = &["PATH", "DBUS_SESSION_BUS_ADDRESS", "LANG"];

/// Where a daemon's files live under `root`, and what it is told.
#[derive(Debug, Clone)]
pub struct DaemonEnv {
    pub root: PathBuf,
    /// The fake AWS's URL, for both the OIDC and the portal endpoint.
    pub upstream: String,
    /// `keyring` or `memory`.
    pub store: &'static str,
    /// `SSO_AGENT_LOG`, when not the default.
    pub log: Option<&'static str>,
}

impl DaemonEnv {
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    pub fn runtime_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    pub fn aws_config(&self) -> PathBuf {
        self.home().join(".aws/config")
    }

    pub fn socket(&self) -> PathBuf {
        self.runtime_dir().join("sso-agent/agent.sock")
    }

    /// Every variable of the command, in order, after clearing the environment: the
    /// pass-through ones, then the layout's and the upstream's.
    #[allow(clippy::disallowed_methods)] // the pass-through reads the real environment
    pub fn vars(&self) -> Vec<(&'static str, OsString)> {
        let mut out: Vec<(&'static str, OsString)> = PASS_THROUGH
            .iter()
            .filter_map(|k| Some((*k, std::env::var_os(k)?)))
            .collect();
        let path = |p: &Path| p.as_os_str().to_owned();
        out.extend([
            ("HOME", path(&self.home())),
            ("XDG_RUNTIME_DIR", path(&self.runtime_dir())),
            ("XDG_CONFIG_HOME", path(&self.home().join(".config"))),
            ("AWS_CONFIG_FILE", path(&self.aws_config())),
            ("SSO_AGENT_SOCKET", path(&self.socket())),
            ("SSO_AGENT_STORE", self.store.into()),
            ("AWS_ENDPOINT_URL_SSO_OIDC", self.upstream.clone().into()),
            ("AWS_ENDPOINT_URL_SSO", self.upstream.clone().into()),
            ("NO_PROXY", "127.0.0.1,localhost".into()),
        ]);
        if let Some(log) = self.log {
            out.push(("SSO_AGENT_LOG", log.into()));
        }
        out
    }
}
