//! A registry's `WWW-Authenticate` challenge, answered the way docker
//! answers it (distribution spec, "token authentication"): a `Basic`
//! challenge with the basic credentials; a `Bearer` challenge with a token
//! from its realm, fetched by `GET realm?service=…&scope=repository:REPO:pull`
//! (`pull,push` for `policy push`, `push.rs`) (with the basic credentials,
//! or anonymously), or, for an identity token
//! (an OAuth2 refresh token), by the OAuth2 exchange: `POST realm` with the
//! form `grant_type=refresh_token&service=…&scope=…&refresh_token=…&client_id=provgate`.
//!
//! The token service is a third party as far as messages go: its answer is
//! read up to [`MAX_TOKEN_ANSWER_BYTES`] and never shown; errors name its
//! host and status only.

use reqwest::header::{CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{StatusCode, Url};
use serde_json::Value;

use super::reach::{Purpose, header_safe, host_port, plain};
use super::shared::Authorization;
use super::{Ctx, FetchError};
use crate::http::CappedError;
use crate::input::credentials::Credentials;

/// A token answer is a small JSON object; anything bigger is refused.
pub const MAX_TOKEN_ANSWER_BYTES: usize = 64 << 10;
/// The `client_id` of the OAuth2 refresh-token exchange.
const CLIENT_ID: &str = "provgate";

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Challenge {
    /// Lower case: `basic`, `bearer`, …
    pub scheme: String,
    /// Parameter names lower case, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The challenges of a `WWW-Authenticate` value (RFC 9110 §11.6.1): one
/// or more `scheme [param=value, …]`, values tokens or quoted strings
/// (with `\` escapes, commas inside quotes kept), separated by commas.
/// What cannot be read ends the parse; what was read is kept.
pub(super) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut p = Parser {
        s: header.as_bytes(),
        at: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        p.skip(|b| b == b' ' || b == b'\t' || b == b',');
        let Some(scheme) = p.token() else { break };
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        loop {
            p.skip(|b| b == b' ' || b == b'\t' || b == b',');
            let mark = p.at;
            let Some(name) = p.token() else { break };
            p.skip(|b| b == b' ' || b == b'\t');
            if p.peek() != Some(b'=') {
                // A token not followed by `=`: the next challenge's scheme.
                p.at = mark;
                break;
            }
            p.at += 1;
            if p.peek() == Some(b'=') || matches!(p.peek(), None | Some(b',')) {
                // token68 (`Negotiate abc==`): not a parameter; skip it.
                p.skip(|b| b == b'=');
                continue;
            }
            p.skip(|b| b == b' ' || b == b'\t');
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token().map(str::to_string)
            };
            let Some(value) = value else {
                out.push(challenge);
                return out;
            };
            challenge.params.push((name.to_ascii_lowercase(), value));
        }
        out.push(challenge);
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn skip(&mut self, what: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&what) {
            self.at += 1;
        }
    }

    /// RFC 9110 `token` characters.
    fn token(&mut self) -> Option<&'a str> {
        let start = self.at;
        self.skip(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        (self.at > start).then(|| std::str::from_utf8(&self.s[start..self.at]).unwrap_or_default())
    }

    /// A quoted string, unescaped; `None` when it does not end.
    fn quoted(&mut self) -> Option<String> {
        self.at += 1; // the opening quote
        let mut value = Vec::new();
        while let Some(b) = self.peek() {
            self.at += 1;
            match b {
                b'"' => return Some(String::from_utf8_lossy(&value).into_owned()),
                b'\\' => {
                    value.push(self.peek()?);
                    self.at += 1;
                }
                b => value.push(b),
            }
        }
        None
    }
}

