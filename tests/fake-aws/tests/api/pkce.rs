//! Authorization code + PKCE (WIRE.md §4): /authorize validation, loopback any-port redirect
//! matching, the exchange (redirect, verifier, single use), and the deny and page modes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fake_aws::{AuthorizeMode, FakeConfig, Op};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::util::*;

const VERIFIER: &str = "Zm9vYmFyLWJhei1xdXV4Lmxvbmctdm~lcmlmaWVyXzAxMjM0NTY3ODktYWJjZGVm";
const REDIRECT: &str = "http://127.0.0.1:54321/oauth/callback";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

async fn register_auth(api: &Api) -> Reg {
    api.register(json!({
        "clientName": "botocore-client-corp", "clientType": "public",
        "grantTypes": ["authorization_code", "refresh_token"],
        "redirectUris": ["http://127.0.0.1/oauth/callback"],
        "issuerUrl": "https://d-1234567890.awsapps.com/start",
        "scopes": ["sso:account:access"]
    }))
    .await
}

fn authorize_path(client_id: &str, redirect: &str, extra: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("state", "3a5c1f9e-6b1d-4c61-9d2e-0f6a8b7c9d10")
        .append_pair("code_challenge_method", "S256")
        .append_pair("scopes", "sso:account:access");
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    format!("/authorize?{}", q.finish())
}

async fn exchange(api: &Api, reg: &Reg, code: &str, redirect: &str, verifier: &str) -> Answer {
    api.post(
        "/token",
        json!({"grantType": "authorization_code", "clientId": reg.id, "clientSecret": reg.secret,
               "code": code, "redirectUri": redirect, "codeVerifier": verifier}),
    )
    .await
}

async fn authorize_code(api: &Api, reg: &Reg) -> String {
    let a = api
        .get(
            &authorize_path(
                &reg.id,
                REDIRECT,
                &[("code_challenge", &challenge(VERIFIER))],
            ),
            None,
        )
        .await;
    assert_eq!(a.status, 302, "{}", a.text);
    let loc = a.header("location").expect("location");
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert_eq!(
        query_param(loc, "state").as_deref(),
        Some("3a5c1f9e-6b1d-4c61-9d2e-0f6a8b7c9d10")
    );
    let code = query_param(loc, "code").expect("code");
    assert!(code.starts_with("fake-code-"));
    code
}

#[tokio::test]
async fn authorize_redirects_with_code_and_the_exchange_issues_tokens() {
    let api = Api::start(quick()).await;
    let reg = register_auth(&api).await;
    let code = authorize_code(&api, &reg).await;
    assert_eq!(api.fake.calls(Op::Authorize), 1);

    let a = exchange(&api, &reg, &code, REDIRECT, VERIFIER).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let t = tokens(&a);
    assert!(t.access.starts_with("fake-at-") && t.refresh.is_some());
    // Single use.
    exchange(&api, &reg, &code, REDIRECT, VERIFIER)
        .await
        .assert_oidc_error(400, "InvalidGrantException", "invalid_grant");
    assert!(api.fake.issued_secrets().contains(&code));
}

#[tokio::test]
async fn exchange_checks_redirect_verifier_and_client() {
    let api = Api::start(quick()).await;
    let reg = register_auth(&api).await;
    let other = register_auth(&api).await;
    let cases: [(&Reg, &str, &str); 4] = [
        (&reg, "http://127.0.0.1:54322/oauth/callback", VERIFIER), // other port
        (&reg, REDIRECT, &VERIFIER[1..]),                          // wrong verifier
        (&reg, REDIRECT, "short"),                                 // malformed verifier
        (&other, REDIRECT, VERIFIER),                              // other client
    ];
    for (who, redirect, verifier) in cases {
        let code = authorize_code(&api, &reg).await;
        exchange(&api, who, &code, redirect, verifier)
            .await
            .assert_oidc_error(400, "InvalidGrantException", "invalid_grant");
    }
    // A failed exchange burns the code.
    let code = authorize_code(&api, &reg).await;
    exchange(&api, &reg, &code, REDIRECT, "x".repeat(50).as_str()).await;
    exchange(&api, &reg, &code, REDIRECT, VERIFIER)
        .await
        .assert_oidc_error(400, "InvalidGrantException", "invalid_grant");
    // Members of another grant are refused, missing ones too.
    let a = api
        .post(
            "/token",
            json!({"grantType": "authorization_code", "clientId": reg.id,
                   "clientSecret": reg.secret, "code": "c", "redirectUri": REDIRECT}),
        )
        .await;
    a.assert_oidc_error(400, "InvalidRequestException", "invalid_request");
    let a = api
        .post(
            "/token",
            json!({"grantType": "refresh_token", "clientId": reg.id, "clientSecret": reg.secret,
                   "refreshToken": "r", "codeVerifier": VERIFIER}),
        )
        .await;
    a.assert_oidc_error(400, "InvalidRequestException", "invalid_request");
}

