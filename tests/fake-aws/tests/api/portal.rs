//! The portal (WIRE.md §7): bearer header, role credentials in epoch milliseconds, account and
//! role listing with pagination, Logout ending the chain, and the portal error shapes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fake_aws::{FakeConfig, Op};

use crate::util::*;

const CREDS: &str = "/federation/credentials?role_name=Admin&account_id=111122223333";

async fn logged_in(cfg: FakeConfig) -> (Api, Reg, Tokens) {
    let api = Api::start(cfg).await;
    let reg = api.register_device().await;
    let t = api.device_login(&reg).await;
    (api, reg, t)
}

#[tokio::test]
async fn role_credentials_with_a_live_token() {
    let (api, _, t) = logged_in(quick()).await;
    let a = api.get(CREDS, Some(&t.access)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let v = a.json();
    let rc = &v["roleCredentials"];
    assert_eq!(rc.as_object().unwrap().len(), 4);
    assert!(rc["accessKeyId"].as_str().unwrap().starts_with("ASIA"));
    let sak = rc["secretAccessKey"].as_str().unwrap();
    let st = rc["sessionToken"].as_str().unwrap();
    assert!(sak.starts_with("fake-sak-") && st.starts_with("fake-st-"));
    let secrets = api.fake.issued_secrets();
    assert!(secrets.iter().any(|s| s == sak) && secrets.iter().any(|s| s == st));
    // The test checks the fake against the real wall clock, so it reads it directly.
    #[allow(clippy::disallowed_methods)]
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let exp = rc["expiration"].as_u64().unwrap();
    let hour_ms = 3_600_000;
    assert!(
        exp > now_ms + hour_ms - 60_000 && exp < now_ms + hour_ms + 60_000,
        "ms: {exp}"
    );
    assert_eq!(api.fake.calls(Op::GetRoleCredentials), 1);
    let rec = api
        .fake
        .requests()
        .into_iter()
        .find(|r| r.op == Op::GetRoleCredentials)
        .unwrap();
    assert_eq!(
        rec.header("x-amz-sso_bearer_token"),
        Some(t.access.as_str())
    );
}

#[tokio::test]
async fn portal_errors() {
    let (api, _, t) = logged_in(quick()).await;
    let a = api.get(CREDS, None).await;
    a.assert_portal_error(401, "UnauthorizedException");
    assert_eq!(a.json()["message"], "Session token not found or invalid");
    api.get(CREDS, Some("fake-at-unknown"))
        .await
        .assert_portal_error(401, "UnauthorizedException");
    let a = api
        .get(
            "/federation/credentials?role_name=Billing&account_id=111122223333",
            Some(&t.access),
        )
        .await;
    a.assert_portal_error(403, "ForbiddenException");
    assert_eq!(a.json()["message"], "No access");
    api.get(
        "/federation/credentials?role_name=Admin&account_id=999999999999",
        Some(&t.access),
    )
    .await
    .assert_portal_error(403, "ForbiddenException");
    api.get("/federation/credentials?role_name=Admin", Some(&t.access))
        .await
        .assert_portal_error(400, "InvalidRequestException");
    api.get("/assignment/roles", Some(&t.access))
        .await
        .assert_portal_error(400, "InvalidRequestException");
    api.get("/assignment/accounts?max_result=0", Some(&t.access))
        .await
        .assert_portal_error(400, "InvalidRequestException");
    api.get("/assignment/accounts?next_token=bogus", Some(&t.access))
        .await
        .assert_portal_error(400, "InvalidRequestException");
}

#[tokio::test]
async fn expired_access_tokens_are_unauthorized() {
    let (api, _, t) = logged_in(FakeConfig {
        access_token_ttl: Duration::ZERO,
        ..quick()
    })
    .await;
    api.get(CREDS, Some(&t.access))
        .await
        .assert_portal_error(401, "UnauthorizedException");
}

#[tokio::test]
async fn listing_accounts_and_roles_with_pagination() {
    let cfg = FakeConfig {
        accounts: vec![
            (
                "111122223333".into(),
                vec!["Admin".into(), "ReadOnly".into()],
            ),
            ("444455556666".into(), vec!["Dev".into()]),
        ],
        ..quick()
    };
    let (api, _, t) = logged_in(cfg).await;
    let v = api
        .get("/assignment/accounts", Some(&t.access))
        .await
        .json();
    assert_eq!(v["accountList"].as_array().unwrap().len(), 2);
    assert!(v["nextToken"].is_null());
    assert_eq!(v["accountList"][0]["accountId"], "111122223333");
    assert!(v["accountList"][0]["accountName"].is_string());
    assert!(v["accountList"][0]["emailAddress"].is_string());

    let p1 = api
        .get("/assignment/accounts?max_result=1", Some(&t.access))
        .await
        .json();
    let next = p1["nextToken"].as_str().unwrap();
    let p2 = api
        .get(
            &format!("/assignment/accounts?max_result=1&next_token={next}"),
            Some(&t.access),
        )
        .await
        .json();
    assert_eq!(p2["accountList"][0]["accountId"], "444455556666");
    assert!(p2["nextToken"].is_null());

    let r = api
        .get("/assignment/roles?account_id=111122223333", Some(&t.access))
        .await
        .json();
    let roles: Vec<&str> = r["roleList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["roleName"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["Admin", "ReadOnly"]);
    assert_eq!(r["roleList"][0]["accountId"], "111122223333");
    assert_eq!(api.fake.calls(Op::ListAccounts), 3);
    assert_eq!(api.fake.calls(Op::ListAccountRoles), 1);

    // Assignments change at run time.
    api.fake.set_config(|c| c.accounts.truncate(1));
    let v = api
        .get("/assignment/accounts", Some(&t.access))
        .await
        .json();
    assert_eq!(v["accountList"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn page_size_caps_every_page_whatever_max_result_asks() {
    let cfg = FakeConfig {
        accounts: vec![
            (
                "111122223333".into(),
                vec!["Admin".into(), "ReadOnly".into()],
            ),
            ("444455556666".into(), vec!["Dev".into()]),
        ],
        page_size: 1,
        ..quick()
    };
    let (api, _, t) = logged_in(cfg).await;
    let mut ids = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let q = match &next {
            None => "/assignment/accounts?max_result=100".to_string(),
            Some(n) => format!("/assignment/accounts?max_result=100&next_token={n}"),
        };
        let v = api.get(&q, Some(&t.access)).await.json();
        let list = v["accountList"].as_array().unwrap();
        assert_eq!(list.len(), 1, "one account per page: {v}");
        ids.push(list[0]["accountId"].as_str().unwrap().to_string());
        match v["nextToken"].as_str() {
            Some(n) => next = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(ids, ["111122223333", "444455556666"]);
    let r = api
        .get(
            "/assignment/roles?account_id=111122223333&max_result=50",
            Some(&t.access),
        )
        .await
        .json();
    assert_eq!(r["roleList"].as_array().unwrap().len(), 1);
    assert!(r["nextToken"].is_string());
    // Over the control API too, checked against the model's 1..100.
    let a = api
        .post("/_fake/config", serde_json::json!({"pageSize": 0}))
        .await;
    assert_eq!(a.status, 400, "{}", a.text);
    let a = api
        .post("/_fake/config", serde_json::json!({"pageSize": 2}))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(api.fake.config().page_size, 2);
}

#[tokio::test]
async fn logout_ends_the_access_token_and_its_refresh_chain() {
    let (api, reg, t) = logged_in(quick()).await;
    let other = api.device_login(&reg).await;
    let a = api.logout(&t.access).await;
    assert_eq!(a.status, 200);
    assert!(a.text.is_empty());
    assert!(a.header("content-type").is_none());
    api.get(CREDS, Some(&t.access))
        .await
        .assert_portal_error(401, "UnauthorizedException");
    api.refresh(&reg, t.refresh.as_deref().unwrap())
        .await
        .assert_oidc_error(400, "InvalidGrantException", "invalid_grant");
    assert_eq!(api.fake.refresh_token_reuse_count(), 0);
    api.logout(&t.access)
        .await
        .assert_portal_error(401, "UnauthorizedException");
    // Another login's chain is untouched.
    assert_eq!(api.get(CREDS, Some(&other.access)).await.status, 200);
}