impl Ctx<'_> {
    /// After a 401 from the registry: the authorization its challenge asks
    /// for, if there are credentials (or an anonymous token) to give it.
    pub(super) async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Authorization>, FetchError> {
        let challenges: Vec<Challenge> = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .collect();
        let bearer = challenges
            .iter()
            .find(|c| c.scheme == "bearer" && c.param("realm").is_some_and(|r| !r.is_empty()));
        if let Some(bearer) = bearer {
            let realm = bearer.param("realm").unwrap_or_default();
            let service = bearer.param("service");
            return self.token(realm, service).await.map(|t| Some(Authorization::Bearer(t)));
        }
        // A Basic challenge, or none that provgate knows: the basic
        // credentials if there are any (what oci-client and docker do).
        Ok(match self.credentials {
            Credentials::Basic { username, password } => Some(Authorization::Basic(username.clone(), password.clone())),
            Credentials::Anonymous | Credentials::IdentityToken(_) => None,
        })
    }

    /// A token from the token service at `realm` for pulling this fetch's
    /// repository.
    async fn token(&self, realm: &str, service: Option<&str>) -> Result<String, FetchError> {
        let what = "the token realm";
        let mut url = Url::parse(realm)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                self.unusable(
                    "an authentication challenge",
                    format!("its realm {} is not an HTTP(S) URL", self.secrets.show(realm)),
                )
            })?;
        let host = format!("{}://{}", url.scheme(), plain(&host_port(&url)));
        let sends_secret = !matches!(self.credentials, Credentials::Anonymous);
        if sends_secret
            && url.scheme() == "http"
            && self.origin.scheme() == "https"
            && !self.opts.insecure.contains(&host_port_as_named(&url))
        {
            return Err(self.unusable(
                "an authentication challenge",
                format!(
                    "its token realm {host} is plain HTTP, and the credentials are not sent over plain HTTP \
                     to a host --insecure-registry does not name"
                ),
            ));
        }
        let client = self.client_to(&url, Purpose::Realm, what)?;
        let scope = format!("repository:{}:{}", self.repository, self.actions);
        let request = match self.credentials {
            Credentials::IdentityToken(refresh_token) => {
                let mut form = vec![("grant_type", "refresh_token")];
                if let Some(service) = service {
                    form.push(("service", service));
                }
                form.extend([
                    ("scope", scope.as_str()),
                    ("refresh_token", refresh_token.as_str()),
                    ("client_id", CLIENT_ID),
                ]);
                client
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form_encode(&form))
            }
            Credentials::Basic { username, password } => {
                add_query(&mut url, service, &scope);
                client.get(url.clone()).basic_auth(username, Some(password))
            }
            Credentials::Anonymous => {
                add_query(&mut url, service, &scope);
                client.get(url.clone())
            }
        };
        let mut response = request.send().await.map_err(|e| {
            self.send_error(
                e,
                &url,
                Some((Purpose::Realm, what)),
                &format!("token service {host}: "),
            )
        })?;
        let status = response.status();
        if status != StatusCode::OK {
            // The body is the token service's, never shown; not even read.
            let reason = format!("token service {host} answered HTTP {}", status.as_u16());
            return Err(if matches!(status.as_u16(), 400 | 401 | 403) {
                self.refused(reason)
            } else {
                self.unusable("a token", reason)
            });
        }
        let body = crate::http::read_capped(&mut response, MAX_TOKEN_ANSWER_BYTES)
            .await
            .map_err(|e| match e {
                CappedError::Declared(_) | CappedError::TooLarge => FetchError::TooLarge {
                    what: format!("the answer of token service {host}"),
                    limit: MAX_TOKEN_ANSWER_BYTES,
                },
                CappedError::Read(e) => FetchError::Unreachable {
                    registry: self.registry.into(),
                    reason: format!(
                        "reading the answer of token service {host}: {}",
                        super::error::transport(e)
                    ),
                },
            })?;
        let token = token_in(&body).ok_or_else(|| {
            self.unusable(
                "a token",
                format!(
                    "token service {host} answered without a usable token (no \"token\" or \"access_token\" string)"
                ),
            )
        })?;
        // Scrubbed from this fetch's own text only: a token is chosen by
        // the token service, and a process-wide registration would let a
        // hostile one pick what every later log line hides, and grow it.
        self.secrets.add(&token);
        Ok(token)
    }

    /// The registry (or its token service) refused: the credentials, or
    /// their absence.
    fn refused(&self, reason: String) -> FetchError {
        self.error(FetchError::AuthRefused {
            registry: self.registry.into(),
            repository: self.repository.into(),
            reason,
        })
    }
}

