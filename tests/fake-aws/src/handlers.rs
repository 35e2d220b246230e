//! The HTTP side of the fake: routing, faults, and each operation's behaviour.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::*;

type Resp = Response<Full<Bytes>>;

const OIDC_NS: &str = "http://internal.amazon.com/coral/com.amazonaws.sso.oidc/";
const PORTAL_NS: &str = "http://internal.amazon.com/coral/com.amazonaws.switchboard.portal/";
const GRANT_DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub(crate) async fn serve(listener: tokio::net::TcpListener, inner: Arc<Inner>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let inner = inner.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let inner = inner.clone();
                async move { handle(inner, req).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn respond(status: u16, headers: &[(&str, String)], body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            header::HeaderName::try_from(*k),
            header::HeaderValue::try_from(v.as_str()),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

fn json_ok(v: Value) -> Resp {
    respond(
        200,
        &[
            ("content-type", "application/json".into()),
            ("x-amzn-RequestId", random(16)),
        ],
        v.to_string(),
    )
}

fn oidc_err(status: u16, name: &str, error: &str, desc: &str) -> Resp {
    respond(
        status,
        &[
            ("content-type", "application/json".into()),
            ("x-amzn-ErrorType", format!("{name}:{OIDC_NS}")),
            ("x-amzn-RequestId", random(16)),
        ],
        json!({"error": error, "error_description": desc}).to_string(),
    )
}

fn invalid_request(desc: &str) -> Resp {
    oidc_err(400, "InvalidRequestException", "invalid_request", desc)
}

fn portal_err(status: u16, name: &str, message: &str) -> Resp {
    respond(
        status,
        &[
            ("content-type", "application/json".into()),
            ("x-amzn-ErrorType", format!("{name}:{PORTAL_NS}")),
        ],
        json!({"message": message}).to_string(),
    )
}

fn op_of(method: &Method, path: &str) -> Op {
    match (method, path) {
        (&Method::POST, "/client/register") => Op::RegisterClient,
        (&Method::POST, "/device_authorization") => Op::StartDeviceAuthorization,
        (&Method::POST, "/token") => Op::CreateToken,
        (&Method::GET, "/authorize") => Op::Authorize,
        (&Method::GET, "/federation/credentials") => Op::GetRoleCredentials,
        (&Method::GET, "/assignment/accounts") => Op::ListAccounts,
        (&Method::GET, "/assignment/roles") => Op::ListAccountRoles,
        (&Method::POST, "/logout") => Op::Logout,
        _ => Op::Other,
    }
}

async fn handle(inner: Arc<Inner>, req: Request<Incoming>) -> Result<Resp, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, 1024 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(invalid_request("request body too large or unreadable")),
    };
    let path = parts.uri.path().to_string();
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let op = op_of(&parts.method, &path);
    let fault = {
        let mut st = inner.state();
        if op != Op::Other {
            *st.calls.entry(op).or_default() += 1;
            st.requests.push(Recorded {
                op,
                method: parts.method.to_string(),
                path_and_query: parts
                    .uri
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        st.faults.get_mut(&op).and_then(|q| q.pop_front())
    };
    inner.changed.notify_waiters();
    if op != Op::Other {
        eprintln!(
            "fake-aws: {} {} ({op:?}){}",
            parts.method,
            path,
            if fault.is_some() { " [fault]" } else { "" }
        );
    }
    match fault {
        Some(Fault::Error {
            status,
            error_type,
            error,
            description,
        }) => {
            return Ok(
                if matches!(
                    op,
                    Op::GetRoleCredentials | Op::ListAccounts | Op::ListAccountRoles | Op::Logout
                ) {
                    portal_err(status, &error_type, &description)
                } else {
                    oidc_err(status, &error_type, &error, &description)
                },
            );
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Reset) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected reset",
            ));
        }
        Some(Fault::Garbage) => {
            return Ok(respond(
                200,
                &[("content-type", "application/json".into())],
                "{\"accessToken\": garbage",
            ));
        }
        Some(Fault::Hang) => std::future::pending::<()>().await,
        Some(Fault::Html(status)) => {
            return Ok(respond(
                status,
                &[("content-type", "text/html".into())],
                "<html><body>Service Unavailable</body></html>",
            ));
        }
        None => {}
    }
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let parse = || -> Result<serde_json::Map<String, Value>, Resp> {
        if !is_json {
            return Err(invalid_request("Content-Type must be application/json"));
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(invalid_request("the request body is not a JSON object")),
        }
    };
    let bearer = parts
        .headers
        .get("x-amz-sso_bearer_token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let resp = match op {
        Op::RegisterClient => parse().map(|b| register(&inner, &b)).unwrap_or_else(|e| e),
        Op::StartDeviceAuthorization => parse()
            .map(|b| start_device(&inner, &b))
            .unwrap_or_else(|e| e),
        Op::CreateToken => parse()
            .map(|b| create_token(&inner, &b))
            .unwrap_or_else(|e| e),
        Op::Authorize => authorize(&inner, &query),
        Op::GetRoleCredentials => role_credentials(&inner, bearer.as_deref(), &query),
        Op::ListAccounts => list_accounts(&inner, bearer.as_deref()),
        Op::ListAccountRoles => list_roles(&inner, bearer.as_deref(), &query),
        Op::Logout => logout(&inner, bearer.as_deref()),
        Op::Other => other(&inner, &parts.method, &path, &query, &body),
    };
    inner.changed.notify_waiters();
    Ok(resp)
}

type Body = serde_json::Map<String, Value>;

fn req_str<'a>(b: &'a Body, k: &str) -> Result<&'a str, Resp> {
    match b.get(k) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(invalid_request(&format!("{k} must be a non-empty string"))),
        None => Err(invalid_request(&format!("{k} is required"))),
    }
}

