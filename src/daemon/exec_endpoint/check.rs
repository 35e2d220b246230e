//! The endpoint's request checks that read only the request: method, `Origin`, `Host` and
//! the presence of a token; each refusal with its status, `Code` and one-line message.
//! Must not: look tokens up (mod.rs compares them in constant time) or read any state.

use http::{HeaderMap, Method, StatusCode, header};

/// Why a request is not answered, as the SDKs read it: `{"Code", "Message"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "Forbidden",
            message: message.into(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "Unauthorized",
            message: message.into(),
        }
    }
}

/// Checks everything but the token's value; returns the presented token. Order: a browser
/// (`Origin`) and a rebound host name are refused before the token is looked at.
pub fn request<'a>(
    method: &Method,
    headers: &'a HeaderMap,
    port: u16,
) -> Result<&'a [u8], Refusal> {
    if headers.contains_key(header::ORIGIN) {
        return Err(Refusal::forbidden(
            "requests from a web page (Origin header) are refused",
        ));
    }
    let expected = format!("127.0.0.1:{port}");
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(h), None) if h.as_bytes() == expected.as_bytes() => {}
        _ => {
            return Err(Refusal::forbidden(format!(
                "the Host header must be exactly {expected}"
            )));
        }
    }
    if method != Method::GET {
        return Err(Refusal::forbidden(format!(
            "only GET is served, not {method}"
        )));
    }
    let mut tokens = headers.get_all(header::AUTHORIZATION).iter();
    match (tokens.next(), tokens.next()) {
        (Some(t), None) if !t.is_empty() => Ok(t.as_bytes()),
        (None, _) => Err(Refusal::unauthorized(
            "no Authorization header; run the tool under `sso-agent exec`, which sets AWS_CONTAINER_AUTHORIZATION_TOKEN",
        )),
        _ => Err(Refusal::unauthorized(
            "exactly one non-empty Authorization header is needed",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn refusals_table() {
        let good = [("host", "127.0.0.1:4000"), ("authorization", "tok")];
        assert_eq!(
            request(&Method::GET, &headers(&good), 4000).unwrap(),
            b"tok"
        );
        for (method, h, status) in [
            (Method::POST, headers(&good), StatusCode::FORBIDDEN),
            (
                Method::GET,
                headers(&[("host", "127.0.0.1:4000")]),
                StatusCode::UNAUTHORIZED,
            ),
            (
                Method::GET,
                headers(&[("host", "127.0.0.1:4000"), ("authorization", "")]),
                StatusCode::UNAUTHORIZED,
            ),
            (
                Method::GET,
                headers(&[
                    ("host", "127.0.0.1:4000"),
                    ("authorization", "a"),
                    ("authorization", "b"),
                ]),
                StatusCode::UNAUTHORIZED,
            ),
            (
                Method::GET,
                headers(&[("host", "localhost:4000"), ("authorization", "tok")]),
                StatusCode::FORBIDDEN,
            ),
            (
                Method::GET,
                headers(&[("host", "127.0.0.1:4001"), ("authorization", "tok")]),
                StatusCode::FORBIDDEN,
            ),
            (
                Method::GET,
                headers(&[("authorization", "tok")]),
                StatusCode::FORBIDDEN,
            ),
            (
                Method::GET,
                headers(&[
                    ("host", "127.0.0.1:4000"),
                    ("authorization", "tok"),
                    ("origin", "https://evil.example"),
                ]),
                StatusCode::FORBIDDEN,
            ),
        ] {
            assert_eq!(
                request(&method, &h, 4000).unwrap_err().status,
                status,
                "{method} {h:?}"
            );
        }
    }
}
