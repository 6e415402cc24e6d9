//! The pins an audit judges: read from a file, standard input or the
//! control plane, as a JSON array or JSON lines, in either shape the control
//! plane writes (`{runtime, digest, source_sha}` from the pins endpoint,
//! `{template_name, image_digest, git_sha}` from the promote endpoint).
//!
//! A row that cannot be a pin is reported with its place and skipped; only
//! input that is not pins at all (an array that is not JSON, nothing but
//! malformed rows) stops the audit.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::commands::control_plane;
use crate::http::{CappedError, error_chain, read_capped, read_prefix};
use crate::input::MAX_INPUT_BYTES;
use crate::retry::{Peer, Retry, Schedule, was_reset};
use crate::text::quote;

/// The environment variable whose value is sent as `Authorization: Bearer …`
/// when the pins come from a URL.
pub use crate::commands::control_plane::TOKEN_ENV;

/// How long the control plane may take to send the pins.
pub const URL_TIMEOUT: Duration = Duration::from_secs(60);

/// One pin, as the control plane stores it, and where it stood in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinRow {
    /// 0-based position among the input's rows (array index, or the n-th
    /// non-blank line), malformed rows included: a stable key for the output.
    pub index: usize,
    /// 1-based line number, for JSON lines.
    pub line: Option<usize>,
    pub runtime: String,
    pub digest: String,
    /// `None` when missing, `null`, empty or blank: an old pin.
    pub source_sha: Option<String>,
    /// The repository (`registry/owner/name`, optionally `:tag`) the row names.
    pub image: Option<String>,
}

/// Where a row stood in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// 1-based line of a JSON lines input.
    Line(usize),
    /// 0-based index into a JSON array.
    Index(usize),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Line(n) => write!(f, "line {n}"),
            Place::Index(n) => write!(f, "array index {n}"),
        }
    }
}

/// A row that is not a pin, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    pub place: Place,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Array,
    Lines,
}

#[derive(Debug)]
pub struct Pins {
    pub shape: Shape,
    pub pins: Vec<PinRow>,
    pub malformed: Vec<Malformed>,
}

/// Both control-plane shapes; anything else in a row is ignored.
#[derive(Deserialize)]
struct RawPin {
    #[serde(alias = "template_name")]
    runtime: Option<String>,
    #[serde(alias = "image_digest")]
    digest: Option<String>,
    #[serde(alias = "git_sha")]
    source_sha: Option<String>,
    image: Option<String>,
}

impl RawPin {
    fn into_row(self, index: usize, line: Option<usize>) -> Result<PinRow, String> {
        let runtime = self
            .runtime
            .filter(|r| !r.trim().is_empty())
            .ok_or("no runtime (or template_name)")?;
        let digest = self
            .digest
            .filter(|d| !d.trim().is_empty())
            .ok_or("no digest (or image_digest)")?;
        let image = match self.image {
            Some(image) if image.trim().is_empty() => None,
            image => image,
        };
        Ok(PinRow {
            index,
            line,
            runtime,
            digest,
            source_sha: self.source_sha.filter(|s| !s.trim().is_empty()),
            image,
        })
    }
}

/// Parses a JSON array (first non-blank character `[`) or JSON lines.
pub fn parse(bytes: &[u8]) -> anyhow::Result<Pins> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let parsed = match first {
        None => bail!("it is empty; expected a JSON array or JSON lines of pins"),
        Some(b'[') => parse_array(bytes)?,
        Some(_) => parse_lines(bytes),
    };
    if parsed.pins.is_empty() && !parsed.malformed.is_empty() {
        let first = &parsed.malformed[0];
        bail!(
            "none of its {} rows is a pin (first: {}: {}); expected {{runtime, digest, source_sha}} \
             or {{template_name, image_digest, git_sha}} objects",
            parsed.malformed.len(),
            first.place,
            first.reason
        );
    }
    Ok(parsed)
}

fn parse_array(bytes: &[u8]) -> anyhow::Result<Pins> {
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(bytes).context("it starts with '[' but is not a JSON array")?;
    let mut pins = Pins {
        shape: Shape::Array,
        pins: Vec::with_capacity(rows.len()),
        malformed: Vec::new(),
    };
    for (index, row) in rows.into_iter().enumerate() {
        let result = if row.is_object() {
            serde_json::from_value::<RawPin>(row)
                .map_err(|e| e.to_string())
                .and_then(|raw| raw.into_row(index, None))
        } else {
            Err(format!("{} is not a JSON object", kind(&row)))
        };
        match result {
            Ok(pin) => pins.pins.push(pin),
            Err(reason) => pins.malformed.push(Malformed {
                place: Place::Index(index),
                reason,
            }),
        }
    }
    Ok(pins)
}

