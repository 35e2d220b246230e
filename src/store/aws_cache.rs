//! The opt-in AWS CLI/SDK token cache (`~/.aws/sso/cache/<sha1 of session name>.json`, the
//! file botocore reads, WIRE.md §6.1): only what SDKs need to *use* the token (no refresh
//! token, no client secret, so SDKs never refresh on their own and race the daemon).
//! Written atomically: temp file in the same directory (0600), fsync, rename; directory 0700.
//! Must not: be written unless the user opted in.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha1::{Digest, Sha1};
use time::OffsetDateTime;

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

/// `<dir>/<lowercase hex sha1(session name)>.json`.
pub fn path_for(dir: &Path, session: &str) -> PathBuf {
    let digest = Sha1::digest(session.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{hex}.json"))
}

pub fn write(
    dir: &Path,
    session: &str,
    start_url: &str,
    region: &str,
    token: &Secret,
    expires_at: OffsetDateTime,
) -> std::io::Result<PathBuf> {
    create_private_dir(dir)?;
    let body = serde_json::to_vec(&CacheFile {
        start_url,
        region,
        access_token: token,
        expires_at: crate::clock::rfc3339(expires_at),
    })
    .map_err(std::io::Error::other)?;
    let target = path_for(dir, session);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?; // created 0600
    tmp.write_all(&body)?;
    tmp.as_file().sync_all()?;
    tmp.persist(&target).map_err(|e| e.error)?;
    Ok(target)
}

pub fn remove(dir: &Path, session: &str) -> std::io::Result<()> {
    match std::fs::remove_file(path_for(dir, session)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        } else {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
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
        remove(&cache, "corp").unwrap();
        remove(&cache, "corp").unwrap();
        assert!(!p.exists());
    }
}
