//! Fault injection: modeled errors in both shapes, garbage, HTML, reset, delay, hang; FIFO
//! order per operation; faulted calls are counted and recorded.

use std::time::Duration;

use fake_aws::{Fault, Op};

use crate::util::*;

#[tokio::test]
async fn error_faults_use_the_operation_family_shape_in_fifo_order() {
    let api = Api::start(quick()).await;
    let reg = api.register_device().await;
    let t = api.device_login(&reg).await;
    let rt = t.refresh.clone().unwrap();
    api.fake.push_fault(Op::CreateToken, Fault::slow_down());
    api.fake.push_fault(Op::CreateToken, Fault::internal());
    api.fake.push_fault(Op::CreateToken, Fault::invalid_grant());
    api.refresh(&reg, &rt)
        .await
        .assert_oidc_error(400, "SlowDownException", "slow_down");
    api.refresh(&reg, &rt)
        .await
        .assert_oidc_error(500, "InternalServerException", "server_error");
    api.refresh(&reg, &rt)
        .await
        .assert_oidc_error(400, "InvalidGrantException", "invalid_grant");
    // Faults do not touch state: the refresh token is still current.
    assert_eq!(api.refresh(&reg, &rt).await.status, 200);
    assert_eq!(api.fake.calls(Op::CreateToken), 5);

    for (f, status, name, code) in [
        (
            Fault::access_denied(),
            400,
            "AccessDeniedException",
            "access_denied",
        ),
        (
            Fault::expired_token(),
            400,
            "ExpiredTokenException",
            "expired_token",
        ),
        (
            Fault::invalid_client(),
            401,
            "InvalidClientException",
            "invalid_client",
        ),
    ] {
        api.fake.push_fault(Op::CreateToken, f);
        api.refresh(&reg, "any")
            .await
            .assert_oidc_error(status, name, code);
    }

    api.fake
        .push_fault(Op::GetRoleCredentials, Fault::too_many_requests());
    api.fake
        .push_fault(Op::GetRoleCredentials, Fault::unauthorized());
    let creds = "/federation/credentials?role_name=Admin&account_id=111122223333";
    api.get(creds, Some(&t.access))
        .await
        .assert_portal_error(429, "TooManyRequestsException");
    api.get(creds, Some(&t.access))
        .await
        .assert_portal_error(401, "UnauthorizedException");
    assert_eq!(api.get(creds, Some(&t.access)).await.status, 200);
}

#[tokio::test]
async fn garbage_html_and_reset() {
    let api = Api::start(quick()).await;
    api.fake.push_fault(Op::RegisterClient, Fault::Garbage);
    api.fake.push_fault(Op::RegisterClient, Fault::Html(503));
    api.fake.push_fault(Op::RegisterClient, Fault::Reset);
    let body = serde_json::json!({"clientName": "n", "clientType": "public"});
    let a = api.post("/client/register", body.clone()).await;
    assert_eq!(a.status, 200);
    assert!(serde_json::from_str::<serde_json::Value>(&a.text).is_err());
    let a = api.post("/client/register", body.clone()).await;
    assert_eq!(a.status, 503);
    assert!(a.text.starts_with("<html>") && a.header("x-amzn-errortype").is_none());
    let url = format!("{}/client/register", api.base);
    let err = api.http.post(&url).json(&body).send().await;
    assert!(err.is_err(), "reset gives no response");
    assert_eq!(api.fake.calls(Op::RegisterClient), 3);
    // Then back to normal.
    assert_eq!(api.post("/client/register", body).await.status, 200);
}

#[tokio::test]
async fn a_slow_down_fault_also_grows_that_device_codes_interval() {
    let api = Api::start(fake_aws::FakeConfig {
        device_interval_secs: 0,
        ..Default::default()
    })
    .await;
    let reg = api.register_device().await;
    let d = api.start_device(&reg).await;
    let dc = d["deviceCode"].as_str().unwrap();
    api.fake.push_fault(Op::CreateToken, Fault::slow_down());
    api.poll(&reg, dc)
        .await
        .assert_oidc_error(400, "SlowDownException", "slow_down");
    // A client that ignores slow_down and polls at once is told again.
    api.poll(&reg, dc)
        .await
        .assert_oidc_error(400, "SlowDownException", "slow_down");
}

#[tokio::test]
async fn delay_and_hang_are_counted_on_arrival() {
    let api = Api::start(quick()).await;
    api.fake.push_fault(Op::ListAccounts, Fault::Hang);
    let url = format!("{}/assignment/accounts", api.base);
    let hung = api
        .http
        .get(&url)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung.unwrap_err().is_timeout());
    assert_eq!(api.fake.calls(Op::ListAccounts), 1);

    api.fake
        .push_fault(Op::ListAccounts, Fault::Delay(Duration::from_millis(200)));
    let http = api.http.clone();
    let req = tokio::spawn(async move { http.get(&url).send().await.map(|r| r.status().as_u16()) });
    assert!(api.fake.wait_for_calls(Op::ListAccounts, 2, WAIT).await);
    // Answered normally after the delay: no token, so 401.
    assert_eq!(req.await.unwrap().unwrap(), 401);
}

#[tokio::test]
async fn requests_are_recorded_as_received() {
    let api = Api::start(quick()).await;
    let reg = api.register_device().await;
    api.start_device(&reg).await;
    let recs = api.fake.requests();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1].op, Op::StartDeviceAuthorization);
    assert_eq!(recs[1].method, "POST");
    assert_eq!(recs[1].path, "/device_authorization");
    assert_eq!(recs[1].header("Content-Type"), Some("application/json"));
    assert_eq!(
        recs[1].body_json().unwrap()["clientSecret"],
        reg.secret.as_str()
    );
    let secrets = api.fake.issued_secrets();
    assert!(secrets.contains(&reg.secret));
    assert!(secrets.iter().any(|s| s.starts_with("fake-dc-")));
}
