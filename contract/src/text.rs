//! Quoting a value that came from outside (a label, a reference, a
//! server's answer) for a message a person or a log reader will see. The
//! guest quotes the values in its findings this way and the host every
//! other value, so no output path lets one through as itself.

/// `value` in double quotes: printable ASCII as is, `"` and `\` escaped
/// with a backslash, every other character (controls, newlines, terminal
/// escapes, bidi and invisible format characters, non-ASCII look-alikes)
/// as a Rust escape, and cut after `max_chars` characters with the whole
/// value's size, so a hostile value can neither forge a line nor flood it.
pub fn quote(value: &str, max_chars: usize) -> String {
    // Most values are short and plain: one copy, not one push per character.
    if value.len() <= max_chars && value.bytes().all(|b| as_is(char::from(b))) {
        return ["\"", value, "\""].concat();
    }
    let mut out = String::with_capacity(value.len().min(max_chars) + 2);
    out.push('"');
    for (i, c) in value.chars().enumerate() {
        if i == max_chars {
            out.push_str("\"… (");
            out.push_str(&value.len().to_string());
            out.push_str(" bytes)");
            return out;
        }
        if as_is(c) {
            out.push(c);
        } else if c == '"' || c == '\\' {
            out.push('\\');
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out.push('"');
    out
}

/// Printable ASCII other than the quote and the backslash: shown unescaped.
/// (A byte of a multi-byte character reads as a non-ASCII char: escaped.)
pub fn as_is(c: char) -> bool {
    (c.is_ascii_graphic() || c == ' ') && c != '"' && c != '\\'
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn controls_newlines_bidi_and_look_alikes_are_escaped() {
        assert_eq!(quote("a\n::error::x", 80), "\"a\\n::error::x\"");
        assert_eq!(quote("\u{1b}[31m", 80), "\"\\u{1b}[31m\"");
        assert_eq!(quote("g\u{456}thub", 80), "\"g\\u{456}thub\"");
        assert_eq!(quote("\u{202e}abc\u{200b}", 80), "\"\\u{202e}abc\\u{200b}\"");
        assert_eq!(quote("say \"hi\" \\o/", 80), "\"say \\\"hi\\\" \\\\o/\"");
    }

    #[test]
    fn plain_values_are_quoted_as_they_are_up_to_the_cut() {
        assert_eq!(quote("staging-36b68ae", 72), "\"staging-36b68ae\"");
        assert_eq!(quote("", 72), "\"\"");
        let at_the_cut = "x".repeat(72);
        assert_eq!(quote(&at_the_cut, 72), format!("\"{at_the_cut}\""));
        assert_eq!(quote(&"x".repeat(73), 72), format!("\"{at_the_cut}\"… (73 bytes)"));
    }

    #[test]
    fn a_long_value_is_cut_and_its_size_named() {
        let shown = quote(&"x".repeat(1_000_000), 72);
        assert!(shown.len() < 120, "{shown}");
        assert!(shown.ends_with("(1000000 bytes)"), "{shown}");
    }
}