fn opt_list(b: &Body, k: &str) -> Result<Option<Vec<String>>, Resp> {
    match b.get(k) {
        None => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .ok_or_else(|| invalid_request(&format!("{k} must be a list of strings")))
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(invalid_request(&format!("{k} must be a list of strings"))),
    }
}

fn issue(st: &mut State, prefix: &str) -> String {
    let v = format!("{prefix}-{}", random(24));
    st.issued.push(v.clone());
    v
}

fn register(inner: &Inner, b: &Body) -> Resp {
    let run = || -> Result<Resp, Resp> {
        req_str(b, "clientName")?;
        if req_str(b, "clientType")? != "public" {
            return Err(oidc_err(
                400,
                "InvalidClientMetadataException",
                "invalid_client_metadata",
                "clientType must be public",
            ));
        }
        let scopes = opt_list(b, "scopes")?.unwrap_or_default();
        let grant_types = opt_list(b, "grantTypes")?;
        for g in grant_types.iter().flatten() {
            if ![GRANT_DEVICE, "refresh_token", "authorization_code"].contains(&g.as_str()) {
                return Err(oidc_err(
                    400,
                    "UnsupportedGrantTypeException",
                    "unsupported_grant_type",
                    "unsupported grant type",
                ));
            }
        }
        let redirect_uris = opt_list(b, "redirectUris")?.unwrap_or_default();
        for r in &redirect_uris {
            if !r.starts_with("http://127.0.0.1/") && !r.starts_with("http://localhost/") {
                return Err(oidc_err(
                    400,
                    "InvalidRedirectUriException",
                    "invalid_redirect_uri",
                    "redirect URIs must be loopback",
                ));
            }
        }
        let cfg = inner.cfg();
        let mut st = inner.state();
        let id = format!("fake-client-{}", random(12));
        let secret = issue(&mut st, "fake-cs");
        let now = now_secs();
        let expires = now + cfg.client_secret_ttl.as_secs();
        st.clients.insert(
            id.clone(),
            Client {
                secret: secret.clone(),
                secret_expires_at: expires,
                scopes,
                grant_types,
                redirect_uris,
            },
        );
        Ok(json_ok(
            json!({"authorizationEndpoint": null, "clientId": id, "clientIdIssuedAt": now, "clientSecret": secret, "clientSecretExpiresAt": expires, "tokenEndpoint": null}),
        ))
    };
    run().unwrap_or_else(|e| e)
}

