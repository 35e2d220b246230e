//! PKCE (RFC 7636) S256: challenge = base64url(SHA-256(verifier)) without padding.

use base64::Engine;
use sha2::{Digest, Sha256};

pub fn challenge_s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc_7636_appendix_b() {
        assert_eq!(
            super::challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
