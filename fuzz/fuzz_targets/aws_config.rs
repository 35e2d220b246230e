//! The AWS shared config file: the INI parse and its validation into sessions, profiles and
//! `services`, then what the daemon and CLI do with the result (session resolution, role
//! targets, endpoint resolution).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sso_agent::config::parse_aws_config;
use sso_agent::env::Env;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cfg = match parse_aws_config(Path::new("/fuzz/config"), text) {
        Ok(cfg) => cfg,
        Err(e) => {
            assert!(!e.0.is_empty(), "an error without a message");
            let _ = e.to_string();
            return;
        }
    };
    let lines = text.lines().count();
    let env = Env::from_pairs([("HOME", "/h")]);
    for (name, s) in &cfg.sessions {
        assert!(s.location.line <= lines, "{} past the end", s.location);
        let found = cfg
            .resolve_session(Some(name), &env)
            .expect("a listed session");
        assert_eq!(&found.name, name);
        let _ = sso_agent::endpoint::resolve(&s.region, &env, &cfg);
    }
    let _ = cfg.resolve_session(None, &env);
    for (name, p) in &cfg.profiles {
        assert!(p.location.line <= lines, "{} past the end", p.location);
        let _ = cfg.profile_credentials(name);
        let env = env.clone().with("AWS_PROFILE", name);
        let _ = cfg.resolve_session(None, &env);
        for s in cfg.sessions.values() {
            let _ = sso_agent::endpoint::resolve(&s.region, &env, &cfg);
        }
    }
    let _ = sso_agent::daemon::sessions_from(&cfg, &env);
});
