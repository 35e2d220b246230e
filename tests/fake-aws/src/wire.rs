//! Wire shapes shared by every route: the OIDC and portal error formats (WIRE.md §2, §7),
//! JSON/HTML/redirect response builders, random identifiers, and the strict reader of
//! restJson1 request bodies (required members, member types, unknown members).
//! Must not: hold state or decide an operation's outcome.

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::Full;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Map, Value};

/// Every answer the fake gives.
pub(crate) type Resp = Response<Full<Bytes>>;

/// Namespace suffix of OIDC error names in `x-amzn-ErrorType` (WIRE.md §2.1).
pub(crate) const OIDC_NS: &str = "http://internal.amazon.com/coral/com.amazonaws.sso.oidc/";
/// Namespace suffix of portal error names (any namespace is accepted by clients).
pub(crate) const PORTAL_NS: &str =
    "http://internal.amazon.com/coral/com.amazonaws.switchboard.portal/";

/// One received request, borrowed by the handlers.
pub(crate) struct Incoming<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl Incoming<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Decoded query pairs, in order (`+` and `%XX` decoded).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// First value of `name` in decoded query or form pairs.
pub(crate) fn pair<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `len` random ASCII letters and digits.
pub(crate) fn random_alnum(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A UUID-shaped random id for `x-amzn-RequestId`.
pub(crate) fn request_id() -> String {
    let b: [u8; 16] = rand::random();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn set_header(resp: &mut Resp, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

fn response(status: StatusCode, content_type: Option<&'static str>, body: Bytes) -> Resp {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    if let Some(ct) = content_type {
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    set_header(&mut resp, "x-amzn-requestid", &request_id());
    resp
}

/// 200 with a JSON body (explicit `null` members kept as given).
pub(crate) fn json_ok(value: &Value) -> Resp {
    response(
        StatusCode::OK,
        Some("application/json"),
        Bytes::from(value.to_string()),
    )
}

/// Any status with a JSON body and no error header (control API).
pub(crate) fn json_status(status: u16, value: &Value) -> Resp {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response(
        status,
        Some("application/json"),
        Bytes::from(value.to_string()),
    )
}

/// 200 with an empty body and no Content-Type (portal Logout).
pub(crate) fn empty_ok() -> Resp {
    response(StatusCode::OK, None, Bytes::new())
}

pub(crate) fn html(status: u16, body: String) -> Resp {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response(status, Some("text/html; charset=utf-8"), Bytes::from(body))
}

/// `302 Found` to `location`.
pub(crate) fn redirect(location: &str) -> Resp {
    let mut resp = response(StatusCode::FOUND, None, Bytes::new());
    set_header(&mut resp, "location", location);
    resp
}

/// A redirect with any 3xx `status` to `location` (Fault::Redirect); no body.
pub(crate) fn redirect_with(status: u16, location: &str) -> Resp {
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(StatusCode::is_redirection)
        .unwrap_or(StatusCode::TEMPORARY_REDIRECT);
    let mut resp = response(status, None, Bytes::new());
    set_header(&mut resp, "location", location);
    resp
}

/// The OIDC error shape (WIRE.md §2.1): name in `x-amzn-ErrorType` with the namespace suffix,
/// OAuth `error` / `error_description` in the body, nothing else.
pub(crate) fn oidc_error(status: u16, name: &str, code: &str, description: &str) -> Resp {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::json!({ "error": code, "error_description": description });
    let mut resp = response(
        status,
        Some("application/json"),
        Bytes::from(body.to_string()),
    );
    set_header(&mut resp, "x-amzn-errortype", &format!("{name}:{OIDC_NS}"));
    resp
}

/// The portal error shape (WIRE.md §7): name in `x-amzn-ErrorType`, body `{"message": …}`.
pub(crate) fn portal_error(status: u16, name: &str, message: &str) -> Resp {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::json!({ "message": message });
    let mut resp = response(
        status,
        Some("application/json"),
        Bytes::from(body.to_string()),
    );
    set_header(
        &mut resp,
        "x-amzn-errortype",
        &format!("{name}:{PORTAL_NS}"),
    );
    resp
}

/// 200 whose body is not JSON although it says so (Fault::Garbage).
pub(crate) fn garbage() -> Resp {
    response(
        StatusCode::OK,
        Some("application/json"),
        Bytes::from_static(b"<<this is not JSON {"),
    )
}

/// A load-balancer style HTML error without any AWS error header (Fault::Html).
pub(crate) fn html_error(status: u16) -> Resp {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let reason = code.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1></body></html>"
    );
    let mut resp = html(code.as_u16(), body);
    resp.headers_mut().remove("x-amzn-requestid");
    resp
}

/// Minimal HTML escaping for values echoed into pages.
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The modeled OIDC exceptions (sso-oidc.service-2.json; WIRE.md §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OidcErrorKind {
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    AccessDenied,
    InvalidGrant,
    InvalidClient,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidRequest,
    InvalidClientMetadata,
    InvalidRedirectUri,
}

impl OidcErrorKind {
    fn wire(self) -> (u16, &'static str, &'static str) {
        use OidcErrorKind::*;
        match self {
            AuthorizationPending => (
                400,
                "AuthorizationPendingException",
                "authorization_pending",
            ),
            SlowDown => (400, "SlowDownException", "slow_down"),
            ExpiredToken => (400, "ExpiredTokenException", "expired_token"),
            AccessDenied => (400, "AccessDeniedException", "access_denied"),
            InvalidGrant => (400, "InvalidGrantException", "invalid_grant"),
            InvalidClient => (401, "InvalidClientException", "invalid_client"),
            UnauthorizedClient => (400, "UnauthorizedClientException", "unauthorized_client"),
            UnsupportedGrantType => (
                400,
                "UnsupportedGrantTypeException",
                "unsupported_grant_type",
            ),
            InvalidScope => (400, "InvalidScopeException", "invalid_scope"),
            InvalidRequest => (400, "InvalidRequestException", "invalid_request"),
            InvalidClientMetadata => (
                400,
                "InvalidClientMetadataException",
                "invalid_client_metadata",
            ),
            InvalidRedirectUri => (400, "InvalidRedirectUriException", "invalid_redirect_uri"),
        }
    }
}

/// A modeled OIDC error with its description; becomes the wire answer via `response`.
#[derive(Clone, Debug)]
pub(crate) struct OidcError {
    pub kind: OidcErrorKind,
    pub description: String,
}

impl OidcError {
    pub fn new(kind: OidcErrorKind, description: impl Into<String>) -> OidcError {
        OidcError {
            kind,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> OidcError {
        OidcError::new(OidcErrorKind::InvalidRequest, description)
    }

    pub fn response(&self) -> Resp {
        let (status, name, code) = self.kind.wire();
        oidc_error(status, name, code, &self.description)
    }
}

/// A restJson1 request body, read strictly: it must be `application/json`, a JSON object,
/// with only the operation's members, each of its modeled type. `null` counts as absent.
pub(crate) struct Members {
    map: Map<String, Value>,
}

impl Members {
    pub fn parse(req: &Incoming<'_>, allowed: &[&str]) -> Result<Members, OidcError> {
        let content_type = req.header("content-type").unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(OidcError::invalid_request(format!(
                "Unsupported Content-Type {content_type:?}; expected application/json"
            )));
        }
        let value: Value = serde_json::from_slice(req.body)
            .map_err(|e| OidcError::invalid_request(format!("Malformed JSON body: {e}")))?;
        let Value::Object(map) = value else {
            return Err(OidcError::invalid_request(
                "Request body must be a JSON object",
            ));
        };
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(OidcError::invalid_request(format!(
                "Unknown member {unknown:?}"
            )));
        }
        Ok(Members { map })
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn optional_str(&self, name: &str) -> Result<Option<String>, OidcError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(OidcError::invalid_request(format!(
                "{name} must be a string"
            ))),
        }
    }

    /// A required string member; empty counts as missing.
    pub fn required_str(&self, name: &str) -> Result<String, OidcError> {
        match self.optional_str(name)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(OidcError::invalid_request(format!(
                "Missing required member {name}"
            ))),
        }
    }

    pub fn optional_list(&self, name: &str) -> Result<Option<Vec<String>>, OidcError> {
        let bad = || OidcError::invalid_request(format!("{name} must be a list of strings"));
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(bad()),
        }
    }
}
