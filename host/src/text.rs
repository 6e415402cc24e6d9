//! Text that came from outside (labels, references, servers' answers), made
//! safe to put in any message provgate writes — terminal, workflow commands,
//! logs, errors: quoted, every control, format or non-ASCII character
//! escaped (so neither a terminal escape, a workflow command on its own
//! line, nor a look-alike letter gets through as itself), and cut.

/// Longest part of a value a message echoes.
pub const MAX_CHARS: usize = 80;

/// `value` in double quotes, escaped (`provgate_contract::text`) and cut
/// to [`MAX_CHARS`] characters.
pub fn quote(value: &str) -> String {
    provgate_contract::text::quote(value, MAX_CHARS)
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
