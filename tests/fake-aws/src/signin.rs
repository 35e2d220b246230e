//! The AWS sign-in federation endpoint (`GET /federation`, "custom identity broker" in the
//! IAM docs): `Action=getSigninToken&Session={"sessionId","sessionKey","sessionToken"}`
//! answers `{"SigninToken": …}` only for role credentials this fake issued and that have not
//! expired; `Action=login&Issuer=…&Destination=…&SigninToken=…` redirects (302) to
//! Destination for a live sign-in token (15 minutes, as AWS documents), once.
//! Must not: accept credentials it did not issue, or log the query (it carries them).

use std::time::Duration;

use serde_json::json;

use crate::state::State;
use crate::wire::{self, Incoming, Resp, pair};

/// How long a sign-in token may be used (AWS: 15 minutes).
pub(crate) const SIGNIN_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

pub(crate) fn handle(st: &mut State, req: &Incoming<'_>) -> Resp {
    let q = req.query_pairs();
    match pair(&q, "Action") {
        Some("getSigninToken") => get_signin_token(st, &q),
        Some("login") => login(st, &q),
        _ => refuse("Action must be getSigninToken or login"),
    }
}

/// The real endpoint answers bad requests with a 400 page, not a JSON error.
fn refuse(why: &str) -> Resp {
    wire::html(
        400,
        format!(
            "<html><body><h1>Bad Request</h1><p>{}</p></body></html>",
            wire::escape_html(why)
        ),
    )
}

fn get_signin_token(st: &mut State, q: &[(String, String)]) -> Resp {
    let Some(session) = pair(q, "Session") else {
        return refuse("Session is required");
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(session) else {
        return refuse("Session is not JSON");
    };
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("");
    let now = st.clock.now();
    let known = st
        .role_credentials
        .get(field("sessionId"))
        .is_some_and(|c| {
            c.secret == field("sessionKey") && c.session_token == field("sessionToken")
        });
    let live = st
        .role_credentials
        .get(field("sessionId"))
        .is_some_and(|c| c.expires > now);
    if !known {
        return wire::html(
            403,
            "<html><body>The credentials in your login link were invalid.</body></html>".into(),
        );
    }
    if !live {
        return wire::html(
            403,
            "<html><body>The credentials in your login link have expired.</body></html>".into(),
        );
    }
    let token = st.issue_secret("fake-signin-");
    st.signin_tokens
        .insert(token.clone(), now + SIGNIN_TOKEN_TTL);
    wire::json_ok(&json!({ "SigninToken": token }))
}

fn login(st: &mut State, q: &[(String, String)]) -> Resp {
    let (Some(token), Some(destination)) = (pair(q, "SigninToken"), pair(q, "Destination")) else {
        return refuse("SigninToken and Destination are required");
    };
    if pair(q, "Issuer").is_none_or(str::is_empty) {
        return refuse("Issuer is required");
    }
    let ok_dest = url::Url::parse(destination).is_ok_and(|u| u.scheme() == "https");
    if !ok_dest {
        return refuse("Destination must be an https URL");
    }
    let now = st.clock.now();
    match st.signin_tokens.remove(token) {
        Some(expires) if expires > now => wire::redirect(destination),
        _ => refuse("the sign-in token is not valid or has expired"),
    }
}
