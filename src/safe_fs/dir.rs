//! Private directories: the socket's directory and the AWS CLI token cache. A directory is
//! opened without following a link at its own name (`O_NOFOLLOW` + `fstat` on the opened
//! descriptor, so what is checked is what is used), must belong to this user, and its parent
//! must not let other users swap it (writable by others only with the sticky bit). Missing
//! directories are created 0700; the mode of one that exists is never changed: a directory
//! open to others is refused with what to do, or (for the cache, whose files are 0600) left
//! as the user set it unless others could write into it. Files inside are written through
//! the opened descriptor (`openat` with `O_EXCL|O_NOFOLLOW`, `fsync`, `renameat`).
//! Must not: follow a link at a name it checks, or chmod anything it did not create.

use std::io;
use std::path::{Path, PathBuf};

/// What a directory must be, beyond "ours and not a link".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privacy {
    /// No access at all for group or others (the socket's directory).
    Private,
    /// Others may look, not write (the AWS CLI cache, whose files are 0600 and which the
    /// AWS CLI itself creates 0755).
    NotWritableByOthers,
}

#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("{path} is a symbolic link; sso-agent does not follow links there. {fix}")]
    Symlink { path: PathBuf, fix: String },
    #[error("{path} is not a directory. {fix}")]
    NotADirectory { path: PathBuf, fix: String },
    #[error("{path} is owned by uid {owner}, not by you (uid {me}). {fix}")]
    NotOwned {
        path: PathBuf,
        owner: u32,
        me: u32,
        fix: String,
    },
    #[error(
        "{path} is open to other users (mode {mode:03o}); run `chmod 700 {path}` if it is yours to change. {fix}"
    )]
    TooOpen {
        path: PathBuf,
        mode: u32,
        fix: String,
    },
    #[error(
        "{path}: its parent {parent} can be changed by other users (mode {mode:03o}, no sticky bit), so the directory could be swapped. {fix}"
    )]
    UnsafeParent {
        path: PathBuf,
        parent: PathBuf,
        mode: u32,
        fix: String,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl DirError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> DirError + '_ {
        move |source| DirError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A checked directory, held open: everything done inside goes through its descriptor.
#[derive(Debug)]
pub struct CheckedDir {
    path: PathBuf,
    /// Whether this call created it (then its mode is ours to set).
    pub created: bool,
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
}

impl CheckedDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(unix)]
mod imp {
    use std::io::{self, Write};
    use std::os::fd::{AsFd, OwnedFd};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    use rustix::fs::{AtFlags, Mode, OFlags};

    use super::{CheckedDir, DirError, Privacy};

    const GROUP_OTHER: u32 = 0o077;
    const WRITE_GROUP_OTHER: u32 = 0o022;
    const STICKY: u32 = 0o1000;

    /// The permission bits (`st_mode` is 32 bits on Linux, 16 on macOS).
    #[allow(clippy::useless_conversion)]
    fn mode_bits(st: &rustix::fs::Stat) -> u32 {
        u32::from(st.st_mode) & 0o7777
    }

