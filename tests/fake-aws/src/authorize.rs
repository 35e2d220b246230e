//! The browser-facing pages: OAuth `GET /authorize` with PKCE and RFC 8252 loopback redirect
//! matching (WIRE.md §4.3), its approve/deny page for the demo, and the device-flow
//! verification page (`/device`) where a human approves or denies a user code.
//! Must not: answer API operations (see `oidc`); errors here are pages or redirects, as a
//! browser sees them, never the JSON error shape.

use url::{Host, Url};

use crate::AuthorizeMode;
use crate::state::{AUTH_CODE_TTL, AuthCode, GRANT_AUTH_CODE, PendingAuthorize, State};
use crate::wire::{Incoming, Resp, escape_html, html, pair, random_alnum, redirect};

/// True for `http://` URLs whose host is a loopback IP literal (RFC 8252 §7.3; `localhost` is
/// not accepted, as §8.3 advises).
pub(crate) fn is_loopback_ip(u: &Url) -> bool {
    u.scheme() == "http"
        && match u.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            _ => false,
        }
}

/// Exact match, or RFC 8252 §7.3 loopback matching: a port-less registered loopback URI
/// matches the same URI with any port.
pub(crate) fn redirect_matches(registered: &str, given: &Url) -> bool {
    let Ok(reg) = Url::parse(registered) else {
        return false;
    };
    if reg == *given {
        return true;
    }
    is_loopback_ip(given)
        && is_loopback_ip(&reg)
        && reg.host() == given.host()
        && reg.port().is_none()
        && reg.path() == given.path()
        && reg.query() == given.query()
        && given.fragment().is_none()
        && given.username().is_empty()
        && given.password().is_none()
}

fn error_page(status: u16, message: &str) -> Resp {
    html(
        status,
        format!(
            "<!doctype html><html><head><title>fake-aws: error</title></head><body>\
             <h1>Request rejected</h1><p>{}</p></body></html>",
            escape_html(message)
        ),
    )
}

/// Redirect to `redirect_uri` with `extra` appended to its query.
fn redirect_with(redirect_uri: &Url, extra: &[(&str, &str)]) -> Resp {
    let mut target = redirect_uri.clone();
    {
        let mut q = target.query_pairs_mut();
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    redirect(target.as_str())
}

const PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge_method",
    "scopes",
    "code_challenge",
];

/// `GET /authorize`
pub(crate) fn authorize(st: &mut State, req: &Incoming<'_>) -> Resp {
    let q = req.query_pairs();
    // RFC 6749 §3.1: parameters must not repeat. Checked before anything is trusted.
    if let Some(dup) = PARAMS
        .iter()
        .find(|p| q.iter().filter(|(k, _)| k == *p).count() > 1)
    {
        return error_page(400, &format!("Parameter {dup} given more than once"));
    }
    let Some(client_id) = pair(&q, "client_id") else {
        return error_page(400, "Missing client_id");
    };
    let now = st.clock.now();
    let Some(client) = st.clients.get(client_id).filter(|c| now < c.secret_expires) else {
        return error_page(400, "Unknown or expired client_id");
    };
    let Some(redirect_raw) = pair(&q, "redirect_uri") else {
        return error_page(400, "Missing redirect_uri");
    };
    let Ok(redirect_uri) = Url::parse(redirect_raw) else {
        return error_page(400, "redirect_uri is not a URL");
    };
    if !client
        .redirect_uris
        .iter()
        .any(|r| redirect_matches(r, &redirect_uri))
    {
        return error_page(400, "redirect_uri is not registered for this client");
    }

    // From here on the redirect URI is trusted, so errors go back to the client (§4.1.2.1).
    let state = pair(&q, "state").filter(|s| !s.is_empty());
    let fail = |error: &str, description: &str| {
        let mut extra = vec![("error", error), ("error_description", description)];
        if let Some(s) = state {
            extra.push(("state", s));
        }
        redirect_with(&redirect_uri, &extra)
    };
    if pair(&q, "response_type") != Some("code") {
        return fail("unsupported_response_type", "response_type must be code");
    }
    if !client.allows_grant(GRANT_AUTH_CODE) {
        return fail(
            "unauthorized_client",
            "client is not registered for authorization_code",
        );
    }
    let Some(state) = state else {
        return fail("invalid_request", "state is required");
    };
    if pair(&q, "code_challenge_method") != Some("S256") {
        return fail("invalid_request", "code_challenge_method must be S256");
    }
    let challenge = pair(&q, "code_challenge").unwrap_or("");
    let b64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if challenge.len() != 43 || !challenge.bytes().all(b64url) {
        return fail(
            "invalid_request",
            "code_challenge must be base64url(SHA-256) without padding (43 chars)",
        );
    }
    if q.iter().any(|(k, _)| k == "scope") {
        return fail(
            "invalid_request",
            "the scope list is passed as scopes (plural)",
        );
    }
    let scopes: Vec<String> = match pair(&q, "scopes") {
        Some(s) => s
            .split(' ')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect(),
        None => client.scopes.clone(),
    };
    if let Some(bad) = scopes.iter().find(|s| !client.scopes.contains(s)) {
        return fail("invalid_scope", &format!("scope {bad} was not registered"));
    }

    let pending = PendingAuthorize {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_raw.to_owned(),
        state: state.to_owned(),
        challenge: challenge.to_owned(),
        scopes,
    };
    match st.cfg.authorize_mode {
        AuthorizeMode::Approve => grant(st, pending, &redirect_uri),
        AuthorizeMode::Deny => refuse(&pending, &redirect_uri),
        AuthorizeMode::Page => {
            let id = random_alnum(20);
            let page = consent_page(&id, &pending);
            st.pending_authorize.insert(id, pending);
            page
        }
    }
}

