//! Fetching a subject from an OCI registry (SPEC §5): the manifest (or
//! index, then the chosen platform's manifest) and the config blob, each
//! checked against its sha256, with docker-style credentials.
//!
//! The protocol, auth challenges and digest checks of the transfer are
//! `oci-client`'s; this module adds the size caps, the total time-out, the
//! platform choice, our own sha256 check of every byte we judge, and
//! errors a CI log reader understands.

use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::Value;

use crate::input::inspect::{self, InspectOptions, normalize_platform};
use crate::policy::artifact::sha256_digest;
use crate::subject::Subject;

/// Manifests and configs are small; anything bigger is refused.
pub const MAX_DOCUMENT_BYTES: usize = 4 << 20;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const ACCEPTED: [&str; 4] = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

pub struct RegistryOptions {
    /// `os/arch[/variant]` whose image to judge in an index.
    pub platform: String,
    /// `HOST:PORT`s that may be reached over plain HTTP.
    pub insecure: Vec<String>,
    /// Total time for the whole fetch.
    pub timeout: Duration,
}

/// What the registry told us about one image.
#[derive(Debug)]
pub struct Fetched {
    pub subject: Subject,
    /// For an index: the platform judged and its manifest digest.
    pub platform: Option<(String, String)>,
}

/// Why an image could not be fetched. `Reference` and `Credentials` are
/// the caller's input (exit 2); everything else is the registry (exit 4).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{reference:?} is not an image reference: {reason}")]
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
    #[error("registry {registry} sent {what} provgate cannot use: {reason}")]
    Unusable {
        registry: String,
        what: String,
        reason: String,
    },
}

impl FetchError {
    /// Input errors are the caller's (exit 2), the rest the registry's (exit 4).
    pub fn is_input_error(&self) -> bool {
        matches!(self, FetchError::Reference { .. } | FetchError::Credentials { .. })
    }
}

/// `IMAGE_REF` as the registry client understands it (`name[:tag][@digest]`,
/// Docker Hub defaults applied); the error names the reference.
pub fn parse_reference(reference: &str) -> Result<Reference, FetchError> {
    reference
        .parse()
        .map_err(|e: oci_client::ParseError| FetchError::Reference {
            reference: reference.into(),
            reason: e.to_string(),
        })
}

/// Fetches the subject for `reference`, within `opts.timeout` in total.
pub async fn fetch(reference: &str, opts: &RegistryOptions) -> Result<Fetched, FetchError> {
    let parsed = parse_reference(reference)?;
    let registry = parsed.resolve_registry().to_string();
    match tokio::time::timeout(opts.timeout, fetch_parsed(reference, &parsed, opts)).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout {
            registry,
            seconds: opts.timeout.as_secs_f64(),
        }),
    }
}

