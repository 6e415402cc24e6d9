//! Text that came from outside (labels, references, servers' answers), made
//! safe to put in any message provgate writes — terminal, workflow commands,
//! logs, errors: scrubbed of every known secret ([`crate::secrets`]) first,
//! then quoted, every control, format or non-ASCII character escaped (so
//! neither a terminal escape, a workflow command on its own line, nor a
//! look-alike letter gets through as itself), and cut.
//!
//! [`quote`] is for a value inside a sentence; [`shown`] for a field of its
//! own (a reference in a header line, a digest in a log field), bare when it
//! is plain; [`one_line`] is the last line of defence over whole lines
//! provgate writes to stderr, the log and the error printer.

use provgate_contract::text as contract;

use crate::secrets;

/// Longest part of a value a message echoes.
pub const MAX_CHARS: usize = 80;

/// How much of a huge value is looked at (scrubbed, then cut): far more
/// than is ever shown, so the cut is always inside it.
const MAX_LOOKED_AT: usize = 16 * 1024;

/// `value` in double quotes, scrubbed of secrets, escaped
/// (`provgate_contract::text`) and cut to [`MAX_CHARS`] characters.
pub fn quote(value: &str) -> String {
    if value.len() <= MAX_LOOKED_AT {
        return contract::quote(&secrets::scrub(value), MAX_CHARS);
    }
    // Only the head is scrubbed and quoted; it is always cut (it holds far
    // more than MAX_CHARS characters), and the size named is the whole
    // value's. Escaped text holds no `…`, so the last one starts the size.
    let quoted = contract::quote(&secrets::scrub(prefix(value, MAX_LOOKED_AT)), MAX_CHARS);
    match quoted.rfind("… (") {
        Some(at) => format!("{}… ({} bytes)", &quoted[..at], value.len()),
        None => quoted,
    }
}

/// `value` as it is when it is short printable ASCII with nothing to
/// scrub (a reference, a digest, `linux/amd64`), else [`quote`]d: a field
/// of its own in a header line or a log, where quotes around every plain
/// value would only be noise.
pub fn shown(value: &str) -> String {
    let plain = value.len() <= MAX_CHARS && value.chars().all(contract::as_is);
    if plain && matches!(secrets::scrub(value), std::borrow::Cow::Borrowed(_)) {
        value.to_owned()
    } else {
        quote(value)
    }
}

/// A whole line provgate is about to write, made unable to become more
/// than one line or to carry a secret: secrets scrubbed, and every control
/// character (a newline included) or invisible format character escaped,
/// while provgate's own punctuation (`→`, `—`, `✓`) stays as it is. Values
/// inside are quoted already; this catches what a library's error text or
/// a forgotten call site would let through.
pub fn one_line(line: &str) -> String {
    let scrubbed = secrets::scrub(line);
    if !scrubbed.chars().any(hidden) {
        return scrubbed.into_owned();
    }
    let mut out = String::with_capacity(scrubbed.len() + 8);
    for c in scrubbed.chars() {
        if hidden(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Text for a Markdown paragraph or table cell (a job summary, the audit
/// report): a `|` cannot end the cell, a backtick cannot open a code span,
/// a line break cannot end the row, no HTML or link markup gets through as
/// markup, and a [`hidden`] character shows as its escape.
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if hidden(c) => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// A Markdown code span of `s`, for a paragraph or a table cell.
pub fn markdown_code(s: &str) -> String {
    let mut inner = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '`' => inner.push('\''),
            '|' => inner.push_str("\\|"),
            c if hidden(c) => inner.extend(c.escape_default()),
            c => inner.push(c),
        }
    }
    format!("`{inner}`")
}

/// `value` as JSON with every [`hidden`] character that JSON allows raw
/// (C1 controls, bidi and invisible format characters; serde_json escapes
/// only C0) written as a `\uXXXX` escape: the same JSON to any parser, but
/// a verdict or record shown on a terminal cannot reorder or recolour it.
pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(512);
    write_json(&mut out, value)?;
    Ok(out)
}

/// [`to_json`] into `writer`.
pub fn write_json<W: std::io::Write, T: serde::Serialize + ?Sized>(writer: W, value: &T) -> serde_json::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(writer, EscapeHidden);
    value.serialize(&mut serializer)
}

