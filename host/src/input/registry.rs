//! Fetching a subject from an OCI registry (SPEC §5): the manifest (or
//! index, then the chosen platform's manifest) and the config blob, each
//! checked against its sha256, with docker-style credentials.
//!
//! Auth challenges, tokens and the blob transfer are `oci-client`'s. This
//! module adds the size caps, the total time-out, the platform choice, our
//! own sha256 check of every byte we judge, the redirect rules below, and
//! errors a CI log reader understands. Manifests are read by this module
//! itself (with oci-client's tokens): oci-client reads a whole manifest
//! body into memory before anyone can look at its size, so a registry that
//! streams an endless "manifest" would fill memory until the time-out.
//!
//! # Redirects
//!
//! - **Blobs** follow redirects to any host (reqwest's default: at most 10,
//!   and `Authorization` and cookies are dropped as soon as the host, port
//!   or scheme changes). Real registries send blob downloads to storage on
//!   other hosts (S3, a CDN), and a blob is checked against the digest the
//!   manifest names, so where its bytes come from cannot make provgate
//!   accept other bytes.
//! - **Manifests** follow a redirect only to where provgate would go for a
//!   reference of its own: any HTTPS URL, or plain HTTP to a host named by
//!   `--insecure-registry`; at most [`MAX_REDIRECTS`]; credentials are sent
//!   to the registry's own origin only. A manifest fetched by tag has no
//!   digest to be checked against, so the transport is all that vouches for
//!   it, and a redirect must not downgrade it to plain HTTP the user did not
//!   allow. Redirects to other HTTPS hosts are followed: real registries use
//!   them (registry.k8s.io answers `/v2/` requests with redirects to
//!   regional backends), and the registry that sends one could as well have
//!   served any bytes itself.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciEnvelope, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use reqwest::header::{ACCEPT, LOCATION};
use reqwest::{StatusCode, Url};
use serde_json::Value;

use crate::input::credentials::{self, AuthSources};
use crate::input::inspect::{self, InspectOptions, normalize_platform};
use crate::digest::sha256_digest;
use crate::http::CappedError;
use crate::subject::Subject;

/// Manifests and configs are small; anything bigger is refused.
pub const MAX_DOCUMENT_BYTES: usize = 4 << 20;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects one manifest request follows at most.
pub const MAX_REDIRECTS: usize = 10;
/// How much of an error answer's body is read (for its message).
const MAX_ERROR_BYTES: usize = 64 << 10;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const ACCEPTED: [&str; 4] = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

pub struct RegistryOptions {
    /// Where credentials are looked for.
    pub auth: AuthSources,
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

impl FetchError {
    /// Input errors are the caller's (exit 2), the rest the registry's (exit 4).
    pub fn is_input_error(&self) -> bool {
        matches!(self, FetchError::Reference { .. } | FetchError::Credentials { .. })
    }
}

/// `IMAGE_REF` as the registry client understands it (`name[:tag][@digest]`,
/// Docker Hub defaults applied); the error names the reference.
pub fn parse_reference(reference: &str) -> Result<Reference, FetchError> {
    let parsed: Reference = reference
        .parse()
        .map_err(|e: oci_client::ParseError| FetchError::Reference {
            reference: reference.into(),
            reason: e.to_string(),
        })?;
    // oci-client reads `Name/app` as the Docker Hub repository `Name/app`
    // where docker reads `Name` as a registry; repositories are lower case
    // (distribution spec), so this is the caller's mistake either way.
    if parsed.repository().bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(FetchError::Reference {
            reference: reference.into(),
            reason: format!(
                "repository {:?} has upper-case letters; repository names are lower case",
                parsed.repository()
            ),
        });
    }
    Ok(parsed)
}

/// Fetches the subject for `reference`, within `opts.timeout` in total.
pub async fn fetch(reference: &str, opts: &RegistryOptions) -> Result<Fetched, FetchError> {
    let parsed = parse_reference(reference)?;
    let registry = parsed.resolve_registry().to_string();
    let deadline = tokio::time::Instant::now() + opts.timeout;
    // Credential helpers run first, under the same deadline; when it
    // expires their future is dropped, which kills them.
    let auth = match tokio::time::timeout_at(deadline, credentials(&parsed, opts)).await {
        Ok(auth) => auth?,
        Err(_) => {
            return Err(FetchError::HelperTimeout {
                registry,
                seconds: opts.timeout.as_secs_f64(),
            });
        }
    };
    match tokio::time::timeout_at(deadline, fetch_parsed(reference, &parsed, opts, auth)).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout {
            registry,
            seconds: opts.timeout.as_secs_f64(),
        }),
    }
}