/// `token`, else `access_token`, of a token answer: a non-empty string a
/// header can carry.
fn token_in(body: &[u8]) -> Option<String> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    ["token", "access_token"]
        .iter()
        .filter_map(|k| answer.get(k).and_then(Value::as_str))
        .find(|t| !t.is_empty())
        .filter(|t| header_safe(t))
        .map(str::to_string)
}

/// `HOST[:PORT]` as `--insecure-registry` names hosts (the port only when
/// the URL has one).
fn host_port_as_named(url: &Url) -> String {
    super::reach::suggestion(url)
}

/// `service` and `scope` added to a realm's own query.
fn add_query(url: &mut Url, service: Option<&str>, scope: &str) {
    let mut pairs = url.query_pairs_mut();
    if let Some(service) = service {
        pairs.append_pair("service", service);
    }
    pairs.append_pair("scope", scope);
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_into(&mut out, k);
        out.push('=');
        encode_into(&mut out, v);
    }
    out
}

fn encode_into(out: &mut String, value: &str) {
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(char::from(b)),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(header: &str) -> Challenge {
        let mut all = parse_challenges(header);
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    #[test]
    fn a_bearer_challenge_gives_realm_service_and_scope() {
        let c = one(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        );
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        // A comma inside quotes is part of the value.
        assert_eq!(c.param("scope"), Some("repository:samalba/my-app:pull,push"));
    }

    #[test]
    fn schemes_and_names_are_case_insensitive_and_spacing_free() {
        let c = one(r#"BEARER  Realm = "https://r.example/t" , SERVICE=reg.example"#);
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://r.example/t"));
        assert_eq!(c.param("service"), Some("reg.example"));
    }

    #[test]
    fn quoted_strings_unescape_backslashes() {
        let c = one(r#"Bearer realm="https://r.example/t?a=\"b\"\\",service="s""#);
        assert_eq!(c.param("realm"), Some(r#"https://r.example/t?a="b"\"#));
        assert_eq!(c.param("service"), Some("s"));
    }

    #[test]
    fn several_challenges_in_one_header_are_each_read() {
        let all = parse_challenges(r#"Basic realm="Registry Realm", Bearer realm="https://r.example/t",service="s""#);
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(all[0].scheme, "basic");
        assert_eq!(all[0].param("realm"), Some("Registry Realm"));
        assert_eq!(all[1].scheme, "bearer");
        assert_eq!(all[1].param("service"), Some("s"));
        let bare = parse_challenges("Negotiate abc==, Basic realm=x");
        assert_eq!(bare.len(), 2, "{bare:?}");
        assert_eq!(bare[1].param("realm"), Some("x"));
        assert_eq!(parse_challenges("Basic").len(), 1);
    }

    #[test]
    fn a_broken_header_keeps_what_was_read_and_never_panics() {
        let c = parse_challenges(r#"Bearer realm="https://r.example/t",service="never ends"#);
        assert_eq!(c[0].param("realm"), Some("https://r.example/t"));
        assert_eq!(c[0].param("service"), None);
        for junk in [
            "",
            ",,,",
            "=",
            "\"",
            "Bearer =",
            "Bearer realm=",
            "Bearer realm=\"\\",
            "ü realm=x",
        ] {
            let _ = parse_challenges(junk);
        }
    }

    #[test]
    fn a_token_answer_gives_token_or_access_token() {
        assert_eq!(token_in(br#"{"token":"abc"}"#).as_deref(), Some("abc"));
        assert_eq!(token_in(br#"{"access_token":"xyz"}"#).as_deref(), Some("xyz"));
        assert_eq!(
            token_in(br#"{"token":"","access_token":"xyz"}"#).as_deref(),
            Some("xyz")
        );
        assert_eq!(token_in(br#"{"token":"a\nb"}"#), None);
        assert_eq!(token_in(br#"{"token":7}"#), None);
        assert_eq!(token_in(b"not json"), None);
    }

    #[test]
    fn the_refresh_token_form_is_url_encoded() {
        let form = form_encode(&[
            ("grant_type", "refresh_token"),
            ("scope", "repository:a/b:pull"),
            ("x", "a b&c=d"),
        ]);
        assert_eq!(
            form,
            "grant_type=refresh_token&scope=repository%3Aa%2Fb%3Apull&x=a+b%26c%3Dd"
        );
    }
}
