//! The agent's own settings: the TOML file (unknown keys rejected, errors with lines), then
//! the merge with flags and environment, whose values are free text too (durations, store
//! kind, booleans). Input: the file; its first line is also tried as every flag and variable.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sso_agent::config::{Flags, merge, parse_toml};
use sso_agent::env::Env;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/fuzz/sso-agent.toml");
    let env = Env::from_pairs([("HOME", "/h"), ("XDG_RUNTIME_DIR", "/run/user/1")]);
    match parse_toml(path, text) {
        Ok(file) => {
            let _ = merge(&Flags::default(), &env, Some(&file));
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("/fuzz/sso-agent.toml"), "{msg}");
        }
    }

    let line = text.lines().next().unwrap_or("");
    let flags = Flags {
        socket: Some(line.into()),
        log: Some(line.into()),
        refresh_margin: Some(line.into()),
        reregistration_margin: Some(line.into()),
        store: Some(line.into()),
        export_aws_cli_cache: None,
    };
    let _ = merge(&flags, &env, None);
    let env = env
        .with("SSO_AGENT_SOCKET", line)
        .with("SSO_AGENT_REFRESH_MARGIN", line)
        .with("SSO_AGENT_REREGISTRATION_MARGIN", line)
        .with("SSO_AGENT_STORE", line)
        .with("SSO_AGENT_EXPORT_AWS_CLI_CACHE", line);
    let _ = merge(&Flags::default(), &env, None);
});