fn check_client(st: &State, b: &Body) -> Result<String, Resp> {
    let id = req_str(b, "clientId")?;
    let secret = req_str(b, "clientSecret")?;
    match st.clients.get(id) {
        Some(c) if c.secret == secret && c.secret_expires_at > now_secs() => Ok(id.to_string()),
        _ => Err(oidc_err(
            401,
            "InvalidClientException",
            "invalid_client",
            "Client credentials are invalid",
        )),
    }
}

fn start_device(inner: &Inner, b: &Body) -> Resp {
    let run = || -> Result<Resp, Resp> {
        let cfg = inner.cfg();
        let mut st = inner.state();
        let client_id = check_client(&st, b)?;
        req_str(b, "startUrl")?;
        let device_code = issue(&mut st, "fake-dc");
        let code = random(8).to_uppercase();
        let user_code = format!("{}-{}", &code[..4], &code[4..]);
        let state = if cfg.auto_approve {
            DeviceState::Approved
        } else {
            DeviceState::Pending
        };
        st.devices.insert(
            device_code.clone(),
            Device {
                client_id,
                user_code: user_code.clone(),
                expires_at: SystemTime::now() + cfg.device_code_ttl,
                state,
            },
        );
        let uri = format!("{}/device", inner.url);
        Ok(json_ok(json!({
            "deviceCode": device_code, "userCode": user_code, "verificationUri": uri,
            "verificationUriComplete": format!("{uri}?user_code={user_code}"),
            "expiresIn": cfg.device_code_ttl.as_secs(), "interval": cfg.device_interval_secs,
        })))
    };
    run().unwrap_or_else(|e| e)
}

fn tokens(
    st: &mut State,
    cfg: &FakeConfig,
    client_id: &str,
    scopes: &[String],
    chain: Option<u64>,
) -> Resp {
    let chain = chain.unwrap_or_else(|| {
        st.next_chain += 1;
        st.next_chain
    });
    let at = issue(st, "fake-at");
    st.access_tokens.insert(
        at.clone(),
        AccessToken {
            expires_at: SystemTime::now() + cfg.access_token_ttl,
            chain,
        },
    );
    let rt =
        (cfg.issue_refresh_tokens && scopes.iter().any(|s| s == "sso:account:access")).then(|| {
            let rt = issue(st, "fake-rt");
            st.refresh_tokens.insert(
                rt.clone(),
                RefreshToken {
                    client_id: client_id.to_string(),
                    scopes: scopes.to_vec(),
                    valid: true,
                    rotated: false,
                    chain,
                },
            );
            rt
        });
    json_ok(
        json!({"accessToken": at, "tokenType": "Bearer", "expiresIn": cfg.access_token_ttl.as_secs(), "refreshToken": rt, "idToken": null}),
    )
}

