//! The sign-in federation endpoint (`GET /federation`): getSigninToken only for role
//! credentials the fake issued and that are live; Action=login redirects to Destination once.

use crate::util::*;

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn signin_tokens_only_for_issued_live_credentials_and_login_redirects_once() {
    let api = Api::start(quick()).await;
    let reg = api.register_device().await;
    let t = api.device_login(&reg).await;
    let creds = api
        .get(
            "/federation/credentials?role_name=Admin&account_id=111122223333",
            Some(&t.access),
        )
        .await
        .json();
    let rc = &creds["roleCredentials"];
    let session = |key: &str| {
        serde_json::json!({
            "sessionId": rc["accessKeyId"], "sessionKey": key, "sessionToken": rc["sessionToken"],
        })
        .to_string()
    };
    let ask = |s: String| format!("/federation?Action=getSigninToken&Session={}", enc(&s));

    let a = api.get(&ask(session("wrong")), None).await;
    assert_eq!(a.status, 403, "a credential it did not issue: {}", a.text);
    let a = api.get("/federation?Session=x", None).await;
    assert_eq!(a.status, 400);

    let a = api
        .get(&ask(session(rc["secretAccessKey"].as_str().unwrap())), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let token = a.json()["SigninToken"].as_str().unwrap().to_string();
    assert!(token.starts_with("fake-signin-"));

    let dest = "https://console.aws.amazon.com/s3/home?region=eu-west-1";
    let login = |issuer: &str, d: &str| {
        format!(
            "/federation?Action=login&Issuer={issuer}&Destination={}&SigninToken={}",
            enc(d),
            enc(&token)
        )
    };
    assert_eq!(
        api.get(&login("", dest), None).await.status,
        400,
        "Issuer required"
    );
    assert_eq!(
        api.get(&login("me", "http://x.example/"), None)
            .await
            .status,
        400,
        "https destinations only"
    );
    let a = api.get(&login("me", dest), None).await;
    assert_eq!(a.status, 302);
    assert_eq!(a.header("location"), Some(dest));
    assert_eq!(api.get(&login("me", dest), None).await.status, 400, "once");

    api.fake.expire_role_credentials();
    let a = api
        .get(&ask(session(rc["secretAccessKey"].as_str().unwrap())), None)
        .await;
    assert_eq!(a.status, 403, "expired: {}", a.text);
}
