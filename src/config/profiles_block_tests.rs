//! Tests of the profiles block: names, templates, clashes, and the pure text transform
//! (byte-identical outside the block, CRLF, no trailing newline, comments around it,
//! idempotence, stale/prune, skips, broken blocks).

use std::path::Path;

use super::*;

fn a(id: &str, name: Option<&str>, role: &str) -> Assignment {
    Assignment {
        account_id: id.into(),
        account_name: name.map(String::from),
        role_name: role.into(),
    }
}

fn corp(assignments: &[Assignment]) -> Vec<GeneratedProfile> {
    generate("corp", DEFAULT_TEMPLATE, None, assignments).unwrap()
}

fn two() -> Vec<GeneratedProfile> {
    corp(&[
        a("111122223333", Some("Prod"), "Admin"),
        a("444455556666", Some("Dev Team"), "ReadOnly"),
    ])
}

const BEGIN: &str = "# BEGIN sso-agent profiles for sso-session corp";
const END: &str = "# END sso-agent profiles for sso-session corp";

/// The text with the session's block (its BEGIN line through its END line and that line's
/// terminator) cut out: what must equal the original byte for byte.
fn outside(text: &str) -> String {
    let start = text.find(BEGIN).expect("a block");
    let mut end = text.find(END).unwrap() + END.len();
    for eol in ["\r\n", "\n"] {
        if text[end..].starts_with(eol) {
            end += eol.len();
            break;
        }
    }
    format!("{}{}", &text[..start], &text[end..])
}

fn apply(text: &str, profiles: &[GeneratedProfile], prune: bool) -> Plan {
    plan("config", text, "corp", profiles, prune).unwrap()
}

#[test]
fn names_are_made_safe_for_a_section() {
    for (raw, safe) in [
        ("Prod.Admin", "Prod.Admin"),
        ("Dev Team.ReadOnly", "Dev-Team.ReadOnly"),
        ("a  [b]; c=d #e", "a-b-c-d-e"),
        ("  leading and trailing!! ", "leading-and-trailing"),
        ("ünïcode.Rôle", "n-code.R-le"),
        ("under_score-dash.dot", "under_score-dash.dot"),
        ("[]#;", ""),
    ] {
        assert_eq!(safe_name(raw), safe, "{raw:?}");
    }
}

#[test]
fn templates_fill_placeholders_and_reject_unknown_ones() {
    let x = a("111122223333", Some("Prod"), "Admin");
    assert_eq!(fill(DEFAULT_TEMPLATE, "corp", &x).unwrap(), "Prod.Admin");
    assert_eq!(
        fill("{session}-{account_id}-{role_name}", "corp", &x).unwrap(),
        "corp-111122223333-Admin"
    );
    // No account name: the id stands in.
    let unnamed = a("111122223333", None, "Admin");
    assert_eq!(
        fill(DEFAULT_TEMPLATE, "corp", &unnamed).unwrap(),
        "111122223333.Admin"
    );
    for bad in ["{acount_name}", "{role_name", "role}", "{}"] {
        assert!(
            matches!(check_template(bad), Err(BlockError::Template { .. })),
            "{bad}"
        );
    }
    assert!(check_template("static").is_ok());
    let e = generate("corp", "[]", None, &[x]).unwrap_err();
    assert!(matches!(e, BlockError::EmptyName { .. }), "{e}");
}

