//! Agent settings: flags, then environment, then the optional TOML file, then defaults
//! (SPEC's settings table). `merge` is pure, so tests need no process state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::env::Env;
use crate::paths;

use super::ConfigErrors;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Keyring,
    Memory,
}

/// Validated settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub socket: PathBuf,
    pub log: String,
    pub refresh_margin: Duration,
    pub reregistration_margin: Duration,
    pub store: StoreKind,
    pub export_aws_cli_cache: bool,
    pub aws_config_file: PathBuf,
    pub agent_config_file: Option<PathBuf>,
}

/// Settings given as command-line flags (raw strings; validated by `merge`).
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub socket: Option<PathBuf>,
    pub log: Option<String>,
    pub refresh_margin: Option<String>,
    pub reregistration_margin: Option<String>,
    pub store: Option<String>,
    pub export_aws_cli_cache: Option<bool>,
}

/// The TOML file as written (every key optional, unknown keys rejected).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawFile {
    #[serde(skip)]
    pub path: PathBuf,
    pub socket: Option<PathBuf>,
    pub log: Option<String>,
    pub refresh_margin: Option<String>,
    pub reregistration_margin: Option<String>,
    pub store: Option<String>,
    pub export_aws_cli_cache: Option<bool>,
}

/// Picks the first value present among flag, environment and file, with its source's name.
fn pick(
    flag: Option<String>,
    flag_name: &str,
    env: &Env,
    var: &str,
    file: Option<(String, &Path, &str)>,
) -> Option<(String, String)> {
    if let Some(v) = flag {
        return Some((v, format!("{flag_name} (flag)")));
    }
    if let Some(v) = env.get(var) {
        return Some((v.to_string(), format!("{var} (environment)")));
    }
    file.map(|(v, path, key)| (v, format!("{} (`{key}`)", path.display())))
}

fn duration(v: Option<(String, String)>, default: Duration, errors: &mut Vec<String>) -> Duration {
    match v {
        None => default,
        Some((raw, source)) => match humantime::parse_duration(raw.trim()) {
            Ok(d) => d,
            Err(_) => {
                errors.push(format!(
                    "{source}: {raw:?} is not a duration; try 90s, 10m or 7d"
                ));
                default
            }
        },
    }
}

