//! The AWS shared config file (`~/.aws/config`) as botocore reads it (WIRE.md §6.4): parsed
//! with an INI crate, then validated into sessions, profiles and `services` sections, each
//! with the file and line it came from.
//! Must not: resolve endpoints (endpoint.rs) or decide anything about tokens.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ini::{Ini, ParseOption};

use crate::env::Env;

use super::ConfigErrors;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoSession {
    pub name: String,
    pub start_url: String,
    pub region: String,
    /// `sso_registration_scopes` split on `,`, trimmed, empties dropped; default
    /// `["sso:account:access"]` (what makes refresh tokens possible).
    pub scopes: Vec<String>,
    /// Derived from legacy profiles (`sso_start_url` and `sso_region` in a `[profile]`, no
    /// `sso_session`), not an `[sso-session]` section; `location` is its first profile's.
    pub legacy: bool,
    pub location: Location,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub sso_session: Option<String>,
    pub sso_account_id: Option<String>,
    pub sso_role_name: Option<String>,
    /// The profile's own `region` (what `exec` gives its child as AWS_REGION; the console's
    /// partition comes from it).
    pub region: Option<String>,
    pub sso_start_url: Option<String>,
    pub sso_region: Option<String>,
    /// `sso_session` was derived from the profile's legacy keys, not written in it.
    pub legacy: bool,
    pub endpoint_url: Option<String>,
    pub services: Option<String>,
    pub ignore_configured_endpoint_urls: bool,
    /// The command line SDKs run for credentials (see `shadowed.rs` for why it matters).
    pub credential_process: Option<String>,
    pub location: Location,
}

/// `services NAME` → service key (`sso_oidc`, `sso`) → its settings (`endpoint_url`).
pub type Services = BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsConfig {
    pub path: PathBuf,
    pub sessions: BTreeMap<String, SsoSession>,
    pub profiles: BTreeMap<String, Profile>,
    pub services: Services,
}

/// What a profile's role credentials need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleTarget {
    pub session: String,
    pub account_id: String,
    pub role_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResolveError(pub String);

/// A missing file is an empty configuration, not an error. Read through `safe_fs` (regular
/// files only, size cap); blocking, so the daemon calls it from `spawn_blocking`.
pub fn load_aws_config(path: &Path) -> Result<AwsConfig, ConfigErrors> {
    match crate::safe_fs::read::read_config_text(path) {
        Ok(Some(text)) => parse_aws_config(path, &text),
        Ok(None) => Ok(AwsConfig {
            path: path.to_path_buf(),
            ..AwsConfig::default()
        }),
        Err(e) => Err(ConfigErrors(vec![e.to_string()])),
    }
}

/// The first line that botocore's configparser would reject, with why, in its words: the
/// INI crate reports where its reader gave up (an unclosed `[header` is read up to the next
/// `]`, possibly lines later, or to the end of the file), not where the fault is. Also run
/// before the crate, since an unclosed header followed by another section parses "fine" into
/// one garbled section name.
fn fault_line(text: &str) -> Option<(usize, &str, &'static str)> {
    let mut in_value = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if raw.starts_with([' ', '\t']) && in_value {
            continue; // continuation of the value above
        }
        let why = if line.starts_with('[') {
            in_value = false;
            (!line.contains(']')).then_some("opens a section header but has no closing ']'")
        } else if line.starts_with(['=', ':']) {
            Some("has no key before the '='")
        } else if !line.contains(['=', ':']) {
            Some("is not a [section] header, a `key = value` line or a # comment")
        } else {
            in_value = true;
            None
        };
        if let Some(why) = why {
            return Some((i + 1, line, why));
        }
    }
    None
}

/// One line for a file that does not parse: where the fault is and what is wrong, never the
/// parser's internals.
fn parse_problem(path: &Path, text: &str, crate_line: Option<usize>) -> Option<String> {
    let (n, line, why) = match fault_line(text) {
        Some(f) => f,
        None => {
            let n = crate_line?;
            let line = text.lines().nth(n.saturating_sub(1)).unwrap_or("").trim();
            (n, line, "cannot be read as INI")
        }
    };
    // outside text: the line is the user's own file, quoted as configparser does.
    let shown: String = line.chars().take(120).collect();
    Some(format!("{}:{n}: {shown:?} {why}", path.display()))
}

