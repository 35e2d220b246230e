//! The opt-in AWS CLI/SDK token cache (`~/.aws/sso/cache/<sha1 of session name>.json`, the
//! file botocore reads, WIRE.md §6.1; for a session of legacy profiles also
//! `<sha1 of the start URL>.json`, the name older SDKs and tools read): only what SDKs need to *use* the token (no refresh
//! token, no client secret, so SDKs never refresh on their own and race the daemon).
//! Written atomically through safe_fs::dir: a new 0600 file in the same directory (never
//! through a link), fsync, rename. A missing directory is created 0700; an existing one must
//! be the user's and not a link, and keeps the mode the user gave it.
//! Must not: be written unless the user opted in.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha1::{Digest, Sha1};
use time::OffsetDateTime;

use crate::safe_fs::dir::{self, CheckedDir, Privacy};
use crate::secret::{Secret, serialize_exposed};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CacheFile<'a> {
    start_url: &'a str,
    region: &'a str,
    #[serde(serialize_with = "serialize_exposed")]
    access_token: &'a Secret,
    expires_at: String,
}

/// `<lowercase hex sha1(key)>.json`; the key is the session name, or for legacy profiles
/// the start URL.
fn file_name(key: &str) -> String {
    let digest = Sha1::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.json")
}

/// `<dir>/<lowercase hex sha1(session name)>.json`.
pub fn path_for(dir: &Path, session: &str) -> PathBuf {
    dir.join(file_name(session))
}

const FIX: &str =
    "The AWS CLI token cache is not written; fix the directory or turn export_aws_cli_cache off";

fn open_dir(dir: &Path) -> std::io::Result<CheckedDir> {
    dir::ensure(dir, Privacy::NotWritableByOthers, FIX).map_err(std::io::Error::other)
}

/// Writes `<sha1(session)>.json` and, when `legacy`, the same body as
/// `<sha1(start_url)>.json` too (each atomic, 0600); returns the first path.
pub fn write(
    dir: &Path,
    session: &str,
    legacy: bool,
    start_url: &str,
    region: &str,
    token: &Secret,
    expires_at: OffsetDateTime,
) -> std::io::Result<PathBuf> {
    let dir = open_dir(dir)?;
    let body = serde_json::to_vec(&CacheFile {
        start_url,
        region,
        access_token: token,
        expires_at: crate::clock::rfc3339(expires_at),
    })
    .map_err(std::io::Error::other)?;
    let path = dir.write_atomic(&file_name(session), &body)?;
    if legacy {
        dir.write_atomic(&file_name(start_url), &body)?;
    }
    Ok(path)
}

/// Removes `<sha1(session)>.json`, and `<sha1(legacy_start_url)>.json` when given.
pub fn remove(dir: &Path, session: &str, legacy_start_url: Option<&str>) -> std::io::Result<()> {
    if std::fs::symlink_metadata(dir).is_err() {
        return Ok(()); // nothing was ever exported
    }
    let dir = open_dir(dir)?;
    dir.remove(&file_name(session))?;
    match legacy_start_url {
        Some(url) => dir.remove(&file_name(url)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn botocore_format_mode_and_name() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("sso/cache");
        let p = write(
            &cache,
            "corp",
            false,
            "https://d-1.awsapps.com/start",
            "us-east-1",
            &Secret::new("at"),
            datetime!(2026-11-23 8:06:25.5 UTC),
        )
        .unwrap();
        assert_eq!(
            p.file_name().unwrap(),
            "ee0bfd2552fbd840c02cc48b6e823320543c450f.json",
            "sha1(\"corp\"), WIRE.md §6.1"
        );
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"startUrl": "https://d-1.awsapps.com/start", "region": "us-east-1", "accessToken": "at", "expiresAt": "2026-11-23T08:06:25Z"})
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
            assert_eq!(
                std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        remove(&cache, "corp", None).unwrap();
        remove(&cache, "corp", None).unwrap();
        assert!(!p.exists());
    }

    /// SPEC "Legacy profiles": the same body also under sha1(start URL), the name the AWS
    /// CLI and older SDKs use for a profile with sso_start_url; logout removes both.
    #[test]
    fn a_legacy_session_is_also_written_under_the_start_url_digest() {
        let dir = tempfile::tempdir().unwrap();
        let url = "https://my-sso-portal.awsapps.com/start";
        let at = Secret::new("at");
        let when = datetime!(2026-11-23 8:06:25 UTC);
        write(dir.path(), "legacy-x", true, url, "us-east-1", &at, when).unwrap();
        // sha1("https://my-sso-portal.awsapps.com/start"), as the AWS CLI names it
        let by_url = "c7aaaf71fcc8777ae2475525ed049d39fe16c484.json";
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().any(|n| n == by_url), "{names:?}");
        let a = std::fs::read(dir.path().join(file_name("legacy-x"))).unwrap();
        let b = std::fs::read(dir.path().join(by_url)).unwrap();
        assert_eq!(a, b, "same body");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(dir.path().join(by_url)).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o600);
        }
        remove(dir.path(), "legacy-x", Some(url)).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// HARDENING T13: a symlinked cache directory is not followed, and a user's own mode on
    /// an existing directory is left alone (the old code chmod'ed it on every write).
    #[cfg(unix)]
    #[test]
    fn a_linked_cache_directory_is_refused_and_a_users_mode_kept() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let elsewhere = t.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let cache = t.path().join("cache");
        std::os::unix::fs::symlink(&elsewhere, &cache).unwrap();
        let at = Secret::new("at");
        let when = datetime!(2026-11-23 8:06:25 UTC);
        let err = write(&cache, "corp", false, "u", "r", &at, when).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

        let own = t.path().join("own");
        std::fs::create_dir(&own).unwrap();
        std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o750)).unwrap();
        write(&own, "corp", false, "u", "r", &at, when).unwrap();
        write(&own, "corp", false, "u", "r", &at, when).unwrap();
        assert_eq!(
            std::fs::metadata(&own).unwrap().permissions().mode() & 0o777,
            0o750
        );
    }
}
