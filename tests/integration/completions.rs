//! `sso-agent completions`: the generated script, sourced by a real bash, completes the
//! subcommands and the session and profile names of the user's AWS config.

use std::path::Path;

use crate::util::TestEnv;

/// Sources the bash script and asks it to complete `words` (the last one being typed).
async fn bash_complete(env: &TestEnv, script: &str, words: &[&str]) -> Vec<String> {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_sso-agent")).parent().unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prog = format!(
        "source /dev/stdin <<'SCRIPT'\n{script}\nSCRIPT\nCOMP_WORDS=({words}); COMP_CWORD={cword}; COMP_TYPE=9\n_clap_complete_sso_agent sso-agent '{cur}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        words = quoted.join(" "),
        cur = words[cword],
        prev = words[cword - 1],
    );
    let mut bash = tokio::process::Command::new("bash");
    bash.arg("-c")
        .arg(prog)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
        .env("HOME", env.home())
        .env("AWS_CONFIG_FILE", env.config_path())
        .env("XDG_CONFIG_HOME", env.home().join(".config"));
    let out = bash.output().await.unwrap();
    assert!(
        out.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[tokio::test]
async fn bash_completes_subcommands_sessions_and_profiles_from_the_aws_config() {
    let env = TestEnv::new().await;
    env.write_config(&format!(
        "[sso-session corp]\nsso_start_url = {u}\nsso_region = us-east-1\n\
         [sso-session lab]\nsso_start_url = {u}/lab\nsso_region = eu-west-1\n\
         [profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\n\
         [profile plain]\nregion = eu-west-1\n",
        u = env.start_url
    ));
    let out = env.run(&["completions", "bash"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let script = out.stdout;

    let subs = bash_complete(&env, &script, &["sso-agent", "co"]).await;
    assert!(subs.contains(&"completions".to_string()), "{subs:?}");

    let sessions = bash_complete(&env, &script, &["sso-agent", "login", ""]).await;
    assert!(sessions.contains(&"corp".to_string()), "{sessions:?}");
    assert!(sessions.contains(&"lab".to_string()), "{sessions:?}");

    let profiles = bash_complete(&env, &script, &["sso-agent", "token", "--profile", ""]).await;
    assert_eq!(profiles, ["dev"], "only profiles with an SSO session");

    for shell in ["zsh", "fish", "powershell"] {
        let out = env.run(&["completions", shell]).await;
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        assert!(out.stdout.contains("COMPLETE"), "{shell}: {}", out.stdout);
    }
    let out = env.run(&["completions", "tcsh"]).await;
    assert_eq!(out.code, 2, "an unknown shell is a usage error");
}
