//! Table tests of the chain's decisions: no runtime, no clock, no upstream.

use super::*;
use crate::secret::Secret;
use crate::store::records::RECORD_VERSION;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);
const MIN: Duration = Duration::from_secs(60);
const MARGINS: Margins = Margins {
    refresh: Duration::from_secs(600),
    reregistration: Duration::from_secs(7 * 86400),
};

fn chain(lifetime: Duration, rt: bool) -> Chain {
    Chain {
        record: Some(TokenRecord {
            version: RECORD_VERSION,
            session: "corp".into(),
            start_url: "https://d-1.awsapps.com/start".into(),
            region: "us-east-1".into(),
            access_token: Secret::new("at"),
            expires_at: T0 + lifetime,
            issued_at: T0,
            refresh_token: rt.then(|| Secret::new("rt")),
            last_refresh_at: None,
            client: ClientRecord {
                client_id: "cid".into(),
                client_secret: Secret::new("cs"),
                client_id_issued_at: T0,
                client_secret_expires_at: T0 + Duration::from_secs(90 * 86400),
                region: "us-east-1".into(),
                scopes: vec![],
                grant_types: vec![],
                issuer_url: None,
                endpoint: "http://127.0.0.1:1/".into(),
            },
        }),
        ..Chain::default()
    }
}

#[test]
fn what_a_caller_gets() {
    use Outcome::*;
    let ask = |m: Duration| Ask {
        min_validity: m,
        force: false,
    };
    let in_backoff = Chain {
        retry_at: Some(T0 + 5 * MIN),
        ..chain(60 * MIN, true)
    };
    // (case, chain, now, ask, last_word, outcome)
    let cases: Vec<(&str, Chain, OffsetDateTime, Ask, bool, Outcome)> = vec![
        (
            "valid enough",
            chain(60 * MIN, true),
            T0,
            ask(MIN),
            false,
            Serve,
        ),
        (
            "wants more, refreshable",
            chain(60 * MIN, true),
            T0,
            ask(90 * MIN),
            false,
            Refresh,
        ),
        (
            "wants more, no refresh token",
            chain(60 * MIN, false),
            T0,
            ask(90 * MIN),
            false,
            Serve,
        ),
        (
            "wants more, in back-off",
            in_backoff,
            T0,
            ask(90 * MIN),
            false,
            Serve,
        ),
        (
            "expired, refreshable",
            chain(60 * MIN, true),
            T0 + 61 * MIN,
            ask(MIN),
            false,
            Refresh,
        ),
        (
            "expired, refresh ended",
            chain(60 * MIN, true),
            T0 + 61 * MIN,
            ask(MIN),
            true,
            Refuse,
        ),
        (
            "expired, no refresh token",
            chain(60 * MIN, false),
            T0 + 61 * MIN,
            ask(MIN),
            false,
            Refuse,
        ),
        (
            "nothing held",
            Chain::default(),
            T0,
            ask(MIN),
            false,
            Refuse,
        ),
        (
            "within the skew is expired",
            chain(60 * MIN, false),
            T0 + 60 * MIN - Duration::from_secs(4),
            ask(Duration::ZERO),
            false,
            Refuse,
        ),
        (
            "forced while valid",
            chain(60 * MIN, true),
            T0,
            Ask {
                min_validity: Duration::ZERO,
                force: true,
            },
            false,
            Refresh,
        ),
        (
            "forced, after its refresh",
            chain(60 * MIN, true),
            T0,
            Ask {
                min_validity: Duration::ZERO,
                force: true,
            },
            true,
            Serve,
        ),
        (
            "huge validity never overflows",
            chain(60 * MIN, false),
            T0,
            ask(Duration::MAX),
            false,
            Serve,
        ),
    ];
    for (case, c, now, a, last_word, want) in cases {
        assert_eq!(decide(&c, now, a, last_word).outcome, want, "{case}");
    }
}

#[test]
fn why_there_is_no_token() {
    let c = chain(60 * MIN, true);
    let late = T0 + 61 * MIN;
    assert_eq!(refusal(&c, late, true), Refusal::RefreshFailed);
    assert_eq!(refusal(&c, late, false), Refusal::LoginNeeded);
    assert_eq!(
        refusal(&chain(60 * MIN, false), late, true),
        Refusal::LoginNeeded
    );
}