async fn fetch_parsed(
    given: &str,
    reference: &Reference,
    opts: &RegistryOptions,
    auth: RegistryAuth,
) -> Result<Fetched, FetchError> {
    let registry = reference.resolve_registry().to_string();
    let clients = client_for(opts).map_err(|reason| FetchError::Unreachable {
        registry: registry.clone(),
        reason,
    })?;
    // The blob pull authenticates with what is stored here.
    clients.oci.store_auth_if_needed(&registry, &auth).await;
    let ctx = Ctx {
        client: &clients.oci,
        http: &clients.http,
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
    let mut subject = inspected.subject;
    subject.platform = platform.clone().map(|(name, digest)| crate::subject::Platform {
        name,
        digest: Some(digest),
    });
    Ok(Fetched { subject, platform })
}

/// The clients of one set of options: oci-client's (auth, blobs) and a
/// plain one for manifests that follows no redirect by itself.
#[derive(Clone)]
struct Clients {
    oci: Client,
    http: reqwest::Client,
}

/// One pair of clients per set of options, shared by every fetch of the
/// process: building one loads the system's certificate store (~0.2 s of
/// CPU), which dominated an audit of many images. Both are cheap handles
/// onto shared state.
fn client_for(opts: &RegistryOptions) -> Result<Clients, String> {
    type Key = (Vec<String>, Duration);
    static CLIENTS: Mutex<Vec<(Key, Clients)>> = Mutex::new(Vec::new());
    let key = (opts.insecure.clone(), opts.timeout);
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, found)) = clients.iter().find(|(k, _)| *k == key) {
        return Ok(found.clone());
    }
    crate::http::install_provider();
    let connect_timeout = opts.timeout.min(Duration::from_secs(10));
    let oci = Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(opts.insecure.clone()),
        platform_resolver: None,
        connect_timeout: Some(connect_timeout),
        read_timeout: Some(opts.timeout),
        user_agent: crate::http::USER_AGENT,
        ..ClientConfig::default()
    });
    let http = crate::http::client_builder()
        .connect_timeout(connect_timeout)
        .read_timeout(opts.timeout)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {}", crate::http::error_chain(&e)))?;
    let built = Clients { oci, http };
    clients.push((key, built.clone()));
    Ok(built)
}

/// How a manifest request authenticates.
#[derive(Clone)]
enum Authorization {
    Bearer(String),
    Basic(String, String),
}

/// The authorization a registry last accepted for a repository, so that a
/// token registry's token is fetched once, not for every image; a 401 with
/// it fetches a new one.
static AUTHORIZATIONS: LazyLock<Mutex<HashMap<(String, String), Authorization>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn authorizations() -> std::sync::MutexGuard<'static, HashMap<(String, String), Authorization>> {
    AUTHORIZATIONS.lock().unwrap_or_else(|e| e.into_inner())
}

struct Ctx<'a> {
    client: &'a Client,
    http: &'a reqwest::Client,
    auth: &'a RegistryAuth,
    registry: &'a str,
    repository: &'a str,
    opts: &'a RegistryOptions,
}

