//! The `/_fake/` control API used out of process: state, approve, deny, faults, config,
//! revocation and the request log; control calls are not counted.

use fake_aws::Op;
use serde_json::json;

use crate::util::*;

#[tokio::test]
async fn control_api_drives_the_fake() {
    let api = Api::start(quick()).await;
    let reg = api.register_device().await;
    let d = api.start_device(&reg).await;
    let code = d["userCode"].as_str().unwrap();

    let s = api.get("/_fake/state", None).await.json();
    assert_eq!(s["url"], api.base.as_str());
    assert_eq!(s["calls"]["StartDeviceAuthorization"], 1);
    assert_eq!(s["calls"]["CreateToken"], 0);
    assert_eq!(s["pendingUserCodes"], json!([code]));
    assert_eq!(s["refreshTokenReuseCount"], 0);
    assert!(
        s["issuedSecrets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == reg.secret.as_str())
    );

    let a = api
        .post("/_fake/approve", json!({"userCode": "QQQQ-QQQQ"}))
        .await;
    assert_eq!((a.status, a.json()), (404, json!({"approved": false})));
    let a = api.post("/_fake/approve", json!({"userCode": code})).await;
    assert_eq!((a.status, a.json()), (200, json!({"approved": true})));

    let a = api
        .post(
            "/_fake/faults",
            json!({"op": "CreateToken", "fault": {"type": "error", "status": 400,
              "errorType": "SlowDownException", "error": "slow_down", "description": "easy"}}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = api
        .post(
            "/_fake/faults",
            json!({"op": "CreateToken", "fault": {"type": "invalid_grant"}}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        api.post(
            "/_fake/faults",
            json!({"op": "Nope", "fault": {"type": "reset"}})
        )
        .await
        .status,
        400
    );
    assert_eq!(
        api.post(
            "/_fake/faults",
            json!({"op": "CreateToken", "fault": {"type": "?"}})
        )
        .await
        .status,
        400
    );
    let dc = d["deviceCode"].as_str().unwrap();
    let a = api.poll(&reg, dc).await;
    a.assert_oidc_error(400, "SlowDownException", "slow_down");
    assert_eq!(a.json()["error_description"], "easy");
    api.poll(&reg, dc)
        .await
        .assert_oidc_error(400, "InvalidGrantException", "invalid_grant");
    let t = tokens(&api.poll(&reg, dc).await);

    let a = api.post("/_fake/revoke-refresh-tokens", json!({})).await;
    assert_eq!(a.status, 200);
    api.refresh(&reg, t.refresh.as_deref().unwrap())
        .await
        .assert_oidc_error(400, "InvalidGrantException", "invalid_grant");

    let a = api
        .post(
            "/_fake/config",
            json!({"accessTokenTtlSecs": 60, "authorizeMode": "deny"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(api.fake.config().access_token_ttl.as_secs(), 60);
    assert_eq!(
        api.post("/_fake/config", json!({"bogus": 1})).await.status,
        400
    );
    assert_eq!(
        api.post("/_fake/config", json!({"authorizeMode": "maybe"}))
            .await
            .status,
        400
    );

    let d2 = api.start_device(&reg).await;
    let a = api
        .post("/_fake/deny", json!({"userCode": d2["userCode"]}))
        .await;
    assert_eq!((a.status, a.json()), (200, json!({"denied": true})));

    let log = api.get("/_fake/requests", None).await.json();
    let ops: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["op"].as_str().unwrap())
        .collect();
    assert!(
        !ops.contains(&"Other"),
        "control calls are not recorded: {ops:?}"
    );
    assert_eq!(api.fake.calls(Op::Other), 0);
    assert_eq!(api.get("/_fake/nothing", None).await.status, 404);
}
