//! Device authorization flow (WIRE.md §3): shapes, pending, approve, single use, deny,
//! expiry, poll-interval enforcement, grant restrictions, and the wait helpers.

use std::time::Duration;

use fake_aws::{FakeConfig, Op};
use serde_json::json;

use crate::util::*;

#[tokio::test]
async fn register_answers_with_seconds_and_explicit_nulls() {
    let api = Api::start(quick()).await;
    let a = api
        .post(
            "/client/register",
            json!({"clientName": "botocore-client-corp", "clientType": "public"}),
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let v = a.json();
    let obj = v.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "authorizationEndpoint",
            "clientId",
            "clientIdIssuedAt",
            "clientSecret",
            "clientSecretExpiresAt",
            "tokenEndpoint"
        ]
    );
    assert!(v["authorizationEndpoint"].is_null() && v["tokenEndpoint"].is_null());
    assert!(v["clientSecret"].as_str().unwrap().starts_with("fake-cs-"));
    let issued = v["clientIdIssuedAt"].as_u64().unwrap();
    let expires = v["clientSecretExpiresAt"].as_u64().unwrap();
    assert!(
        issued > 1_700_000_000 && issued < 10_000_000_000,
        "seconds, not ms: {issued}"
    );
    assert_eq!(expires - issued, 90 * 24 * 3600);
}

#[tokio::test]
async fn device_flow_pending_approve_then_single_use() {
    let api = Api::start(quick()).await;
    let reg = api.register_device().await;
    let d = api.start_device(&reg).await;
    let user_code = d["userCode"].as_str().unwrap();
    let dc = d["deviceCode"].as_str().unwrap();
    assert!(dc.starts_with("fake-dc-"));
    let shape = |c: char| c.is_ascii_uppercase();
    assert!(
        user_code.len() == 9 && &user_code[4..5] == "-",
        "{user_code}"
    );
    assert!(user_code.chars().filter(|c| *c != '-').all(shape));
    assert_eq!(d["verificationUri"], format!("{}/device", api.base));
    assert_eq!(
        d["verificationUriComplete"],
        format!("{}/device?user_code={user_code}", api.base)
    );
    assert_eq!(d["expiresIn"], 600);
    assert_eq!(d["interval"], 0);
    assert_eq!(api.fake.pending_user_codes(), vec![user_code.to_owned()]);

    api.poll(&reg, dc).await.assert_oidc_error(
        400,
        "AuthorizationPendingException",
        "authorization_pending",
    );
    assert!(
        api.fake.approve(&user_code.to_lowercase()),
        "typed codes are case-insensitive"
    );
    assert!(api.fake.pending_user_codes().is_empty());
    let a = api.poll(&reg, dc).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let v = a.json();
    assert_eq!(v.as_object().unwrap().len(), 5, "{v}");
    assert!(v["accessToken"].as_str().unwrap().starts_with("fake-at-"));
    assert!(v["refreshToken"].as_str().unwrap().starts_with("fake-rt-"));
    assert_eq!(v["tokenType"], "Bearer");
    assert_eq!(v["expiresIn"], 3600);
    assert!(v["idToken"].is_null() && v.get("idToken").is_some());

    api.poll(&reg, dc)
        .await
        .assert_oidc_error(400, "InvalidGrantException", "invalid_grant");
    assert!(
        !api.fake.approve(user_code),
        "a used code cannot be approved"
    );
    assert_eq!(api.fake.calls(Op::CreateToken), 3);
    assert_eq!(api.fake.calls(Op::StartDeviceAuthorization), 1);
}

#[tokio::test]
async fn registration_without_the_access_scope_gets_no_refresh_token() {
    let api = Api::start(quick()).await;
    let reg = api
        .register(json!({"clientName": "legacy", "clientType": "public"}))
        .await;
    let t = api.device_login(&reg).await;
    assert!(t.refresh.is_none());

    let api = Api::start(FakeConfig {
        issue_refresh_tokens: false,
        ..quick()
    })
    .await;
    let reg = api.register_device().await;
    assert!(api.device_login(&reg).await.refresh.is_none());
}

#[tokio::test]
async fn denied_and_expired_device_codes() {
    let api = Api::start(quick()).await;
    let reg = api.register_device().await;
    let d = api.start_device(&reg).await;
    assert!(api.fake.deny(d["userCode"].as_str().unwrap()));
    let dc = d["deviceCode"].as_str().unwrap();
    api.poll(&reg, dc)
        .await
        .assert_oidc_error(400, "AccessDeniedException", "access_denied");
    assert!(!api.fake.approve(d["userCode"].as_str().unwrap()));
    assert!(!api.fake.approve("ZZZZ-ZZZZ"), "unknown code");

    api.fake.set_config(|c| c.device_code_ttl = Duration::ZERO);
    let d = api.start_device(&reg).await;
    assert_eq!(d["expiresIn"], 0);
    api.poll(&reg, d["deviceCode"].as_str().unwrap())
        .await
        .assert_oidc_error(400, "ExpiredTokenException", "expired_token");
    assert!(api.fake.pending_user_codes().is_empty());

    api.poll(&reg, "fake-dc-unknown").await.assert_oidc_error(
        400,
        "InvalidGrantException",
        "invalid_grant",
    );
}

