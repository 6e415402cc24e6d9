//! The auth file: docker's `config.json` or containers' `auth.json`, read
//! the way docker's `configfile` package reads it, and the entry in it for
//! one registry (see the [module documentation](super) for the rules).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

use super::Credentials;
use crate::text::quote;

/// Host names Docker Hub's registry goes by.
const HUB_HOSTS: [&str; 3] = ["index.docker.io", "docker.io", "registry-1.docker.io"];

/// The parts of a docker `config.json` (or containers `auth.json`) used here.
#[derive(Debug, Default)]
pub(super) struct ConfigFile {
    auths: BTreeMap<String, AuthEntry>,
    creds_store: String,
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
pub(super) struct AuthEntry {
    auth: String,
    username: String,
    password: String,
    identity_token: String,
}

impl ConfigFile {
    /// Reasons name keys and fields, never values: a value may be a secret
    /// (which is also why serde's typed errors, which quote values, are not used).
    pub(super) fn parse(bytes: &[u8]) -> Result<Self, String> {
        // Like docker's decoder, an empty file is an empty configuration.
        if bytes.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            return Ok(ConfigFile::default());
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("it is not valid JSON ({e})"))?;
        let top = match &value {
            Value::Null => return Ok(ConfigFile::default()),
            Value::Object(top) => top,
            _ => return Err("it is not a JSON object".into()),
        };
        let mut config = ConfigFile {
            creds_store: string_field(top, "credsStore", || "\"credsStore\"".into())?,
            ..ConfigFile::default()
        };
        match field(top, "credHelpers") {
            None => {}
            Some(Value::Object(helpers)) => {
                for (registry, helper) in helpers {
                    let helper = match helper {
                        Value::Null => String::new(),
                        Value::String(helper) => helper.clone(),
                        _ => return Err(format!("credHelpers[{}] is not a string", quote(registry))),
                    };
                    config.cred_helpers.insert(registry.clone(), helper);
                }
            }
            Some(_) => return Err("\"credHelpers\" is not an object".into()),
        }
        match field(top, "auths") {
            None => {}
            Some(Value::Object(auths)) => {
                for (key, entry) in auths {
                    let entry = match entry {
                        Value::Null => AuthEntry::default(),
                        Value::Object(entry) => {
                            let text = |name: &'static str| {
                                string_field(entry, name, || format!("auths[{}].{name}", quote(key)))
                            };
                            AuthEntry {
                                auth: text("auth")?,
                                username: text("username")?,
                                password: text("password")?,
                                identity_token: text("identitytoken")?,
                            }
                        }
                        _ => return Err(format!("auths[{}] is not an object", quote(key))),
                    };
                    config.auths.insert(key.clone(), entry);
                }
            }
            Some(_) => return Err("\"auths\" is not an object".into()),
        }
        Ok(config)
    }

    /// The helper for `key` and where it was configured: `credHelpers[key]`
    /// if present (an empty one means "use `auths`"), else `credsStore`.
    pub(super) fn helper_for(&self, key: &str, registry: &str) -> Option<(String, &str)> {
        let mut named = self.cred_helpers.get_key_value(key);
        if named.is_none() && is_hub(registry) {
            named = HUB_HOSTS.iter().find_map(|host| self.cred_helpers.get_key_value(*host));
        }
        match named {
            Some((_, helper)) if helper.is_empty() => None,
            Some((entry, helper)) => Some((format!("credHelpers[{}]", quote(entry)), helper.as_str())),
            None if self.creds_store.is_empty() => None,
            None => Some(("\"credsStore\"".into(), self.creds_store.as_str())),
        }
    }

    /// `auths[key]`, else the first key that reduces to the same host.
    pub(super) fn auth_entry_for(&self, key: &str, registry: &str) -> Option<(&str, &AuthEntry)> {
        if let Some((key, entry)) = self.auths.get_key_value(key) {
            return Some((key, entry));
        }
        let wanted = canonical_host(registry);
        self.auths
            .iter()
            .find(|(key, _)| canonical_host(convert_to_hostname(key)) == wanted)
            .map(|(key, entry)| (key.as_str(), entry))
    }
}

