//! Tests of replacing the config file: mode kept, no rewrite when unchanged, no temp file
//! left, a symlink written through, non-regular files refused, and a concurrent edit by another
//! process merged, never lost.
#![cfg(unix)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;
use crate::config::profiles_block::{Assignment, DEFAULT_TEMPLATE, generate};

const BEGIN: &str = "# BEGIN sso-agent profiles for sso-session corp";
const END: &str = "# END sso-agent profiles for sso-session corp";

fn two() -> Vec<GeneratedProfile> {
    let a = |id: &str, name: &str, role: &str| Assignment {
        account_id: id.into(),
        account_name: Some(name.into()),
        role_name: role.into(),
    };
    generate(
        "corp",
        DEFAULT_TEMPLATE,
        None,
        &[
            a("111122223333", "Prod", "Admin"),
            a("444455556666", "Dev Team", "ReadOnly"),
        ],
    )
    .unwrap()
}

/// The text with the block (BEGIN line through END line and its newline) cut out.
fn outside(text: &str) -> String {
    let start = text.find(BEGIN).expect("a block");
    let mut end = text.find(END).unwrap() + END.len();
    if text[end..].starts_with('\n') {
        end += 1;
    }
    format!("{}{}", &text[..start], &text[end..])
}

fn config(dir: &Path, text: &str, mode: u32) -> PathBuf {
    let p = dir.join("config");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

#[test]
fn writes_keep_mode_and_a_second_run_does_not_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), "# mine\n", 0o640);
    let s = write_profiles(&path, "corp", &two(), false).unwrap();
    assert!(s.changed && s.added.len() == 2);
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("# mine\n")
    );
    let s = write_profiles(&path, "corp", &two(), false).unwrap();
    assert!(!s.changed);
    assert_eq!(
        std::fs::metadata(&path).unwrap().ino(),
        meta.ino(),
        "not replaced when unchanged"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["config"], "no temp file left behind");
}

#[test]
fn a_symlinked_config_is_written_through_to_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("dotfiles");
    std::fs::create_dir(&real).unwrap();
    let target = config(&real, "[profile hand]\n", 0o600);
    let link = dir.path().join("config-link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    write_profiles(&link, "corp", &two(), false).unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(std::fs::read_to_string(&target).unwrap().contains(BEGIN));
}

#[test]
fn not_a_regular_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        write_profiles(dir.path(), "corp", &two(), false),
        Err(WriteError::NotRegular(_))
    ));
    assert!(matches!(
        write_profiles(&dir.path().join("missing"), "corp", &two(), false),
        Err(WriteError::Io { .. })
    ));
}

#[test]
fn a_concurrent_edit_by_another_process_is_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), "[profile hand]\nregion = eu-west-1\n", 0o600);
    let mut edits = 0;
    // Another process appends a section after our read, before our replace (once).
    let s = write_profiles_between(&path, "corp", &two(), false, &mut |attempt| {
        if attempt == 0 {
            edits += 1;
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg("printf '[profile theirs]\\nregion = us-west-2\\n' >> \"$1\"")
                .arg("sh")
                .arg(&path)
                .status()
                .unwrap();
            assert!(status.success());
        }
    })
    .unwrap();
    assert_eq!(edits, 1);
    assert!(s.changed);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("[profile theirs]\nregion = us-west-2\n"),
        "{text}"
    );
    assert!(
        text.contains(BEGIN) && text.contains("[profile Prod.Admin]"),
        "{text}"
    );
    assert_eq!(
        outside(&text),
        "[profile hand]\nregion = eu-west-1\n[profile theirs]\nregion = us-west-2\n"
    );
}

#[test]
fn a_file_that_never_settles_is_an_error_not_an_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), "", 0o600);
    let mut n = 0;
    let e = write_profiles_between(&path, "corp", &two(), false, &mut |_| {
        n += 1;
        std::fs::write(&path, format!("; edit {n}\n")).unwrap();
    })
    .unwrap_err();
    assert!(matches!(e, WriteError::KeptChanging(_)), "{e}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("; edit {n}\n")
    );
}
