//! Replaces the AWS config file with a new profiles block (profiles_block.rs computes it):
//! atomically (temp file in the same directory, fsync, rename, directory fsync), keeping mode
//! and owner, writing a symlink through to its target, and re-reading just before the rename
//! so another program's edit is merged again, never lost. Also reads the blocks for `status`.
//! Must not: change the text (profiles_block does), or follow anything but a regular file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::profiles_block::{BlockError, GeneratedProfile, Summary, block_assignments, plan};

/// Same limit as the config reader: a larger file is refused, not read.
const MAX_FILE: u64 = 16 * 1024 * 1024;
/// Attempts when another process changes the file between our read and our replace.
const ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not a regular file; profiles are written only into a regular file")]
    NotRegular(PathBuf),
    #[error("{0}: larger than 16 MiB; refusing to rewrite it")]
    TooLarge(PathBuf),
    #[error("{0}: not UTF-8 text; refusing to rewrite it")]
    NotUtf8(PathBuf),
    #[error(
        "{0}: kept changing while the profiles were being written (another program is editing it); try again"
    )]
    KeptChanging(PathBuf),
}

/// `block_assignments` of the file at `path`: only a regular file of at most 16 MiB is read.
pub fn read_block_assignments(
    path: &Path,
) -> Result<BTreeMap<String, BTreeSet<(String, String)>>, WriteError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if !meta.is_file() {
        return Err(WriteError::NotRegular(path.to_path_buf()));
    }
    if meta.len() > MAX_FILE {
        return Err(WriteError::TooLarge(path.to_path_buf()));
    }
    let bytes = std::fs::read(path).map_err(io(path))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| WriteError::NotUtf8(path.to_path_buf()))?;
    Ok(block_assignments(text))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes the session's block into the AWS config file at `path` (see `plan`). A symlink is
/// written through to its target. Rewrites nothing when nothing changes.
pub fn write_profiles(
    path: &Path,
    session: &str,
    profiles: &[GeneratedProfile],
    prune: bool,
) -> Result<Summary, WriteError> {
    write_profiles_between(path, session, profiles, prune, &mut |_| {})
}

/// `write_profiles` with a hook run after each read and before the replace (tests use it to
/// edit the file from another process at the worst moment).
#[doc(hidden)]
pub fn write_profiles_between(
    path: &Path,
    session: &str,
    profiles: &[GeneratedProfile],
    prune: bool,
    between: &mut dyn FnMut(u32),
) -> Result<Summary, WriteError> {
    let shown = path.display().to_string();
    for attempt in 0..ATTEMPTS {
        // The real file behind any symlinks: it is replaced, the links stay.
        let target = std::fs::canonicalize(path).map_err(io(path))?;
        let meta = std::fs::metadata(&target).map_err(io(&target))?;
        if !meta.is_file() {
            return Err(WriteError::NotRegular(target));
        }
        if meta.len() > MAX_FILE {
            return Err(WriteError::TooLarge(target));
        }
        let before = std::fs::read(&target).map_err(io(&target))?;
        let text = std::str::from_utf8(&before).map_err(|_| WriteError::NotUtf8(target.clone()))?;
        let plan = plan(&shown, text, session, profiles, prune)?;
        if !plan.summary.changed {
            return Ok(plan.summary);
        }
        let dir = target.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".sso-agent-profiles-")
            .tempfile_in(dir)
            .map_err(io(dir))?;
        {
            use std::io::Write;
            tmp.write_all(plan.text.as_bytes())
                .map_err(io(tmp.path()))?;
        }
        keep_mode_and_owner(tmp.as_file(), &meta).map_err(io(&target))?;
        tmp.as_file().sync_all().map_err(io(tmp.path()))?;
        between(attempt);
        // Replace only what we read: another program's edit since then is merged on the next
        // attempt instead of being overwritten.
        if std::fs::read(&target).map_err(io(&target))? != before {
            tracing::debug!(attempt, "the config file changed meanwhile; merging again");
            continue;
        }
        tmp.persist(&target).map_err(|e| WriteError::Io {
            path: target.clone(),
            source: e.error,
        })?;
        sync_dir(dir);
        return Ok(plan.summary);
    }
    Err(WriteError::KeptChanging(path.to_path_buf()))
}

#[cfg(unix)]
fn keep_mode_and_owner(file: &std::fs::File, meta: &std::fs::Metadata) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    file.set_permissions(meta.permissions())?;
    let mine = file.metadata()?;
    if (mine.uid(), mine.gid()) != (meta.uid(), meta.gid()) {
        std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn keep_mode_and_owner(file: &std::fs::File, meta: &std::fs::Metadata) -> std::io::Result<()> {
    file.set_permissions(meta.permissions())
}

/// Makes the rename durable (best effort: not every platform can open a directory).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
#[path = "profiles_file_tests.rs"]
mod tests;