fn parse_lines(bytes: &[u8]) -> Pins {
    let mut pins = Pins {
        shape: Shape::Lines,
        pins: Vec::new(),
        malformed: Vec::new(),
    };
    let mut index = 0;
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line_no = n + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let result = match std::str::from_utf8(line) {
            Err(_) => Err("it is not UTF-8".to_string()),
            Ok(text) => match serde_json::from_str::<serde_json::Value>(text) {
                Err(e) => Err(format!("not JSON: {e}")),
                Ok(value) if !value.is_object() => Err(format!("{} is not a JSON object", kind(&value))),
                Ok(value) => serde_json::from_value::<RawPin>(value)
                    .map_err(|e| e.to_string())
                    .and_then(|raw| raw.into_row(index, Some(line_no))),
            },
        };
        match result {
            Ok(pin) => pins.pins.push(pin),
            Err(reason) => pins.malformed.push(Malformed {
                place: Place::Line(line_no),
                reason,
            }),
        }
        index += 1;
    }
    pins
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Is `--pins` a URL (rather than a file or `-`)?
pub fn is_url(source: &str) -> bool {
    let lower = source.get(..8).unwrap_or(source).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// A URL as it may be shown: scheme, host, port and path; never user-info
/// or a query, which might carry a secret.
pub fn shown_url(url: &Url) -> String {
    let mut shown = url.origin().ascii_serialization();
    shown.push_str(url.path());
    shown
}

/// Reads the pins from the control plane: one GET with
/// `Authorization: Bearer $CP_ADMIN_API_TOKEN`, no redirects, a capped body.
/// Any answer but 2xx is an error that names the status and never the token.
pub async fn fetch_url(source: &str, timeout: Duration) -> anyhow::Result<Vec<u8>> {
    let url = Url::parse(source).map_err(|e| anyhow!("--pins is not a valid URL: {e}"))?;
    let shown = shown_url(&url);
    let token = control_plane::token_from_env();
    let scrub = |text: String| match &token {
        Some(token) => text.replace(token.as_str(), "***"),
        None => text,
    };
    let http = crate::http::client_builder()
        .connect_timeout(timeout)
        .build()
        .map_err(|e| anyhow!("cannot set up the HTTP client: {e}"))?;
    if token.is_some() {
        control_plane::warn_if_plain(&url, &shown);
    }
    let mut request = http.get(url.clone()).header(ACCEPT, "application/json");
    if let Some(token) = &token {
        request = request.header(
            AUTHORIZATION,
            control_plane::authorization(token).map_err(|e| anyhow!(e))?,
        );
    }
    // One attempt: the pins, or the failure and whether a retry may help.
    let attempt = |request: reqwest::RequestBuilder| async {
        let mut response = match crate::latency::timed(Peer::Pins, request.send()).await {
            Ok(response) => response,
            Err(e) => {
                let retry = Retry::for_error(&e);
                let chain = scrub(error_chain(&e.without_url()));
                let hint = url
                    .host_str()
                    .and_then(|host| crate::tls::explain(&chain, host, None))
                    .map(|hint| format!("{hint}; "))
                    .unwrap_or_default();
                let reason = format!("cannot read pins from {shown}: {hint}{chain}");
                return Err((reason, retry));
            }
        };
        let status = response.status();
        if !status.is_success() {
            let retry = Retry::for_status(status, response.headers());
            let excerpt = read_prefix(&mut response, 4096).await;
            let excerpt = scrub(String::from_utf8_lossy(&excerpt).into_owned());
            let hint = match (status, &token) {
                (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, None) => {
                    format!(" ({TOKEN_ENV} is not set)")
                }
                (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, Some(_)) => {
                    format!(" (check {TOKEN_ENV}: the control plane refused it)")
                }
                _ if status.is_redirection() => " (provgate does not follow redirects; give the final URL)".into(),
                _ => String::new(),
            };
            let said = match excerpt.trim() {
                "" => String::new(),
                excerpt => format!(": {}", quote(excerpt)),
            };
            return Err((
                format!("the control plane answered HTTP {status} for {shown}{hint}{said}"),
                retry,
            ));
        }
        read_capped(&mut response, MAX_INPUT_BYTES as usize)
            .await
            .map_err(|e| match e {
                CappedError::Declared(len) => (
                    format!(
                        "{shown} declared {len} bytes of pins, more than the {} MiB provgate reads",
                        MAX_INPUT_BYTES >> 20
                    ),
                    Retry::No,
                ),
                CappedError::TooLarge => (
                    format!(
                        "{shown} sent more than the {} MiB of pins provgate reads",
                        MAX_INPUT_BYTES >> 20
                    ),
                    Retry::No,
                ),
                CappedError::Read(e) => {
                    let retry = if was_reset(&e) {
                        Retry::Yes { after: None }
                    } else {
                        Retry::No
                    };
                    let reason = format!(
                        "reading pins from {shown} broke off: {}",
                        scrub(error_chain(&e.without_url()))
                    );
                    (reason, retry)
                }
            })
    };
    let mut schedule = Schedule::new(Peer::Pins, timeout);
    loop {
        let this = request
            .try_clone()
            .ok_or_else(|| anyhow!("cannot repeat the request for {shown}"))?;
        let (reason, retry) = match tokio::time::timeout_at(schedule.deadline(), attempt(this)).await {
            Ok(Ok(pins)) => return Ok(pins),
            Ok(Err(failed)) => failed,
            Err(_) => bail!("{shown} did not send the pins within {timeout:?}{}", schedule.which()),
        };
        match schedule.next(retry) {
            Ok(wait) => {
                tracing::info!(url = %shown, attempt = schedule.attempt(), "retrying the pins URL: {reason}");
                tokio::time::sleep(wait).await;
            }
            Err(why) => bail!("{reason}{why}; no pin was judged"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:8cbffb2fd0364dd51e206a3ed61d584d5a7668fb71df7469702d24b6d2536d09";

    #[test]
    fn both_control_plane_shapes_and_extra_fields() {
        let input = format!(
            "{{\"runtime\":\"python\",\"digest\":\"{D}\",\"source_sha\":\"abc\",\"id\":7}}\n\
             \n\
             {{\"template_name\":\"node\",\"image_digest\":\"{D}\",\"git_sha\":\"\"}}\n\
             {{\"runtime\":\"go\",\"digest\":\"{D}\",\"source_sha\":null,\"image\":\"r.example/x\"}}\n"
        );
        let pins = parse(input.as_bytes()).unwrap();
        assert_eq!(pins.shape, Shape::Lines);
        assert!(pins.malformed.is_empty(), "{:?}", pins.malformed);
        let got: Vec<_> = pins
            .pins
            .iter()
            .map(|p| {
                (
                    p.index,
                    p.line,
                    p.runtime.as_str(),
                    p.source_sha.as_deref(),
                    p.image.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, Some(1), "python", Some("abc"), None),
                (1, Some(3), "node", None, None),
                (2, Some(4), "go", None, Some("r.example/x")),
            ]
        );
    }

    #[test]
    fn malformed_rows_are_reported_by_place_and_skipped() {
        let input = format!(
            "{{\"runtime\":\"a\",\"digest\":\"{D}\"}}\n{{not json\n[1]\n{{\"runtime\":\"b\"}}\n\
             {{\"runtime\":3,\"digest\":\"{D}\"}}\n{{\"runtime\":\"c\",\"digest\":\"{D}\"}}\n"
        );
        let pins = parse(input.as_bytes()).unwrap();
        let places: Vec<_> = pins.malformed.iter().map(|m| m.place).collect();
        assert_eq!(places, [Place::Line(2), Place::Line(3), Place::Line(4), Place::Line(5)]);
        assert!(
            pins.malformed[2].reason.contains("no digest"),
            "{:?}",
            pins.malformed[2]
        );
        assert_eq!(pins.pins.iter().map(|p| p.index).collect::<Vec<_>>(), [0, 5]);
    }

    #[test]
    fn arrays_report_indexes() {
        let input = format!("[{{\"runtime\":\"a\",\"digest\":\"{D}\"}}, 5, {{\"digest\":\"{D}\"}}]");
        let pins = parse(input.as_bytes()).unwrap();
        assert_eq!(pins.shape, Shape::Array);
        assert_eq!(pins.pins.len(), 1);
        let places: Vec<_> = pins.malformed.iter().map(|m| m.place.to_string()).collect();
        assert_eq!(places, ["array index 1", "array index 2"]);
    }

    #[test]
    fn input_that_is_not_pins_is_an_error() {
        assert!(parse(b"  \n").is_err());
        assert!(parse(b"[{\"runtime\": ").is_err());
        assert!(parse(b"hello\nworld\n").is_err());
        assert!(parse(b"[]").unwrap().pins.is_empty());
    }

    #[test]
    fn urls_are_shown_without_secrets() {
        assert!(is_url("https://cp.example/x") && is_url("HTTP://cp") && !is_url("pins.json") && !is_url("-"));
        let url = Url::parse("https://user:pw@cp.example:8443/cp/admin/runtime-image-pins?token=s3cret").unwrap();
        assert_eq!(shown_url(&url), "https://cp.example:8443/cp/admin/runtime-image-pins");
    }
}
