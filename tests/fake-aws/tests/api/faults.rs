//! Fault injection: modeled errors in both shapes, garbage, HTML, reset, delay, hang,
//! redirects, huge and dripping bodies; FIFO order per operation; faulted calls are counted
//! and recorded.

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

#[tokio::test]
async fn redirect_answers_with_its_status_and_location_only() {
    let api = Api::start(quick()).await;
    let elsewhere = format!("{}/client/register", api.base);
    api.fake
        .push_fault(Op::RegisterClient, Fault::Redirect(307, elsewhere.clone()));
    api.fake.push_fault(
        Op::GetRoleCredentials,
        Fault::Redirect(302, "https://example.invalid/x".into()),
    );
    let body = serde_json::json!({"clientName": "n", "clientType": "public"});
    let a = api.post("/client/register", body).await;
    assert_eq!(a.status, 307);
    assert_eq!(a.header("location"), Some(elsewhere.as_str()));
    assert!(a.text.is_empty());
    // Counted once: the client (no redirect policy) did not come back.
    assert_eq!(api.fake.calls(Op::RegisterClient), 1);
    let a = api
        .get(
            "/federation/credentials?role_name=Admin&account_id=111122223333",
            Some("t"),
        )
        .await;
    assert_eq!(a.status, 302);
    assert_eq!(a.header("location"), Some("https://example.invalid/x"));
}

#[tokio::test]
async fn huge_body_is_streamed_in_full_with_its_length() {
    let api = Api::start(quick()).await;
    let len: u64 = 5 * 1024 * 1024 + 7;
    api.fake.push_fault(Op::ListAccounts, Fault::HugeBody(len));
    let url = format!("{}/assignment/accounts", api.base);
    let mut resp = api.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.content_length(), Some(len));
    let mut got = 0u64;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        assert!(chunk.iter().all(|b| *b == b' '));
        got += chunk.len() as u64;
    }
    assert_eq!(got, len);
    assert_eq!(api.fake.calls(Op::ListAccounts), 1);
    // One call only: the next is answered normally (no token, so 401).
    assert_eq!(api.get("/assignment/accounts", None).await.status, 401);
}

#[tokio::test]
async fn drip_sends_headers_then_one_byte_at_a_time() {
    let api = Api::start(quick()).await;
    api.fake
        .push_fault(Op::CreateToken, Fault::Drip(Duration::from_millis(20)));
    let url = format!("{}/token", api.base);
    let mut resp = api
        .http
        .post(&url)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.content_length(), None, "no end announced");
    for _ in 0..5 {
        let chunk = tokio::time::timeout(WAIT, resp.chunk())
            .await
            .expect("a byte in time")
            .unwrap()
            .expect("never ends");
        assert_eq!(&chunk[..], b" ");
    }
    drop(resp);
    // The fake is fine once the client leaves.
    let reg = api.register_device().await;
    assert!(!reg.id.is_empty());
}

#[tokio::test]
async fn new_faults_can_be_queued_over_the_control_api() {
    let api = Api::start(quick()).await;
    for fault in [
        serde_json::json!({"type": "redirect", "status": 308, "location": "http://127.0.0.1:9/"}),
        serde_json::json!({"type": "huge_body", "bytes": 3}),
        serde_json::json!({"type": "drip", "ms": 10}),
    ] {
        let a = api
            .post(
                "/_fake/faults",
                serde_json::json!({"op": "ListAccounts", "fault": fault}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let a = api.get("/assignment/accounts", None).await;
    assert_eq!(a.status, 308);
    assert_eq!(a.header("location"), Some("http://127.0.0.1:9/"));
    let a = api.get("/assignment/accounts", None).await;
    assert_eq!((a.status, a.text.as_str()), (200, "   "));
    let url = format!("{}/assignment/accounts", api.base);
    let mut resp = api.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let first = tokio::time::timeout(WAIT, resp.chunk()).await.unwrap();
    assert_eq!(first.unwrap().as_deref(), Some(&b" "[..]));
}