#[test]
fn two_assignments_with_one_name_are_an_error() {
    let e = generate(
        "corp",
        "{role_name}",
        None,
        &[a("1", Some("A"), "Admin"), a("2", Some("B"), "Admin")],
    )
    .unwrap_err();
    match &e {
        BlockError::Clash {
            name,
            first,
            second,
        } => {
            assert_eq!(name, "Admin");
            assert!(first.contains("account 1") && second.contains("account 2"));
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("--name-template"), "{e}");
    // Names that differ only before sanitising clash too.
    assert!(matches!(
        generate(
            "corp",
            DEFAULT_TEMPLATE,
            None,
            &[a("1", Some("Dev Team"), "R"), a("2", Some("Dev/Team"), "R")]
        ),
        Err(BlockError::Clash { .. })
    ));
}

#[test]
fn generated_profiles_carry_the_session_keys_and_region() {
    let p = generate(
        "corp",
        DEFAULT_TEMPLATE,
        Some("eu-west-1"),
        &[a("111122223333", Some("Prod"), "Admin")],
    )
    .unwrap();
    assert_eq!(
        render(&p),
        "[profile Prod.Admin]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\nregion = eu-west-1\n"
    );
    // The printed text is a config the agent's own reader accepts.
    let text = format!(
        "[sso-session corp]\nsso_start_url = https://x.awsapps.com/start\nsso_region = us-east-1\n{}",
        render(&two())
    );
    let cfg = crate::config::parse_aws_config(Path::new("c"), &text).unwrap();
    let t = cfg.profile_credentials("Dev-Team.ReadOnly").unwrap();
    assert_eq!(
        (t.account_id.as_str(), t.role_name.as_str()),
        ("444455556666", "ReadOnly")
    );
}

#[test]
fn a_new_block_is_appended_and_everything_else_stays_byte_identical() {
    let original = "# my config\n[sso-session corp]\nsso_start_url = https://x.awsapps.com/start\nsso_region = us-east-1\n\n;  odd  spacing   kept\n[profile hand]\nregion=eu-west-1\n";
    let p = apply(original, &two(), false);
    assert!(p.summary.changed);
    assert_eq!(outside(&p.text), original);
    assert!(p.text.starts_with(original));
    assert_eq!(
        &p.text[original.len()..],
        format!(
            "{BEGIN}\n[profile Dev-Team.ReadOnly]\nsso_session = corp\nsso_account_id = 444455556666\nsso_role_name = ReadOnly\n\n[profile Prod.Admin]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\n{END}\n"
        )
    );
    assert_eq!(p.summary.added, ["Dev-Team.ReadOnly", "Prod.Admin"]);
    // The result reads as a valid config with both profiles.
    let cfg = crate::config::parse_aws_config(Path::new("c"), &p.text).unwrap();
    assert!(cfg.profiles.contains_key("Prod.Admin") && cfg.profiles.contains_key("hand"));
}

#[test]
fn a_block_between_comments_is_replaced_in_place() {
    let before = "# top comment\n[profile hand]\nregion = eu-west-1\n\n# just before the block\n";
    let after = "\n# just after the block\n[profile later]\nregion = us-west-2\n";
    let original = format!("{before}{BEGIN}\n{END}{after}");
    let first = apply(&original, &two(), false);
    assert!(first.text.starts_with(before) && first.text.ends_with(after));
    assert_eq!(outside(&first.text), outside(&original));
    // A role removed upstream: kept as stale, then pruned.
    let one = corp(&[a("111122223333", Some("Prod"), "Admin")]);
    let kept = apply(&first.text, &one, false);
    assert_eq!(kept.summary.stale, ["Dev-Team.ReadOnly"]);
    assert_eq!(kept.summary.kept, ["Prod.Admin"]);
    assert!(!kept.summary.changed, "a kept stale entry changes nothing");
    let pruned = apply(&first.text, &one, true);
    assert_eq!(pruned.summary.removed, ["Dev-Team.ReadOnly"]);
    assert!(pruned.summary.changed);
    assert!(!pruned.text.contains("Dev-Team"));
    assert_eq!(outside(&pruned.text), outside(&original));
}

#[test]
fn a_second_run_changes_nothing() {
    let original = "[profile hand]\nregion = eu-west-1\n";
    let once = apply(original, &two(), false);
    let twice = apply(&once.text, &two(), false);
    assert!(!twice.summary.changed);
    assert_eq!(twice.text, once.text);
    assert_eq!(twice.summary.kept.len(), 2);
    assert!(twice.summary.added.is_empty() && twice.summary.updated.is_empty());
    // A region added is an update of the same names.
    let with_region = generate(
        "corp",
        DEFAULT_TEMPLATE,
        Some("eu-west-1"),
        &[
            a("111122223333", Some("Prod"), "Admin"),
            a("444455556666", Some("Dev Team"), "ReadOnly"),
        ],
    )
    .unwrap();
    let updated = apply(&once.text, &with_region, false);
    assert_eq!(updated.summary.updated.len(), 2);
    assert_eq!(outside(&updated.text), original);
}

#[test]
fn crlf_files_get_a_crlf_block_and_keep_their_bytes() {
    let original = "[profile hand]\r\nregion = eu-west-1\r\n; note\r\n";
    let p = apply(original, &two(), false);
    assert!(p.text.starts_with(original));
    let block = &p.text[original.len()..];
    assert!(block.ends_with(&format!("{END}\r\n")));
    assert_eq!(
        block.matches('\n').count(),
        block.matches("\r\n").count(),
        "only CRLF: {block:?}"
    );
    assert!(!apply(&p.text, &two(), false).summary.changed);
    // With a block in the middle of a CRLF file.
    let mid = format!("{original}{BEGIN}\r\n{END}\r\n[profile z]\r\nregion = x\r\n");
    let q = apply(&mid, &two(), false);
    assert_eq!(
        outside(&q.text),
        format!("{original}[profile z]\r\nregion = x\r\n")
    );
}

#[test]
fn a_last_line_without_newline_gets_one_before_the_block() {
    let original = "[profile hand]\nregion = eu-west-1";
    let p = apply(original, &two(), false);
    assert!(p.text.starts_with(&format!("{original}\n{BEGIN}\n")));
    assert!(p.text.ends_with(&format!("{END}\n")));
    // A block that is the last line, without newline, stays so.
    let last = format!("[profile hand]\n{BEGIN}\n{END}");
    let q = apply(&last, &two(), false);
    assert!(q.text.ends_with(END));
    assert_eq!(outside(&q.text), "[profile hand]\n");
    assert_eq!(
        outside(&p.text),
        format!("{original}\n"),
        "only the missing terminator"
    );
    // An empty file and nothing to write stays empty.
    assert_eq!(apply("", &[], false).text, "");
    assert!(!apply("x = 1\n", &[], false).summary.changed);
}

#[test]
fn names_outside_the_block_are_skipped_and_other_blocks_untouched() {
    let other = "# BEGIN sso-agent profiles for sso-session dev\n[profile Prod.Admin]\nsso_session = dev\n# END sso-agent profiles for sso-session dev\n";
    let original = format!("[profile Dev-Team.ReadOnly]\nregion = hand-made\n{other}");
    let p = apply(&original, &two(), false);
    assert_eq!(p.summary.skipped, ["Dev-Team.ReadOnly", "Prod.Admin"]);
    assert!(p.summary.added.is_empty());
    assert!(!p.summary.changed, "nothing to write: no empty block");
    // Hand-made section later added outside the block: the block entry gives way.
    let with = apply("", &two(), false).text;
    let hand = format!("[profile Prod.Admin]\nregion = mine\n{with}");
    let q = apply(&hand, &two(), false);
    assert_eq!(q.summary.skipped, ["Prod.Admin"]);
    assert_eq!(q.text.matches("[profile Prod.Admin]").count(), 1);
    assert!(q.text.starts_with("[profile Prod.Admin]\nregion = mine\n"));
}

#[test]
fn broken_blocks_are_reported_with_their_line() {
    for (text, line) in [
        (format!("x = 1\n{BEGIN}\n"), 2),
        (format!("{END}\n"), 1),
        (format!("{BEGIN}\n{END}\n{BEGIN}\n{END}\n"), 3),
        (format!("{BEGIN}\n{BEGIN}\n{END}\n"), 2),
    ] {
        match plan("cfg", &text, "corp", &two(), false) {
            Err(BlockError::BrokenBlock { line: l, path, .. }) => {
                assert_eq!((l, path.as_str()), (line, "cfg"), "{text:?}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    // An unparsable file outside the block is an error, not an overwrite.
    assert!(matches!(
        plan("cfg", "[broken\n", "corp", &two(), false),
        Err(BlockError::Parse { .. })
    ));
}

#[test]
fn block_assignments_are_read_per_session() {
    let corp_text = apply(
        "[profile hand]\nsso_account_id = 9\nsso_role_name = X\n",
        &two(),
        false,
    )
    .text;
    let dev = generate(
        "dev",
        DEFAULT_TEMPLATE,
        None,
        &[a("5", Some("Five"), "Ops")],
    )
    .unwrap();
    let text = plan("c", &corp_text, "dev", &dev, false).unwrap().text;
    let got = block_assignments(&text);
    let pairs = |v: &[(&str, &str)]| -> BTreeSet<(String, String)> {
        v.iter()
            .map(|(a, r)| (a.to_string(), r.to_string()))
            .collect()
    };
    assert_eq!(
        got.get("corp"),
        Some(&pairs(&[
            ("111122223333", "Admin"),
            ("444455556666", "ReadOnly")
        ])),
        "only the block's entries, not the hand-made profile"
    );
    assert_eq!(got.get("dev"), Some(&pairs(&[("5", "Ops")])));
    assert_eq!(got.len(), 2);
    assert!(
        block_assignments(&format!("{BEGIN}\n[profile x]\n")).is_empty(),
        "broken: left out"
    );
}
