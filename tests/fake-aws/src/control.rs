//! The out-of-process control API under `/_fake/` (demo, Python tests): approve or deny a user
//! code, read counters and issued secrets, queue faults, revoke refresh tokens, adjust the
//! configuration and read the request log. Plain JSON, no AWS error shapes.
//! Must not: be recorded, counted or faulted like an AWS operation.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::wire::{Incoming, Resp, json_status};
use crate::{AuthorizeMode, Fault, Inner, Op};

fn bad(message: impl Into<String>) -> Resp {
    json_status(400, &json!({ "error": message.into() }))
}

/// A fault as JSON: `{"type": "error", "status": 400, "errorType": "SlowDownException",
/// "error": "slow_down", "description": "…"}`, `{"type": "delay", "ms": 1500}`,
/// `{"type": "reset" | "garbage" | "hang"}`, `{"type": "html", "status": 503}`,
/// `{"type": "redirect", "status": 307, "location": "…"}`, `{"type": "huge_body", "bytes": N}`,
/// `{"type": "drip", "ms": 1000}`, or a preset
/// `{"type": "slow_down" | "invalid_grant" | "internal" | "access_denied" | "expired_token" |
/// "invalid_client" | "unauthorized" | "too_many_requests"}`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FaultSpec {
    Error {
        status: u16,
        #[serde(rename = "errorType")]
        error_type: String,
        #[serde(default)]
        error: String,
        #[serde(default)]
        description: String,
    },
    Delay {
        ms: u64,
    },
    Reset,
    Garbage,
    Hang,
    Html {
        status: u16,
    },
    Redirect {
        status: u16,
        location: String,
    },
    HugeBody {
        bytes: u64,
    },
    Drip {
        ms: u64,
    },
    SlowDown,
    InvalidGrant,
    Internal,
    AccessDenied,
    ExpiredToken,
    InvalidClient,
    Unauthorized,
    TooManyRequests,
}

