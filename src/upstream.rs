//! HTTP to the AWS services, shared by their clients (`oidc`, `portal`): the one HTTPS client
//! (rustls with ring, bounded connect and request time, redirects refused), URL joining,
//! capped body reads, and the one parse of an error answer's exception name and message
//! (WIRE.md §2.3).
//! Must not: know a service's operations or error variants (each client maps an `Answer` or
//! an `UpstreamError` to its own typed error), reach upward, or log a body or header value
//! (they carry tokens).

use std::sync::Once;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;
use url::Url;

/// Largest answer read from upstream (real answers are a few KiB).
pub const MAX_RESPONSE: usize = 1024 * 1024;
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes of a non-JSON error body kept as its message.
const MAX_TEXT_MESSAGE: usize = 200;

/// Why an exchange with upstream produced no answer to interpret. Secret-free: the texts are
/// reqwest's (URL and causes) or ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("the request timed out")]
    Timeout,
    /// Connect, TLS, DNS or a connection cut mid-answer, with the causes.
    #[error("{0}")]
    Transport(String),
    #[error("answer larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// AWS APIs never redirect, and following one would resend credentials wherever it
    /// points, so a redirect is an error naming its target (query left out).
    #[error("redirected to {location}; upstream redirects are not followed")]
    Redirected { status: u16, location: String },
    #[error("cannot build the HTTPS client: {0}")]
    Client(String),
}

/// One HTTPS client for every upstream call: rustls with ring, bounded connect and request
/// time, redirects refused (an upstream redirect is an error, never followed with secrets).
pub fn client() -> Result<reqwest::Client, UpstreamError> {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        // Err means another provider is already installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sso-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| UpstreamError::Client(crate::error_text::with_causes(&e)))
}

/// `endpoint` + `path`, keeping any path prefix of the endpoint.
pub fn join(endpoint: &Url, path: &str) -> Url {
    let mut url = endpoint.clone();
    let base = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{base}/{}", path.trim_start_matches('/')));
    url
}

/// A whole answer: status, headers and a body of at most `MAX_RESPONSE` bytes.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Sends `req` and reads its answer: a redirect is refused before its body is read, and the
/// body is read up to `MAX_RESPONSE` bytes (a larger one is `TooLarge`, never buffered).
pub async fn send(req: reqwest::RequestBuilder) -> Result<Answer, UpstreamError> {
    let resp = req.send().await.map_err(transport)?;
    let status = resp.status().as_u16();
    if let Some(location) = redirect_target(status, resp.headers()) {
        return Err(UpstreamError::Redirected { status, location });
    }
    let (parts, body) = http::Response::from(resp).into_parts();
    let body = read_capped(body, MAX_RESPONSE).await?;
    Ok(Answer {
        status,
        headers: parts.headers,
        body,
    })
}

/// Collects `body` up to `limit` bytes. The cap is http-body-util's `Limited`, recognised
/// by its error type, not its wording.
async fn read_capped<B>(body: B, limit: usize) -> Result<Bytes, UpstreamError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(UpstreamError::TooLarge { limit })
        }
        Err(e) => match e.downcast::<reqwest::Error>() {
            // A body cut off by the request timeout or the connection.
            Ok(e) => Err(transport(*e)),
            Err(e) => Err(UpstreamError::Transport(crate::error_text::with_causes(
                e.as_ref(),
            ))),
        },
    }
}

fn transport(e: reqwest::Error) -> UpstreamError {
    if e.is_timeout() {
        UpstreamError::Timeout
    } else {
        // reqwest names the URL and its causes the transport fault; no secrets (they
        // travel in bodies and headers).
        UpstreamError::Transport(crate::error_text::with_causes(&e))
    }
}

/// Where a redirect answer points (query left out, "nowhere" without a `Location`), if
/// `status` is one.
fn redirect_target(status: u16, headers: &HeaderMap) -> Option<String> {
    if !(300..400).contains(&status) {
        return None;
    }
    let to = headers
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map_or("nowhere", |l| l.split('?').next().unwrap_or(l));
    Some(to.to_string())
}

/// What an error answer says about itself: the exception name (`x-amzn-ErrorType` cut at `:`
/// and after the last `#`, else the body's `__type`/`code`/`Code`), an OAuth `error` value
/// (sso-oidc maps it to a name by its own table), and a message (`error_description`,
/// `message` or `Message`; else a short non-JSON, non-HTML body; else empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBody {
    pub name: Option<String>,
    pub oauth_error: Option<String>,
    pub message: String,
}

