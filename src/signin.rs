//! The AWS console sign-in federation (SPEC "console"): role credentials → `getSigninToken`
//! at the partition's federation endpoint (or `AWS_ENDPOINT_URL_SIGNIN`, plain http only on
//! loopback) → the `Action=login` URL that lands on the console page asked for. A leaf like
//! oidc/client.rs: https only, no redirects followed, capped body, timeouts.
//! Must not: log or put in an error the credentials, the sign-in token or the URL (each a
//! credential; the URL is returned as a `Secret`).

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::env::Env;
use crate::secret::Secret;

/// Largest answer read (a real one is about 1 KiB of token).
pub const MAX_RESPONSE: usize = 64 * 1024;
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Who the console names as the sign-in's issuer.
pub const ISSUER: &str = "sso-agent";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigninError {
    #[error("{0}")]
    Endpoint(String),
    #[error("{0}")]
    Destination(String),
    #[error(
        "the sign-in endpoint refused the role credentials (HTTP {status}): they expired or were revoked, or AWS_ENDPOINT_URL_SIGNIN points at another partition"
    )]
    Refused { status: u16 },
    #[error("the sign-in endpoint timed out; try again")]
    Timeout,
    #[error("cannot reach the sign-in endpoint {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error("the sign-in endpoint answered something unexpected: {0}")]
    Malformed(String),
}

/// The partition a region belongs to, by its prefix (as the SDKs' partition table does for
/// these three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    Aws,
    AwsCn,
    AwsUsGov,
}

impl Partition {
    pub fn of(region: Option<&str>) -> Partition {
        match region {
            Some(r) if r.starts_with("cn-") => Partition::AwsCn,
            Some(r) if r.starts_with("us-gov-") => Partition::AwsUsGov,
            _ => Partition::Aws,
        }
    }

    fn signin_host(self) -> &'static str {
        match self {
            Partition::Aws => "signin.aws.amazon.com",
            Partition::AwsCn => "signin.amazonaws.cn",
            Partition::AwsUsGov => "signin.amazonaws-us-gov.com",
        }
    }

    fn console_host(self) -> &'static str {
        match self {
            Partition::Aws => "console.aws.amazon.com",
            Partition::AwsCn => "console.amazonaws.cn",
            Partition::AwsUsGov => "console.amazonaws-us-gov.com",
        }
    }
}

/// `…/federation` of the partition, or of `AWS_ENDPOINT_URL_SIGNIN` (its path kept, then
/// `/federation` unless it already ends so).
pub fn federation_endpoint(region: Option<&str>, env: &Env) -> Result<Url, SigninError> {
    let Some(raw) = env.get("AWS_ENDPOINT_URL_SIGNIN").filter(|v| !v.is_empty()) else {
        let host = Partition::of(region).signin_host();
        return Url::parse(&format!("https://{host}/federation"))
            .map_err(|e| SigninError::Endpoint(e.to_string()));
    };
    let mut url = Url::parse(raw.trim()).map_err(|e| {
        SigninError::Endpoint(format!(
            "AWS_ENDPOINT_URL_SIGNIN (environment): {raw:?} is not a URL ({e})"
        ))
    })?;
    if !crate::endpoint::is_loopback_or_https(&url) {
        return Err(SigninError::Endpoint(format!(
            "AWS_ENDPOINT_URL_SIGNIN (environment): {raw} is not https; plain http is allowed only for loopback"
        )));
    }
    let path = url.path().trim_end_matches('/').to_string();
    if !path.ends_with("/federation") {
        url.set_path(&format!("{path}/federation"));
    }
    url.set_query(None);
    Ok(url)
}

/// Where the console lands: `--destination` (https only), or `--service NAME`'s home page in
/// the profile's region, or the console home.
pub fn destination(
    region: Option<&str>,
    service: Option<&str>,
    explicit: Option<&str>,
) -> Result<Url, SigninError> {
    if let Some(d) = explicit {
        let url = Url::parse(d).map_err(|e| {
            SigninError::Destination(format!(
                "--destination {d:?} is not a URL ({e}); give e.g. https://console.aws.amazon.com/ec2/home"
            ))
        })?;
        if url.scheme() != "https" {
            return Err(SigninError::Destination(format!(
                "--destination {d:?} must be an https:// URL"
            )));
        }
        return Ok(url);
    }
    let service = match service {
        Some(s)
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') =>
        {
            s
        }
        Some(s) => {
            return Err(SigninError::Destination(format!(
                "--service {s:?} is not a console service name; give e.g. s3, ec2 or cloudwatch"
            )));
        }
        None => "console",
    };
    let host = Partition::of(region).console_host();
    let mut url = Url::parse(&format!("https://{host}/{service}/home"))
        .map_err(|e| SigninError::Destination(e.to_string()))?;
    if let Some(r) = region {
        url.query_pairs_mut().append_pair("region", r);
    }
    Ok(url)
}

/// The role credentials to exchange.
pub struct RoleCredentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a Secret,
    pub session_token: &'a Secret,
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(rename = "SigninToken")]
    signin_token: Secret,
}

/// One client for the exchange: rustls with ring, bounded time, redirects refused.
pub fn http_client() -> Result<reqwest::Client, SigninError> {
    crate::upstream::client().map_err(|e| SigninError::Connect {
        endpoint: "(client)".into(),
        message: e.to_string(),
    })
}

