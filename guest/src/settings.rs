//! The settings compiled into the artifact (SPEC §5): four keys, checked
//! strictly so that a mistake is refused when the artifact is built, with a
//! message that names the field.

use serde_json::Value;

use crate::rules::source::Base;

pub const KEYS: [&str; 4] = [
    "gitea_base_url",
    "allowed_owners",
    "created_max_skew_seconds",
    "on_unavailable",
];

const DEFAULT_SKEW_SECONDS: u32 = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnUnavailable {
    Deny,
    Allow,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub base: Base,
    pub allowed_owners: Vec<String>,
    pub created_max_skew_seconds: u32,
    pub on_unavailable: OnUnavailable,
}

impl Settings {
    /// Parses the settings JSON; every error starts with the field it is about.
    pub fn parse(json: &[u8]) -> Result<Settings, String> {
        match Settings::parse_canonical(json) {
            Some(settings) => Ok(settings),
            None => Settings::parse_strict(json),
        }
    }

    /// The fast path, for the one spelling `provgate policy build` writes into
    /// the slot: compact JSON, keys in sorted order, strings without escapes
    /// (`host/src/policy/slot.rs`). It gives up (`None`) on anything else, and
    /// on any value it would have to refuse, leaving the verdict and the
    /// message to `parse_strict`; where both succeed they agree (tested
    /// below and by the `settings` fuzz target). Reading the JSON into a
    /// `Value` cost about as much as the rules themselves in a fresh sandbox.
    pub fn parse_canonical(json: &[u8]) -> Option<Settings> {
        let mut c = Canonical(std::str::from_utf8(json).ok()?);
        c.eat("{")?;
        let mut allowed_owners = Vec::new();
        c.eat("\"allowed_owners\":[")?;
        loop {
            let owner = c.string()?;
            if !crate::rules::source::is_plain_name(owner) {
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

    /// Any JSON: the reference reading of the settings, and the one that
    /// words the errors.
    pub fn parse_strict(json: &[u8]) -> Result<Settings, String> {
        if !nested_at_most(json, MAX_DEPTH) {
            return Err(format!(
                "settings: nested more than {MAX_DEPTH} levels deep (they are one object of strings, numbers and a list)"
            ));
        }
        let value: Value = serde_json::from_slice(json).map_err(|e| format!("settings: not valid JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err("settings: expected a JSON object".into());
        };
        if let Some(unknown) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!(
                "settings{}: unknown key (the settings are exactly: {})",
                field(unknown),
                KEYS.join(", ")
            ));
        }

        let base = match map.get("gitea_base_url") {
            None => return Err("settings.gitea_base_url: required".into()),
            Some(Value::String(s)) => Base::parse(s).map_err(|e| format!("settings.gitea_base_url: {e}"))?,
            Some(_) => return Err("settings.gitea_base_url: expected a string".into()),
        };

        let allowed_owners = match map.get("allowed_owners") {
            None => return Err("settings.allowed_owners: required".into()),
            Some(Value::Array(items)) if items.is_empty() => {
                return Err("settings.allowed_owners: must name at least one owner".into());
            }
            Some(Value::Array(items)) => {
                let mut owners = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) if crate::rules::source::is_plain_name(s) => owners.push(s.clone()),
                        Value::String(s) => {
                            return Err(format!(
                                "settings.allowed_owners[{i}]: {} is not a plain owner name (letters, digits, '-', '_', '.')",
                                crate::show::show(s)
                            ));
                        }
                        _ => return Err(format!("settings.allowed_owners[{i}]: expected a string")),
                    }
                }
                owners
            }
            Some(_) => return Err("settings.allowed_owners: expected an array of strings".into()),
        };

        let created_max_skew_seconds = match map.get("created_max_skew_seconds") {
            None => DEFAULT_SKEW_SECONDS,
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or("settings.created_max_skew_seconds: expected a whole number of seconds from 0 to 4294967295")?,
            Some(_) => return Err("settings.created_max_skew_seconds: expected a number".into()),
        };

        let on_unavailable = match map.get("on_unavailable") {
            None => OnUnavailable::Deny,
            Some(Value::String(s)) if s == "deny" => OnUnavailable::Deny,
            Some(Value::String(s)) if s == "allow" => OnUnavailable::Allow,
            Some(_) => return Err("settings.on_unavailable: expected \"deny\" or \"allow\"".into()),
        };

        Ok(Settings {
            base,
            allowed_owners,
            created_max_skew_seconds,
            on_unavailable,
        })
    }
}