/// Merges the sources (pure). Precedence: flags > environment > TOML file > defaults.
pub fn merge(flags: &Flags, env: &Env, file: Option<&RawFile>) -> Result<Settings, ConfigErrors> {
    let mut errors = Vec::new();
    let fpath = file.map(|f| f.path.as_path()).unwrap_or(Path::new(""));
    let from_file = |get: fn(&RawFile) -> Option<String>, key: &'static str| {
        file.and_then(get).map(|v| (v, fpath, key))
    };

    let socket = match flags
        .socket
        .clone()
        .or_else(|| env.get("SSO_AGENT_SOCKET").map(PathBuf::from))
        .or_else(|| file.and_then(|f| f.socket.clone()))
    {
        Some(p) => paths::expand_tilde(&p.to_string_lossy(), env),
        None => match paths::default_socket_path(env) {
            Ok(p) => p,
            Err(e) => {
                errors.push(e.to_string());
                PathBuf::new()
            }
        },
    };
    let log = pick(
        flags.log.clone(),
        "--log",
        env,
        "SSO_AGENT_LOG",
        from_file(|f| f.log.clone(), "log"),
    )
    .map_or_else(|| "info".to_string(), |(v, _)| v);
    let refresh_margin = duration(
        pick(
            flags.refresh_margin.clone(),
            "--refresh-margin",
            env,
            "SSO_AGENT_REFRESH_MARGIN",
            from_file(|f| f.refresh_margin.clone(), "refresh_margin"),
        ),
        Duration::from_secs(600),
        &mut errors,
    );
    let reregistration_margin = duration(
        pick(
            flags.reregistration_margin.clone(),
            "--reregistration-margin",
            env,
            "SSO_AGENT_REREGISTRATION_MARGIN",
            from_file(|f| f.reregistration_margin.clone(), "reregistration_margin"),
        ),
        Duration::from_secs(7 * 86400),
        &mut errors,
    );
    let store = match pick(
        flags.store.clone(),
        "--store",
        env,
        "SSO_AGENT_STORE",
        from_file(|f| f.store.clone(), "store"),
    ) {
        None => StoreKind::Keyring,
        Some((v, source)) => match v.trim() {
            "keyring" => StoreKind::Keyring,
            "memory" => StoreKind::Memory,
            _ => {
                errors.push(format!(
                    "{source}: {v:?} is not a store; use keyring or memory"
                ));
                StoreKind::Keyring
            }
        },
    };
    let export_aws_cli_cache = match (
        flags.export_aws_cli_cache,
        env.get("SSO_AGENT_EXPORT_AWS_CLI_CACHE"),
    ) {
        (Some(b), _) => b,
        (None, Some(v)) => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => {
                errors.push(format!("SSO_AGENT_EXPORT_AWS_CLI_CACHE (environment): {v:?} is not a boolean; use true or false"));
                false
            }
        },
        (None, None) => file.and_then(|f| f.export_aws_cli_cache).unwrap_or(false),
    };
    if errors.is_empty() {
        Ok(Settings {
            socket,
            log,
            refresh_margin,
            reregistration_margin,
            store,
            export_aws_cli_cache,
            aws_config_file: paths::aws_config_path(env),
            agent_config_file: file.map(|f| f.path.clone()),
        })
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Reads the optional TOML file (a missing file is fine; read through `safe_fs`, so blocking:
/// the daemon calls it from `spawn_blocking`) and merges.
pub fn load_settings(flags: &Flags, env: &Env) -> Result<Settings, ConfigErrors> {
    let file = match paths::agent_config_path(env) {
        None => None,
        Some(path) => match crate::safe_fs::read::read_config_text(&path) {
            Ok(Some(text)) => Some(parse_toml(&path, &text)?),
            Ok(None) => None,
            Err(e) => return Err(ConfigErrors(vec![e.to_string()])),
        },
    };
    merge(flags, env, file.as_ref())
}

/// Parses the agent's TOML file; errors name the file and line.
pub fn parse_toml(path: &Path, text: &str) -> Result<RawFile, ConfigErrors> {
    match toml::from_str::<RawFile>(text) {
        Ok(mut f) => {
            f.path = path.to_path_buf();
            Ok(f)
        }
        Err(e) => {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let at = line.map_or_else(String::new, |l| format!(":{l}"));
            Err(ConfigErrors(vec![format!(
                "{}{at}: {}",
                path.display(),
                e.message()
            )]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        // USERNAME: Windows names its default pipe after the user.
        Env::from_pairs([
            ("HOME", "/h"),
            ("XDG_RUNTIME_DIR", "/run/user/1"),
            ("USERNAME", "u"),
        ])
    }

    #[test]
    fn defaults() {
        let s = merge(&Flags::default(), &env(), None).unwrap();
        assert_eq!(s.refresh_margin, Duration::from_secs(600));
        assert_eq!(s.reregistration_margin, Duration::from_secs(7 * 86400));
        assert_eq!(s.store, StoreKind::Keyring);
        assert_eq!(s.log, "info");
        assert!(!s.export_aws_cli_cache);
        assert_eq!(s.aws_config_file, PathBuf::from("/h/.aws/config"));
    }

    #[test]
    fn precedence_flag_env_file() {
        let file = RawFile {
            path: "/c.toml".into(),
            refresh_margin: Some("1m".into()),
            store: Some("memory".into()),
            socket: Some("/f.sock".into()),
            ..RawFile::default()
        };
        let s = merge(&Flags::default(), &env(), Some(&file)).unwrap();
        assert_eq!(
            (s.refresh_margin, s.store, s.socket.clone()),
            (
                Duration::from_secs(60),
                StoreKind::Memory,
                PathBuf::from("/f.sock")
            )
        );
        let e = env()
            .with("SSO_AGENT_REFRESH_MARGIN", "2m")
            .with("SSO_AGENT_SOCKET", "/e.sock");
        let s = merge(&Flags::default(), &e, Some(&file)).unwrap();
        assert_eq!(
            (s.refresh_margin, s.socket.clone()),
            (Duration::from_secs(120), PathBuf::from("/e.sock"))
        );
        let flags = Flags {
            refresh_margin: Some("3m".into()),
            socket: Some("/x.sock".into()),
            ..Flags::default()
        };
        let s = merge(&flags, &e, Some(&file)).unwrap();
        assert_eq!(
            (s.refresh_margin, s.socket),
            (Duration::from_secs(180), PathBuf::from("/x.sock"))
        );
    }

    #[test]
    fn bad_values_name_their_source() {
        let e = env()
            .with("SSO_AGENT_REFRESH_MARGIN", "10")
            .with("SSO_AGENT_STORE", "disk");
        let err = merge(&Flags::default(), &e, None).unwrap_err().to_string();
        assert!(err.contains("SSO_AGENT_REFRESH_MARGIN (environment): \"10\" is not a duration; try 90s, 10m or 7d"), "{err}");
        assert!(
            err.contains("SSO_AGENT_STORE (environment): \"disk\" is not a store"),
            "{err}"
        );
        let file = RawFile {
            path: "/c.toml".into(),
            reregistration_margin: Some("soon".into()),
            ..RawFile::default()
        };
        let err = merge(&Flags::default(), &env(), Some(&file))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/c.toml (`reregistration_margin`)"), "{err}");
    }

    #[test]
    fn toml_errors_have_lines() {
        let err = parse_toml(Path::new("/c.toml"), "log = \"debug\"\nsokcet = \"/x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/c.toml:2:"), "{err}");
        assert!(err.contains("sokcet"), "{err}");
        let err = parse_toml(Path::new("/c.toml"), "log = \n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/c.toml:1:"), "{err}");
        let ok = parse_toml(
            Path::new("/c.toml"),
            "store = \"memory\"\nexport_aws_cli_cache = true\n",
        )
        .unwrap();
        assert_eq!(ok.export_aws_cli_cache, Some(true));
    }
}