async fn fetch_parsed(given: &str, reference: &Reference, opts: &RegistryOptions) -> Result<Fetched, FetchError> {
    let registry = reference.resolve_registry().to_string();
    let auth = credentials(reference)?;
    let client = client_for(opts);
    let ctx = Ctx {
        client: &client,
        auth: &auth,
        registry: &registry,
        repository: reference.repository(),
        opts,
    };

    let what = format!("manifest {}", reference.whole());
    let (top, top_digest) = ctx.manifest(reference, &what).await?;
    let (image, platform) = if is_index(&top) {
        let (platform, digest) = choose_platform(&top, &opts.platform, &top_digest)?;
        let what = format!("{platform} manifest {digest}");
        let (image, _) = ctx
            .manifest(&reference.clone_with_digest(digest.clone()), &what)
            .await?;
        if is_index(&image) {
            return Err(ctx.unusable(&what, "an index inside an index".into()));
        }
        (image, Some((platform, digest)))
    } else {
        (top, None)
    };

    let config_digest = image
        .pointer("/config/digest")
        .and_then(Value::as_str)
        .ok_or_else(|| ctx.unusable("the image manifest", "it has no config descriptor".into()))?
        .to_string();
    if image
        .pointer("/config/size")
        .and_then(Value::as_u64)
        .is_some_and(|s| s > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(FetchError::TooLarge {
            what: format!("config blob {config_digest}"),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let config = ctx.blob(reference, &config_digest).await?;
    let inspected = inspect::parse(
        &config,
        &InspectOptions {
            platform: &opts.platform,
            digest: Some(&top_digest),
            reference: Some(given),
        },
    )
    .map_err(|e| ctx.unusable(&format!("config blob {config_digest}"), e.to_string()))?;
    Ok(Fetched {
        subject: inspected.subject,
        platform,
    })
}

/// One registry client per set of options, shared by every fetch of the
/// process: building one loads the system's certificate store (~0.2 s of
/// CPU), which dominated an audit of many images. oci-client's `Client` is
/// a cheap handle onto shared state.
fn client_for(opts: &RegistryOptions) -> Client {
    type Key = (Vec<String>, Duration);
    static CLIENTS: std::sync::Mutex<Vec<(Key, Client)>> = std::sync::Mutex::new(Vec::new());
    let key = (opts.insecure.clone(), opts.timeout);
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, client)) = clients.iter().find(|(k, _)| *k == key) {
        return client.clone();
    }
    crate::tls::install_provider();
    let client = Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(opts.insecure.clone()),
        platform_resolver: None,
        connect_timeout: Some(opts.timeout.min(Duration::from_secs(10))),
        read_timeout: Some(opts.timeout),
        user_agent: concat!("provgate/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    });
    clients.push((key, client.clone()));
    client
}

struct Ctx<'a> {
    client: &'a Client,
    auth: &'a RegistryAuth,
    registry: &'a str,
    repository: &'a str,
    opts: &'a RegistryOptions,
}

impl Ctx<'_> {
    /// A manifest, its digest checked by oci-client (against the reference's
    /// digest or the registry's header) and again here by us.
    async fn manifest(&self, reference: &Reference, what: &str) -> Result<(Value, String), FetchError> {
        let (bytes, digest) = self
            .client
            .pull_manifest_raw(reference, self.auth, &ACCEPTED)
            .await
            .map_err(|e| self.error(e, what))?;
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchError::TooLarge {
                what: what.into(),
                limit: MAX_DOCUMENT_BYTES,
            });
        }
        let actual = sha256_digest(&bytes);
        let expected = reference.digest().unwrap_or(&digest);
        if actual != expected {
            return Err(FetchError::DigestMismatch {
                what: what.into(),
                expected: expected.into(),
                actual,
            });
        }
        let json = serde_json::from_slice(&bytes).map_err(|e| self.unusable(what, format!("not JSON: {e}")))?;
        Ok((json, actual))
    }

    /// A blob, read up to the cap and checked against its digest.
    async fn blob(&self, reference: &Reference, digest: &str) -> Result<Vec<u8>, FetchError> {
        let what = format!("config blob {digest}");
        // oci-client authenticates on manifest pulls; the blob pull reuses it.
        let mut stream = self
            .client
            .pull_blob_stream(reference, digest)
            .await
            .map_err(|e| self.error(e, &what))?;
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.io_error(e, &what, digest))?;
            if bytes.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(FetchError::TooLarge {
                    what,
                    limit: MAX_DOCUMENT_BYTES,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(FetchError::DigestMismatch {
                what,
                expected: digest.into(),
                actual,
            });
        }
        Ok(bytes)
    }

    fn unusable(&self, what: &str, reason: String) -> FetchError {
        FetchError::Unusable {
            registry: self.registry.into(),
            what: what.into(),
            reason,
        }
    }

    /// A stream error: oci-client's verifying stream reports a mismatch as an
    /// I/O error at the end; recover the digests when it does.
    fn io_error(&self, e: std::io::Error, what: &str, expected: &str) -> FetchError {
        let text = e.to_string();
        if let Some((_, actual)) = mismatch(&text) {
            return FetchError::DigestMismatch {
                what: what.into(),
                expected: expected.into(),
                actual,
            };
        }
        FetchError::Unreachable {
            registry: self.registry.into(),
            reason: format!("reading {what}: {text}"),
        }
    }

    fn error(&self, e: OciDistributionError, what: &str) -> FetchError {
        match self.classify(e, what) {
            FetchError::AuthRefused {
                registry,
                repository,
                reason,
            } if matches!(self.auth, RegistryAuth::Anonymous) => FetchError::AuthMissing {
                registry,
                repository,
                reason,
            },
            FetchError::Unreachable { registry, reason }
                if reason.contains("wrong version number") && !self.opts.insecure.contains(&registry) =>
            {
                let reason = format!("{reason} (a plain-HTTP registry? allow it with --insecure-registry {registry})");
                FetchError::Unreachable { registry, reason }
            }
            other => other,
        }
    }

    fn classify(&self, e: OciDistributionError, what: &str) -> FetchError {
        let (registry, repository) = (self.registry.to_string(), self.repository.to_string());
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
}

