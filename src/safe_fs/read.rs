//! Reading a file the user (or anyone) may have put anything at: the AWS config and the
//! agent TOML, at start and on every reload. Only a regular file is read (a symlink is
//! followed, as dotfile managers use them, but must end at a regular file); a FIFO, device,
//! socket or directory is reported without being opened for reading; at most [`MAX_BYTES`].
//! The file is opened non-blocking and checked again on the open descriptor, so a FIFO
//! swapped in between the check and the open cannot stall the reader either.
//! Must not: parse or interpret the text, or run on an async worker (it blocks: callers in
//! the daemon go through `tokio::task::spawn_blocking`).

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The largest config file read (SPEC "Configuration": 16 MiB).
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(
        "{}: is {kind}, not a regular file; point it at a regular file",
        path.display()
    )]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "{}: is larger than 16 MiB ({size} bytes); a config file is never that big, check the path",
        path.display()
    )]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{}: is not UTF-8 text", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("{}: cannot be read: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// The text of the regular file at `path`, or `None` if nothing is there (an absent
/// config is an empty one). Blocking.
pub fn read_config_text(path: &Path) -> Result<Option<String>, ReadError> {
    let io_err = |source: io::Error| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Check the type by name first: a FIFO or device is never opened at all.
    match std::fs::metadata(path) {
        Ok(meta) => check(path, &meta)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    }
    let file = match open_nonblocking(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    // The name may have been re-pointed since the check: what counts is what we opened.
    check(path, &file.metadata().map_err(io_err)?)?;
    let mut buf = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io_err)?;
    let size = buf.len() as u64;
    if size > MAX_BYTES {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| ReadError::NotUtf8 {
            path: path.to_path_buf(),
        })
}

fn check(path: &Path, meta: &Metadata) -> Result<(), ReadError> {
    if !meta.is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(meta),
        });
    }
    if meta.len() > MAX_BYTES {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
        });
    }
    Ok(())
}

#[cfg(unix)]
fn kind_of(meta: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn kind_of(meta: &Metadata) -> &'static str {
    if meta.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

/// O_NONBLOCK: opening a FIFO swapped in after the check returns at once instead of waiting
/// for a writer (and reads from it return at once); no effect on a regular file. O_NOCTTY: a
/// terminal device never becomes our controlling terminal.
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file_and_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config");
        std::fs::write(&f, "[default]\n").unwrap();
        assert_eq!(
            read_config_text(&f).unwrap().as_deref(),
            Some("[default]\n")
        );
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&f, &link).unwrap();
            assert_eq!(
                read_config_text(&link).unwrap().as_deref(),
                Some("[default]\n")
            );
        }
    }

    #[test]
    fn absent_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read_config_text(&dir.path().join("nope"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_config_text(dir.path()).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::NotRegular {
                    kind: "a directory",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn over_16_mib_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big");
        let file = File::create(&f).unwrap();
        file.set_len(17 * 1024 * 1024).unwrap();
        let e = read_config_text(&f).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("16 MiB"), "{e}");
        // exactly the cap is fine
        file.set_len(MAX_BYTES).unwrap();
        assert!(read_config_text(&f).is_ok());
    }

    #[test]
    fn not_utf8_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bin");
        std::fs::write(&f, [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(
            read_config_text(&f).unwrap_err(),
            ReadError::NotUtf8 { .. }
        ));
    }

    // rustix offers mkfifoat on Linux only (and /dev/zero is what the test reads there).
    #[cfg(target_os = "linux")]
    #[test]
    fn fifo_device_and_links_to_them_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        // A blocking open of a FIFO without a writer never returns: reaching the asserts
        // is the proof that it was not opened that way.
        let e = read_config_text(&fifo).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::NotRegular {
                    kind: "a FIFO (named pipe)",
                    ..
                }
            ),
            "{e}"
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        assert!(matches!(
            read_config_text(&link).unwrap_err(),
            ReadError::NotRegular { .. }
        ));
        let e = read_config_text(Path::new("/dev/zero")).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::NotRegular {
                    kind: "a character device",
                    ..
                }
            ),
            "{e}"
        );
    }

    // rustix offers mkfifoat on Linux only (and /dev/zero is what the test reads there).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_fifo_swapped_in_after_the_check_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let f = open_nonblocking(&fifo).expect("non-blocking open returns at once");
        let e = check(&fifo, &f.metadata().unwrap()).unwrap_err();
        assert!(matches!(e, ReadError::NotRegular { .. }));
    }
}
