//! The control plane's side of `audit` (reading pins) and `promote`
//! (writing one): its token, `CP_ADMIN_API_TOKEN`, read once, registered
//! as a secret and sent only as a sensitive `Authorization: Bearer` header,
//! with a warning when it would cross plain HTTP off this machine.

use reqwest::Url;
use reqwest::header::HeaderValue;

/// The environment variable the control plane's token is read from.
pub const TOKEN_ENV: &str = "CP_ADMIN_API_TOKEN";

/// The token from `CP_ADMIN_API_TOKEN`; unset or blank means none. Trimmed:
/// a trailing newline from a secret file would fail every request.
pub fn token_from_env() -> Option<String> {
    let token = std::env::var(TOKEN_ENV)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())?;
    crate::secrets::register(&token);
    Some(token)
}

/// `Bearer <token>`, marked sensitive so HTTP/2 never indexes it.
pub fn authorization(token: &str) -> Result<HeaderValue, String> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| format!("{TOKEN_ENV} contains characters that cannot be sent in an HTTP header"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Warns when the token is about to go over plain HTTP to another machine
/// (`shown` names the URL as it may be printed).
pub fn warn_if_plain(url: &Url, shown: &str) {
    let loopback = url.host_str().is_some_and(|host| {
        host.eq_ignore_ascii_case("localhost")
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    if url.scheme() == "http" && !loopback {
        tracing::warn!("sending {TOKEN_ENV} to {shown} over plain HTTP; use https");
    }
}
