//! The fast reader, for the one spelling `provgate policy build` writes into
//! the slot: compact JSON, keys in sorted order, strings without escapes
//! (`host/src/policy/slot.rs`). Reading the JSON into a `Value` cost about
//! as much as the rules themselves in a fresh sandbox.

use super::{DEFAULT_SKEW_SECONDS, OnUnavailable, Settings};
use crate::url::{Base, is_plain_name};

/// The settings in the slot's spelling, or `None` to leave them to the
/// strict reader.
pub(super) fn parse_canonical(json: &[u8]) -> Option<Settings> {
    let mut c = Canonical(std::str::from_utf8(json).ok()?);
    c.eat("{")?;
    let mut allowed_owners = Vec::new();
    c.eat("\"allowed_owners\":[")?;
    loop {
        let owner = c.string()?;
        if !is_plain_name(owner) {
            return None;
        }
        allowed_owners.push(owner.to_owned());
        if c.eat("]").is_some() {
            break;
        }
        c.eat(",")?;
    }
    let created_max_skew_seconds = match c.eat(",\"created_max_skew_seconds\":") {
        Some(()) => c.number()?,
        None => DEFAULT_SKEW_SECONDS,
    };
    c.eat(",\"gitea_base_url\":")?;
    let base = Base::parse(c.string()?).ok()?;
    let on_unavailable = match c.eat(",\"on_unavailable\":") {
        Some(()) => match c.string()? {
            "deny" => OnUnavailable::Deny,
            "allow" => OnUnavailable::Allow,
            _ => return None,
        },
        None => OnUnavailable::Deny,
    };
    c.eat("}")?;
    c.0.is_empty().then_some(Settings {
        base,
        allowed_owners,
        created_max_skew_seconds,
        on_unavailable,
    })
}

/// A cursor over canonical settings JSON; every step is all or nothing.
struct Canonical<'a>(&'a str);

impl<'a> Canonical<'a> {
    fn eat(&mut self, token: &str) -> Option<()> {
        self.0 = self.0.strip_prefix(token)?;
        Some(())
    }

    /// A string with no escapes (and so no control characters, which JSON
    /// would have escaped).
    fn string(&mut self) -> Option<&'a str> {
        let rest = self.0.strip_prefix('"')?;
        let end = rest.bytes().position(|b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest.as_bytes()[end] != b'"' {
            return None;
        }
        self.0 = &rest[end + 1..];
        Some(&rest[..end])
    }

    /// A whole number that fits a `u32`, spelt as JSON spells it (no sign,
    /// no leading zero, no fraction or exponent).
    fn number(&mut self) -> Option<u32> {
        let end = self.0.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(self.0.len());
        let (digits, rest) = self.0.split_at(end);
        if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) || rest.starts_with(['.', 'e', 'E']) {
            return None;
        }
        self.0 = rest;
        digits.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::settings::{OnUnavailable, Settings};

    /// What `provgate policy build` writes: `slot::canonical`, compact JSON
    /// with sorted keys.
    fn canonical(json: &str) -> Vec<u8> {
        let value: Value = serde_json::from_str(json).unwrap();
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn the_slot_spelling_of_the_project_settings_takes_the_fast_path() {
        let raw = include_str!("../../../policies/molecule.json");
        let fast = Settings::parse_canonical(&canonical(raw)).expect("fast path");
        assert_eq!(Ok(fast), Settings::parse_strict(raw.as_bytes()));
        let minimal = canonical(r#"{"gitea_base_url":"http://g:3000/","allowed_owners":["a","b.c"]}"#);
        let fast = Settings::parse_canonical(&minimal).expect("optional keys left out");
        assert_eq!(fast.created_max_skew_seconds, 300);
        assert_eq!(fast.on_unavailable, OnUnavailable::Deny);
        assert_eq!(Ok(fast), Settings::parse_strict(&minimal));
    }

    #[test]
    fn the_fast_path_leaves_every_other_spelling_to_the_strict_reading() {
        let base = r#""gitea_base_url":"https://g""#;
        for json in [
            // Not canonical: white space, key order, escapes.
            format!(r#"{{ "allowed_owners":["a"],{base}}}"#),
            format!(r#"{{{base},"allowed_owners":["a"]}}"#),
            format!(r#"{{"allowed_owners":["\u0061"],{base}}}"#),
            // Refused values: the strict reading words the error.
            format!(r#"{{"allowed_owners":[],{base}}}"#),
            format!(r#"{{"allowed_owners":["a/b"],{base}}}"#),
            format!(r#"{{"allowed_owners":["a"],"created_max_skew_seconds":030,{base}}}"#),
            format!(r#"{{"allowed_owners":["a"],"created_max_skew_seconds":3e2,{base}}}"#),
            format!(r#"{{"allowed_owners":["a"],"created_max_skew_seconds":4294967296,{base}}}"#),
            format!(r#"{{"allowed_owners":["a"],"created_max_skew_seconds":-1,{base}}}"#),
            r#"{"allowed_owners":["a"],"gitea_base_url":"https://g/x"}"#.to_string(),
            format!(r#"{{"allowed_owners":["a"],{base},"on_unavailable":"maybe"}}"#),
            format!(r#"{{"allowed_owners":["a"],{base},"on_unavailable":null}}"#),
            format!(r#"{{"allowed_owners":["a"],{base}}} "#),
            format!(r#"{{"allowed_owners":["a"],{base},"colour":1}}"#),
            format!(r#"{{"allowed_owners":["a"],{base}"#),
        ] {
            assert_eq!(Settings::parse_canonical(json.as_bytes()), None, "{json}");
        }
        // And a few the strict reading accepts too: the same settings.
        for json in [
            format!(r#"{{"allowed_owners":["a"],"created_max_skew_seconds":0,{base}}}"#),
            format!(r#"{{"allowed_owners":["a"],"created_max_skew_seconds":4294967295,{base}}}"#),
            format!(r#"{{"allowed_owners":["a","a"],{base},"on_unavailable":"allow"}}"#),
        ] {
            let fast = Settings::parse_canonical(json.as_bytes()).expect(&json);
            assert_eq!(Ok(fast), Settings::parse_strict(json.as_bytes()), "{json}");
        }
    }
}
