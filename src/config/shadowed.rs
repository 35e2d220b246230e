//! Profiles whose `credential_process = sso-agent …` no SDK will run: every SDK's profile
//! chain tries its SSO provider before `credential_process` (botocore: web identity, sso,
//! shared credentials, login, process; Go v2 and the others alike), so a profile that also
//! holds `sso_*` keys resolves through the SSO token cache and never calls sso-agent.
//! Must not: read files or decide anything beyond spotting the mix (status reports it).

use super::{AwsConfig, Location};

/// One profile that mixes `sso_*` keys with a `credential_process` calling sso-agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShadowedProcess {
    pub profile: String,
    pub location: Location,
}

/// Whether a `credential_process` command line runs sso-agent (by name or by path, also
/// inside `sh -c '…'`): any word whose file name is `sso-agent` or `sso-agent.exe`.
fn calls_sso_agent(command: &str) -> bool {
    command
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ';' || c == '&')
        .filter_map(|w| w.rsplit(['/', '\\']).next())
        .any(|name| name == "sso-agent" || name == "sso-agent.exe")
}

/// Every profile in `cfg` whose sso-agent `credential_process` its SSO keys shadow, by name.
pub fn shadowed_processes(cfg: &AwsConfig) -> Vec<ShadowedProcess> {
    cfg.profiles
        .values()
        .filter(|p| {
            let sso = p.sso_session.is_some()
                || p.sso_account_id.is_some()
                || p.sso_role_name.is_some()
                || p.sso_start_url.is_some()
                || p.sso_region.is_some();
            sso && p.credential_process.as_deref().is_some_and(calls_sso_agent)
        })
        .map(|p| ShadowedProcess {
            profile: p.name.clone(),
            location: p.location.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::parse_aws_config;

    #[test]
    fn spots_sso_keys_beside_an_sso_agent_process() {
        let text = "\
[sso-session corp]
sso_start_url = https://d-1234567890.awsapps.com/start
sso_region = us-east-1

[profile mixed]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = Admin
credential_process = sso-agent credentials --profile mixed

[profile by-path]
sso_account_id = 111122223333
credential_process = /usr/local/bin/sso-agent credentials --profile mixed

[profile in-shell]
sso_role_name = Admin
credential_process = sh -c 'sso-agent credentials --profile mixed'

[profile clean]
credential_process = sso-agent credentials --profile mixed

[profile other-tool]
sso_session = corp
credential_process = aws-vault exec x --json

[profile lookalike]
sso_session = corp
credential_process = sso-agent-helper credentials
";
        let cfg = parse_aws_config(Path::new("/c"), text).unwrap();
        let got: Vec<(String, usize)> = shadowed_processes(&cfg)
            .into_iter()
            .map(|s| (s.profile, s.location.line))
            .collect();
        assert_eq!(
            got,
            [
                ("by-path".to_string(), 11),
                ("in-shell".to_string(), 15),
                ("mixed".to_string(), 5)
            ]
        );
    }
}
