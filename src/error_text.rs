//! One-line error text with its causes, for logs and messages.
//! Must not: add text of its own: what the errors say is all it shows.

/// `e`'s message followed by each cause's (`: `-separated), skipping a cause whose text is
/// already in the line. Many libraries' top-level message hides why (reqwest's "error
/// sending request for url (…)", hyper's "error writing a body to connection"): TLS, DNS,
/// a timeout, a client that stopped reading.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct E(&'static str, #[source] Option<Box<E>>);

    #[test]
    fn causes_follow_once_each() {
        let inner = E("connection reset", None);
        let mid = E(
            "client error (Connect): connection reset",
            Some(Box::new(inner)),
        );
        let top = E("error sending request", Some(Box::new(mid)));
        assert_eq!(
            with_causes(&top),
            "error sending request: client error (Connect): connection reset"
        );
        assert_eq!(with_causes(&E("alone", None)), "alone");
    }
}