impl Ctx<'_> {
    /// A manifest, read up to the cap and checked against the reference's
    /// digest or, for a tag, against the registry's `Docker-Content-Digest`
    /// (when it sends one, it must at least agree with its own bytes).
    async fn manifest(&self, reference: &Reference, what: &str) -> Result<(Value, String), FetchError> {
        let (bytes, header) = self.get_manifest(reference, what).await?;
        let actual = sha256_digest(&bytes);
        let header = header.filter(|d| d.starts_with("sha256:"));
        let expected = reference.digest().or(header.as_deref()).unwrap_or(&actual);
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

    /// GETs a manifest: `(body, Docker-Content-Digest)`. Without credentials
    /// first; after a 401, with what oci-client's challenge handling gives
    /// (`/v2/` ping, then a bearer token or basic credentials), remembered
    /// per repository. Redirects: see the module documentation.
    async fn get_manifest(&self, reference: &Reference, what: &str) -> Result<(Vec<u8>, Option<String>), FetchError> {
        let origin = manifest_url(reference, &self.opts.insecure)
            .map_err(|e| self.unusable(what, format!("no manifest URL: {e}")))?;
        let key = (self.registry.to_string(), self.repository.to_string());
        let mut authorization = authorizations().get(&key).cloned();
        let mut challenged = false;
        let mut url = origin.clone();
        let mut redirects = 0;
        loop {
            let mut request = self.http.get(url.clone()).header(ACCEPT, ACCEPTED.join(", "));
            // Credentials go to the registry only, never where it redirects.
            if same_origin(&url, &origin) {
                request = match &authorization {
                    Some(Authorization::Bearer(token)) => request.bearer_auth(token),
                    Some(Authorization::Basic(user, password)) => request.basic_auth(user, Some(password)),
                    None => request,
                };
            }
            let mut response = request
                .send()
                .await
                .map_err(|e| self.error(OciDistributionError::RequestError(e), what))?;
            let status = response.status();
            if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
                redirects += 1;
                url = self.redirect(&url, &response, redirects, what)?;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED && !challenged && same_origin(&url, &origin) {
                challenged = true;
                if let Some(found) = self.authenticate(reference, what).await? {
                    authorizations().insert(key.clone(), found.clone());
                    authorization = Some(found);
                    continue;
                }
            }
            if status != StatusCode::OK {
                let body = crate::http::read_prefix(&mut response, MAX_ERROR_BYTES).await;
                return Err(self.error(status_error(status, &body, url.as_str()), what));
            }
            let header = response
                .headers()
                .get("Docker-Content-Digest")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            return Ok((self.read_document(response, what).await?, header));
        }
    }

    /// After a 401: the authorization oci-client's challenge handling finds
    /// (a bearer token from the realm, or the basic credentials), if any.
    async fn authenticate(&self, reference: &Reference, what: &str) -> Result<Option<Authorization>, FetchError> {
        let token = self
            .client
            .auth(reference, self.auth, RegistryOperation::Pull)
            .await
            .map_err(|e| self.error(e, what))?;
        Ok(match (token, self.auth) {
            (Some(token), _) => Some(Authorization::Bearer(token)),
            (None, RegistryAuth::Basic(user, password)) => Some(Authorization::Basic(user.clone(), password.clone())),
            (None, _) => None,
        })
    }

    /// Where a manifest redirect leads, if provgate goes there.
    fn redirect(&self, from: &Url, response: &reqwest::Response, count: usize, what: &str) -> Result<Url, FetchError> {
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.unusable(what, format!("a redirect (HTTP {status}) without a Location")))?;
        let next = from
            .join(location)
            .map_err(|e| self.unusable(what, format!("a redirect to {}: {e}", crate::text::quote(location))))?;
        if count > MAX_REDIRECTS {
            return Err(self.unusable(
                what,
                format!("it redirected more than {MAX_REDIRECTS} times (last to {next})"),
            ));
        }
        manifest_redirect_allowed(&next, &self.opts.insecure)
            .map(|()| next.clone())
            .map_err(|reason| self.unusable(what, format!("it redirected (HTTP {status}) to {next}: {reason}")))
    }

    /// A document's body, refused as soon as it says or shows that it is
    /// over the cap: memory stays bounded whatever the registry sends.
    async fn read_document(&self, mut response: reqwest::Response, what: &str) -> Result<Vec<u8>, FetchError> {
        let too_large = || FetchError::TooLarge {
            what: what.into(),
            limit: MAX_DOCUMENT_BYTES,
        };
        crate::http::read_capped(&mut response, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| match e {
                CappedError::Declared(_) | CappedError::TooLarge => too_large(),
                CappedError::Read(e) => FetchError::Unreachable {
                    registry: self.registry.into(),
                    reason: format!("reading {what}: {}", request_error(&e)),
                },
            })
    }

    /// A blob, read up to the cap and checked against its digest.
    async fn blob(&self, reference: &Reference, digest: &str) -> Result<Vec<u8>, FetchError> {
        let what = format!("config blob {digest}");
        let mut stream = self
            .client
            .pull_blob_stream(reference, digest)
            .await
            .map_err(|e| self.error(e, &what))?;
        if stream.content_length.is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
            return Err(FetchError::TooLarge {
                what,
                limit: MAX_DOCUMENT_BYTES,
            });
        }
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

/// `{scheme}://{registry}/v2/{repository}/manifests/{digest or tag}`, as
/// oci-client builds it (plain HTTP for `--insecure-registry` hosts).
fn manifest_url(reference: &Reference, insecure: &[String]) -> Result<Url, String> {
    let registry = reference.resolve_registry();
    let scheme = if insecure.iter().any(|h| h == registry) {
        "http"
    } else {
        "https"
    };
    let name = reference.digest().or(reference.tag()).unwrap_or("latest");
    let mut url = format!("{scheme}://{registry}/v2/{}/manifests/{name}", reference.repository());
    if let Some(ns) = reference.namespace() {
        url.push_str(&format!("?ns={ns}"));
    }
    Url::parse(&url).map_err(|e| format!("{url}: {e}"))
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

/// `HOST[:PORT]` of a URL, as `--insecure-registry` names hosts.
fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// Whether a manifest request follows a redirect to `next`: to HTTPS
/// anywhere, to plain HTTP only for a `--insecure-registry` host. See the
/// module documentation for why.
fn manifest_redirect_allowed(next: &Url, insecure: &[String]) -> Result<(), String> {
    match next.scheme() {
        "https" => Ok(()),
        "http" if insecure.contains(&host_port(next)) => Ok(()),
        "http" => Err(format!(
            "plain HTTP to {}, which --insecure-registry does not name (a manifest is followed only over HTTPS \
             or to --insecure-registry hosts)",
            host_port(next)
        )),
        other => Err(format!("{other}: is not HTTP")),
    }
}

/// A registry's non-200 answer as oci-client classifies it.
fn status_error(status: StatusCode, body: &[u8], url: &str) -> OciDistributionError {
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
        crate::http::error_chain(e)
    }
}