struct EscapeHidden;

impl serde_json::ser::Formatter for EscapeHidden {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            if hidden(c) {
                writer.write_all(&fragment.as_bytes()[start..at])?;
                // Every hidden character is in the Basic Multilingual Plane.
                write!(writer, "\\u{:04x}", c as u32)?;
                start = at + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Characters that would end a line, move the cursor, colour a terminal,
/// reorder what a reader sees, or hide text: C0 and C1 controls, DEL, and
/// Unicode's format characters (bidi embeddings and isolates, zero-width
/// characters, the byte order mark, soft hyphen, interlinear annotation).
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{ad}'
                | '\u{61c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

/// The longest prefix of `value` of at most `max` bytes that ends on a
/// character boundary.
fn prefix(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_format_and_non_ascii_characters_are_escaped_and_long_values_cut() {
        assert_eq!(quote("plain value"), "\"plain value\"");
        assert_eq!(quote("a\n::error::x"), "\"a\\n::error::x\"");
        assert_eq!(quote("\u{1b}[31m"), "\"\\u{1b}[31m\"");
        assert_eq!(quote("g\u{456}thub"), "\"g\\u{456}thub\"");
        assert_eq!(quote("\u{202e}abc"), "\"\\u{202e}abc\"");
        assert_eq!(quote("say \"hi\""), "\"say \\\"hi\\\"\"");
        let long = "x".repeat(200);
        assert_eq!(quote(&long), format!("\"{}\"… (200 bytes)", "x".repeat(80)));
    }

    #[test]
    fn a_huge_value_is_cut_and_its_whole_size_named() {
        let huge = "y".repeat(1 << 20);
        assert_eq!(quote(&huge), format!("\"{}\"… (1048576 bytes)", "y".repeat(80)));
        let huge_plain_head = format!("{}\u{e9}", "z".repeat(MAX_LOOKED_AT - 1));
        assert!(quote(&huge_plain_head).ends_with(&format!("({} bytes)", MAX_LOOKED_AT + 1)));
    }

    #[test]
    fn a_secret_is_scrubbed_before_the_cut_so_no_part_of_it_shows() {
        secrets::register("text-test-secret-4b1d9e");
        // The secret straddles the cut at 80 characters.
        let echoed = format!("{}text-test-secret-4b1d9e", "a".repeat(70));
        let shown = quote(&echoed);
        assert!(!shown.contains("text-test"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }

    #[test]
    fn plain_values_are_shown_bare_and_others_quoted() {
        assert_eq!(shown("registry.example/app:1"), "registry.example/app:1");
        assert_eq!(shown("linux/arm64"), "linux/arm64");
        assert_eq!(shown("arm64\n::error::FORGED"), "\"arm64\\n::error::FORGED\"");
        assert_eq!(shown("app\u{7}"), "\"app\\u{7}\"");
        assert_eq!(shown("a \"b\""), "\"a \\\"b\\\"\"");
        assert_eq!(shown(""), "");
    }

    #[test]
    fn json_escapes_bidi_and_c1_characters_and_means_the_same() {
        let value = serde_json::json!({"name": "a\u{202e}b\u{9b}31m\u{85}c → ok", "n": 1});
        let bytes = to_json(&value).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains(['\u{202e}', '\u{9b}', '\u{85}']), "{text}");
        assert!(text.contains("\\u202e") && text.contains("→"), "{text}");
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(), value);
    }

    #[test]
    fn one_line_escapes_line_breaks_and_format_characters_but_keeps_punctuation() {
        assert_eq!(one_line("a → b — ✓"), "a → b — ✓");
        assert_eq!(one_line("x\n::error::y"), "x\\n::error::y");
        assert_eq!(one_line("x\r\u{1b}[2K\u{7}"), "x\\r\\u{1b}[2K\\u{7}");
        assert_eq!(one_line("\u{202e}cba\u{2066}"), "\\u{202e}cba\\u{2066}");
        assert_eq!(one_line("next\u{2028}line\u{85}"), "next\\u{2028}line\\u{85}");
    }
}