/// Deepest nesting of `[` and `{` the strict reading accepts. The settings
/// need two levels; serde_json would recurse to 128, which takes more than
/// the guest's 16 KiB stack (host/build/guest.rs).
const MAX_DEPTH: usize = 8;

/// True when `json` never nests arrays and objects deeper than `max`
/// (brackets inside strings don't count). Not a JSON check: serde_json
/// still reads what passes.
fn nested_at_most(json: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > max {
                        return false;
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    true
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

/// `.key` for a key that reads as a field name, else `["key"]` quoted by
/// `show`: a key with `:`, control characters or a megabyte of text is
/// never echoed raw.
fn field(key: &str) -> String {
    let plain = !key.is_empty() && key.len() <= 64 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if plain {
        format!(".{key}")
    } else {
        format!("[{}]", crate::show::show(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        Settings::parse(json.as_bytes()).expect_err(json)
    }

    #[test]
    fn project_settings_parse_with_defaults_filled_in() {
        let s = Settings::parse(br#"{"gitea_base_url":"https://git.example.org","allowed_owners":["molecule-ai"]}"#)
            .unwrap();
        assert_eq!(s.base.to_string(), "https://git.example.org");
        assert_eq!(s.created_max_skew_seconds, 300);
        assert_eq!(s.on_unavailable, OnUnavailable::Deny);
    }

    #[test]
    fn the_base_url_is_shown_lower_cased_with_its_port_only_when_given() {
        for (given, shown) in [
            ("https://Git.Example.org/", "https://git.example.org"),
            ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
            ("https://git.example.org:443", "https://git.example.org:443"),
        ] {
            let json = format!(r#"{{"gitea_base_url":"{given}","allowed_owners":["a"]}}"#);
            let s = Settings::parse(json.as_bytes()).expect(given);
            assert_eq!(s.base.as_str(), shown, "{given}");
            assert_eq!(s.base.to_string(), shown, "{given}");
        }
    }

    /// What `provgate policy build` writes: `slot::canonical`, compact JSON
    /// with sorted keys.
    fn canonical(json: &str) -> Vec<u8> {
        let value: Value = serde_json::from_str(json).unwrap();
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn the_slot_spelling_of_the_project_settings_takes_the_fast_path() {
        let raw = include_str!("../../policies/molecule.json");
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

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        assert!(nested_at_most(br#"{"a":["[[[[","{{{{"]}"#, 2));
        assert!(nested_at_most(br#"{"a":["\"[[[[\\"]}"#, 2));
        assert!(!nested_at_most(br#"{"a":[["b"]]}"#, 2));
        assert!(nested_at_most(br#"{"a":[["b"]]}"#, 3));
        assert!(err(&format!("{}{}", "[".repeat(9), "]".repeat(9))).contains("nested more than 8 levels"));
    }

    #[test]
    fn each_error_names_its_field() {
        assert!(
            err(r#"{"gitea_base_url":"https://g","allowed_owners":["a"],"colour":1}"#)
                .starts_with("settings.colour: unknown key")
        );
        assert!(err(r#"{"allowed_owners":["a"]}"#).starts_with("settings.gitea_base_url: required"));
        assert!(
            err(r#"{"gitea_base_url":7,"allowed_owners":["a"]}"#)
                .starts_with("settings.gitea_base_url: expected a string")
        );
        assert!(
            err(r#"{"gitea_base_url":"https://g/x","allowed_owners":["a"]}"#).starts_with("settings.gitea_base_url:")
        );
        assert!(err(r#"{"gitea_base_url":"https://g","allowed_owners":"a"}"#).starts_with("settings.allowed_owners:"));
        assert!(
            err(r#"{"gitea_base_url":"https://g","allowed_owners":["a/b"]}"#)
                .starts_with("settings.allowed_owners[0]:")
        );
        assert!(
            err(r#"{"gitea_base_url":"https://g","allowed_owners":["a"],"created_max_skew_seconds":-1}"#)
                .starts_with("settings.created_max_skew_seconds:")
        );
        assert!(
            err(r#"{"gitea_base_url":"https://g","allowed_owners":["a"],"on_unavailable":"maybe"}"#)
                .starts_with("settings.on_unavailable:")
        );
        assert!(
            err(r#"{"gitea_base_url":"https://g","allowed_owners":["a"],"a:b\u001b[2J":1}"#)
                .starts_with(r#"settings["a:b\u{1b}[2J"]: unknown key"#)
        );
        assert!(err("[1]").starts_with("settings: expected a JSON object"));
        assert!(err("{").starts_with("settings: not valid JSON"));
    }
}
