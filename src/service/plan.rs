//! A service (un)install as data: files to write or remove and commands to run, so
//! `--dry-run` prints exactly what a real run does.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use super::ServiceError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAction {
    Write { path: PathBuf, contents: String },
    Remove { path: PathBuf },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub files: Vec<FileAction>,
    /// Commands run after the files are in place; `ignore_failure` for best-effort steps.
    pub commands: Vec<(Vec<String>, bool)>,
    /// What to tell the user afterwards.
    pub next_steps: Vec<String>,
}

impl Plan {
    /// Human description of every step (the --dry-run output).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for f in &self.files {
            match f {
                FileAction::Write { path, contents } => {
                    let _ = writeln!(out, "# would write {}", path.display());
                    let _ = writeln!(out, "{}", contents.trim_end());
                    let _ = writeln!(out);
                }
                FileAction::Remove { path } => {
                    let _ = writeln!(out, "# would remove {}", path.display());
                }
            }
        }
        for (cmd, _) in &self.commands {
            let _ = writeln!(out, "# would run: {}", cmd.join(" "));
        }
        out
    }

    /// Carries the plan out: files first (idempotent: rewriting the same content is fine,
    /// removing a missing file is fine), then the commands in order.
    pub fn execute(&self) -> Result<Vec<String>, ServiceError> {
        let mut done = Vec::new();
        for f in &self.files {
            match f {
                FileAction::Write { path, contents } => {
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir).map_err(|source| ServiceError::Io {
                            path: dir.to_path_buf(),
                            source,
                        })?;
                    }
                    std::fs::write(path, contents).map_err(|source| ServiceError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    done.push(format!("wrote {}", path.display()));
                }
                FileAction::Remove { path } => match std::fs::remove_file(path) {
                    Ok(()) => done.push(format!("removed {}", path.display())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(ServiceError::Io {
                            path: path.clone(),
                            source,
                        });
                    }
                },
            }
        }
        for (cmd, ignore_failure) in &self.commands {
            let Some((program, args)) = cmd.split_first() else {
                continue;
            };
            let shown = cmd.join(" ");
            match Command::new(program).args(args).output() {
                Ok(out) if out.status.success() => done.push(format!("ran {shown}")),
                Ok(_) | Err(_) if *ignore_failure => {
                    done.push(format!("ran {shown} (failure ignored)"))
                }
                Ok(out) => {
                    return Err(ServiceError::Command {
                        command: shown,
                        detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    });
                }
                Err(e) => {
                    return Err(ServiceError::Command {
                        command: shown,
                        detail: e.to_string(),
                    });
                }
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_lists_files_and_commands() {
        let plan = Plan {
            files: vec![
                FileAction::Write {
                    path: "/h/a.service".into(),
                    contents: "[Unit]\n".into(),
                },
                FileAction::Remove {
                    path: "/h/b".into(),
                },
            ],
            commands: vec![(
                vec!["systemctl".into(), "--user".into(), "daemon-reload".into()],
                false,
            )],
            next_steps: vec![],
        };
        let d = plan.describe();
        assert!(d.contains("# would write /h/a.service\n[Unit]"));
        assert!(d.contains("# would remove /h/b"));
        assert!(d.contains("# would run: systemctl --user daemon-reload"));
    }

    #[test]
    fn execute_writes_and_removes_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x/unit");
        let write = Plan {
            files: vec![FileAction::Write {
                path: path.clone(),
                contents: "c".into(),
            }],
            ..Plan::default()
        };
        write.execute().unwrap();
        write.execute().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "c");
        let remove = Plan {
            files: vec![FileAction::Remove { path: path.clone() }],
            ..Plan::default()
        };
        remove.execute().unwrap();
        remove.execute().unwrap();
        assert!(!path.exists());
    }
}