fn create_token(inner: &Inner, b: &Body) -> Resp {
    let run = || -> Result<Resp, Resp> {
        let cfg = inner.cfg();
        let mut st = inner.state();
        let client_id = check_client(&st, b)?;
        let grant = req_str(b, "grantType")?.to_string();
        let client = st
            .clients
            .get(&client_id)
            .ok_or_else(|| invalid_request("unknown client"))?;
        if let Some(g) = &client.grant_types {
            if !g.contains(&grant) {
                return Err(oidc_err(
                    400,
                    "UnauthorizedClientException",
                    "unauthorized_client",
                    "grant type not registered for this client",
                ));
            }
        }
        let scopes = client.scopes.clone();
        let invalid_grant = |d: &str| oidc_err(400, "InvalidGrantException", "invalid_grant", d);
        match grant.as_str() {
            GRANT_DEVICE => {
                let dc = req_str(b, "deviceCode")?;
                let dev = st
                    .devices
                    .get_mut(dc)
                    .filter(|d| d.client_id == client_id)
                    .ok_or_else(|| invalid_grant("Invalid device code provided"))?;
                if dev.state == DeviceState::Consumed {
                    return Err(invalid_grant("Device code already used"));
                }
                if dev.expires_at <= SystemTime::now() {
                    return Err(oidc_err(
                        400,
                        "ExpiredTokenException",
                        "expired_token",
                        "Device code has expired",
                    ));
                }
                match dev.state {
                    DeviceState::Pending => Err(oidc_err(
                        400,
                        "AuthorizationPendingException",
                        "authorization_pending",
                        "Authorization is still pending",
                    )),
                    DeviceState::Denied => Err(oidc_err(
                        400,
                        "AccessDeniedException",
                        "access_denied",
                        "The user denied the request",
                    )),
                    _ => {
                        dev.state = DeviceState::Consumed;
                        Ok(tokens(&mut st, &cfg, &client_id, &scopes, None))
                    }
                }
            }
            "refresh_token" => {
                let rt = req_str(b, "refreshToken")?.to_string();
                let Some(info) = st.refresh_tokens.get(&rt) else {
                    return Err(invalid_grant("Invalid refresh token provided"));
                };
                if !info.valid
                    || info.client_id != client_id
                    || st.dead_chains.contains(&info.chain)
                {
                    if info.rotated {
                        st.reuse += 1;
                    }
                    return Err(invalid_grant("Invalid refresh token provided"));
                }
                let (chain, scopes) = (info.chain, info.scopes.clone());
                if cfg.rotate_refresh_tokens {
                    if let Some(i) = st.refresh_tokens.get_mut(&rt) {
                        i.valid = false;
                        i.rotated = true;
                    }
                    Ok(tokens(&mut st, &cfg, &client_id, &scopes, Some(chain)))
                } else {
                    let at = issue(&mut st, "fake-at");
                    st.access_tokens.insert(
                        at.clone(),
                        AccessToken {
                            expires_at: SystemTime::now() + cfg.access_token_ttl,
                            chain,
                        },
                    );
                    Ok(json_ok(
                        json!({"accessToken": at, "tokenType": "Bearer", "expiresIn": cfg.access_token_ttl.as_secs(), "refreshToken": null, "idToken": null}),
                    ))
                }
            }
            "authorization_code" => {
                let code = req_str(b, "code")?.to_string();
                let redirect = req_str(b, "redirectUri")?.to_string();
                let verifier = req_str(b, "codeVerifier")?.to_string();
                let ac = st
                    .auth_codes
                    .get_mut(&code)
                    .ok_or_else(|| invalid_grant("Invalid authorization code"))?;
                if ac.used || ac.client_id != client_id || ac.redirect_uri != redirect {
                    return Err(invalid_grant("Invalid authorization code"));
                }
                ac.used = true;
                let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(verifier.as_bytes()));
                if challenge != ac.challenge {
                    return Err(invalid_grant("PKCE verification failed"));
                }
                Ok(tokens(&mut st, &cfg, &client_id, &scopes, None))
            }
            _ => Err(oidc_err(
                400,
                "UnsupportedGrantTypeException",
                "unsupported_grant_type",
                "unsupported grant type",
            )),
        }
    };
    run().unwrap_or_else(|e| e)
}

/// RFC 8252 §7.3: a registered loopback redirect without port matches any port.
fn redirect_matches(registered: &[String], given: &str) -> bool {
    let Ok(u) = url::Url::parse(given) else {
        return false;
    };
    if u.scheme() != "http" || u.host_str() != Some("127.0.0.1") {
        return false;
    }
    let portless = format!("http://127.0.0.1{}", u.path());
    registered.iter().any(|r| *r == portless || r == given)
}

fn authorize(inner: &Inner, q: &HashMap<String, String>) -> Resp {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let cfg = inner.cfg();
    let mut st = inner.state();
    let client_id = get("client_id").to_string();
    let redirect = get("redirect_uri").to_string();
    let ok_client = st
        .clients
        .get(&client_id)
        .is_some_and(|c| redirect_matches(&c.redirect_uris, &redirect));
    if get("response_type") != "code"
        || !ok_client
        || get("code_challenge_method") != "S256"
        || get("code_challenge").is_empty()
        || get("state").is_empty()
    {
        return respond(
            400,
            &[("content-type", "text/plain".into())],
            "invalid authorization request",
        );
    }
    let state = get("state").to_string();
    let sep = if redirect.contains('?') { '&' } else { '?' };
    match cfg.authorize_mode {
        AuthorizeMode::Deny => respond(
            302,
            &[(
                "location",
                format!("{redirect}{sep}error=access_denied&state={state}"),
            )],
            "",
        ),
        mode => {
            let code = issue(&mut st, "fake-code");
            st.auth_codes.insert(
                code.clone(),
                AuthCode {
                    client_id,
                    redirect_uri: redirect.clone(),
                    challenge: get("code_challenge").to_string(),
                    used: false,
                },
            );
            let approve = format!("{redirect}{sep}code={code}&state={state}");
            if mode == AuthorizeMode::Page {
                let deny = format!("{redirect}{sep}error=access_denied&state={state}");
                respond(
                    200,
                    &[("content-type", "text/html".into())],
                    format!(
                        "<html><body><h1>fake-aws sign-in</h1><p><a href=\"{approve}\">Approve</a> | <a href=\"{deny}\">Deny</a></p></body></html>"
                    ),
                )
            } else {
                respond(302, &[("location", approve)], "")
            }
        }
    }
}

