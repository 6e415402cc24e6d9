//! The one spelling of a Gitea URL that provgate accepts: the configured
//! base (`scheme://host[:port]`), the pieces a source label splits into,
//! and the owner and repository names in its path. Shared by the settings,
//! which read the base, and `source.trusted`, which checks labels against it.
//! Deliberately not a general URL parser: anything a URL library would
//! normalise (percent-encoding, dot segments, user-info, IDNA) is refused.

use std::fmt;

use crate::show::show;

/// The configured Gitea: scheme, host and port, nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Base {
    pub scheme: String,
    pub host: String,
    pub port: u16,
    /// `scheme://host[:port]` as the messages show it, spelled once when
    /// the settings are read rather than formatted in every verdict.
    url: String,
}

impl Base {
    /// Parses `scheme://host[:port]` (one trailing `/` tolerated).
    pub fn parse(url: &str) -> Result<Base, String> {
        let (scheme, rest) = split_scheme(url).ok_or_else(|| format!("{} is not scheme://host[:port]", show(url)))?;
        let default_port =
            default_port(scheme).ok_or_else(|| format!("scheme {} is not http or https", show(scheme)))?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.bytes().any(|b| matches!(b, b'/' | b'?' | b'#')) {
            return Err(format!(
                "{} has a path, query or fragment; give only scheme://host[:port]",
                show(url)
            ));
        }
        if authority.contains('@') {
            return Err(format!("{} has user-info; credentials never go in the URL", show(url)));
        }
        let (host, port) = split_host_port(authority).map_err(|e| format!("{}: {e}", show(url)))?;
        if !is_hostname(host) {
            return Err(format!("{} is not a valid host name", show(host)));
        }
        let host = host.to_ascii_lowercase();
        // Every fresh sandbox reads the settings anew: no `format!` here.
        let mut url = [scheme, "://", &host].concat();
        if let Some(port) = port {
            url.push(':');
            url.push_str(&port.to_string());
        }
        Ok(Base {
            scheme: scheme.to_owned(),
            host,
            port: port.unwrap_or(default_port),
            url,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// `url.split_once("://")`, without setting up a substring search (a large
/// share of `Base::parse` in the guest) when the first `:` starts it.
pub(crate) fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let colon = url.find(':')?;
    match url[colon..].strip_prefix("://") {
        Some(rest) => Some((&url[..colon], rest)),
        None => url.split_once("://"),
    }
}

pub(crate) fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

pub(crate) fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    match authority.rsplit_once(':') {
        None => Ok((authority, None)),
        Some((host, port)) => {
            if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("port {} is not a number", show(port)));
            }
            match port.parse::<u16>() {
                Ok(p) if p > 0 => Ok((host, Some(p))),
                _ => Err(format!("port {} is out of range", show(port))),
            }
        }
    }
}

/// A DNS name or IPv4 address in plain ASCII: dot-separated labels of
/// letters, digits and inner hyphens.
fn is_hostname(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// An owner or repository name as Gitea spells it: letters, digits, `-`,
/// `_`, `.`, and never `.` or `..` alone.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_scheme_agrees_with_split_once() {
        for url in [
            "https://git.example.org",
            "http://h:3000/",
            "a:b://c",
            "a:/b://c",
            "nocolon",
            "a:/b",
            ":://",
            "://x",
            "",
        ] {
            assert_eq!(split_scheme(url), url.split_once("://"), "{url:?}");
        }
    }
}
