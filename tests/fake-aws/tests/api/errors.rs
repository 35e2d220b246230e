//! Request validation and the exact error shape (WIRE.md §2): content type, malformed JSON,
//! missing or mistyped members, unknown members, client metadata, unknown routes.

use serde_json::json;

use crate::util::*;

#[tokio::test]
async fn malformed_requests_are_invalid_request_exceptions() {
    let api = Api::start(quick()).await;
    let ok = r#"{"clientName":"n","clientType":"public"}"#;
    let cases: [(Option<&str>, &str); 9] = [
        (Some("application/json"), "{not json"),
        (Some("application/json"), ""),
        (Some("application/json"), "[]"),
        (Some("text/plain"), ok),
        (None, ok),
        (Some("application/json"), r#"{"clientType":"public"}"#),
        (
            Some("application/json"),
            r#"{"clientName":"","clientType":"public"}"#,
        ),
        (
            Some("application/json"),
            r#"{"clientName":7,"clientType":"public"}"#,
        ),
        (
            Some("application/json"),
            r#"{"clientName":"n","clientType":"public","client_name":"n"}"#,
        ),
    ];
    for (ct, body) in cases {
        let a = api.post_raw("/client/register", ct, body).await;
        a.assert_oidc_error(400, "InvalidRequestException", "invalid_request");
    }
    // Parameters after the media type are fine.
    let a = api
        .post_raw(
            "/client/register",
            Some("application/json; charset=utf-8"),
            ok,
        )
        .await;
    assert_eq!(a.status, 200);
    // A scopes list of non-strings is a type error.
    let a = api
        .post(
            "/client/register",
            json!({"clientName": "n", "clientType": "public", "scopes": [1]}),
        )
        .await;
    a.assert_oidc_error(400, "InvalidRequestException", "invalid_request");
}

#[tokio::test]
async fn registration_metadata_errors() {
    let api = Api::start(quick()).await;
    let cases = [
        (
            json!({"clientName": "n", "clientType": "confidential"}),
            "InvalidClientMetadataException",
            "invalid_client_metadata",
        ),
        (
            json!({"clientName": "n", "clientType": "public", "grantTypes": ["client_credentials"]}),
            "UnsupportedGrantTypeException",
            "unsupported_grant_type",
        ),
        (
            json!({"clientName": "n", "clientType": "public", "redirectUris": ["http://example.com/cb"]}),
            "InvalidRedirectUriException",
            "invalid_redirect_uri",
        ),
        (
            json!({"clientName": "n", "clientType": "public", "grantTypes": ["authorization_code"]}),
            "InvalidRedirectUriException",
            "invalid_redirect_uri",
        ),
        (
            json!({"clientName": "n", "clientType": "public", "scopes": ["a b"]}),
            "InvalidScopeException",
            "invalid_scope",
        ),
    ];
    for (body, name, code) in cases {
        api.post("/client/register", body)
            .await
            .assert_oidc_error(400, name, code);
    }
}

#[tokio::test]
async fn token_request_validation() {
    let api = Api::start(quick()).await;
    let reg = api.register_device().await;
    let a = api
        .post(
            "/token",
            json!({"clientId": reg.id, "clientSecret": reg.secret}),
        )
        .await;
    a.assert_oidc_error(400, "InvalidRequestException", "invalid_request");
    let a = api
        .post(
            "/token",
            json!({"clientId": reg.id, "clientSecret": reg.secret, "grantType": "password"}),
        )
        .await;
    a.assert_oidc_error(
        400,
        "UnsupportedGrantTypeException",
        "unsupported_grant_type",
    );
    let a = api
        .post(
            "/token",
            json!({"clientId": reg.id, "clientSecret": reg.secret, "grantType": DEVICE_GRANT}),
        )
        .await;
    a.assert_oidc_error(400, "InvalidRequestException", "invalid_request");
    let a = api
        .post("/token", json!({"clientId": "nobody", "clientSecret": "x", "grantType": DEVICE_GRANT, "deviceCode": "d"}))
        .await;
    a.assert_oidc_error(401, "InvalidClientException", "invalid_client");
    // `scope` (singular, a list) is accepted and ignored; `scopes` is not a CreateToken member.
    let rt = api.device_login(&reg).await.refresh.unwrap();
    let a = api
        .post(
            "/token",
            json!({"grantType": "refresh_token", "clientId": reg.id, "clientSecret": reg.secret,
                               "refreshToken": rt, "scope": ["sso:account:access"]}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = api
        .post(
            "/token",
            json!({"grantType": "refresh_token", "clientId": reg.id, "clientSecret": reg.secret,
                               "refreshToken": "r", "scopes": ["sso:account:access"]}),
        )
        .await;
    a.assert_oidc_error(400, "InvalidRequestException", "invalid_request");
}

#[tokio::test]
async fn start_device_authorization_validation() {
    let api = Api::start(quick()).await;
    let reg = api.register_device().await;
    let a = api
        .post("/device_authorization", json!({"clientId": reg.id, "clientSecret": "wrong", "startUrl": "https://x.awsapps.com/start"}))
        .await;
    a.assert_oidc_error(401, "InvalidClientException", "invalid_client");
    let a = api
        .post(
            "/device_authorization",
            json!({"clientId": reg.id, "clientSecret": reg.secret}),
        )
        .await;
    a.assert_oidc_error(400, "InvalidRequestException", "invalid_request");
    let a = api
        .post(
            "/device_authorization",
            json!({"clientId": reg.id, "clientSecret": reg.secret, "startUrl": "not a url"}),
        )
        .await;
    a.assert_oidc_error(400, "InvalidRequestException", "invalid_request");
}

#[tokio::test]
async fn unknown_routes_are_other() {
    let api = Api::start(quick()).await;
    let a = api.get("/token", None).await;
    assert_eq!(a.status, 404);
    assert!(
        a.header("x-amzn-errortype")
            .unwrap()
            .starts_with("UnknownOperationException")
    );
    let a = api.post("/token?aws_iam=t", json!({})).await;
    assert_eq!(a.status, 404);
    assert_eq!(api.fake.calls(fake_aws::Op::Other), 2);
    assert_eq!(api.fake.calls(fake_aws::Op::CreateToken), 0);
}