#[tokio::test]
async fn authorize_rejects_unknown_clients_and_unregistered_redirects_without_redirecting() {
    let api = Api::start(quick()).await;
    let reg = register_auth(&api).await;
    let ch = challenge(VERIFIER);
    for (client, redirect) in [
        ("fake-client-unknown", REDIRECT),
        (reg.id.as_str(), "http://127.0.0.1:54321/elsewhere"),
        (reg.id.as_str(), "http://localhost:54321/oauth/callback"),
        (reg.id.as_str(), "https://127.0.0.1:54321/oauth/callback"),
    ] {
        let a = api
            .get(
                &authorize_path(client, redirect, &[("code_challenge", &ch)]),
                None,
            )
            .await;
        assert_eq!(a.status, 400, "{client} {redirect}");
        assert!(a.header("location").is_none());
        assert!(a.header("content-type").unwrap().starts_with("text/html"));
    }
}

#[tokio::test]
async fn authorize_errors_after_redirect_validation_go_back_to_the_client() {
    let api = Api::start(quick()).await;
    let reg = register_auth(&api).await;
    let ch = challenge(VERIFIER);
    let padded = format!("{ch}=");
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("code_challenge", &padded)], "invalid_request"),
        (&[], "invalid_request"),
        (
            &[("code_challenge", &ch), ("scope", "sso:account:access")],
            "invalid_request",
        ),
        (
            &[
                ("code_challenge", &ch),
                ("scopes", "codewhisperer:completions"),
            ],
            "invalid_scope",
        ),
    ];
    for (extra, error) in cases {
        let path = authorize_path(&reg.id, REDIRECT, extra);
        // Replace the default scopes when the case supplies its own.
        let path = if extra.iter().any(|(k, _)| *k == "scopes") {
            path.replacen("&scopes=sso%3Aaccount%3Aaccess", "", 1)
        } else {
            path
        };
        let a = api.get(&path, None).await;
        assert_eq!(a.status, 302, "{path}");
        let loc = a.header("location").unwrap();
        assert_eq!(query_param(loc, "error").as_deref(), Some(error), "{loc}");
        assert!(query_param(loc, "state").is_some());
        assert!(query_param(loc, "code").is_none());
    }
    let s256 = authorize_path(&reg.id, REDIRECT, &[("code_challenge", &ch)])
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let loc = api
        .get(&s256, None)
        .await
        .header("location")
        .unwrap()
        .to_owned();
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn deny_mode_and_page_mode() {
    let api = Api::start(FakeConfig {
        authorize_mode: AuthorizeMode::Deny,
        ..quick()
    })
    .await;
    let reg = register_auth(&api).await;
    let ch = challenge(VERIFIER);
    let a = api
        .get(
            &authorize_path(&reg.id, REDIRECT, &[("code_challenge", &ch)]),
            None,
        )
        .await;
    assert_eq!(a.status, 302);
    let loc = a.header("location").unwrap();
    assert_eq!(query_param(loc, "error").as_deref(), Some("access_denied"));
    assert!(query_param(loc, "state").is_some() && query_param(loc, "code").is_none());

    api.fake
        .set_config(|c| c.authorize_mode = AuthorizeMode::Page);
    let page = api
        .get(
            &authorize_path(&reg.id, REDIRECT, &[("code_challenge", &ch)]),
            None,
        )
        .await;
    assert_eq!(page.status, 200);
    let start = page.text.find("/authorize/decision?").unwrap();
    let end = start + page.text[start..].find('"').unwrap();
    let approve = page.text[start..end].replace("&amp;", "&");
    let a = api.get(&approve, None).await;
    assert_eq!(a.status, 302);
    let code = query_param(a.header("location").unwrap(), "code").unwrap();
    assert_eq!(
        exchange(&api, &reg, &code, REDIRECT, VERIFIER).await.status,
        200
    );
    // A decision is taken once.
    assert_eq!(api.get(&approve, None).await.status, 404);
}
