//! Accounts and profiles against the fake with several accounts and roles and a page size of
//! 1: listing every page, printing, writing the marked block into a hand-written config
//! (byte comparison outside it), idempotence, stale vs prune, a name clash, mode kept, hot
//! reload then `credentials` for a generated profile, and the profile in real botocore.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use fake_aws::{FakeConfig, Op};

use crate::util::*;

const BEGIN: &str = "# BEGIN sso-agent profiles for sso-session corp";
const END: &str = "# END sso-agent profiles for sso-session corp";

fn assignments() -> Vec<(String, Vec<String>)> {
    vec![
        (
            "111122223333".into(),
            vec!["Admin".into(), "ReadOnly".into()],
        ),
        ("444455556666".into(), vec!["Dev".into()]),
        (
            "777788889999".into(),
            vec!["Admin".into(), "Billing".into(), "ReadOnly".into()],
        ),
    ]
}

async fn accounts_env() -> TestEnv {
    TestEnv::with_fake(FakeConfig {
        device_interval_secs: 1,
        accounts: assignments(),
        page_size: 1,
        ..FakeConfig::default()
    })
    .await
}

/// The file with the session's block (BEGIN line through END line and its terminator) cut out.
fn outside(text: &str) -> String {
    let start = text.find(BEGIN).expect("a block");
    let mut end = text.find(END).expect("its end") + END.len();
    if text[end..].starts_with('\n') {
        end += 1;
    }
    format!("{}{}", &text[..start], &text[end..])
}

fn block(text: &str) -> &str {
    let start = text.find(BEGIN).expect("a block");
    let end = text.find(END).expect("its end") + END.len();
    &text[start..end]
}