/// Docker-style credentials for the reference's registry: `$DOCKER_CONFIG`
/// or `~/.docker/config.json`, `auths` entries or credential helpers.
/// The credentials docker, skopeo and crane would use for this registry.
/// Helpers run as child processes under the fetch's time-out, killed when
/// it expires; nothing here waits on a runtime worker.
async fn credentials(reference: &Reference, opts: &RegistryOptions) -> Result<RegistryAuth, FetchError> {
    let registry = reference.resolve_registry();
    credentials::for_registry(registry, &opts.auth)
        .await
        .map(RegistryAuth::from)
        .map_err(|e| FetchError::Credentials {
            registry: registry.into(),
            reason: e.to_string(),
        })
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
    #[test]
    fn an_upper_case_repository_is_the_callers_error() {
        let e = super::parse_reference("Name/app:1").expect_err("upper case");
        assert!(e.is_input_error());
        assert!(e.to_string().contains("Name/app"), "{e}");
        assert!(super::parse_reference("registry.example/name/app:1").is_ok());
    }

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
    fn manifest_redirects_go_to_https_anywhere_and_to_plain_http_only_for_insecure_hosts() {
        let insecure = vec!["127.0.0.1:5000".to_string(), "mirror.internal".to_string()];
        let allowed = |url: &str| manifest_redirect_allowed(&Url::parse(url).unwrap(), &insecure);
        assert!(allowed("https://us-west1-docker.pkg.dev/v2/x/manifests/1").is_ok());
        assert!(allowed("https://127.0.0.1:5000/v2/x/manifests/1").is_ok());
        assert!(allowed("http://127.0.0.1:5000/v2/x/manifests/1").is_ok());
        assert!(allowed("http://mirror.internal/v2/x/manifests/1").is_ok());
        let err = allowed("http://127.0.0.2:5000/v2/x/manifests/1").unwrap_err();
        assert!(
            err.contains("127.0.0.2:5000") && err.contains("--insecure-registry"),
            "{err}"
        );
        // Another port of an insecure host is another host.
        assert!(allowed("http://127.0.0.1:5001/v2/x/manifests/1").is_err());
        assert!(allowed("http://mirror.internal:8080/v2/x/manifests/1").is_err());
        assert!(allowed("ftp://127.0.0.1:5000/x").is_err());
    }

    #[test]
    fn manifest_urls_are_built_as_oci_client_builds_them() {
        let insecure = vec!["127.0.0.1:5000".to_string()];
        let url = |r: &str| {
            manifest_url(&parse_reference(r).unwrap(), &insecure)
                .unwrap()
                .to_string()
        };
        assert_eq!(url("127.0.0.1:5000/a/b:t"), "http://127.0.0.1:5000/v2/a/b/manifests/t");
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            url(&format!("ghcr.io/a/b:t@{digest}")),
            format!("https://ghcr.io/v2/a/b/manifests/{digest}")
        );
        assert_eq!(
            url("alpine"),
            "https://index.docker.io/v2/library/alpine/manifests/latest"
        );
    }

    #[test]
    fn credentials_stay_with_the_registry_origin() {
        let origin = Url::parse("https://reg.example/v2/a/manifests/t").unwrap();
        let same = |u: &str| same_origin(&Url::parse(u).unwrap(), &origin);
        assert!(same("https://reg.example:443/v2/a/manifests/u"));
        assert!(!same("http://reg.example/v2/a/manifests/t"));
        assert!(!same("https://reg.example:8443/v2/a/manifests/t"));
        assert!(!same("https://cdn.example/v2/a/manifests/t"));
    }

    #[test]
    fn a_manifest_without_media_type_is_an_index_when_it_lists_manifests() {
        assert!(is_index(&json!({"schemaVersion": 2, "manifests": []})));
        assert!(!is_index(&json!({"schemaVersion": 2, "config": {}})));
        assert!(is_index(&json!({"mediaType": DOCKER_LIST})));
    }
}
