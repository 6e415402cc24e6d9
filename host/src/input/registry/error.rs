//! Why an image could not be fetched, and whose fault that is: classified
//! here once, so that an exit code and an HTTP status cannot disagree.

use oci_client::errors::{OciDistributionError, OciEnvelope, OciErrorCode};
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
    /// The registry failed, lied, or has no such thing; includes time-outs
    /// (a credential helper's too: it runs under the registry's time-out).
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
            | FetchError::Unusable { .. } => Fault::Registry,
        }
    }

    /// Not the registry's fault (exit 2 rather than 4). Kept for callers
    /// that have not moved to [`FetchError::fault`].
    pub fn is_input_error(&self) -> bool {
        self.fault() != Fault::Registry
    }
}

/// oci-client's error for `what`, in a registry `registry` and repository
/// `repository`, as the [`FetchError`] a CI log reader understands.
pub(super) fn classify(e: OciDistributionError, registry: &str, repository: &str, what: &str) -> FetchError {
    let (registry, repository) = (registry.to_string(), repository.to_string());
    match e {
        OciDistributionError::DigestError(e) => match mismatch(&e.to_string()) {
            Some((expected, actual)) => FetchError::DigestMismatch {
                what: what.into(),
                expected,
                actual,
            },
            None => FetchError::Unusable {
                registry,
                what: what.into(),
                reason: e.to_string(),
            },
        },
        OciDistributionError::AuthenticationFailure(reason) => FetchError::AuthRefused {
            registry,
            repository,
            reason,
        },
        OciDistributionError::UnauthorizedError { .. } => FetchError::AuthRefused {
            registry,
            repository,
            reason: "HTTP 401 unauthorized".into(),
        },
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            let reason = envelope
                .errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                FetchError::AuthRefused {
                    registry,
                    repository,
                    reason,
                }
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
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
        OciDistributionError::ImageManifestNotFoundError(reason) => FetchError::NotFound {
            registry,
            what: what.into(),
            reason,
        },
        OciDistributionError::ServerError { code, message, .. } => {
            let reason = format!("HTTP {code}: {}", message.trim());
            match code {
                401 | 403 => FetchError::AuthRefused {
                    registry,
                    repository,
                    reason,
                },
                404 => FetchError::NotFound {
                    registry,
                    what: what.into(),
                    reason,
                },
                _ => FetchError::Unusable {
                    registry,
                    what: what.into(),
                    reason,
                },
            }
        }
        OciDistributionError::RequestError(e) => FetchError::Unreachable {
            registry,
            reason: request_error(&e),
        },
        other => FetchError::Unusable {
            registry,
            what: what.into(),
            reason: other.to_string(),
        },
    }
}

/// A registry's non-200 answer as oci-client classifies it.
pub(super) fn status_error(status: StatusCode, body: &[u8], url: &str) -> OciDistributionError {
    let url = url.to_string();
    match status {
        StatusCode::UNAUTHORIZED => OciDistributionError::UnauthorizedError { url },
        s if s.is_client_error() => match serde_json::from_slice::<OciEnvelope>(body) {
            Ok(envelope) => OciDistributionError::RegistryError { envelope, url },
            Err(_) => OciDistributionError::ServerError {
                code: s.as_u16(),
                url,
                message: String::from_utf8_lossy(body).into_owned(),
            },
        },
        s => OciDistributionError::ServerError {
            code: s.as_u16(),
            url,
            message: String::from_utf8_lossy(body).into_owned(),
        },
    }
}

/// oci-client's digest verification error, "… Expected X, got Y", as (X, Y):
/// its error type is not public.
pub(super) fn mismatch(text: &str) -> Option<(String, String)> {
    let (_, rest) = text.split_once("Expected ")?;
    let (expected, actual) = rest.split_once(", got ")?;
    Some((expected.trim().to_string(), actual.trim().to_string()))
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
}