/// Line of each section header (1-based), for messages.
fn header_lines(text: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            out.entry(name.trim().to_string()).or_insert(i + 1);
        }
    }
    out
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host == "[::1]"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `https://…`, or `http://` to a loopback host (tests).
fn start_url_problem(url: &str) -> Option<String> {
    match url::Url::parse(url) {
        Err(e) => Some(format!("sso_start_url {url:?} is not a URL ({e})")),
        Ok(u) if u.scheme() == "https" => None,
        Ok(u) if u.scheme() == "http" && u.host_str().is_some_and(is_loopback_host) => None,
        Ok(_) => Some(format!("sso_start_url {url:?} must be https://")),
    }
}

fn region_ok(r: &str) -> bool {
    !r.is_empty() && r.len() <= 64 && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

pub fn parse_aws_config(path: &Path, text: &str) -> Result<AwsConfig, ConfigErrors> {
    let opt = ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        enabled_indented_mutiline_value: true,
        enabled_preserve_key_leading_whitespace: false,
    };
    if let Some(p) = parse_problem(path, text, None) {
        return Err(ConfigErrors(vec![p]));
    }
    let ini = Ini::load_from_str_opt(text, opt).map_err(|e| {
        ConfigErrors(vec![
            parse_problem(path, text, Some(e.line))
                .unwrap_or_else(|| format!("{}:{}: cannot be read as INI", path.display(), e.line)),
        ])
    })?;
    let lines = header_lines(text);
    let loc = |section: &str| Location {
        path: path.to_path_buf(),
        line: lines.get(section).copied().unwrap_or(0),
    };
    let mut cfg = AwsConfig {
        path: path.to_path_buf(),
        ..AwsConfig::default()
    };
    let mut errors = Vec::new();
    for (section, props) in ini.iter() {
        let Some(section) = section else { continue };
        let get = |k: &str| {
            props
                .get(k)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
        };
        let words: Vec<&str> = section.split_whitespace().collect();
        match words.as_slice() {
            ["sso-session", name] => {
                let location = loc(section);
                let start_url = get("sso_start_url");
                let region = get("sso_region");
                let mut ok = true;
                match &start_url {
                    None => {
                        errors.push(format!(
                            "{location}: [sso-session {name}] has no sso_start_url"
                        ));
                        ok = false;
                    }
                    Some(u) => {
                        if let Some(p) = start_url_problem(u) {
                            errors.push(format!("{location}: [sso-session {name}] {p}"));
                            ok = false;
                        }
                    }
                }
                match &region {
                    None => {
                        errors.push(format!(
                            "{location}: [sso-session {name}] has no sso_region"
                        ));
                        ok = false;
                    }
                    Some(r) if !region_ok(r) => {
                        errors.push(format!(
                            "{location}: [sso-session {name}] sso_region {r:?} is not a region"
                        ));
                        ok = false;
                    }
                    Some(_) => {}
                }
                let mut scopes: Vec<String> = get("sso_registration_scopes")
                    .map(|s| {
                        s.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                if scopes.is_empty() {
                    scopes.push("sso:account:access".into());
                }
                if let (true, Some(start_url), Some(region)) = (ok, start_url, region) {
                    cfg.sessions.insert(
                        name.to_string(),
                        SsoSession {
                            name: name.to_string(),
                            start_url,
                            region,
                            scopes,
                            legacy: false,
                            location,
                        },
                    );
                }
            }
            ["profile", name] | [name @ "default"] => {
                let p = Profile {
                    name: name.to_string(),
                    sso_session: get("sso_session"),
                    sso_account_id: get("sso_account_id"),
                    sso_role_name: get("sso_role_name"),
                    region: get("region"),
                    sso_start_url: get("sso_start_url"),
                    sso_region: get("sso_region"),
                    legacy: false,
                    endpoint_url: get("endpoint_url"),
                    services: get("services"),
                    ignore_configured_endpoint_urls: get("ignore_configured_endpoint_urls")
                        .is_some_and(|v| v.eq_ignore_ascii_case("true")),
                    credential_process: get("credential_process"),
                    location: loc(section),
                };
                cfg.profiles.insert(name.to_string(), p);
            }
            ["services", name] => {
                let mut services = BTreeMap::new();
                for (svc, value) in props.iter() {
                    let nested = value
                        .lines()
                        .filter_map(|l| l.split_once('='))
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .collect();
                    services.insert(svc.trim().to_string(), nested);
                }
                cfg.services.insert(name.to_string(), services);
            }
            _ => {} // other sections (plugins, preview, …) are not ours
        }
    }
    for p in cfg.profiles.values() {
        if let Some(s) = &p.sso_session {
            match cfg.sessions.get(s) {
                None if !errors
                    .iter()
                    .any(|e| e.contains(&format!("[sso-session {s}]"))) =>
                {
                    errors.push(format!(
                        "{}: profile {} names sso_session {s}, which is not configured",
                        p.location, p.name
                    ));
                }
                Some(sess) => {
                    for (key, mine, theirs) in [
                        ("sso_start_url", &p.sso_start_url, &sess.start_url),
                        ("sso_region", &p.sso_region, &sess.region),
                    ] {
                        if mine.as_ref().is_some_and(|m| m != theirs) {
                            errors.push(format!(
                                "{}: profile {} sets {key} differently from [sso-session {s}]",
                                p.location, p.name
                            ));
                        }
                    }
                }
                None => {}
            }
        }
    }
    derive_legacy_sessions(&mut cfg, &mut errors);
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// SPEC "Legacy profiles": a profile with `sso_start_url`, `sso_region`, `sso_account_id` and
/// `sso_role_name` and no `sso_session` is served through a session derived per distinct
/// (start URL, region), registered with `sso:account:access` so it refreshes. The profile's
/// `sso_session` then names that session, so everything that follows a profile to its
/// session (credentials, `--profile`, `AWS_PROFILE`) works unchanged. A profile missing one
/// of the four keys is left alone (botocore fails it only when used; so do we, naming it).
fn derive_legacy_sessions(cfg: &mut AwsConfig, errors: &mut Vec<String>) {
    let mut wanted: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for p in cfg.profiles.values() {
        let (None, Some(url), Some(region), Some(_), Some(_)) = (
            &p.sso_session,
            &p.sso_start_url,
            &p.sso_region,
            &p.sso_account_id,
            &p.sso_role_name,
        ) else {
            continue;
        };
        let mut ok = true;
        if let Some(problem) = start_url_problem(url) {
            errors.push(format!("{}: profile {} {problem}", p.location, p.name));
            ok = false;
        }
        if !region_ok(region) {
            errors.push(format!(
                "{}: profile {} sso_region {region:?} is not a region",
                p.location, p.name
            ));
            ok = false;
        }
        if ok {
            wanted
                .entry((url.clone(), region.clone()))
                .or_default()
                .push(p.name.clone());
        }
    }
    let bases: Vec<String> = wanted
        .keys()
        .map(|(url, region)| legacy_name(url, region))
        .collect();
    for (((url, region), profiles), base) in wanted.iter().zip(&bases) {
        // Two start URLs with the same first host label and region, or a user's own
        // [sso-session] of that name: tell them apart by the start URL's digest.
        let clash = bases.iter().filter(|b| *b == base).count() > 1
            || cfg.sessions.contains_key(base.as_str());
        let name = if clash {
            format!("{base}-{}", &hex_sha1(url)[..8])
        } else {
            base.clone()
        };
        let location = cfg.profiles[&profiles[0]].location.clone();
        for p in profiles {
            if let Some(p) = cfg.profiles.get_mut(p) {
                p.sso_session = Some(name.clone());
                p.legacy = true;
            }
        }
        cfg.sessions.insert(
            name.clone(),
            SsoSession {
                name,
                start_url: url.clone(),
                region: region.clone(),
                scopes: vec!["sso:account:access".into()],
                legacy: true,
                location,
            },
        );
    }
}

fn hex_sha1(s: &str) -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `legacy-<first label of the start URL's host>-<region>`, e.g.
/// `legacy-d-1234567890-us-east-1`: stable (it depends on that pair only, so adding or
/// removing other profiles never renames it and its keyring entry) and readable.
fn legacy_name(url: &str, region: &str) -> String {
    let label: String = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .and_then(|h| h.split('.').next().map(String::from))
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let label = label.trim_matches('-');
    if label.is_empty() {
        format!("legacy-{region}")
    } else {
        format!("legacy-{label}-{region}")
    }
}

impl AwsConfig {
    fn session_list(&self) -> String {
        if self.sessions.is_empty() {
            format!("no [sso-session] is configured in {}", self.path.display())
        } else {
            format!(
                "configured sessions: {}",
                self.sessions.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        }
    }

    /// SPEC: SESSION may be omitted when the config has exactly one sso-session, or when
    /// AWS_PROFILE names a profile with sso_session; otherwise an error listing the sessions.
    pub fn resolve_session(
        &self,
        explicit: Option<&str>,
        env: &Env,
    ) -> Result<&SsoSession, ResolveError> {
        if let Some(name) = explicit {
            return self.sessions.get(name).ok_or_else(|| {
                ResolveError(format!(
                    "no sso-session named `{name}`; {}",
                    self.session_list()
                ))
            });
        }
        let from_profile = env
            .get("AWS_PROFILE")
            .and_then(|p| self.profiles.get(p))
            .and_then(|p| p.sso_session.as_deref())
            .and_then(|s| self.sessions.get(s));
        if let Some(s) = from_profile {
            return Ok(s);
        }
        let mut all = self.sessions.values();
        match (all.next(), all.next()) {
            (Some(only), None) => Ok(only),
            _ => Err(ResolveError(format!(
                "name a session (or set AWS_PROFILE to a profile with sso_session); {}",
                self.session_list()
            ))),
        }
    }

    /// The session a profile uses (`--profile NAME` in login, token, logout): its
    /// `sso_session`, which a legacy profile's derived session fills in.
    pub fn profile_session(&self, profile: &str) -> Result<&SsoSession, ResolveError> {
        let p = self.profiles.get(profile).ok_or_else(|| {
            ResolveError(format!(
                "no profile named `{profile}` in {}",
                self.path.display()
            ))
        })?;
        p.sso_session
            .as_deref()
            .and_then(|s| self.sessions.get(s))
            .ok_or_else(|| {
                ResolveError(format!(
                    "{}: profile {profile} has no sso_session (nor sso_start_url, sso_region, sso_account_id and sso_role_name)",
                    p.location
                ))
            })
    }

    pub fn profile_credentials(&self, profile: &str) -> Result<RoleTarget, ResolveError> {
        let p = self.profiles.get(profile).ok_or_else(|| {
            ResolveError(format!(
                "no profile named `{profile}` in {}",
                self.path.display()
            ))
        })?;
        let missing =
            |k: &str| ResolveError(format!("{}: profile {profile} has no {k}", p.location));
        Ok(RoleTarget {
            session: p.sso_session.clone().ok_or_else(|| {
                missing(
                    "sso_session (nor sso_start_url, sso_region, sso_account_id and sso_role_name)",
                )
            })?,
            account_id: p
                .sso_account_id
                .clone()
                .ok_or_else(|| missing("sso_account_id"))?,
            role_name: p
                .sso_role_name
                .clone()
                .ok_or_else(|| missing("sso_role_name"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# comment
[default]
region = eu-west-1

[sso-session corp]
sso_start_url = https://d-1234567890.awsapps.com/start
sso_region = us-east-1
sso_registration_scopes = sso:account:access, ,extra:scope

[sso-session lab]
sso_start_url = http://127.0.0.1:9/start
sso_region = eu-west-1

[profile dev]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = Admin
services = local

[services local]
sso_oidc =
  endpoint_url = http://127.0.0.1:2002
sso =
  endpoint_url = http://127.0.0.1:2003
";

    #[test]
    fn parses_sessions_profiles_services() {
        let c = parse_aws_config(Path::new("/c"), TEXT).unwrap();
        let corp = &c.sessions["corp"];
        assert_eq!(corp.scopes, ["sso:account:access", "extra:scope"]);
        assert_eq!(corp.location.line, 5);
        assert_eq!(c.sessions["lab"].scopes, ["sso:account:access"]);
        assert!(c.profiles.contains_key("default"));
        assert_eq!(c.profiles["dev"].services.as_deref(), Some("local"));
        assert_eq!(
            c.services["local"]["sso_oidc"]["endpoint_url"],
            "http://127.0.0.1:2002"
        );
        assert_eq!(
            c.services["local"]["sso"]["endpoint_url"],
            "http://127.0.0.1:2003"
        );
        let t = c.profile_credentials("dev").unwrap();
        assert_eq!(
            (
                t.session.as_str(),
                t.account_id.as_str(),
                t.role_name.as_str()
            ),
            ("corp", "111122223333", "Admin")
        );
        assert!(
            c.profile_credentials("default")
                .unwrap_err()
                .0
                .contains("sso_session")
        );
    }

    #[test]
    fn problems_are_reported_with_file_and_line_all_at_once() {
        let text = "[sso-session a]\nsso_start_url = https://x/start\n\n[sso-session b]\nsso_region = us-east-1\n[sso-session c]\nsso_start_url = http://example.com/start\nsso_region = us-east-1\n[profile p]\nsso_session = nope\n";
        let err = parse_aws_config(Path::new("/c"), text).unwrap_err();
        let all = err.to_string();
        assert!(
            all.contains("/c:1: [sso-session a] has no sso_region"),
            "{all}"
        );
        assert!(
            all.contains("/c:4: [sso-session b] has no sso_start_url"),
            "{all}"
        );
        assert!(
            all.contains(
                "/c:6: [sso-session c] sso_start_url \"http://example.com/start\" must be https://"
            ),
            "{all}"
        );
        assert!(
            all.contains("/c:9: profile p names sso_session nope"),
            "{all}"
        );
        let err = parse_aws_config(Path::new("/c"), "[sso-session a\nx=1\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "/c:1: \"[sso-session a\" opens a section header but has no closing ']'"
        );
    }

    /// Issue 14 #14: the fault is named at its own line in plain words (configparser says
    /// `[line 8]: '[sso-session broken'`), not where the INI reader gave up, and without the
    /// reader's internals (`expecting "[Some(']')]" but found EOF.`).
    #[test]
    fn a_file_that_does_not_parse_is_reported_at_the_faulty_line() {
        let text = "\
[sso-session corp]
sso_start_url = https://d-1234567890.awsapps.com/start
sso_region = us-east-1

[profile dev]
sso_session = corp

[sso-session broken
sso_start_url = https://d-2.awsapps.com/start
sso_region = eu-west-1
# end
";
        let err = parse_aws_config(Path::new("/h/.aws/config"), text)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "/h/.aws/config:8: \"[sso-session broken\" opens a section header but has no closing ']'"
        );
        // followed by another section, the INI reader alone would swallow it silently
        let later = format!("{text}[profile after]\nsso_session = corp\n");
        let err = parse_aws_config(Path::new("/c"), &later)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/c:8: "), "{err}");

        for (text, line, why) in [
            ("[default]\nregion\n", 2, "is not a [section] header"),
            ("[default]\n= x\n", 2, "has no key before"),
            ("[default]\nregion = x\n  continued\n[p\n", 4, "no closing"),
        ] {
            let err = parse_aws_config(Path::new("/c"), text)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(&format!("/c:{line}: ")), "{text:?}: {err}");
            assert!(err.contains(why), "{text:?}: {err}");
            assert!(
                !err.contains("expecting") && !err.contains("Some("),
                "{err}"
            );
        }
        // control characters in the quoted line are escaped, not passed to the terminal
        let err = parse_aws_config(Path::new("/c"), "[default]\nx\u{1b}]0;t\u{7}\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\u{1b}'), "{err:?}");
    }

    #[test]
    fn session_resolution_rules() {
        let c = parse_aws_config(Path::new("/c"), TEXT).unwrap();
        let env = Env::default();
        assert_eq!(c.resolve_session(Some("lab"), &env).unwrap().name, "lab");
        let e = c.resolve_session(Some("x"), &env).unwrap_err().0;
        assert!(e.contains("configured sessions: corp, lab"), "{e}");
        let e = c.resolve_session(None, &env).unwrap_err().0;
        assert!(e.contains("corp, lab"), "{e}");
        let env = Env::from_pairs([("AWS_PROFILE", "dev")]);
        assert_eq!(c.resolve_session(None, &env).unwrap().name, "corp");
        let one = parse_aws_config(
            Path::new("/c"),
            "[sso-session only]\nsso_start_url = https://a/start\nsso_region = us-east-1\n",
        )
        .unwrap();
        assert_eq!(
            one.resolve_session(None, &Env::default()).unwrap().name,
            "only"
        );
        let none = AwsConfig::default();
        assert!(
            none.resolve_session(None, &Env::default())
                .unwrap_err()
                .0
                .contains("no [sso-session]")
        );
    }

    /// SPEC "Legacy profiles": two profiles sharing a start URL and region are one session
    /// (legacy, sso:account:access), a third on another region is another; each profile then
    /// resolves to its session; an incomplete one is not served and says what it lacks.
    #[test]
    fn legacy_profiles_become_one_session_per_start_url_and_region() {
        let text = "\
[profile a]
sso_start_url = https://d-1234567890.awsapps.com/start
sso_region = us-east-1
sso_account_id = 111122223333
sso_role_name = Admin
[profile b]
sso_start_url = https://d-1234567890.awsapps.com/start
sso_region = us-east-1
sso_account_id = 444455556666
sso_role_name = ReadOnly
[profile c]
sso_start_url = https://d-1234567890.awsapps.com/start
sso_region = eu-west-1
sso_account_id = 111122223333
sso_role_name = Admin
[profile half]
sso_start_url = https://d-1234567890.awsapps.com/start
sso_account_id = 111122223333
";
        let c = parse_aws_config(Path::new("/c"), text).unwrap();
        let names: Vec<&str> = c.sessions.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "legacy-d-1234567890-eu-west-1",
                "legacy-d-1234567890-us-east-1"
            ]
        );
        let s = &c.sessions["legacy-d-1234567890-us-east-1"];
        assert!(s.legacy);
        assert_eq!(s.scopes, ["sso:account:access"]);
        assert_eq!(s.start_url, "https://d-1234567890.awsapps.com/start");
        assert_eq!(s.location.line, 1, "its first profile's line");
        assert_eq!(c.profile_session("b").unwrap().name, s.name);
        assert_eq!(
            c.profile_session("c").unwrap().name,
            "legacy-d-1234567890-eu-west-1"
        );
        let t = c.profile_credentials("b").unwrap();
        assert_eq!(
            (t.session.as_str(), t.role_name.as_str()),
            (s.name.as_str(), "ReadOnly")
        );
        assert!(c.profiles["a"].legacy);
        let e = c.profile_credentials("half").unwrap_err().0;
        assert!(
            e.starts_with("/c:16: profile half has no sso_session"),
            "{e}"
        );
        let env = Env::from_pairs([("AWS_PROFILE", "a")]);
        assert_eq!(c.resolve_session(None, &env).unwrap().name, s.name);
    }

    /// The AWS CLI's rule for a profile with both forms: its sso_start_url and sso_region
    /// must agree with the sso-session it names, else a config error at its line. A bad
    /// legacy start URL is an error too; a derived name never takes a user's session's.
    #[test]
    fn mixed_forms_must_agree_and_names_do_not_clash() {
        let base = "[sso-session corp]\nsso_start_url = https://d-1.awsapps.com/start\nsso_region = us-east-1\n";
        let agree = format!(
            "{base}[profile p]\nsso_session = corp\nsso_start_url = https://d-1.awsapps.com/start\nsso_region = us-east-1\nsso_account_id = 1\nsso_role_name = R\n"
        );
        let c = parse_aws_config(Path::new("/c"), &agree).unwrap();
        assert_eq!(
            c.sessions.len(),
            1,
            "no legacy session for a profile with sso_session"
        );
        assert!(!c.profiles["p"].legacy);
        let differ = agree.replace(
            "sso_region = us-east-1\nsso_account_id",
            "sso_region = eu-west-1\nsso_account_id",
        );
        let e = parse_aws_config(Path::new("/c"), &differ)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/c:4: profile p sets sso_region differently from [sso-session corp]"
        );

        let bad = "[profile old]\nsso_start_url = http://example.com/start\nsso_region = us-east-1\nsso_account_id = 1\nsso_role_name = R\n";
        let e = parse_aws_config(Path::new("/c"), bad)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/c:1: profile old sso_start_url \"http://example.com/start\" must be https://"
        );

        let taken = "[sso-session legacy-d-1-us-east-1]\nsso_start_url = https://other.example/start\nsso_region = us-east-1\n[profile old]\nsso_start_url = https://d-1.awsapps.com/start\nsso_region = us-east-1\nsso_account_id = 1\nsso_role_name = R\n";
        let c = parse_aws_config(Path::new("/c"), taken).unwrap();
        let mine = c.profile_session("old").unwrap();
        assert!(mine.legacy);
        assert!(
            mine.name.starts_with("legacy-d-1-us-east-1-"),
            "{}",
            mine.name
        );
        assert!(!c.sessions["legacy-d-1-us-east-1"].legacy);
    }
}
