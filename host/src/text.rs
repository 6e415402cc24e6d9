//! Text that came from outside (labels, references, servers' answers), made
//! safe to put in a message: quoted, every control, format or non-ASCII
//! character escaped (so neither a terminal escape, a workflow command on
//! its own line, nor a look-alike letter gets through as itself), and cut.

/// Longest part of a value a message echoes.
pub const MAX_CHARS: usize = 80;

/// `value` in double quotes, escaped and cut to [`MAX_CHARS`] characters.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(MAX_CHARS) + 2);
    out.push('"');
    for (i, c) in value.chars().enumerate() {
        if i == MAX_CHARS {
            out.push_str("\"… (");
            out.push_str(&value.len().to_string());
            out.push_str(" bytes)");
            return out;
        }
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.extend(c.escape_default()),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

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
}