/// oci-client's digest verification error, "… Expected X, got Y", as (X, Y):
/// its error type is not public.
fn mismatch(text: &str) -> Option<(String, String)> {
    let (_, rest) = text.split_once("Expected ")?;
    let (expected, actual) = rest.split_once(", got ")?;
    Some((expected.trim().to_string(), actual.trim().to_string()))
}

/// A reqwest error's cause chain, which holds the useful part ("connection refused").
fn request_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else {
        crate::exit::error_chain(e)
    }
}

/// Docker-style credentials for the reference's registry: `$DOCKER_CONFIG`
/// or `~/.docker/config.json`, `auths` entries or credential helpers.
fn credentials(reference: &Reference) -> Result<RegistryAuth, FetchError> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    let registry = reference.resolve_registry();
    // Docker Hub's credentials are stored under its v1 index URL.
    let server = if registry == "index.docker.io" {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    match docker_credential::get_credential(server) {
        Ok(DockerCredential::UsernamePassword(user, password)) => Ok(RegistryAuth::Basic(user, password)),
        Ok(DockerCredential::IdentityToken(token)) => Ok(RegistryAuth::Bearer(token)),
        Err(E::ConfigNotFound | E::NoCredentialConfigured | E::ConfigReadError) => Ok(RegistryAuth::Anonymous),
        Err(e) => Err(FetchError::Credentials {
            registry: registry.into(),
            reason: e.to_string(),
        }),
    }
}

fn is_index(manifest: &Value) -> bool {
    match manifest.get("mediaType").and_then(Value::as_str) {
        Some(OCI_INDEX | DOCKER_LIST) => true,
        Some(_) => false,
        None => manifest.get("manifests").is_some_and(Value::is_array),
    }
}

/// The index entry for `wanted`, compared in containerd's normal form.
fn choose_platform(index: &Value, wanted: &str, index_digest: &str) -> Result<(String, String), FetchError> {
    let wanted_normal = normalize_platform(wanted);
    let mut available = Vec::new();
    for entry in index.get("manifests").and_then(Value::as_array).into_iter().flatten() {
        let Some(p) = entry.get("platform") else { continue };
        let field = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default();
        let (os, arch, variant) = (field("os"), field("architecture"), field("variant"));
        if os == "unknown" || arch == "unknown" {
            continue; // attestation manifests
        }
        let name = if variant.is_empty() {
            format!("{os}/{arch}")
        } else {
            format!("{os}/{arch}/{variant}")
        };
        let digest = entry.get("digest").and_then(Value::as_str);
        if let Some(digest) = digest.filter(|_| normalize_platform(&name) == wanted_normal) {
            return Ok((name, digest.to_string()));
        }
        available.push(name);
    }
    Err(FetchError::PlatformAbsent {
        platform: wanted.into(),
        digest: index_digest.into(),
        available: if available.is_empty() {
            "no platform images".into()
        } else {
            available.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn platform_choice_skips_attestations_and_normalises_names() {
        let index = json!({"manifests": [
            {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"digest": "sha256:c", "platform": {"os": "unknown", "architecture": "unknown"}},
        ]});
        assert_eq!(
            choose_platform(&index, "linux/amd64", "sha256:i").unwrap().1,
            "sha256:a"
        );
        assert_eq!(
            choose_platform(&index, "linux/arm64", "sha256:i").unwrap().1,
            "sha256:b"
        );
        let err = choose_platform(&index, "linux/s390x", "sha256:i")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("linux/s390x") && err.contains("linux/amd64, linux/arm64/v8"),
            "{err}"
        );
        assert!(!err.contains("unknown"), "{err}");
    }

    #[test]
    fn a_manifest_without_media_type_is_an_index_when_it_lists_manifests() {
        assert!(is_index(&json!({"schemaVersion": 2, "manifests": []})));
        assert!(!is_index(&json!({"schemaVersion": 2, "config": {}})));
        assert!(is_index(&json!({"mediaType": DOCKER_LIST})));
    }
}
