//! The strict reader: any JSON, checked key by key, with every error
//! starting with the field it is about. It is the reference reading, so
//! the fast reader's answer must always be one this reader would give.

use serde_json::Value;

use super::{DEFAULT_SKEW_SECONDS, KEYS, OnUnavailable, Settings};
use crate::show::show;
use crate::url::{Base, is_plain_name};

pub(super) fn parse_strict(json: &[u8]) -> Result<Settings, String> {
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
                    Value::String(s) if is_plain_name(s) => owners.push(s.clone()),
                    Value::String(s) => {
                        return Err(format!(
                            "settings.allowed_owners[{i}]: {} is not a plain owner name (letters, digits, '-', '_', '.')",
                            show(s)
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

/// Deepest nesting of `[` and `{` the strict reading accepts. The settings
/// need two levels; serde_json's own limit would let it recurse deeper than
/// the guest's small stack allows (policy-build/src/lib.rs).
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

/// `.key` for a key that reads as a field name, else `["key"]` quoted by
/// `show`: a key with `:`, control characters or a megabyte of text is
/// never echoed raw.
fn field(key: &str) -> String {
    let plain = !key.is_empty() && key.len() <= 64 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if plain {
        format!(".{key}")
    } else {
        format!("[{}]", show(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        Settings::parse(json.as_bytes()).expect_err(json)
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
