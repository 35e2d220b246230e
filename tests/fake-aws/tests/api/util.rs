//! Test support: a started fake plus a small reqwest client that returns status, headers and
//! body of every answer, and the common login steps (register, device login, PKCE).

use std::time::Duration;

use fake_aws::{FakeAws, FakeConfig};
use serde_json::{Value, json};

pub const WAIT: Duration = Duration::from_secs(10);
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const OIDC_NS: &str = "http://internal.amazon.com/coral/com.amazonaws.sso.oidc/";

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the exact OIDC error shape of WIRE.md §2.1.
    #[track_caller]
    pub fn assert_oidc_error(&self, status: u16, name: &str, code: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(
            self.header("x-amzn-errortype"),
            Some(format!("{name}:{OIDC_NS}").as_str())
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert!(
            self.header("x-amzn-requestid")
                .is_some_and(|v| v.len() == 36)
        );
        let body = self.json();
        let obj = body.as_object().expect("object body");
        assert_eq!(obj.len(), 2, "only error + error_description: {body}");
        assert_eq!(body["error"], code);
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }

    /// Asserts a portal error: status, name in the header, body `{"message": …}` only.
    #[track_caller]
    pub fn assert_portal_error(&self, status: u16, name: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        let et = self.header("x-amzn-errortype").unwrap_or("");
        assert_eq!(et.split(':').next(), Some(name));
        let body = self.json();
        assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
        assert!(body["message"].is_string());
    }
}

pub struct Reg {
    pub id: String,
    pub secret: String,
}

pub struct Tokens {
    pub access: String,
    pub refresh: Option<String>,
}

pub struct Api {
    pub fake: FakeAws,
    pub http: reqwest::Client,
    pub base: String,
}

pub fn quick() -> FakeConfig {
    FakeConfig {
        device_interval_secs: 0,
        ..FakeConfig::default()
    }
}

impl Api {
    pub async fn start(cfg: FakeConfig) -> Api {
        let fake = FakeAws::start(cfg).await.expect("start fake");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .expect("client");
        let base = fake.url();
        Api { fake, http, base }
    }

    async fn answer(resp: reqwest::Response) -> Answer {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        Answer {
            status,
            headers,
            text,
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.post_raw(path, Some("application/json"), &body.to_string())
            .await
    }

    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: &str) -> Answer {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .body(body.to_owned());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        Self::answer(req.send().await.expect("send")).await
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Answer {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = bearer {
            req = req.header("x-amz-sso_bearer_token", t);
        }
        Self::answer(req.send().await.expect("send")).await
    }

    pub async fn logout(&self, bearer: &str) -> Answer {
        let req = self
            .http
            .post(format!("{}/logout", self.base))
            .header("x-amz-sso_bearer_token", bearer)
            .header("content-length", "0");
        Self::answer(req.send().await.expect("send")).await
    }

    pub async fn register(&self, body: Value) -> Reg {
        let a = self.post("/client/register", body).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let v = a.json();
        Reg {
            id: v["clientId"].as_str().expect("clientId").to_owned(),
            secret: v["clientSecret"].as_str().expect("clientSecret").to_owned(),
        }
    }

    /// A device-flow registration with `sso:account:access` (refreshable).
    pub async fn register_device(&self) -> Reg {
        self.register(json!({
            "clientName": "test", "clientType": "public", "scopes": ["sso:account:access"]
        }))
        .await
    }

    pub async fn start_device(&self, reg: &Reg) -> Value {
        let a = self
            .post(
                "/device_authorization",
                json!({"clientId": reg.id, "clientSecret": reg.secret,
                       "startUrl": "https://d-1234567890.awsapps.com/start"}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json()
    }

    pub async fn poll(&self, reg: &Reg, device_code: &str) -> Answer {
        self.post(
            "/token",
            json!({"grantType": DEVICE_GRANT, "clientId": reg.id, "clientSecret": reg.secret,
                   "deviceCode": device_code}),
        )
        .await
    }

    pub async fn refresh(&self, reg: &Reg, rt: &str) -> Answer {
        self.post(
            "/token",
            json!({"grantType": "refresh_token", "clientId": reg.id, "clientSecret": reg.secret,
                   "refreshToken": rt}),
        )
        .await
    }

    /// Register, start, approve, poll: the tokens of one device login.
    pub async fn device_login(&self, reg: &Reg) -> Tokens {
        let d = self.start_device(reg).await;
        assert!(self.fake.approve(d["userCode"].as_str().expect("userCode")));
        let a = self
            .poll(reg, d["deviceCode"].as_str().expect("deviceCode"))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        tokens(&a)
    }
}

pub fn tokens(a: &Answer) -> Tokens {
    let v = a.json();
    Tokens {
        access: v["accessToken"].as_str().expect("accessToken").to_owned(),
        refresh: v["refreshToken"].as_str().map(str::to_owned),
    }
}

/// Query parameter `name` of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
