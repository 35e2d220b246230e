//! Text from outside (upstream error messages, names and lines from config files, keyring
//! and OS messages) made safe to show on a terminal or write to a log: control characters
//! (C0, DEL, C1) and the Unicode bidirectional controls are escaped as `\n`, `\t` or
//! `\u{1b}`, so outside text can neither drive the terminal (retitle it, move the cursor) nor
//! forge a line of `status` or of the log; `clean` also caps the length. `LogWriter` applies
//! the same escaping to every log line the daemon writes, whatever field the text came in.
//! Must not: change text that is already safe (most is returned borrowed, untouched).

use std::borrow::Cow;
use std::io;

/// Longest outside string shown whole by `clean`.
pub const MAX_LEN: usize = 1000;

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control or bidi character escaped.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `escape`d and cut to `MAX_LEN` bytes (at a character boundary), saying how much was cut.
pub fn clean(s: &str) -> Cow<'_, str> {
    let escaped = escape(s);
    if escaped.len() <= MAX_LEN {
        return escaped;
    }
    let mut end = MAX_LEN;
    while !escaped.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}… ({} more bytes)",
        &escaped[..end],
        escaped.len() - end
    ))
}

/// Writes log lines to stderr with every control character escaped but each line's own
/// ending: an event is formatted whole and written in one call, so a newline inside it can
/// only have come from a field's text.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

impl io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (&*text, ""),
        };
        let line = format!("{}{end}", escape(body));
        io::stderr().lock().write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_and_line_breaks_are_escaped() {
        let hostile = "bad\u{1b}]0;owned\u{7}\nERROR forged line\r\u{202e}txt";
        let shown = escape(hostile);
        assert_eq!(
            shown,
            "bad\\u{1b}]0;owned\\u{7}\\nERROR forged line\\r\\u{202e}txt"
        );
        assert!(!shown.chars().any(needs_escape));
    }

    #[test]
    fn safe_text_is_untouched_and_long_text_capped() {
        assert!(matches!(escape("plain text: ok"), Cow::Borrowed(_)));
        assert_eq!(escape("café ✓"), "café ✓");
        let long = "é".repeat(MAX_LEN);
        let c = clean(&long);
        assert!(c.len() < MAX_LEN + 40, "{}", c.len());
        assert!(c.ends_with(&format!("({} more bytes)", 2 * MAX_LEN - MAX_LEN)));
    }
}
