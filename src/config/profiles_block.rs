//! `sso-agent profiles`: AWS config profiles for every account and role of a session, and the
//! marked block (`# BEGIN/END sso-agent profiles for sso-session S`) that keeps them in the
//! AWS config file, as a pure text transform (profiles_file.rs replaces the file).
//! Must not: touch anything outside the block (byte for byte), parse INI by hand (rust-ini
//! reads the sections; only the marker lines are located here), do I/O, or talk to the daemon.

use std::collections::{BTreeMap, BTreeSet};

use ini::{Ini, ParseOption};
use serde::Serialize;

/// The default `--name-template`.
pub const DEFAULT_TEMPLATE: &str = "{account_name}.{role_name}";
/// Placeholders a template may use.
pub const PLACEHOLDERS: [&str; 4] = ["account_name", "account_id", "role_name", "session"];

pub fn begin_marker(session: &str) -> String {
    format!("# BEGIN sso-agent profiles for sso-session {session}")
}

pub fn end_marker(session: &str) -> String {
    format!("# END sso-agent profiles for sso-session {session}")
}

/// One account and role the session can use (from the daemon's account list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub account_id: String,
    pub account_name: Option<String>,
    pub role_name: String,
}

/// One generated `[profile NAME]`: its keys in the order they are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeneratedProfile {
    pub name: String,
    #[serde(skip)]
    pub keys: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error(
        "--name-template {template:?}: {problem}; placeholders are {{account_name}}, {{account_id}}, {{role_name}}, {{session}}"
    )]
    Template { template: String, problem: String },
    #[error(
        "account {account_id} role {role_name} gives an empty profile name with --name-template {template:?}; use a template with {{account_id}}"
    )]
    EmptyName {
        template: String,
        account_id: String,
        role_name: String,
    },
    #[error(
        "two assignments map to profile `{name}` ({first} and {second}); pick a --name-template that tells them apart, e.g. \"{{account_id}}.{{role_name}}\""
    )]
    Clash {
        name: String,
        first: String,
        second: String,
    },
    #[error(
        "{path}:{line}: the sso-agent block for sso-session {session} is broken ({problem}); fix or remove its marker lines by hand"
    )]
    BrokenBlock {
        path: String,
        line: usize,
        session: String,
        problem: String,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: String,
        line: usize,
        message: String,
    },
}

/// Makes a filled-in template safe as a section name: every run of characters other than
/// ASCII letters, digits, `.`, `_` and `-` becomes one `-`, and `-` at either end is dropped.
/// (So no spaces, brackets, `#`, `;` or `=`: the AWS CLI, the SDKs and this agent all read
/// the result as one profile name.)
pub fn safe_name(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_run = false;
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    out.trim_matches('-').to_string()
}

