//! Upstream endpoints as the AWS SDKs resolve them (WIRE.md §1.2, §6.5, §7): service env var,
//! global env var, the active profile's `services` section, the profile's `endpoint_url`,
//! else the partition's default host. Plain http only to loopback.
//! Must not: do I/O.

use url::Url;

use crate::config::AwsConfig;
use crate::env::Env;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub oidc: Url,
    pub portal: Url,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EndpointError(pub String);

/// Whether `url` is https, or http to a loopback host.
pub fn is_loopback_or_https(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

fn checked(raw: &str, source: &str) -> Result<Url, EndpointError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| EndpointError(format!("{source}: {raw:?} is not a URL ({e})")))?;
    if !is_loopback_or_https(&url) {
        return Err(EndpointError(format!(
            "{source}: {raw} is not https; plain http is allowed only for loopback"
        )));
    }
    Ok(url)
}

/// DNS suffix of the partition a region belongs to (unknown prefixes fall into `aws`).
fn dns_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else if region.starts_with("us-isob-") {
        "sc2s.sgov.gov"
    } else if region.starts_with("us-isof-") {
        "csp.hci.ic.gov"
    } else if region.starts_with("us-iso-") {
        "c2s.ic.gov"
    } else if region.starts_with("eu-isoe-") {
        "cloud.adc-e.uk"
    } else if region.starts_with("eusc-de-") {
        "amazonaws.eu"
    } else {
        "amazonaws.com"
    }
}

