//! Why an image could not be fetched, and whose fault that is: classified
//! here once, so that an exit code and an HTTP status cannot disagree.

use reqwest::StatusCode;

/// Why an image could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{} is not an image reference: {reason}", crate::text::quote(reference))]
    Reference { reference: String, reason: String },
    #[error("cannot read registry credentials for {registry}: {reason}")]
    Credentials { registry: String, reason: String },
    #[error("registry {registry} is unreachable: {reason}")]
    Unreachable { registry: String, reason: String },
    #[error("registry {registry} refused the credentials for {repository} ({reason})")]
    AuthRefused {
        registry: String,
        repository: String,
        reason: String,
    },
    #[error(
        "registry {registry} requires authentication for {repository} ({reason}), and no credentials for it \
         were found in $DOCKER_CONFIG/config.json or ~/.docker/config.json"
    )]
    AuthMissing {
        registry: String,
        repository: String,
        reason: String,
    },
    #[error("{what} not found in {registry}: {reason}")]
    NotFound {
        registry: String,
        what: String,
        reason: String,
    },
    #[error("platform {platform} is not in the index {digest} (it has: {available})")]
    PlatformAbsent {
        platform: String,
        digest: String,
        available: String,
    },
    #[error("{what} does not match its digest: expected {expected}, received bytes hashing to {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what} is larger than {limit} bytes; refusing it")]
    TooLarge { what: String, limit: usize },
    #[error("registry {registry} did not finish answering within {seconds} s")]
    Timeout { registry: String, seconds: f64 },
    #[error(
        "the credential helper for registry {registry} did not answer within {seconds} s (the registry \
         time-out); it was stopped"
    )]
    HelperTimeout { registry: String, seconds: f64 },
    #[error("registry {registry} sent {what}, which is not an allowed host: {reason}; allow it with {allow}")]
    HostNotAllowed {
        registry: String,
        /// What it sent, the URL quoted: `the token realm "http://…"`.
        what: String,
        /// Why its host is refused ("127.0.0.1 is a loopback address").
        reason: String,
        /// The `serve` flag and value that would allow it.
        allow: String,
    },
    #[error("registry {registry} sent {what} provgate cannot use: {reason}")]
    Unusable {
        registry: String,
        what: String,
        reason: String,
    },
}

/// Whose fault a [`FetchError`] is: what decides an exit code or an HTTP
/// status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A bad reference: the caller's input, wrong whatever the registry
    /// and the machine do.
    Caller,
    /// Unusable credentials or local setup: this machine's to mend, not the
    /// registry's, though the caller's request itself may be fine.
    Configuration,
    /// The registry failed, lied, or has no such thing, or sent provgate
    /// to a host it does not go to; includes time-outs (a credential
    /// helper's too: it runs under the registry's time-out).
    Registry,
}

impl FetchError {
    pub fn fault(&self) -> Fault {
        match self {
            FetchError::Reference { .. } => Fault::Caller,
            FetchError::Credentials { .. } => Fault::Configuration,
            FetchError::Unreachable { .. }
            | FetchError::AuthRefused { .. }
            | FetchError::AuthMissing { .. }
            | FetchError::NotFound { .. }
            | FetchError::PlatformAbsent { .. }
            | FetchError::DigestMismatch { .. }
            | FetchError::TooLarge { .. }
            | FetchError::Timeout { .. }
            | FetchError::HelperTimeout { .. }
            | FetchError::HostNotAllowed { .. }
            | FetchError::Unusable { .. } => Fault::Registry,
        }
    }

    /// Not the registry's fault (exit 2 rather than 4). Kept for callers
    /// that have not moved to [`FetchError::fault`].
    pub fn is_input_error(&self) -> bool {
        self.fault() != Fault::Registry
    }
}

/// The OCI error envelope (distribution spec, "Error codes").
#[derive(serde::Deserialize)]
struct Envelope {
    errors: Vec<EnvelopeError>,
}

#[derive(serde::Deserialize)]
struct EnvelopeError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// How many of an envelope's errors a message names.
const MAX_SHOWN_ERRORS: usize = 3;

