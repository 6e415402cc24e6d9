//! Quoting of untrusted values inside finding messages.

/// Longest part of a value echoed back; the rest is summarised by its size.
const MAX_CHARS: usize = 72;

/// Quotes a label value for a message (`provgate_contract::text`), so a
/// hostile label can neither flood nor forge the output.
pub fn show(value: &str) -> String {
    provgate_contract::text::quote(value, MAX_CHARS)
}

#[cfg(test)]
mod tests {
    use super::{MAX_CHARS, show};

    #[test]
    fn escapes_control_and_non_ascii_characters() {
        assert_eq!(show("a\nb"), "\"a\\nb\"");
        assert_eq!(show("\u{1b}[31m"), "\"\\u{1b}[31m\"");
        assert_eq!(show("gіt"), "\"g\\u{456}t\"");
        assert_eq!(show("say \"hi\""), "\"say \\\"hi\\\"\"");
    }

    #[test]
    fn plain_values_are_quoted_as_they_are_up_to_the_cut() {
        assert_eq!(show("staging-36b68ae"), "\"staging-36b68ae\"");
        assert_eq!(show(""), "\"\"");
        let at_the_cut = "x".repeat(MAX_CHARS);
        assert_eq!(show(&at_the_cut), format!("\"{at_the_cut}\""));
        let past_the_cut = "x".repeat(MAX_CHARS + 1);
        assert_eq!(
            show(&past_the_cut),
            format!("\"{at_the_cut}\"… ({} bytes)", MAX_CHARS + 1)
        );
    }

    #[test]
    fn cuts_long_values_and_names_their_size() {
        let long = "x".repeat(1_000_000);
        let shown = show(&long);
        assert!(shown.len() < 120, "{shown}");
        assert!(shown.ends_with("(1000000 bytes)"), "{shown}");
    }
}