pub fn resolve(region: &str, env: &Env, config: &AwsConfig) -> Result<Endpoints, EndpointError> {
    if region.is_empty()
        || !region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(EndpointError(format!("{region:?} is not a region")));
    }
    let suffix = dns_suffix(region);
    let default_oidc = format!("https://oidc.{region}.{suffix}");
    let default_portal = format!("https://portal.sso.{region}.{suffix}");
    let profile_name = env.get("AWS_PROFILE").unwrap_or("default");
    let profile = config.profiles.get(profile_name);
    let ignore = env
        .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || profile.is_some_and(|p| p.ignore_configured_endpoint_urls);
    let one = |service_var: &str, service_key: &str, default: &str| -> Result<Url, EndpointError> {
        if !ignore {
            if let Some(v) = env.get(service_var) {
                return checked(v, &format!("{service_var} (environment)"));
            }
            if let Some(v) = env.get("AWS_ENDPOINT_URL") {
                return checked(v, "AWS_ENDPOINT_URL (environment)");
            }
            if let Some(p) = profile {
                let from_services = p
                    .services
                    .as_deref()
                    .and_then(|s| config.services.get(s))
                    .and_then(|s| s.get(service_key))
                    .and_then(|s| s.get("endpoint_url"));
                if let Some(v) = from_services {
                    return checked(
                        v,
                        &format!(
                            "{}: [services {}] {service_key} endpoint_url",
                            p.location,
                            p.services.as_deref().unwrap_or("")
                        ),
                    );
                }
                if let Some(v) = &p.endpoint_url {
                    return checked(
                        v,
                        &format!("{}: profile {} endpoint_url", p.location, p.name),
                    );
                }
            }
        }
        checked(default, "default endpoint")
    };
    Ok(Endpoints {
        oidc: one("AWS_ENDPOINT_URL_SSO_OIDC", "sso_oidc", &default_oidc)?,
        portal: one("AWS_ENDPOINT_URL_SSO", "sso", &default_portal)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_aws_config;
    use std::path::Path;

    fn cfg() -> AwsConfig {
        parse_aws_config(
            Path::new("/c"),
            "[default]\nendpoint_url = http://127.0.0.1:1\n[profile dev]\nservices = local\n[profile ign]\nendpoint_url = http://127.0.0.1:5\nignore_configured_endpoint_urls = true\n[services local]\nsso_oidc =\n  endpoint_url = http://127.0.0.1:2002/pre\n",
        )
        .unwrap()
    }

    #[test]
    fn defaults_by_partition() {
        let none = AwsConfig::default();
        for (region, oidc, portal) in [
            (
                "eu-west-1",
                "https://oidc.eu-west-1.amazonaws.com/",
                "https://portal.sso.eu-west-1.amazonaws.com/",
            ),
            (
                "cn-north-1",
                "https://oidc.cn-north-1.amazonaws.com.cn/",
                "https://portal.sso.cn-north-1.amazonaws.com.cn/",
            ),
            (
                "us-gov-west-1",
                "https://oidc.us-gov-west-1.amazonaws.com/",
                "https://portal.sso.us-gov-west-1.amazonaws.com/",
            ),
            (
                "us-iso-east-1",
                "https://oidc.us-iso-east-1.c2s.ic.gov/",
                "https://portal.sso.us-iso-east-1.c2s.ic.gov/",
            ),
            (
                "us-isob-east-1",
                "https://oidc.us-isob-east-1.sc2s.sgov.gov/",
                "https://portal.sso.us-isob-east-1.sc2s.sgov.gov/",
            ),
            (
                "eu-isoe-west-1",
                "https://oidc.eu-isoe-west-1.cloud.adc-e.uk/",
                "https://portal.sso.eu-isoe-west-1.cloud.adc-e.uk/",
            ),
            (
                "eusc-de-east-1",
                "https://oidc.eusc-de-east-1.amazonaws.eu/",
                "https://portal.sso.eusc-de-east-1.amazonaws.eu/",
            ),
            (
                "xx-foo-1",
                "https://oidc.xx-foo-1.amazonaws.com/",
                "https://portal.sso.xx-foo-1.amazonaws.com/",
            ),
        ] {
            let e = resolve(region, &Env::default(), &none).unwrap();
            assert_eq!((e.oidc.as_str(), e.portal.as_str()), (oidc, portal));
        }
        assert!(resolve("", &Env::default(), &none).is_err());
    }

    #[test]
    fn precedence() {
        let c = cfg();
        // profile default endpoint_url (level 4)
        let e = resolve("us-east-1", &Env::default(), &c).unwrap();
        assert_eq!(e.oidc.as_str(), "http://127.0.0.1:1/");
        // services section of the active profile (level 3), prefix kept; portal falls to the default
        let env = Env::from_pairs([("AWS_PROFILE", "dev")]);
        let e = resolve("us-east-1", &env, &c).unwrap();
        assert_eq!(e.oidc.as_str(), "http://127.0.0.1:2002/pre");
        assert_eq!(
            e.portal.as_str(),
            "https://portal.sso.us-east-1.amazonaws.com/"
        );
        // global env (level 2) beats services
        let env = env.with("AWS_ENDPOINT_URL", "http://127.0.0.1:3");
        assert_eq!(
            resolve("us-east-1", &env, &c).unwrap().oidc.as_str(),
            "http://127.0.0.1:3/"
        );
        // service env (level 1) beats global
        let env = env.with("AWS_ENDPOINT_URL_SSO_OIDC", "http://localhost:4");
        let e = resolve("us-east-1", &env, &c).unwrap();
        assert_eq!(e.oidc.as_str(), "http://localhost:4/");
        assert_eq!(e.portal.as_str(), "http://127.0.0.1:3/");
        // ignore flag: only the string true
        let e = resolve(
            "us-east-1",
            &env.clone().with("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "1"),
            &c,
        )
        .unwrap();
        assert_eq!(e.oidc.as_str(), "http://localhost:4/");
        let e = resolve(
            "us-east-1",
            &env.with("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE"),
            &c,
        )
        .unwrap();
        assert_eq!(e.oidc.as_str(), "https://oidc.us-east-1.amazonaws.com/");
        let e = resolve("us-east-1", &Env::from_pairs([("AWS_PROFILE", "ign")]), &c).unwrap();
        assert_eq!(e.oidc.as_str(), "https://oidc.us-east-1.amazonaws.com/");
    }

    #[test]
    fn http_only_to_loopback() {
        let env = Env::from_pairs([("AWS_ENDPOINT_URL_SSO_OIDC", "http://example.com")]);
        let e = resolve("us-east-1", &env, &AwsConfig::default())
            .unwrap_err()
            .0;
        assert_eq!(
            e,
            "AWS_ENDPOINT_URL_SSO_OIDC (environment): http://example.com is not https; plain http is allowed only for loopback"
        );
        for ok in [
            "http://127.0.0.2:1",
            "http://[::1]:1",
            "http://localhost:1",
            "https://x.example",
        ] {
            assert!(is_loopback_or_https(&Url::parse(ok).unwrap()), "{ok}");
        }
        assert!(!is_loopback_or_https(
            &Url::parse("ftp://127.0.0.1").unwrap()
        ));
    }
}