/// `GET {endpoint}?Action=getSigninToken&Session={…}` → the sign-in token.
pub async fn signin_token(
    http: &reqwest::Client,
    endpoint: &Url,
    creds: &RoleCredentials<'_>,
) -> Result<Secret, SigninError> {
    let session = Secret::new(
        serde_json::json!({
            "sessionId": creds.access_key_id,
            "sessionKey": creds.secret_access_key.expose(),
            "sessionToken": creds.session_token.expose(),
        })
        .to_string(),
    );
    let mut url = endpoint.clone();
    url.query_pairs_mut()
        .append_pair("Action", "getSigninToken")
        .append_pair("Session", session.expose());
    tracing::debug!(endpoint = %endpoint, "calling the sign-in federation");
    let connect = |e: reqwest::Error| {
        if e.is_timeout() {
            SigninError::Timeout
        } else {
            // without_url: the query holds the credentials.
            SigninError::Connect {
                endpoint: endpoint.to_string(),
                message: crate::error_text::with_causes(&e.without_url()),
            }
        }
    };
    let mut resp = http
        .get(url)
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(connect)?;
    let status = resp.status().as_u16();
    if (300..400).contains(&status) {
        return Err(SigninError::Malformed(format!(
            "a redirect (HTTP {status}), which is not followed"
        )));
    }
    if !(200..300).contains(&status) {
        tracing::debug!(status, "the sign-in federation refused");
        return Err(SigninError::Refused { status });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(connect)? {
        if body.len() + chunk.len() > MAX_RESPONSE {
            return Err(SigninError::Malformed(format!(
                "an answer larger than {MAX_RESPONSE} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let answer: TokenAnswer = serde_json::from_slice(&body)
        .map_err(|_| SigninError::Malformed("no SigninToken in the JSON answer".into()))?;
    if answer.signin_token.is_empty() {
        return Err(SigninError::Malformed("an empty SigninToken".into()));
    }
    Ok(answer.signin_token)
}

/// `{endpoint}?Action=login&Issuer=sso-agent&Destination=…&SigninToken=…`, a credential.
pub fn login_url(endpoint: &Url, destination: &Url, token: &Secret) -> Secret {
    let mut url = endpoint.clone();
    url.query_pairs_mut()
        .append_pair("Action", "login")
        .append_pair("Issuer", ISSUER)
        .append_pair("Destination", destination.as_str())
        .append_pair("SigninToken", token.expose());
    Secret::new(String::from(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partition_picks_the_federation_endpoint_and_the_console() {
        let env = Env::default();
        for (region, signin, console) in [
            (
                Some("eu-west-1"),
                "https://signin.aws.amazon.com/federation",
                "https://console.aws.amazon.com/console/home?region=eu-west-1",
            ),
            (
                Some("cn-north-1"),
                "https://signin.amazonaws.cn/federation",
                "https://console.amazonaws.cn/console/home?region=cn-north-1",
            ),
            (
                Some("us-gov-west-1"),
                "https://signin.amazonaws-us-gov.com/federation",
                "https://console.amazonaws-us-gov.com/console/home?region=us-gov-west-1",
            ),
            (
                None,
                "https://signin.aws.amazon.com/federation",
                "https://console.aws.amazon.com/console/home",
            ),
        ] {
            assert_eq!(federation_endpoint(region, &env).unwrap().as_str(), signin);
            assert_eq!(destination(region, None, None).unwrap().as_str(), console);
        }
        assert_eq!(
            destination(Some("cn-north-1"), Some("s3"), None)
                .unwrap()
                .as_str(),
            "https://console.amazonaws.cn/s3/home?region=cn-north-1"
        );
    }

    #[test]
    fn the_override_is_checked_and_destinations_validated() {
        let env = Env::from_pairs([("AWS_ENDPOINT_URL_SIGNIN", "http://127.0.0.1:9")]);
        assert_eq!(
            federation_endpoint(Some("cn-north-1"), &env)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/federation"
        );
        let env = Env::from_pairs([("AWS_ENDPOINT_URL_SIGNIN", "https://x.example/federation")]);
        assert_eq!(
            federation_endpoint(None, &env).unwrap().as_str(),
            "https://x.example/federation"
        );
        let env = Env::from_pairs([("AWS_ENDPOINT_URL_SIGNIN", "http://signin.example")]);
        let e = federation_endpoint(None, &env).unwrap_err().to_string();
        assert!(e.contains("plain http is allowed only for loopback"), "{e}");
        assert!(destination(None, None, Some("http://console.aws.amazon.com/")).is_err());
        assert!(destination(None, Some("s3/../x"), None).is_err());
        assert_eq!(
            destination(
                Some("eu-west-1"),
                None,
                Some("https://console.aws.amazon.com/ec2/")
            )
            .unwrap()
            .as_str(),
            "https://console.aws.amazon.com/ec2/"
        );
    }

    #[test]
    fn the_login_url_is_a_secret_with_every_part() {
        let e = Url::parse("https://signin.aws.amazon.com/federation").unwrap();
        let d = Url::parse("https://console.aws.amazon.com/s3/home?region=eu-west-1").unwrap();
        let u = login_url(&e, &d, &Secret::new("tok"));
        assert_eq!(format!("{u:?}"), "[redacted]");
        assert_eq!(
            u.expose(),
            "https://signin.aws.amazon.com/federation?Action=login&Issuer=sso-agent&Destination=https%3A%2F%2Fconsole.aws.amazon.com%2Fs3%2Fhome%3Fregion%3Deu-west-1&SigninToken=tok"
        );
    }
}
