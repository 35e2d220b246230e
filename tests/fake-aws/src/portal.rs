//! The SSO portal API (WIRE.md §7): GetRoleCredentials, ListAccounts, ListAccountRoles and
//! Logout, authenticated by the `x-amz-sso_bearer_token` header carrying a live access token
//! from this fake; role assignments come from `FakeConfig::accounts`.
//! Must not: issue or refresh OIDC tokens (Logout only ends a chain).

use serde_json::{Value, json};

use crate::Op;
use crate::state::State;
use crate::wire::{Incoming, Resp, empty_ok, json_ok, pair, portal_error};

const BEARER: &str = "x-amz-sso_bearer_token";

enum PortalError {
    InvalidRequest(String),
    Unauthorized,
    Forbidden,
}

impl PortalError {
    fn response(&self) -> Resp {
        match self {
            PortalError::InvalidRequest(m) => portal_error(400, "InvalidRequestException", m),
            PortalError::Unauthorized => portal_error(
                401,
                "UnauthorizedException",
                "Session token not found or invalid",
            ),
            PortalError::Forbidden => portal_error(403, "ForbiddenException", "No access"),
        }
    }
}

/// Answers one portal operation.
pub(crate) fn handle(st: &mut State, op: Op, req: &Incoming<'_>) -> Resp {
    let q = req.query_pairs();
    let result = match op {
        Op::GetRoleCredentials => role_credentials(st, req, &q).map(Some),
        Op::ListAccounts => list_accounts(st, req, &q).map(Some),
        Op::ListAccountRoles => list_roles(st, req, &q).map(Some),
        _ => logout(st, req).map(|()| None),
    };
    match result {
        Ok(Some(v)) => json_ok(&v),
        Ok(None) => empty_ok(),
        Err(e) => e.response(),
    }
}

fn required<'a>(q: &'a [(String, String)], name: &str) -> Result<&'a str, PortalError> {
    pair(q, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| PortalError::InvalidRequest(format!("Missing required parameter {name}")))
}

/// The chain of the caller's token, if it is live.
fn caller(st: &State, req: &Incoming<'_>) -> Result<usize, PortalError> {
    let token = req.header(BEARER).ok_or(PortalError::Unauthorized)?;
    st.live_access_token(token).ok_or(PortalError::Unauthorized)
}

fn roles_of<'a>(st: &'a State, account: &str) -> Option<&'a Vec<String>> {
    st.cfg
        .accounts
        .iter()
        .find(|(id, _)| id == account)
        .map(|(_, roles)| roles)
}

fn role_credentials(
    st: &mut State,
    req: &Incoming<'_>,
    q: &[(String, String)],
) -> Result<Value, PortalError> {
    let role = required(q, "role_name")?;
    let account = required(q, "account_id")?;
    caller(st, req)?;
    if !roles_of(st, account).is_some_and(|roles| roles.iter().any(|r| r == role)) {
        return Err(PortalError::Forbidden);
    }
    let key_id = format!("ASIA{}", crate::wire::random_alnum(16).to_ascii_uppercase());
    st.issued_key_ids.push(key_id.clone());
    let secret = st.issue_secret("fake-sak-");
    let session = st.issue_secret("fake-st-");
    let expires = st.clock.now() + st.cfg.role_credentials_ttl;
    st.role_credentials.insert(
        key_id.clone(),
        crate::state::IssuedRoleCredentials {
            secret: secret.clone(),
            session_token: session.clone(),
            expires,
        },
    );
    Ok(json!({
        "roleCredentials": {
            "accessKeyId": key_id,
            "secretAccessKey": secret,
            "sessionToken": session,
            "expiration": st.clock.epoch_millis(expires),
        }
    }))
}

/// Reads `max_result` (1–100) and `next_token` (`page-<offset>`, as this fake issues it); a
/// page holds at most `FakeConfig::page_size` items whatever `max_result` asks.
fn paging(st: &State, q: &[(String, String)]) -> Result<(usize, usize), PortalError> {
    let cap = st.cfg.page_size.max(1);
    let size = match pair(q, "max_result") {
        None => cap,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| PortalError::InvalidRequest("max_result must be 1 to 100".into()))?
            .min(cap),
    };
    let offset = match pair(q, "next_token") {
        None => 0,
        Some(t) => t
            .strip_prefix("page-")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| PortalError::InvalidRequest("Invalid next_token".into()))?,
    };
    Ok((offset, size))
}

/// One page of `items` and the token of the next, `null` at the end.
fn page<T: Clone>(items: &[T], offset: usize, size: usize) -> (Vec<T>, Value) {
    let chunk: Vec<T> = items.iter().skip(offset).take(size).cloned().collect();
    let next = offset + chunk.len();
    let token = if next < items.len() {
        json!(format!("page-{next}"))
    } else {
        Value::Null
    };
    (chunk, token)
}

fn list_accounts(
    st: &State,
    req: &Incoming<'_>,
    q: &[(String, String)],
) -> Result<Value, PortalError> {
    let (offset, size) = paging(st, q)?;
    caller(st, req)?;
    let accounts: Vec<Value> = st
        .cfg
        .accounts
        .iter()
        .map(|(id, _)| {
            json!({
                "accountId": id,
                "accountName": format!("fake-account-{id}"),
                "emailAddress": format!("aws+{id}@example.com"),
            })
        })
        .collect();
    let (list, next) = page(&accounts, offset, size);
    Ok(json!({ "nextToken": next, "accountList": list }))
}

fn list_roles(
    st: &State,
    req: &Incoming<'_>,
    q: &[(String, String)],
) -> Result<Value, PortalError> {
    let account = required(q, "account_id")?;
    let (offset, size) = paging(st, q)?;
    caller(st, req)?;
    let roles = roles_of(st, account).ok_or(PortalError::Forbidden)?;
    let roles: Vec<Value> = roles
        .iter()
        .map(|r| json!({ "roleName": r, "accountId": account }))
        .collect();
    let (list, next) = page(&roles, offset, size);
    Ok(json!({ "nextToken": next, "roleList": list }))
}

fn logout(st: &mut State, req: &Incoming<'_>) -> Result<(), PortalError> {
    let chain = caller(st, req)?;
    st.logout(chain);
    Ok(())
}