impl From<FaultSpec> for Fault {
    fn from(spec: FaultSpec) -> Fault {
        match spec {
            FaultSpec::Error {
                status,
                error_type,
                error,
                description,
            } => Fault::Error {
                status,
                error_type,
                error,
                description,
            },
            FaultSpec::Delay { ms } => Fault::Delay(Duration::from_millis(ms)),
            FaultSpec::Reset => Fault::Reset,
            FaultSpec::Garbage => Fault::Garbage,
            FaultSpec::Hang => Fault::Hang,
            FaultSpec::Html { status } => Fault::Html(status),
            FaultSpec::Redirect { status, location } => Fault::Redirect(status, location),
            FaultSpec::HugeBody { bytes } => Fault::HugeBody(bytes),
            // At least a millisecond: a zero interval would spin.
            FaultSpec::Drip { ms } => Fault::Drip(Duration::from_millis(ms.max(1))),
            FaultSpec::SlowDown => Fault::slow_down(),
            FaultSpec::InvalidGrant => Fault::invalid_grant(),
            FaultSpec::Internal => Fault::internal(),
            FaultSpec::AccessDenied => Fault::access_denied(),
            FaultSpec::ExpiredToken => Fault::expired_token(),
            FaultSpec::InvalidClient => Fault::invalid_client(),
            FaultSpec::Unauthorized => Fault::unauthorized(),
            FaultSpec::TooManyRequests => Fault::too_many_requests(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FaultRequest {
    op: String,
    fault: FaultSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserCodeRequest {
    user_code: String,
}

/// Any subset of the configuration; durations in seconds.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigPatch {
    access_token_ttl_secs: Option<u64>,
    client_secret_ttl_secs: Option<u64>,
    device_code_ttl_secs: Option<u64>,
    device_interval_secs: Option<u64>,
    rotate_refresh_tokens: Option<bool>,
    issue_refresh_tokens: Option<bool>,
    auto_approve: Option<bool>,
    authorize_mode: Option<String>,
    role_credentials_ttl_secs: Option<u64>,
    enforce_poll_interval: Option<bool>,
    accounts: Option<Vec<(String, Vec<String>)>>,
    page_size: Option<usize>,
}

pub(crate) fn parse_authorize_mode(s: &str) -> Option<AuthorizeMode> {
    match s {
        "approve" => Some(AuthorizeMode::Approve),
        "deny" => Some(AuthorizeMode::Deny),
        "page" => Some(AuthorizeMode::Page),
        _ => None,
    }
}

pub(crate) fn handle(inner: &Inner, req: &Incoming<'_>) -> Resp {
    let get = req.method == http::Method::GET;
    let post = req.method == http::Method::POST;
    let resp = match req.path {
        "/_fake/state" if get => state(inner),
        "/_fake/requests" if get => requests(inner),
        "/_fake/approve" if post => decide(inner, req.body, true),
        "/_fake/deny" if post => decide(inner, req.body, false),
        "/_fake/faults" if post => fault(inner, req.body),
        "/_fake/revoke-refresh-tokens" if post => {
            inner.lock().revoke_all_refresh_tokens();
            json_status(200, &json!({ "revoked": true }))
        }
        "/_fake/config" if post => config(inner, req.body),
        _ => json_status(
            404,
            &json!({ "error": format!("no control route {}", req.path) }),
        ),
    };
    inner.notify();
    resp
}

fn state(inner: &Inner) -> Resp {
    let st = inner.lock();
    let calls: serde_json::Map<String, Value> = Op::ALL
        .iter()
        .map(|op| {
            (
                op.name().to_owned(),
                json!(st.calls.get(op).copied().unwrap_or(0)),
            )
        })
        .collect();
    json_status(
        200,
        &json!({
            "url": inner.url(),
            "calls": calls,
            "pendingUserCodes": st.pending_user_codes(),
            "refreshTokenReuseCount": st.reuse_count,
            "issuedSecrets": st.issued_secrets,
        }),
    )
}

fn requests(inner: &Inner) -> Resp {
    let st = inner.lock();
    let list: Vec<Value> = st
        .requests
        .iter()
        .map(|r| {
            json!({
                "op": r.op.name(),
                "method": r.method,
                "path": r.path,
                "headers": r.headers,
                "body": r.body_text(),
            })
        })
        .collect();
    json_status(200, &Value::Array(list))
}

fn decide(inner: &Inner, body: &[u8], approve: bool) -> Resp {
    let req: UserCodeRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return bad(format!("expected {{\"userCode\": \"…\"}}: {e}")),
    };
    let mut st = inner.lock();
    let (done, key) = if approve {
        (st.approve(&req.user_code), "approved")
    } else {
        (st.deny(&req.user_code), "denied")
    };
    json_status(if done { 200 } else { 404 }, &json!({ key: done }))
}

fn fault(inner: &Inner, body: &[u8]) -> Resp {
    let req: FaultRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return bad(format!(
                "expected {{\"op\": …, \"fault\": {{\"type\": …}}}}: {e}"
            ));
        }
    };
    let Some(op) = Op::from_name(&req.op) else {
        return bad(format!("unknown op {:?}", req.op));
    };
    inner
        .lock()
        .faults
        .entry(op)
        .or_default()
        .push_back(req.fault.into());
    json_status(200, &json!({ "queued": true }))
}

fn config(inner: &Inner, body: &[u8]) -> Resp {
    let patch: ConfigPatch = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => return bad(format!("bad config patch: {e}")),
    };
    let mode = match patch.authorize_mode.as_deref().map(parse_authorize_mode) {
        Some(None) => return bad("authorizeMode must be approve, deny or page"),
        Some(Some(m)) => Some(m),
        None => None,
    };
    let mut st = inner.lock();
    let cfg = &mut st.cfg;
    let secs = Duration::from_secs;
    if let Some(v) = patch.access_token_ttl_secs {
        cfg.access_token_ttl = secs(v);
    }
    if let Some(v) = patch.client_secret_ttl_secs {
        cfg.client_secret_ttl = secs(v);
    }
    if let Some(v) = patch.device_code_ttl_secs {
        cfg.device_code_ttl = secs(v);
    }
    if let Some(v) = patch.device_interval_secs {
        cfg.device_interval_secs = v;
    }
    if let Some(v) = patch.rotate_refresh_tokens {
        cfg.rotate_refresh_tokens = v;
    }
    if let Some(v) = patch.issue_refresh_tokens {
        cfg.issue_refresh_tokens = v;
    }
    if let Some(v) = patch.auto_approve {
        cfg.auto_approve = v;
    }
    if let Some(v) = mode {
        cfg.authorize_mode = v;
    }
    if let Some(v) = patch.role_credentials_ttl_secs {
        cfg.role_credentials_ttl = secs(v);
    }
    if let Some(v) = patch.enforce_poll_interval {
        cfg.enforce_poll_interval = v;
    }
    if let Some(v) = patch.accounts {
        cfg.accounts = v;
    }
    if let Some(v) = patch.page_size {
        if !(1..=100).contains(&v) {
            return bad("pageSize must be 1 to 100");
        }
        cfg.page_size = v;
    }
    json_status(200, &json!({ "updated": true }))
}