fn live_token(st: &State, bearer: Option<&str>) -> bool {
    bearer
        .and_then(|b| st.access_tokens.get(b))
        .is_some_and(|t| t.expires_at > SystemTime::now() && !st.dead_chains.contains(&t.chain))
}

fn role_credentials(inner: &Inner, bearer: Option<&str>, q: &HashMap<String, String>) -> Resp {
    let cfg = inner.cfg();
    let mut st = inner.state();
    if !live_token(&st, bearer) {
        return portal_err(
            401,
            "UnauthorizedException",
            "Session token not found or invalid",
        );
    }
    let (Some(role), Some(account)) = (q.get("role_name"), q.get("account_id")) else {
        return portal_err(
            400,
            "InvalidRequestException",
            "role_name and account_id are required",
        );
    };
    if !cfg
        .accounts
        .iter()
        .any(|(a, roles)| a == account && roles.contains(role))
    {
        return portal_err(403, "ForbiddenException", "No access");
    }
    let akid = format!("ASIAFAKE{}", random(12).to_uppercase());
    let sak = issue(&mut st, "fake-sak");
    let stoken = issue(&mut st, "fake-st");
    let exp = (SystemTime::now() + cfg.role_credentials_ttl)
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    json_ok(
        json!({"roleCredentials": {"accessKeyId": akid, "secretAccessKey": sak, "sessionToken": stoken, "expiration": exp}}),
    )
}

fn list_accounts(inner: &Inner, bearer: Option<&str>) -> Resp {
    let cfg = inner.cfg();
    if !live_token(&inner.state(), bearer) {
        return portal_err(
            401,
            "UnauthorizedException",
            "Session token not found or invalid",
        );
    }
    let list: Vec<Value> = cfg.accounts.iter().map(|(a, _)| json!({"accountId": a, "accountName": format!("account-{a}"), "emailAddress": "owner@example.com"})).collect();
    json_ok(json!({"nextToken": null, "accountList": list}))
}

fn list_roles(inner: &Inner, bearer: Option<&str>, q: &HashMap<String, String>) -> Resp {
    let cfg = inner.cfg();
    if !live_token(&inner.state(), bearer) {
        return portal_err(
            401,
            "UnauthorizedException",
            "Session token not found or invalid",
        );
    }
    let Some(account) = q.get("account_id") else {
        return portal_err(400, "InvalidRequestException", "account_id is required");
    };
    let roles: Vec<Value> = cfg
        .accounts
        .iter()
        .filter(|(a, _)| a == account)
        .flat_map(|(a, r)| {
            r.iter()
                .map(move |r| json!({"roleName": r, "accountId": a}))
        })
        .collect();
    json_ok(json!({"nextToken": null, "roleList": roles}))
}

fn logout(inner: &Inner, bearer: Option<&str>) -> Resp {
    let mut st = inner.state();
    let chain = bearer
        .and_then(|b| st.access_tokens.get(b))
        .map(|t| t.chain);
    match chain {
        Some(c) => {
            st.dead_chains.push(c);
            respond(200, &[], "")
        }
        None => portal_err(
            401,
            "UnauthorizedException",
            "Session token not found or invalid",
        ),
    }
}

