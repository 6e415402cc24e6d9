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
