//! `sso-agent console`: role credentials from the daemon → the fake's federation endpoint →
//! a sign-in URL with every part right (endpoint, Action, Issuer, Destination per partition,
//! `--service`, `--destination`) that the endpoint accepts and redirects to the console;
//! expired and foreign credentials refused; the URL and sign-in token never in logs.

use crate::util::*;

async fn console_env() -> TestEnv {
    let env = TestEnv::new().await;
    env.set_env("AWS_ENDPOINT_URL_SIGNIN", &env.fake.url());
    let base = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&format!(
        "{base}\n[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\nregion = eu-west-1\n\n\
         [profile china]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = ReadOnly\nregion = cn-north-1\n"
    ));
    env
}

fn query(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Opens the URL as a browser would, without following the redirect.
async fn open(url: &str) -> (u16, Option<String>) {
    let http = sso_agent::signin::http_client().unwrap();
    let resp = http.get(url).send().await.unwrap();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    (resp.status().as_u16(), location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_print_gives_a_sign_in_url_the_federation_endpoint_accepts() {
    let env = console_env().await;
    let d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);

    let out = env.run(&["console", "--profile", "dev", "--print"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let url = url::Url::parse(out.stdout.trim()).unwrap();
    assert_eq!(
        format!("{}{}", &url[..url::Position::BeforePath], url.path()),
        format!("{}/federation", env.fake.url())
    );
    assert_eq!(query(&url, "Action").as_deref(), Some("login"));
    assert_eq!(query(&url, "Issuer").as_deref(), Some("sso-agent"));
    let dest = "https://console.aws.amazon.com/console/home?region=eu-west-1";
    assert_eq!(query(&url, "Destination").as_deref(), Some(dest));
    let token = query(&url, "SigninToken").unwrap();
    assert!(token.starts_with("fake-signin-"), "{token}");
    // the federation endpoint takes it once, and lands on the Destination
    assert_eq!(open(url.as_str()).await, (302, Some(dest.to_string())));
    assert_eq!(
        open(url.as_str()).await.0,
        400,
        "a sign-in token is single-use"
    );

    // --service and --destination; the partition follows the profile's region
    let out = env
        .run(&["console", "--profile", "dev", "--service", "s3", "--print"])
        .await;
    let url = url::Url::parse(out.stdout.trim()).unwrap();
    assert_eq!(
        query(&url, "Destination").as_deref(),
        Some("https://console.aws.amazon.com/s3/home?region=eu-west-1")
    );
    let out = env
        .run(&[
            "console",
            "--profile",
            "china",
            "--service",
            "s3",
            "--print",
        ])
        .await;
    let url = url::Url::parse(out.stdout.trim()).unwrap();
    assert_eq!(
        query(&url, "Destination").as_deref(),
        Some("https://console.amazonaws.cn/s3/home?region=cn-north-1")
    );
    let own = "https://console.aws.amazon.com/ec2/home?region=eu-west-1#Instances:";
    let out = env
        .run(&[
            "console",
            "--profile",
            "dev",
            "--destination",
            own,
            "--print",
        ])
        .await;
    let url = url::Url::parse(out.stdout.trim()).unwrap();
    assert_eq!(query(&url, "Destination").as_deref(), Some(own));
    assert_eq!(open(url.as_str()).await, (302, Some(own.to_string())));

    // without --print: the browser gets it ($BROWSER, as webbrowser honours it)
    let got = env.dir.path().join("browser-got");
    let browser = env.dir.path().join("browser.sh");
    std::fs::write(
        &browser,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", got.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut cmd = env.command(&["console", "--profile", "dev"]);
    cmd.env("BROWSER", &browser);
    let out = tokio::time::timeout(WAIT, cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "nothing printed without --print");
    let opened = std::fs::read_to_string(&got).unwrap();
    let url = url::Url::parse(&opened).unwrap();
    assert_eq!(query(&url, "Action").as_deref(), Some("login"));
    let browser_token = query(&url, "SigninToken").unwrap();

    // nothing secret in the daemon's trace log or any command's stderr
    let log = d.log.text();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    for t in [&token, &browser_token] {
        assert!(!log.contains(t.as_str()), "sign-in token in the daemon log");
        assert!(!stderr.contains(t.as_str()), "sign-in token on stderr");
        for (args, o) in env.transcript.lock().unwrap().iter() {
            assert!(!o.stderr.contains(t.as_str()), "{args:?} stderr");
        }
    }
    assert!(!log.contains("fake-signin-") && !log.contains("Action=login"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_foreign_credentials_are_refused() {
    let env = console_env().await;
    let _d = env.start_daemon().await;
    assert_eq!(env.login().await.code, 0);
    assert_eq!(env.run(&["credentials", "--profile", "dev"]).await.code, 0);

    // credentials the fake never issued
    let mut foreign = url::Url::parse(&format!("{}/federation", env.fake.url())).unwrap();
    foreign
        .query_pairs_mut()
        .append_pair("Action", "getSigninToken")
        .append_pair(
            "Session",
            r#"{"sessionId":"ASIAFOREIGN","sessionKey":"x","sessionToken":"y"}"#,
        );
    assert_eq!(open(foreign.as_str()).await.0, 403);

    // the daemon's cached credentials, expired at the fake: a clear one-line error, exit 1
    env.fake.expire_role_credentials();
    let out = env.run(&["console", "--profile", "dev", "--print"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr
            .contains("refused the role credentials (HTTP 403)"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(!out.stderr.contains("fake-sak-") && !out.stderr.contains("fake-st-"));

    // a non-loopback http override is refused before anything is sent
    let mut cmd = env.command(&["console", "--profile", "dev", "--print"]);
    cmd.env("AWS_ENDPOINT_URL_SIGNIN", "http://signin.example");
    let out = cmd.output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only for loopback"));
}