fn profile_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("[profile ")?.strip_suffix(']'))
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_lists_every_page_and_caches_briefly() {
    let env = accounts_env().await;
    let _d = env.start_daemon().await;
    let out = env.run(&["accounts", "corp"]).await;
    assert_eq!(out.code, 4, "no login yet: {out:?}");

    assert_eq!(env.login().await.code, 0);
    let out = env.run(&["accounts", "--json"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["session"], "corp");
    let got: Vec<(String, Vec<String>)> = v["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["accountId"].as_str().unwrap().to_string(),
                a["roles"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(got, assignments(), "every account and role, all pages");
    assert_eq!(v["accounts"][1]["accountName"], "fake-account-444455556666");
    assert_eq!(
        v["accounts"][1]["emailAddress"],
        "aws+444455556666@example.com"
    );
    // Page size 1: one ListAccounts call per account, one ListAccountRoles call per role.
    assert_eq!(env.fake.calls(Op::ListAccounts), 3);
    assert_eq!(env.fake.calls(Op::ListAccountRoles), 6);
    for r in env
        .fake
        .requests()
        .iter()
        .filter(|r| matches!(r.op, Op::ListAccounts | Op::ListAccountRoles))
    {
        assert!(r.path.contains("max_result=100"), "{}", r.path);
        assert!(r.header("x-amz-sso_bearer_token").is_some());
        assert!(r.body.is_empty() && r.header("content-type").is_none());
    }

    // The table, from the daemon's cache (no new portal calls).
    let out = env.run(&["accounts"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("ACCOUNT ID"), "{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("777788889999") && l.ends_with("Admin, Billing, ReadOnly")),
        "{}",
        out.stdout
    );
    assert_eq!(env.fake.calls(Op::ListAccounts), 3, "served from the cache");

    // ?refresh=true asks the portal again, and sees a change at once.
    env.fake.set_config(|c| c.accounts.truncate(2));
    let (status, v) = env
        .http("GET", "/v1/sessions/corp/accounts?refresh=true", None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["accounts"].as_array().unwrap().len(), 2);
    assert_eq!(env.fake.calls(Op::ListAccounts), 5);
    let (status, v) = env.http("POST", "/v1/sessions/corp/accounts", None).await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = env
        .http("GET", "/v1/sessions/corp/accounts?refresh=maybe", None)
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("VALIDATION_ERROR"))
    );
    let out = env.run(&["accounts", "nosuch"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("nosuch"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_print_write_rewrite_prune_and_clash() {
    let env = accounts_env().await;
    let base = std::fs::read_to_string(env.config_path()).unwrap();
    let hand = format!(
        "# my own config: comments, odd spacing and order are mine\n{base}\n;   spaced   comment\n[profile fake-account-444455556666.Dev]\nregion=eu-central-1\n\n[default]\nregion = us-east-1\n# the last comment, no blank line after\n"
    );
    env.write_config(&hand);
    std::fs::set_permissions(env.config_path(), std::fs::Permissions::from_mode(0o640)).unwrap();
    let d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);

    // Printing: AWS config text, one profile per account and role.
    let out = env
        .run(&["profiles", "corp", "--region", "eu-west-1"])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(profile_names(&out.stdout).len(), 6, "{}", out.stdout);
    assert!(
        out.stdout.contains("[profile fake-account-777788889999.Billing]\nsso_session = corp\nsso_account_id = 777788889999\nsso_role_name = Billing\nregion = eu-west-1\n"),
        "{}",
        out.stdout
    );
    let out = env.run(&["profiles", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 6);
    assert_eq!(v[0]["name"], "fake-account-111122223333.Admin");
    assert_eq!(v[0]["sso_account_id"], "111122223333");
    assert_eq!(
        std::fs::read_to_string(env.config_path()).unwrap(),
        hand,
        "printing writes nothing"
    );

    // A name clash: an error naming both assignments, the file untouched.
    let out = env
        .run(&["profiles", "--write", "--name-template", "{role_name}"])
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("Admin") && out.stderr.contains("--name-template"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(env.config_path()).unwrap(), hand);
    let out = env.run(&["profiles", "--name-template", "{acount}"]).await;
    assert_eq!(out.code, 2, "{out:?}");

    // Write: the block appended, everything else byte for byte, mode kept, the hand-made
    // profile with a generated name skipped with a warning.
    let out = env.run(&["profiles", "--write"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("5 added") && out.stdout.contains("1 skipped"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("warning") && out.stderr.contains("fake-account-444455556666.Dev"),
        "{}",
        out.stderr
    );
    let written = std::fs::read_to_string(env.config_path()).unwrap();
    assert_eq!(outside(&written), hand);
    assert_eq!(profile_names(block(&written)).len(), 5);
    let meta = std::fs::metadata(env.config_path()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);

    // Hot reload: a generated profile serves credentials at once.
    assert!(
        d.log.wait_for_n("configuration loaded", 2).await,
        "{}",
        d.log.text()
    );
    let out = env
        .run(&[
            "credentials",
            "--profile",
            "fake-account-777788889999.Billing",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let c: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(c["AccountId"], "777788889999");

    // Comments after the block are the user's; a second run rewrites nothing.
    let mut edited = written.clone();
    edited.push_str("# added after the block by hand\n");
    std::fs::write(env.config_path(), &edited).unwrap();
    let ino = std::fs::metadata(env.config_path()).unwrap().ino();
    let out = env.run(&["profiles", "--write", "--json"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let s: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(s["changed"], false, "{s}");
    assert_eq!(s["kept"].as_array().unwrap().len(), 5);
    assert_eq!(std::fs::read_to_string(env.config_path()).unwrap(), edited);
    assert_eq!(
        std::fs::metadata(env.config_path()).unwrap().ino(),
        ino,
        "not replaced"
    );

    // A role removed upstream: kept and listed as stale, then pruned.
    env.fake
        .set_config(|c| c.accounts[2].1.retain(|r| r != "Billing"));
    let out = env.run(&["profiles", "--write", "--refresh"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("1 stale") && out.stdout.contains("fake-account-777788889999.Billing"),
        "{}",
        out.stdout
    );
    assert_eq!(std::fs::read_to_string(env.config_path()).unwrap(), edited);
    let out = env.run(&["profiles", "--write", "--prune"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("1 removed"), "{}", out.stdout);
    let pruned = std::fs::read_to_string(env.config_path()).unwrap();
    assert!(!pruned.contains("777788889999.Billing"), "{pruned}");
    assert_eq!(profile_names(block(&pruned)).len(), 4);
    assert_eq!(outside(&pruned), outside(&edited));
    assert_eq!(
        std::fs::metadata(env.config_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_config_is_written_through_and_reloaded() {
    let env = accounts_env().await;
    // ~/.aws/config is a link into a dotfiles directory elsewhere.
    let dotfiles = env.dir.path().join("dotfiles");
    std::fs::create_dir_all(&dotfiles).unwrap();
    let target = dotfiles.join("aws-config");
    std::fs::rename(env.config_path(), &target).unwrap();
    std::os::unix::fs::symlink(&target, env.config_path()).unwrap();
    let d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);
    let out = env.run(&["profiles", "--write"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let link = std::fs::symlink_metadata(env.config_path()).unwrap();
    assert!(link.file_type().is_symlink(), "the link stays a link");
    assert!(std::fs::read_to_string(&target).unwrap().contains(BEGIN));
    assert!(
        d.log.wait_for_n("configuration loaded", 2).await,
        "the change at the target was seen: {}",
        d.log.text()
    );
    let out = env
        .run(&[
            "credentials",
            "--profile",
            "fake-account-111122223333.ReadOnly",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_profile_works_in_botocore() {
    let env = accounts_env().await;
    env.set_env("SSO_AGENT_EXPORT_AWS_CLI_CACHE", "true");
    let _d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);
    let out = env
        .run(&["profiles", "--write", "--region", "us-east-1"])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let Some(python) = crate::interop::python() else {
        return;
    };
    let got = crate::interop::botocore(&env, &python, "fake-account-444455556666.Dev").await;
    assert_eq!(got["method"], "sso", "{got}");
    assert_eq!(got["hasToken"], true, "{got}");
    let rec = env
        .fake
        .requests()
        .into_iter()
        .rfind(|r| r.op == Op::GetRoleCredentials)
        .expect("botocore asked the portal");
    assert!(
        rec.path.contains("account_id=444455556666") && rec.path.contains("role_name=Dev"),
        "{}",
        rec.path
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_says_when_the_profiles_block_is_out_of_date() {
    let env = accounts_env().await;
    let d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);
    assert!(
        d.log
            .wait_for("accounts listed again after the login")
            .await,
        "{}",
        d.log.text()
    );
    let (_, v) = env.http("GET", "/v1/status", None).await;
    assert!(v["data"].get("profiles").is_none(), "no block yet: {v}");

    let out = env.run(&["profiles", "--write"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    // The reload read the block (its entries are logged at trace level).
    assert!(
        d.log.wait_for(r#""111122223333", "ReadOnly""#).await,
        "{}",
        d.log.text()
    );
    let (_, v) = env.http("GET", "/v1/status", None).await;
    assert_eq!(v["data"]["profiles"][0]["session"], "corp", "{v}");
    assert_eq!(v["data"]["profiles"][0]["upToDate"], true, "{v}");
    let written = std::fs::read_to_string(env.config_path()).unwrap();

    // Upstream: a role gone, an account new. The next login lists them again.
    env.fake.set_config(|c| {
        c.accounts[0].1.retain(|r| r != "ReadOnly");
        c.accounts.push(("123456789012".into(), vec!["Ops".into()]));
    });
    assert_eq!(env.run(&["logout", "corp"]).await.code, 0);
    assert_eq!(env.login().await.code, 0);
    assert!(
        d.log
            .wait_for_n("accounts listed again after the login", 2)
            .await,
        "{}",
        d.log.text()
    );
    let (_, v) = env.http("GET", "/v1/status", None).await;
    let p = &v["data"]["profiles"][0];
    assert_eq!(p["upToDate"], false, "{v}");
    assert_eq!(p["missing"], serde_json::json!(["123456789012/Ops"]));
    assert_eq!(p["gone"], serde_json::json!(["111122223333/ReadOnly"]));
    let out = env.run(&["status"]).await;
    assert!(
        out.stdout
            .contains("profiles of corp: OUT OF DATE (1 new, 1 gone")
            && out.stdout.contains("sso-agent profiles corp --write"),
        "{}",
        out.stdout
    );
    assert_eq!(
        std::fs::read_to_string(env.config_path()).unwrap(),
        written,
        "the daemon never writes the file itself"
    );

    let out = env.run(&["profiles", "--write", "--prune"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        d.log.wait_for(r#""123456789012", "Ops""#).await,
        "the reload read the new block: {}",
        d.log.text()
    );
    let (_, v) = env.http("GET", "/v1/status", None).await;
    assert_eq!(v["data"]["profiles"][0]["upToDate"], true, "{v}");
}