/// The device page (for people), and the control API (for scripts): /_fake/…
fn other(
    inner: &Inner,
    method: &Method,
    path: &str,
    q: &HashMap<String, String>,
    body: &[u8],
) -> Resp {
    let code_from = |b: &[u8]| -> Option<String> {
        serde_json::from_slice::<Value>(b)
            .ok()
            .and_then(|v| v.get("userCode").and_then(Value::as_str).map(String::from))
            .or_else(|| {
                url::form_urlencoded::parse(b)
                    .find(|(k, _)| k == "user_code")
                    .map(|(_, v)| v.into_owned())
            })
    };
    let set = |code: &str, to: DeviceState| {
        let mut st = inner.state();
        st.devices
            .values_mut()
            .find(|d| d.user_code == code && d.state == DeviceState::Pending)
            .map(|d| d.state = to)
            .is_some()
    };
    match (method, path) {
        (&Method::GET, "/device") => {
            let code = q.get("user_code").cloned().unwrap_or_default();
            respond(
                200,
                &[("content-type", "text/html".into())],
                format!(
                    "<html><body><h1>fake-aws device sign-in</h1><form method=post action=/device/approve><input name=user_code value=\"{code}\"><button>Approve</button></form><form method=post action=/device/deny><input name=user_code value=\"{code}\"><button>Deny</button></form></body></html>"
                ),
            )
        }
        (&Method::POST, "/device/approve" | "/_fake/approve")
        | (&Method::POST, "/device/deny" | "/_fake/deny") => {
            let to = if path.ends_with("approve") {
                DeviceState::Approved
            } else {
                DeviceState::Denied
            };
            match code_from(body) {
                Some(c) if set(&c, to) => respond(
                    200,
                    &[("content-type", "text/plain".into())],
                    format!("{c}: {to:?}\n"),
                ),
                _ => respond(
                    404,
                    &[("content-type", "text/plain".into())],
                    "no pending login with that user code\n",
                ),
            }
        }
        (&Method::GET, "/_fake/state") => {
            let st = inner.state();
            let calls: HashMap<String, usize> = st
                .calls
                .iter()
                .map(|(k, v)| (format!("{k:?}"), *v))
                .collect();
            let pending: Vec<&str> = st
                .devices
                .values()
                .filter(|d| d.state == DeviceState::Pending)
                .map(|d| d.user_code.as_str())
                .collect();
            json_ok(
                json!({"calls": calls, "pendingUserCodes": pending, "refreshTokenReuse": st.reuse}),
            )
        }
        (&Method::POST, "/_fake/faults") => {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let op = v.get("op").and_then(Value::as_str).and_then(Op::parse);
            let f = v.get("fault");
            let fault = match f.and_then(|f| f.get("kind")).and_then(Value::as_str) {
                Some("error") => f.map(|f| Fault::Error {
                    status: f.get("status").and_then(Value::as_u64).unwrap_or(400) as u16,
                    error_type: f
                        .get("errorType")
                        .and_then(Value::as_str)
                        .unwrap_or("InternalServerException")
                        .into(),
                    error: f
                        .get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("server_error")
                        .into(),
                    description: f
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("injected")
                        .into(),
                }),
                Some("delay") => Some(Fault::Delay(Duration::from_millis(
                    f.and_then(|f| f.get("ms"))
                        .and_then(Value::as_u64)
                        .unwrap_or(1000),
                ))),
                Some("reset") => Some(Fault::Reset),
                Some("garbage") => Some(Fault::Garbage),
                Some("hang") => Some(Fault::Hang),
                Some("html") => Some(Fault::Html(
                    f.and_then(|f| f.get("status"))
                        .and_then(Value::as_u64)
                        .unwrap_or(503) as u16,
                )),
                _ => None,
            };
            match (op, fault) {
                (Some(op), Some(fault)) => {
                    inner.state().faults.entry(op).or_default().push_back(fault);
                    respond(200, &[], "")
                }
                _ => respond(
                    400,
                    &[("content-type", "text/plain".into())],
                    "want {\"op\": \"CreateToken\", \"fault\": {\"kind\": \"error|delay|reset|garbage|hang|html\", …}}\n",
                ),
            }
        }
        _ => respond(
            404,
            &[("content-type", "application/json".into())],
            json!({"message": format!("no route {method} {path}")}).to_string(),
        ),
    }
}