/// Fills `template` for one assignment (before `safe_name`).
fn fill(template: &str, session: &str, a: &Assignment) -> Result<String, BlockError> {
    let bad = |problem: String| BlockError::Template {
        template: template.to_string(),
        problem,
    };
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        out.push_str(&rest[..open]);
        if rest[open..].starts_with('}') {
            return Err(bad("a `}` without its `{`".into()));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| bad("a `{` without its `}`".into()))?;
        let value = match &after[..close] {
            "account_name" => a.account_name.as_deref().unwrap_or(&a.account_id),
            "account_id" => &a.account_id,
            "role_name" => &a.role_name,
            "session" => session,
            other => return Err(bad(format!("unknown placeholder {{{other}}}"))),
        };
        out.push_str(value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks a template once, before anything is asked of the daemon.
pub fn check_template(template: &str) -> Result<(), BlockError> {
    let probe = Assignment {
        account_id: "1".into(),
        account_name: Some("a".into()),
        role_name: "r".into(),
    };
    fill(template, "s", &probe).map(|_| ())
}

/// One profile per assignment, sorted by name. Two assignments with one name are an error,
/// never an overwrite.
pub fn generate(
    session: &str,
    template: &str,
    region: Option<&str>,
    assignments: &[Assignment],
) -> Result<Vec<GeneratedProfile>, BlockError> {
    let mut by_name: BTreeMap<String, (&Assignment, GeneratedProfile)> = BTreeMap::new();
    for a in assignments {
        let name = safe_name(&fill(template, session, a)?);
        if name.is_empty() {
            return Err(BlockError::EmptyName {
                template: template.to_string(),
                account_id: a.account_id.clone(),
                role_name: a.role_name.clone(),
            });
        }
        let mut keys = vec![
            ("sso_session".to_string(), session.to_string()),
            ("sso_account_id".to_string(), a.account_id.clone()),
            ("sso_role_name".to_string(), a.role_name.clone()),
        ];
        if let Some(r) = region {
            keys.push(("region".to_string(), r.to_string()));
        }
        let describe = |a: &Assignment| format!("account {} role {}", a.account_id, a.role_name);
        if let Some((first, _)) = by_name.get(&name) {
            return Err(BlockError::Clash {
                name,
                first: describe(first),
                second: describe(a),
            });
        }
        by_name.insert(name.clone(), (a, GeneratedProfile { name, keys }));
    }
    Ok(by_name.into_values().map(|(_, p)| p).collect())
}

fn render_one(p: &GeneratedProfile, eol: &str, out: &mut String) {
    out.push_str(&format!("[profile {}]{eol}", p.name));
    for (k, v) in &p.keys {
        out.push_str(&format!("{k} = {v}{eol}"));
    }
}

/// The profiles as AWS config text (what `profiles` prints without `--write`).
pub fn render(profiles: &[GeneratedProfile]) -> String {
    let mut out = String::new();
    for (i, p) in profiles.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        render_one(p, "\n", &mut out);
    }
    out
}

/// What a write did (or would do), by profile name. `stale` entries are kept in the block;
/// `removed` ones were stale and pruned; `skipped` exist outside the block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub session: String,
    pub file: String,
    /// Whether the file was (or must be) rewritten.
    pub changed: bool,
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub kept: Vec<String>,
    pub removed: Vec<String>,
    pub stale: Vec<String>,
    pub skipped: Vec<String>,
}

/// The new file text and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub text: String,
    pub summary: Summary,
}

/// Byte range of one line (with its terminator) and its content (without).
struct Line<'a> {
    start: usize,
    /// End of the content, before `\r\n` / `\n`.
    content_end: usize,
    content: &'a str,
    crlf: bool,
    /// Start of the next line (the end of the text for the last).
    next: usize,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let crlf = end > start && text.as_bytes()[end - 1] == b'\r' && end < text.len();
        let content_end = if crlf { end - 1 } else { end };
        out.push(Line {
            start,
            content_end,
            content: &text[start..content_end],
            crlf,
            next: (end + 1).min(text.len()),
        });
        start = end + 1;
    }
    out
}

/// Where the session's block is: (start of its BEGIN line, end of its END line's content,
/// the inner text, whether the BEGIN line ends in CRLF).
struct Block<'a> {
    start: usize,
    end: usize,
    inner: &'a str,
    crlf: bool,
}

fn find_block<'a>(
    path: &str,
    text: &'a str,
    session: &str,
) -> Result<Option<Block<'a>>, BlockError> {
    let (begin, end) = (begin_marker(session), end_marker(session));
    let broken = |line: usize, problem: &str| BlockError::BrokenBlock {
        path: path.to_string(),
        line,
        session: session.to_string(),
        problem: problem.to_string(),
    };
    let mut open: Option<(usize, Line<'a>)> = None;
    let mut found: Option<Block<'a>> = None;
    for (i, l) in lines(text).into_iter().enumerate() {
        let c = l.content.trim_end();
        if c == begin {
            if open.is_some() || found.is_some() {
                return Err(broken(i + 1, "a second BEGIN line"));
            }
            open = Some((i, l));
        } else if c == end {
            let Some((_, b)) = open.take() else {
                return Err(broken(i + 1, "an END line without its BEGIN"));
            };
            found = Some(Block {
                start: b.start,
                end: l.content_end,
                inner: &text[b.next..l.start],
                crlf: b.crlf,
            });
        }
    }
    if let Some((i, _)) = open {
        return Err(broken(i + 1, "a BEGIN line without its END"));
    }
    Ok(found)
}

fn parse_option() -> ParseOption {
    // As the config reader (aws_ini.rs) and botocore read the file.
    ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        enabled_indented_mutiline_value: true,
        enabled_preserve_key_leading_whitespace: false,
    }
}