    fn me() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    fn open_nofollow(path: &Path) -> io::Result<OwnedFd> {
        rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)
    }

    /// Creates `path` (and missing ancestors) 0700, or checks the one that exists, and opens
    /// it. `fix` is the advice appended to every refusal.
    pub fn ensure(path: &Path, privacy: Privacy, fix: &str) -> Result<CheckedDir, DirError> {
        use std::os::unix::fs::DirBuilderExt;
        let fix = fix.to_string();
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // Ancestors that already exist may be links (a symlinked home is normal); only the
        // name we check is never followed.
        if !parent.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(DirError::io(parent))?;
        }
        let created = match std::fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(DirError::io(path)(e)),
        };
        let fd = match open_nofollow(path) {
            Ok(fd) => fd,
            Err(e) => {
                let meta = std::fs::symlink_metadata(path).map_err(DirError::io(path))?;
                return Err(if meta.file_type().is_symlink() {
                    DirError::Symlink {
                        path: path.to_path_buf(),
                        fix,
                    }
                } else if !meta.is_dir() {
                    DirError::NotADirectory {
                        path: path.to_path_buf(),
                        fix,
                    }
                } else {
                    DirError::io(path)(e)
                });
            }
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| DirError::io(path)(e.into()))?;
        if st.st_uid != me() {
            return Err(DirError::NotOwned {
                path: path.to_path_buf(),
                owner: st.st_uid,
                me: me(),
                fix,
            });
        }
        let mode = mode_bits(&st);
        let too_open = match privacy {
            Privacy::Private => mode & GROUP_OTHER != 0,
            Privacy::NotWritableByOthers => mode & WRITE_GROUP_OTHER != 0,
        };
        if too_open {
            return Err(DirError::TooOpen {
                path: path.to_path_buf(),
                mode: mode & 0o777,
                fix,
            });
        }
        let pst = rustix::fs::stat(parent).map_err(|e| DirError::io(parent)(e.into()))?;
        let pmode = mode_bits(&pst);
        let parent_owner_ok = pst.st_uid == me() || pst.st_uid == 0;
        if !parent_owner_ok || (pmode & WRITE_GROUP_OTHER != 0 && pmode & STICKY == 0) {
            return Err(DirError::UnsafeParent {
                path: path.to_path_buf(),
                parent: parent.to_path_buf(),
                mode: pmode & 0o7777,
                fix,
            });
        }
        Ok(CheckedDir {
            path: path.to_path_buf(),
            created,
            fd,
        })
    }

    impl CheckedDir {
        /// Replaces `name` in this directory with `bytes` atomically: a new 0600 file
        /// (`O_EXCL|O_NOFOLLOW`, so nothing planted is opened), fsync, rename over the old.
        pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
            static N: AtomicU64 = AtomicU64::new(0);
            let (tmp, fd) = loop {
                let tmp = format!(
                    ".{name}.{}.{}.tmp",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                );
                match rustix::fs::openat(
                    &self.fd,
                    tmp.as_str(),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                ) {
                    Ok(fd) => break (tmp, fd),
                    Err(rustix::io::Errno::EXIST) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            let written = (|| {
                let mut file = std::fs::File::from(fd);
                file.write_all(bytes)?;
                file.sync_all()?;
                rustix::fs::renameat(&self.fd, tmp.as_str(), &self.fd, name)?;
                Ok::<_, io::Error>(())
            })();
            if written.is_err() {
                let _ = rustix::fs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
            }
            written?;
            // The rename is durable once the directory is synced.
            let _ = rustix::fs::fsync(self.fd.as_fd());
            Ok(self.path.join(name))
        }

        /// Removes `name` from this directory (missing is fine); a link there is removed,
        /// never followed.
        pub fn remove(&self, name: &str) -> io::Result<()> {
            match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
                Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
    }
}

#[cfg(not(unix))]
mod imp {
    //! Windows: per-user directories are protected by the profile's ACLs; links are rare and
    //! need privileges to create. Plain creation and temp-file-and-rename.
    use std::io::{self, Write};
    use std::path::{Path, PathBuf};

    use super::{CheckedDir, DirError, Privacy};

    pub fn ensure(path: &Path, _privacy: Privacy, _fix: &str) -> Result<CheckedDir, DirError> {
        let created = !path.exists();
        std::fs::create_dir_all(path).map_err(DirError::io(path))?;
        Ok(CheckedDir {
            path: path.to_path_buf(),
            created,
        })
    }

    impl CheckedDir {
        pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
            let target = self.path.join(name);
            let mut tmp = tempfile::NamedTempFile::new_in(&self.path)?;
            tmp.write_all(bytes)?;
            tmp.as_file().sync_all()?;
            tmp.persist(&target).map_err(|e| e.error)?;
            Ok(target)
        }

        pub fn remove(&self, name: &str) -> io::Result<()> {
            match std::fs::remove_file(self.path.join(name)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }
    }
}

/// Creates `path` 0700 (and missing ancestors), or checks the directory that is there:
/// not a link, ours, as private as `privacy` asks, in a parent others cannot rearrange.
/// Never changes the mode of a directory it did not create. `fix` says what the user can do
/// and ends every refusal.
pub fn ensure(path: &Path, privacy: Privacy, fix: &str) -> Result<CheckedDir, DirError> {
    imp::ensure(path, privacy, fix)
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn creates_missing_directories_private() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        let dir = ensure(&d, Privacy::Private, "fix").unwrap();
        assert!(dir.created);
        assert_eq!(mode(&d), 0o700);
        assert_eq!(mode(&t.path().join("a")), 0o700);
        // Again: found, not created, accepted.
        assert!(!ensure(&d, Privacy::Private, "fix").unwrap().created);
    }

    #[test]
    fn a_link_at_the_name_is_refused_and_its_target_untouched() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("victim");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = ensure(&link, Privacy::Private, "use another path").unwrap_err();
        assert!(matches!(err, DirError::Symlink { .. }), "{err:?}");
        assert!(err.to_string().ends_with("use another path"), "{err}");
        assert_eq!(mode(&target), 0o755, "the link's target keeps its mode");
    }

    #[test]
    fn an_open_directory_is_refused_not_tightened() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("open");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = ensure(&d, Privacy::Private, "fix").unwrap_err();
        assert!(
            matches!(err, DirError::TooOpen { mode: 0o755, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("chmod 700"), "{err}");
        assert_eq!(mode(&d), 0o755, "left as the user set it");
        // The cache's rule lets others look, as the AWS CLI leaves it, but not write.
        ensure(&d, Privacy::NotWritableByOthers, "fix").unwrap();
        assert_eq!(mode(&d), 0o755);
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(ensure(&d, Privacy::NotWritableByOthers, "fix").is_err());
    }

    #[test]
    fn a_parent_others_can_rearrange_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("shared");
        std::fs::create_dir(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = ensure(&p.join("mine"), Privacy::Private, "fix").unwrap_err();
        assert!(matches!(err, DirError::UnsafeParent { .. }), "{err:?}");
        // With the sticky bit (as /tmp has) others cannot rename our entries.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o1777)).unwrap();
        ensure(&p.join("mine"), Privacy::Private, "fix").unwrap();
    }

    #[test]
    fn files_are_written_through_the_descriptor_and_never_through_a_link() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("cache");
        let dir = ensure(&d, Privacy::NotWritableByOthers, "fix").unwrap();
        let outside = t.path().join("outside");
        std::fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, d.join("x.json")).unwrap();
        let p = dir.write_atomic("x.json", b"{}").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
        assert!(
            !std::fs::symlink_metadata(&p)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read(&outside).unwrap(),
            b"keep",
            "the link's target is untouched"
        );
        assert_eq!(mode(&p), 0o600);
        dir.remove("x.json").unwrap();
        dir.remove("x.json").unwrap();
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            0,
            "no temp files left"
        );
    }
}