impl ErrorBody {
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> ErrorBody {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        let field = |keys: &[&str]| {
            let v = json.as_ref()?;
            keys.iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str))
                .map(str::to_string)
        };
        let trim = |s: &str| {
            let s = s.split(':').next().unwrap_or(s);
            s.rsplit('#').next().unwrap_or(s).trim().to_string()
        };
        let name = headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(trim)
            .or_else(|| field(&["__type", "code", "Code"]).map(|n| trim(&n)));
        let message = field(&["error_description", "message", "Message"]).unwrap_or_else(|| {
            if json.is_none() && !body.is_empty() && !body.starts_with(b"<") {
                String::from_utf8_lossy(&body[..body.len().min(MAX_TEXT_MESSAGE)]).into_owned()
            } else {
                String::new()
            }
        });
        // Outside text from here on: escaped and capped once, for every error built from it.
        let clean = |s: String| crate::outside_text::clean(&s).into_owned();
        ErrorBody {
            name: name.map(clean),
            oauth_error: field(&["error"]).map(clean),
            message: clean(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_the_endpoint_prefix() {
        let e = Url::parse("http://127.0.0.1:9/prefix").unwrap();
        assert_eq!(
            join(&e, "token").as_str(),
            "http://127.0.0.1:9/prefix/token"
        );
        let e = Url::parse("https://oidc.us-east-1.amazonaws.com").unwrap();
        assert_eq!(
            join(&e, "client/register").as_str(),
            "https://oidc.us-east-1.amazonaws.com/client/register"
        );
    }

    #[test]
    fn redirects_are_named_without_their_query() {
        let mut h = HeaderMap::new();
        assert_eq!(redirect_target(200, &h), None);
        assert_eq!(redirect_target(400, &h), None);
        h.insert(
            http::header::LOCATION,
            "https://elsewhere.example/x?code=abc".parse().unwrap(),
        );
        assert_eq!(
            redirect_target(307, &h).as_deref(),
            Some("https://elsewhere.example/x")
        );
        assert_eq!(
            redirect_target(302, &HeaderMap::new()).as_deref(),
            Some("nowhere")
        );
        let e = UpstreamError::Redirected {
            status: 307,
            location: "https://elsewhere.example/x".into(),
        };
        assert_eq!(
            e.to_string(),
            "redirected to https://elsewhere.example/x; upstream redirects are not followed"
        );
    }

    #[tokio::test]
    async fn bodies_over_the_cap_are_too_large_by_type() {
        let body = http_body_util::Full::new(Bytes::from(vec![b'x'; 11]));
        assert_eq!(
            read_capped(body, 10).await,
            Err(UpstreamError::TooLarge { limit: 10 })
        );
        let body = http_body_util::Full::new(Bytes::from(vec![b'x'; 10]));
        assert_eq!(read_capped(body, 10).await.unwrap().len(), 10);
    }

    #[tokio::test]
    async fn a_failing_body_is_a_transport_error_with_its_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("connection reset by peer")]
        struct Reset;
        /// A body whose first frame is an error.
        struct Broken;
        impl hyper::body::Body for Broken {
            type Data = Bytes;
            type Error = Reset;
            fn poll_frame(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Reset>>> {
                std::task::Poll::Ready(Some(Err(Reset)))
            }
        }
        assert_eq!(
            read_capped(Broken, 10).await,
            Err(UpstreamError::Transport("connection reset by peer".into()))
        );
    }

    #[test]
    fn error_bodies_name_message_and_oauth_value() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-amzn-ErrorType",
            "com.amazonaws.ssooidc#InvalidGrantException:http://internal.amazon.com/x/"
                .parse()
                .unwrap(),
        );
        let b = ErrorBody::parse(
            &h,
            br#"{"error":"invalid_grant","error_description":"gone","__type":"Other"}"#,
        );
        assert_eq!(
            b,
            ErrorBody {
                name: Some("InvalidGrantException".into()),
                oauth_error: Some("invalid_grant".into()),
                message: "gone".into(),
            }
        );
        let none = HeaderMap::new();
        let b = ErrorBody::parse(
            &none,
            br#"{"code":"a#TooManyRequestsException","Message":"m"}"#,
        );
        assert_eq!(b.name.as_deref(), Some("TooManyRequestsException"));
        assert_eq!(b.message, "m");
        assert_eq!(
            ErrorBody::parse(&none, b"plain words").message,
            "plain words"
        );
        assert_eq!(ErrorBody::parse(&none, b"<html>x</html>").message, "");
        assert_eq!(ErrorBody::parse(&none, &[b'y'; 500]).message.len(), 200);
        assert_eq!(ErrorBody::parse(&none, b""), ErrorBody::default());
    }
}