fn grant(st: &mut State, p: PendingAuthorize, redirect_uri: &Url) -> Resp {
    let code = st.issue_secret("fake-code-");
    let expires = st.clock.now() + AUTH_CODE_TTL;
    let state = p.state.clone();
    st.codes.insert(
        code.clone(),
        AuthCode {
            client_id: p.client_id,
            redirect_uri: p.redirect_uri,
            challenge: p.challenge,
            scopes: p.scopes,
            expires,
            used: false,
        },
    );
    redirect_with(redirect_uri, &[("code", &code), ("state", &state)])
}

fn refuse(p: &PendingAuthorize, redirect_uri: &Url) -> Resp {
    redirect_with(
        redirect_uri,
        &[
            ("error", "access_denied"),
            ("error_description", "The user denied the request"),
            ("state", &p.state),
        ],
    )
}

fn consent_page(id: &str, p: &PendingAuthorize) -> Resp {
    let id = escape_html(id);
    html(
        200,
        format!(
            "<!doctype html><html><head><title>fake-aws: authorize</title></head><body>\
             <h1>Allow access?</h1><p>Client <code>{client}</code> asks for <code>{scopes}</code>.</p>\
             <p><a href=\"/authorize/decision?request={id}&amp;action=approve\">Approve</a> \
             <a href=\"/authorize/decision?request={id}&amp;action=deny\">Deny</a></p>\
             </body></html>",
            client = escape_html(&p.client_id),
            scopes = escape_html(&p.scopes.join(" ")),
        ),
    )
}

/// `GET /authorize/decision?request=…&action=approve|deny` (links on the consent page).
pub(crate) fn authorize_decision(st: &mut State, req: &Incoming<'_>) -> Resp {
    let q = req.query_pairs();
    let action = pair(&q, "action").unwrap_or("");
    if !matches!(action, "approve" | "deny") {
        return error_page(400, "action must be approve or deny");
    }
    let Some(p) = pair(&q, "request").and_then(|id| st.pending_authorize.remove(id)) else {
        return error_page(404, "Unknown or already decided authorization request");
    };
    let Ok(redirect_uri) = Url::parse(&p.redirect_uri) else {
        return error_page(400, "redirect_uri is not a URL");
    };
    if action == "approve" {
        grant(st, p, &redirect_uri)
    } else {
        refuse(&p, &redirect_uri)
    }
}

/// `GET /device[?user_code=…]`: the verification page.
pub(crate) fn device_page(req: &Incoming<'_>) -> Resp {
    let q = req.query_pairs();
    let code_field = match pair(&q, "user_code") {
        Some(code) => format!(
            "<p>Code: <strong>{0}</strong></p><input type=\"hidden\" name=\"user_code\" value=\"{0}\">",
            escape_html(code)
        ),
        None => "<p><label>Code: <input name=\"user_code\" placeholder=\"ABCD-EFGH\"></label></p>"
            .to_owned(),
    };
    html(
        200,
        format!(
            "<!doctype html><html><head><title>fake-aws: device sign-in</title></head><body>\
             <h1>Authorize device</h1><form method=\"post\" action=\"/device\">{code_field}\
             <button name=\"action\" value=\"approve\">Approve</button> \
             <button name=\"action\" value=\"deny\">Deny</button></form></body></html>"
        ),
    )
}

/// `POST /device` (form `user_code`, `action`): the human's decision.
pub(crate) fn device_decision(st: &mut State, req: &Incoming<'_>) -> Resp {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(req.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let code = pair(&form, "user_code").unwrap_or("");
    let (done, verb) = match pair(&form, "action") {
        Some("approve") => (st.approve(code), "approved"),
        Some("deny") => (st.deny(code), "denied"),
        _ => return error_page(400, "action must be approve or deny"),
    };
    if !done {
        return error_page(404, "Unknown, expired or already used code");
    }
    html(
        200,
        format!(
            "<!doctype html><html><head><title>fake-aws</title></head><body>\
             <h1>Request {verb}</h1><p>Code {} was {verb}. You can close this window.</p>\
             </body></html>",
            escape_html(code)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn loopback_redirects_match_any_port() {
        let reg = "http://127.0.0.1/oauth/callback";
        assert!(redirect_matches(
            reg,
            &url("http://127.0.0.1:54321/oauth/callback")
        ));
        assert!(redirect_matches(
            reg,
            &url("http://127.0.0.1/oauth/callback")
        ));
        assert!(!redirect_matches(reg, &url("http://127.0.0.1:54321/other")));
        assert!(!redirect_matches(
            reg,
            &url("http://[::1]:54321/oauth/callback")
        ));
        assert!(!redirect_matches(
            reg,
            &url("https://127.0.0.1:54321/oauth/callback")
        ));
        assert!(!redirect_matches(
            reg,
            &url("http://localhost:54321/oauth/callback")
        ));
        assert!(!redirect_matches(
            reg,
            &url("http://127.0.0.1:1/oauth/callback?x=1")
        ));
    }

    #[test]
    fn registered_ports_and_https_need_exact_matches() {
        assert!(!redirect_matches(
            "http://127.0.0.1:8080/cb",
            &url("http://127.0.0.1:8081/cb")
        ));
        assert!(redirect_matches(
            "https://app.example/cb",
            &url("https://app.example/cb")
        ));
        assert!(!redirect_matches(
            "https://app.example/cb",
            &url("https://app.example:8443/cb")
        ));
    }
}
