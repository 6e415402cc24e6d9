//! The settings compiled into the artifact (docs/reference.md §6): four keys, checked
//! strictly so that a mistake is refused when the artifact is built, with a
//! message that names the field.
//!
//! Two readers, one meaning: `strict` reads any JSON and words every
//! error; `fast` reads only the spelling `provgate policy build` writes,
//! because every fresh sandbox reads the settings anew.

mod fast;
mod strict;

use crate::url::Base;

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

    /// The fast path, for the slot's spelling only: `None` on anything
    /// else, and on any value it would have to refuse, leaving the verdict
    /// and the message to [`Settings::parse_strict`]. Where both succeed
    /// they agree (tested in `fast` and by the `settings` fuzz target).
    pub fn parse_canonical(json: &[u8]) -> Option<Settings> {
        fast::parse_canonical(json)
    }

    /// Any JSON: the reference reading of the settings, and the one that
    /// words the errors.
    pub fn parse_strict(json: &[u8]) -> Result<Settings, String> {
        strict::parse_strict(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