/// The profile sections of `text`, by name, with their keys in order.
fn profiles_in(path: &str, text: &str) -> Result<Vec<GeneratedProfile>, BlockError> {
    let ini = Ini::load_from_str_opt(text, parse_option()).map_err(|e| BlockError::Parse {
        path: path.to_string(),
        line: e.line,
        message: e.msg.to_string(),
    })?;
    let mut out = Vec::new();
    for (section, props) in ini.iter() {
        let Some(section) = section else { continue };
        let words: Vec<&str> = section.split_whitespace().collect();
        let name = match words.as_slice() {
            ["profile", name] => *name,
            ["default"] => "default",
            _ => continue,
        };
        out.push(GeneratedProfile {
            name: name.to_string(),
            keys: props
                .iter()
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect(),
        });
    }
    Ok(out)
}

/// Computes the new text of the AWS config file `text` (read from `path`) with the session's
/// block holding `profiles`. Outside the block nothing changes, byte for byte. A name already
/// used outside the block is skipped; entries of the old block that are no longer generated
/// are kept as stale unless `prune`. With nothing to change, `text` comes back unchanged.
pub fn plan(
    path: &str,
    text: &str,
    session: &str,
    profiles: &[GeneratedProfile],
    prune: bool,
) -> Result<Plan, BlockError> {
    let block = find_block(path, text, session)?;
    let outside = match &block {
        Some(b) => format!("{}{}", &text[..b.start], &text[b.end..]),
        None => text.to_string(),
    };
    let taken: BTreeSet<String> = profiles_in(path, &outside)?
        .into_iter()
        .map(|p| p.name)
        .collect();
    let old: BTreeMap<String, GeneratedProfile> = match &block {
        Some(b) => profiles_in(path, b.inner)?
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect(),
        None => BTreeMap::new(),
    };
    let mut summary = Summary {
        session: session.to_string(),
        file: path.to_string(),
        ..Summary::default()
    };
    let mut entries: BTreeMap<String, GeneratedProfile> = BTreeMap::new();
    for p in profiles {
        if taken.contains(&p.name) {
            summary.skipped.push(p.name.clone());
            continue;
        }
        match old.get(&p.name) {
            None => summary.added.push(p.name.clone()),
            Some(o) if o.keys == p.keys => summary.kept.push(p.name.clone()),
            Some(_) => summary.updated.push(p.name.clone()),
        }
        entries.insert(p.name.clone(), p.clone());
    }
    for (name, o) in &old {
        if entries.contains_key(name) || taken.contains(name) {
            continue;
        }
        if prune {
            summary.removed.push(name.clone());
        } else {
            summary.stale.push(name.clone());
            entries.insert(name.clone(), o.clone());
        }
    }
    let crlf = match &block {
        Some(b) => b.crlf,
        None => text.contains("\r\n"),
    };
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut body = String::new();
    body.push_str(&begin_marker(session));
    body.push_str(eol);
    for (i, p) in entries.values().enumerate() {
        if i > 0 {
            body.push_str(eol);
        }
        render_one(p, eol, &mut body);
    }
    body.push_str(&end_marker(session));
    let new = match &block {
        Some(b) => format!("{}{body}{}", &text[..b.start], &text[b.end..]),
        None if entries.is_empty() => text.to_string(),
        None => {
            // Appended after the last line; a last line without its terminator gets one.
            let sep = if text.is_empty() || text.ends_with('\n') {
                ""
            } else {
                eol
            };
            format!("{text}{sep}{body}{eol}")
        }
    };
    summary.changed = new != text;
    Ok(Plan { text: new, summary })
}

/// The (account id, role name) of each entry in every session's block of `text`, by session;
/// sessions without a block are absent. A broken or unparsable block is left out (the daemon
/// only uses this to say in `status` whether a block is out of date).
pub fn block_assignments(text: &str) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let prefix = "# BEGIN sso-agent profiles for sso-session ";
    let sessions: BTreeSet<&str> = lines(text)
        .iter()
        .filter_map(|l| l.content.trim_end().strip_prefix(prefix))
        .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
        .collect();
    let mut out = BTreeMap::new();
    for session in sessions {
        let Ok(Some(block)) = find_block("", text, session) else {
            continue;
        };
        let Ok(entries) = profiles_in("", block.inner) else {
            continue;
        };
        let key = |p: &GeneratedProfile, k: &str| {
            p.keys.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        };
        let set = entries
            .iter()
            .filter_map(|p| Some((key(p, "sso_account_id")?, key(p, "sso_role_name")?)))
            .collect();
        out.insert(session.to_string(), set);
    }
    out
}

#[cfg(test)]
#[path = "profiles_block_tests.rs"]
mod tests;