/// A registry's non-200 answer for `what` as the [`FetchError`] a CI log
/// reader understands. `body` is the start of the answer's body (an error
/// envelope when it is one); `show` scrubs and quotes outside text, which
/// is all a message holds of it.
pub(super) fn status_error(
    status: StatusCode,
    body: &[u8],
    registry: &str,
    repository: &str,
    what: &str,
    show: impl Fn(&str) -> String,
) -> FetchError {
    let (registry, repository) = (registry.to_string(), repository.to_string());
    let envelope = serde_json::from_slice::<Envelope>(body)
        .ok()
        .filter(|e| !e.errors.is_empty());
    let mut reason = format!("HTTP {}", status.as_u16());
    let codes: Vec<&str> = envelope
        .iter()
        .flat_map(|e| e.errors.iter().map(|e| e.code.as_str()))
        .collect();
    match &envelope {
        Some(envelope) => {
            let shown: Vec<String> = envelope
                .errors
                .iter()
                .take(MAX_SHOWN_ERRORS)
                .map(|e| match (code_shown(&e.code, &show), e.message.is_empty()) {
                    (code, true) => code,
                    (code, false) => format!("{code} {}", show(&e.message)),
                })
                .collect();
            reason.push_str(": ");
            reason.push_str(&shown.join("; "));
            if envelope.errors.len() > MAX_SHOWN_ERRORS {
                reason.push_str(&format!(" and {} more", envelope.errors.len() - MAX_SHOWN_ERRORS));
            }
        }
        None if !body.is_empty() => {
            reason.push_str(": ");
            reason.push_str(&show(&String::from_utf8_lossy(body)));
        }
        None => {}
    }
    let denied = matches!(status.as_u16(), 401 | 403) || codes.iter().any(|c| matches!(*c, "UNAUTHORIZED" | "DENIED"));
    let absent = status == StatusCode::NOT_FOUND
        || codes
            .iter()
            .any(|c| matches!(*c, "MANIFEST_UNKNOWN" | "NAME_UNKNOWN" | "BLOB_UNKNOWN" | "NOT_FOUND"));
    if denied {
        FetchError::AuthRefused {
            registry,
            repository,
            reason,
        }
    } else if absent {
        FetchError::NotFound {
            registry,
            what: what.into(),
            reason,
        }
    } else {
        FetchError::Unusable {
            registry,
            what: what.into(),
            reason,
        }
    }
}

/// An envelope's error code as a message names it: as it is when it looks
/// like one (`MANIFEST_UNKNOWN`), else quoted.
fn code_shown(code: &str, show: impl Fn(&str) -> String) -> String {
    let plain = !code.is_empty() && code.len() <= 40 && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
    if plain { code.to_string() } else { show(code) }
}

/// A request's failure as a message shows it: its chain of causes
/// without the URL (a redirect's or a realm's URL is the registry's to
/// choose; callers name the host themselves, quoted).
pub(super) fn transport(e: reqwest::Error) -> String {
    request_error(&e.without_url())
}

/// A reqwest error's cause chain, which holds the useful part ("connection refused").
pub(super) fn request_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else {
        crate::http::error_chain(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fault_is_one_class_of_errors() {
        let reference = FetchError::Reference {
            reference: "a b".into(),
            reason: "invalid reference format".into(),
        };
        assert_eq!(reference.fault(), Fault::Caller);
        assert!(reference.is_input_error());
        let credentials = FetchError::Credentials {
            registry: "r.example".into(),
            reason: "no such file".into(),
        };
        assert_eq!(credentials.fault(), Fault::Configuration);
        assert!(credentials.is_input_error());
        let helper = FetchError::HelperTimeout {
            registry: "r.example".into(),
            seconds: 1.0,
        };
        assert_eq!(helper.fault(), Fault::Registry);
        assert!(!helper.is_input_error());
    }

    fn classified(status: u16, body: &[u8]) -> FetchError {
        let status = StatusCode::from_u16(status).unwrap();
        status_error(
            status,
            body,
            "r.example",
            "a/b",
            "manifest r.example/a/b:1",
            crate::text::quote,
        )
    }

    #[test]
    fn error_answers_are_classed_by_status_and_envelope_code() {
        let denied = br#"{"errors":[{"code":"DENIED","message":"no"}]}"#;
        assert!(matches!(classified(400, denied), FetchError::AuthRefused { .. }));
        assert!(matches!(classified(401, b""), FetchError::AuthRefused { .. }));
        assert!(matches!(classified(403, b"nope"), FetchError::AuthRefused { .. }));
        let unknown = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        let e = classified(404, unknown);
        assert!(matches!(e, FetchError::NotFound { .. }), "{e}");
        assert!(
            e.to_string()
                .contains(r#"HTTP 404: MANIFEST_UNKNOWN "manifest unknown""#),
            "{e}"
        );
        assert!(matches!(classified(500, b"oops"), FetchError::Unusable { .. }));
        assert!(matches!(classified(404, b""), FetchError::NotFound { .. }));
    }

    #[test]
    fn an_error_answer_shows_only_quoted_cut_text() {
        // JSON escapes: a newline, ESC and U+202E once decoded.
        let body = r#"{"errors":[{"code":"BAD\nCODE","message":"x\n::error title=x::FORGED\u001b[31m\u202e"}]}"#;
        let shown = classified(400, body.as_bytes()).to_string();
        assert!(shown.contains("FORGED"), "{shown}");
        assert!(
            !shown.contains('\n') && !shown.contains('\u{1b}') && !shown.contains('\u{202e}'),
            "{shown}"
        );
        assert!(shown.contains(r#""BAD\nCODE""#), "{shown}");
        let many = r#"{"errors":[{"code":"A"},{"code":"B"},{"code":"C"},{"code":"D"},{"code":"E"}]}"#;
        assert!(
            classified(400, many.as_bytes())
                .to_string()
                .contains("A; B; C and 2 more")
        );
        let text = classified(502, "line one\n::error::FORGED".repeat(100).as_bytes()).to_string();
        assert!(!text.contains('\n') && text.len() < 400, "{text}");
    }
}