#[tokio::test]
async fn polling_faster_than_the_interval_is_slowed_down() {
    let api = Api::start(FakeConfig {
        device_interval_secs: 1,
        ..FakeConfig::default()
    })
    .await;
    let reg = api.register_device().await;
    let d = api.start_device(&reg).await;
    assert_eq!(d["interval"], 1);
    let dc = d["deviceCode"].as_str().unwrap();
    api.poll(&reg, dc).await.assert_oidc_error(
        400,
        "AuthorizationPendingException",
        "authorization_pending",
    );
    // Immediately again: too early for a 1 s interval.
    api.poll(&reg, dc)
        .await
        .assert_oidc_error(400, "SlowDownException", "slow_down");
    api.poll(&reg, dc)
        .await
        .assert_oidc_error(400, "SlowDownException", "slow_down");
    // Approval is not held back by the interval.
    assert!(api.fake.approve(d["userCode"].as_str().unwrap()));
    assert_eq!(api.poll(&reg, dc).await.status, 200);
}

#[tokio::test]
async fn auto_approve_issues_tokens_on_the_first_poll() {
    let api = Api::start(FakeConfig {
        auto_approve: true,
        ..quick()
    })
    .await;
    let reg = api.register_device().await;
    let d = api.start_device(&reg).await;
    assert!(api.fake.pending_user_codes().is_empty());
    assert_eq!(
        api.poll(&reg, d["deviceCode"].as_str().unwrap())
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn declared_grant_types_are_enforced() {
    let api = Api::start(quick()).await;
    let reg = api
        .register(json!({
            "clientName": "auth", "clientType": "public", "scopes": ["sso:account:access"],
            "grantTypes": ["authorization_code", "refresh_token"],
            "redirectUris": ["http://127.0.0.1/oauth/callback"],
            "issuerUrl": "https://d-1234567890.awsapps.com/start"
        }))
        .await;
    api.post(
        "/device_authorization",
        json!({"clientId": reg.id, "clientSecret": reg.secret, "startUrl": "https://x.awsapps.com/start"}),
    )
    .await
    .assert_oidc_error(400, "UnauthorizedClientException", "unauthorized_client");
    api.poll(&reg, "fake-dc-x").await.assert_oidc_error(
        400,
        "UnauthorizedClientException",
        "unauthorized_client",
    );
}

#[tokio::test]
async fn a_device_code_belongs_to_its_client() {
    let api = Api::start(quick()).await;
    let a = api.register_device().await;
    let b = api.register_device().await;
    let d = api.start_device(&a).await;
    assert!(api.fake.approve(d["userCode"].as_str().unwrap()));
    api.poll(&b, d["deviceCode"].as_str().unwrap())
        .await
        .assert_oidc_error(400, "InvalidGrantException", "invalid_grant");
    assert_eq!(
        api.poll(&a, d["deviceCode"].as_str().unwrap()).await.status,
        200
    );
}

#[tokio::test]
async fn waits_are_woken_by_requests() {
    let api = Api::start(quick()).await;
    let reg = api.register_device().await;
    assert!(
        api.fake
            .wait_for_pending_user_code(Duration::from_millis(10))
            .await
            .is_none()
    );
    assert!(
        !api.fake
            .wait_for_calls(Op::StartDeviceAuthorization, 1, Duration::from_millis(10))
            .await
    );

    let fake = api.fake.clone();
    let waiter = tokio::spawn(async move {
        let code = fake.wait_for_pending_user_code(WAIT).await;
        let calls = fake
            .wait_for_calls(Op::StartDeviceAuthorization, 1, WAIT)
            .await;
        (code, calls)
    });
    let d = api.start_device(&reg).await;
    let (code, calls) = waiter.await.unwrap();
    assert_eq!(code.as_deref(), d["userCode"].as_str());
    assert!(calls);
}

#[tokio::test]
async fn the_verification_page_lets_a_human_decide() {
    let api = Api::start(quick()).await;
    let reg = api.register_device().await;
    let d = api.start_device(&reg).await;
    let code = d["userCode"].as_str().unwrap();
    let complete = d["verificationUriComplete"].as_str().unwrap();
    let page = api.get(&complete[api.base.len()..], None).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains(code) && page.text.contains("method=\"post\""));
    let a = api
        .post_raw(
            "/device",
            Some("application/x-www-form-urlencoded"),
            &format!("user_code={code}&action=approve"),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        api.poll(&reg, d["deviceCode"].as_str().unwrap())
            .await
            .status,
        200
    );
    let again = api
        .post_raw(
            "/device",
            Some("application/x-www-form-urlencoded"),
            &format!("user_code={code}&action=deny"),
        )
        .await;
    assert_eq!(again.status, 404);
}