impl AuthEntry {
    /// The error names the field at fault, never its value.
    pub(super) fn credentials(&self) -> Result<Credentials, &'static str> {
        if !self.identity_token.is_empty() {
            return Ok(Credentials::IdentityToken(self.identity_token.clone()));
        }
        if self.auth.is_empty() {
            return Ok(Credentials::basic(self.username.clone(), self.password.clone()));
        }
        let (username, password) = decode_auth(&self.auth)?;
        Ok(Credentials::basic(username, password))
    }
}

/// Docker's `decodeAuth`: base64 of `user:password`, the user not empty,
/// NULs trimmed from the password. Like Go's decoder, line breaks are
/// skipped and non-zero trailing bits allowed; padding may be missing.
fn decode_auth(auth: &str) -> Result<(String, String), &'static str> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let cleaned: String = auth.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    let decoded = LENIENT.decode(cleaned).map_err(|_| "auth is not valid base64")?;
    let text = String::from_utf8(decoded).map_err(|_| "auth does not decode to UTF-8 text")?;
    match text.split_once(':') {
        Some((user, password)) if !user.is_empty() => Ok((user.to_string(), password.trim_matches('\0').to_string())),
        Some(_) => Err("auth decodes to an empty user name"),
        None => Err("auth does not decode to user:password"),
    }
}

/// The member `name`, or else one whose name differs only in case (Go's
/// `encoding/json` matching); JSON `null` counts as absent.
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .get(name)
        .or_else(|| {
            object
                .iter()
                .find_map(|(key, value)| key.eq_ignore_ascii_case(name).then_some(value))
        })
        .filter(|value| !value.is_null())
}

pub(super) fn string_field(
    object: &Map<String, Value>,
    name: &str,
    what: impl Fn() -> String,
) -> Result<String, String> {
    match field(object, name) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{} is not a string", what())),
    }
}

pub(super) fn is_hub(registry: &str) -> bool {
    HUB_HOSTS.iter().any(|host| host.eq_ignore_ascii_case(registry))
}

/// A host for comparing: lower case, Docker Hub's names as one.
fn canonical_host(host: &str) -> String {
    if is_hub(host) {
        HUB_HOSTS[0].to_string()
    } else {
        host.to_ascii_lowercase()
    }
}

/// Docker's `credentials.ConvertToHostname`: a URL's host\[:port\], else
/// everything before the first `/`.
fn convert_to_hostname(key: &str) -> &str {
    if let Some((_, rest)) = key.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        if let Some(host) = url_host(host_port) {
            return host;
        }
    }
    key.split('/').next().unwrap_or_default()
}

/// Go's `url.Hostname()` joined with `url.Port()`: brackets stay only
/// around an IPv6 address that has a port; `None` if there is no host.
fn url_host(host_port: &str) -> Option<&str> {
    let host_port = host_port.strip_suffix(':').unwrap_or(host_port);
    if let Some(inner) = host_port.strip_prefix('[') {
        let (address, after) = inner.split_once(']')?;
        return match after {
            "" => (!address.is_empty()).then_some(address),
            port if port.len() > 1 && port.starts_with(':') => Some(host_port),
            _ => None,
        };
    }
    (!host_port.is_empty() && !host_port.starts_with(':')).then_some(host_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_reduce_to_hosts_like_docker() {
        for (key, host) in [
            ("https://index.docker.io/v1/", "index.docker.io"),
            ("http://registry.example:5000", "registry.example:5000"),
            ("https://user@registry.example/path?q", "registry.example"),
            ("https://[::1]:5000/v2/", "[::1]:5000"),
            ("https://[::1]/", "::1"),
            ("registry.example/namespace/repo", "registry.example"),
            ("registry.example", "registry.example"),
        ] {
            assert_eq!(convert_to_hostname(key), host, "{key}");
        }
    }

    #[test]
    fn base64_is_decoded_like_go() {
        assert_eq!(decode_auth("dTpw").unwrap(), ("u".into(), "p".into()));
        assert_eq!(decode_auth("dTpwAA==").unwrap(), ("u".into(), "p".into())); // "u:p\0"
        assert_eq!(decode_auth("dTpwcQ").unwrap(), ("u".into(), "pq".into())); // no padding
        assert_eq!(decode_auth("dTpw\ncQ==").unwrap(), ("u".into(), "pq".into()));
        assert!(decode_auth("OnA=").is_err()); // ":p"
        assert!(decode_auth("dXA=").is_err()); // "up"
    }
}