#[test]
fn when_to_wake() {
    let c = chain(60 * MIN, true);
    // 60-minute token, 10-minute margin: refresh 10 minutes (minus jitter 0) before expiry
    assert_eq!(next_wake(&c, T0, MARGINS, false, None), Some(T0 + 50 * MIN));
    // while refreshing only the re-registration wakes
    assert_eq!(next_wake(&c, T0, MARGINS, true, None), None);
    assert_eq!(
        next_wake(&c, T0, MARGINS, true, Some(T0 + MIN)),
        Some(T0 + MIN)
    );
    // a live margin moves it
    let wide = Margins {
        refresh: 30 * MIN,
        ..MARGINS
    };
    assert_eq!(next_wake(&c, T0, wide, false, None), Some(T0 + 30 * MIN));
    // not refreshable: wake at expiry, to report the lost login
    assert_eq!(
        next_wake(&chain(60 * MIN, false), T0, MARGINS, false, None),
        Some(T0 + 60 * MIN)
    );
    // exported to the SDK cache: kept out of the SDKs' refusal window (policy.rs)
    let short = Chain {
        exported: true,
        ..chain(8 * MIN, true)
    };
    let secs = Duration::from_secs(150);
    assert_eq!(next_wake(&short, T0, MARGINS, false, None), Some(T0 + secs));
    // back-off: the retry
    let b = Chain {
        retry_at: Some(T0 + 7 * MIN),
        ..chain(60 * MIN, true)
    };
    assert_eq!(next_wake(&b, T0, MARGINS, false, None), Some(T0 + 7 * MIN));
}

#[test]
fn what_a_wake_does() {
    let c = chain(60 * MIN, true);
    assert!(!on_wake(&c, T0 + 49 * MIN, MARGINS, None).refresh_due);
    assert!(on_wake(&c, T0 + 50 * MIN, MARGINS, None).refresh_due);
    let lost = on_wake(&chain(60 * MIN, false), T0 + 60 * MIN, MARGINS, None);
    assert!(lost.login_lost && !lost.refresh_due);
    let reported = Chain {
        expiry_reported: true,
        ..chain(60 * MIN, false)
    };
    assert!(!on_wake(&reported, T0 + 60 * MIN, MARGINS, None).login_lost);
    assert!(on_wake(&c, T0, MARGINS, Some(T0)).reregister_due);
}

#[test]
fn what_a_refresh_result_does() {
    let c = chain(60 * MIN, true);
    let now = T0 + 50 * MIN;
    let ok = TokenResponse {
        access_token: Secret::new("at-1"),
        token_type: None,
        expires_in: 3600,
        refresh_token: None,
        id_token: None,
    };
    match landed(&c, now, 0, Ok(ok.clone()), || 0.0) {
        Landed::Refreshed { record, rotated } => {
            assert!(!rotated);
            assert_eq!(record.expires_at, now + 60 * MIN);
            assert_eq!(
                record.refresh_token.unwrap().expose(),
                "rt",
                "kept when not rotated"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(landed(&c, now, 1, Ok(ok), || 0.0), Landed::Stale));
    let grant = OidcError::InvalidGrant {
        message: "x".into(),
    };
    match landed(&c, now, 0, Err(grant), || 0.0) {
        Landed::Ended { record, .. } => assert!(record.refresh_token.is_none()),
        other => panic!("{other:?}"),
    }
    let boom = OidcError::InternalServer {
        message: "x".into(),
    };
    let failing = Chain {
        failures: 2,
        ..chain(60 * MIN, true)
    };
    match landed(&failing, now, 0, Err(boom), || 0.0) {
        Landed::BackOff {
            failures, retry_at, ..
        } => {
            assert_eq!(failures, 3);
            assert_eq!(
                retry_at,
                now + Duration::from_secs(10),
                "half of 20 s with no jitter"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn state_words() {
    let c = chain(60 * MIN, true);
    assert_eq!(state(&c, T0, true, true), SessionState::LoginPending);
    assert_eq!(state(&c, T0, false, true), SessionState::Refreshing);
    assert_eq!(state(&c, T0, false, false), SessionState::Valid);
    assert_eq!(
        state(&chain(60 * MIN, false), T0, false, false),
        SessionState::Expiring
    );
    assert_eq!(
        state(&Chain::default(), T0, false, false),
        SessionState::LoginRequired
    );
}
