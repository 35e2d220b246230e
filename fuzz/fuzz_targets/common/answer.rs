//! Shared by the upstream-answer targets: turns fuzz bytes into an HTTP answer.

use http::{HeaderMap, HeaderValue};

/// Two bytes of status (big-endian), the `x-amzn-ErrorType` header up to the first newline
/// (left out when not a valid header value), then the body.
pub fn split(data: &[u8]) -> Option<(u16, HeaderMap, &[u8])> {
    let (status, rest) = data.split_first_chunk::<2>()?;
    let (header, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&[][..], rest),
    };
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(header) {
        headers.insert("x-amzn-errortype", v);
    }
    Some((u16::from_be_bytes(*status), headers, body))
}
