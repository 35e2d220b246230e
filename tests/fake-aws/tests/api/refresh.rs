//! The refresh_token grant: rotation, reuse detection, no-rotation mode, revocation and
//! client binding.

use fake_aws::FakeConfig;

use crate::util::*;

#[tokio::test]
async fn rotation_retires_the_old_token_and_counts_reuse() {
    let api = Api::start(quick()).await;
    let reg = api.register_device().await;
    let t0 = api.device_login(&reg).await;
    let rt0 = t0.refresh.unwrap();

    let a = api.refresh(&reg, &rt0).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let t1 = tokens(&a);
    let rt1 = t1.refresh.unwrap();
    assert_ne!(rt1, rt0);
    assert_ne!(t1.access, t0.access);
    assert_eq!(a.json()["tokenType"], "Bearer");
    assert_eq!(api.fake.refresh_token_reuse_count(), 0);

    api.refresh(&reg, &rt0)
        .await
        .assert_oidc_error(400, "InvalidGrantException", "invalid_grant");
    assert_eq!(api.fake.refresh_token_reuse_count(), 1);
    // The current token still works; unknown tokens are invalid but not reuse.
    let a = api.refresh(&reg, &rt1).await;
    assert_eq!(a.status, 200);
    api.refresh(&reg, "fake-rt-never-issued")
        .await
        .assert_oidc_error(400, "InvalidGrantException", "invalid_grant");
    assert_eq!(api.fake.refresh_token_reuse_count(), 1);
    // Older access tokens stay valid until they expire.
    let creds = api
        .get(
            "/federation/credentials?role_name=Admin&account_id=111122223333",
            Some(&t0.access),
        )
        .await;
    assert_eq!(creds.status, 200);
}

#[tokio::test]
async fn without_rotation_no_refresh_token_is_returned_and_the_old_one_lives() {
    let api = Api::start(FakeConfig {
        rotate_refresh_tokens: false,
        ..quick()
    })
    .await;
    let reg = api.register_device().await;
    let rt = api.device_login(&reg).await.refresh.unwrap();
    for _ in 0..2 {
        let a = api.refresh(&reg, &rt).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let v = a.json();
        assert!(
            v["refreshToken"].is_null() && v.get("refreshToken").is_some(),
            "{v}"
        );
    }
    assert_eq!(api.fake.refresh_token_reuse_count(), 0);
}

#[tokio::test]
async fn revocation_ends_every_chain_without_counting_reuse() {
    let api = Api::start(quick()).await;
    let reg = api.register_device().await;
    let rt = api.device_login(&reg).await.refresh.unwrap();
    api.fake.revoke_all_refresh_tokens();
    api.refresh(&reg, &rt)
        .await
        .assert_oidc_error(400, "InvalidGrantException", "invalid_grant");
    assert_eq!(api.fake.refresh_token_reuse_count(), 0);
    // New logins get working tokens again.
    let rt2 = api.device_login(&reg).await.refresh.unwrap();
    assert_eq!(api.refresh(&reg, &rt2).await.status, 200);
}

#[tokio::test]
async fn a_refresh_token_belongs_to_its_client_and_secret() {
    let api = Api::start(quick()).await;
    let a = api.register_device().await;
    let b = api.register_device().await;
    let rt = api.device_login(&a).await.refresh.unwrap();
    api.refresh(&b, &rt)
        .await
        .assert_oidc_error(400, "InvalidGrantException", "invalid_grant");
    let wrong = Reg {
        id: a.id.clone(),
        secret: "fake-cs-wrong".into(),
    };
    api.refresh(&wrong, &rt).await.assert_oidc_error(
        401,
        "InvalidClientException",
        "invalid_client",
    );
    assert_eq!(api.refresh(&a, &rt).await.status, 200);
}

#[tokio::test]
async fn an_expired_client_secret_is_an_invalid_client() {
    let api = Api::start(quick()).await;
    let reg = api.register_device().await;
    let rt = api.device_login(&reg).await.refresh.unwrap();
    api.fake
        .set_config(|c| c.client_secret_ttl = std::time::Duration::ZERO);
    let fresh = api.register_device().await;
    api.refresh(&fresh, "x").await.assert_oidc_error(
        401,
        "InvalidClientException",
        "invalid_client",
    );
    // The older registration (90 days) still works.
    assert_eq!(api.refresh(&reg, &rt).await.status, 200);
}
