//! Fetching a subject from an OCI registry (docs/reference.md §7.1): the manifest (or
//! index, then the chosen platform's manifest) and the config blob, each
//! checked against its sha256, with docker-style credentials.
//!
//! Every request is provgate's own (reqwest; oci-client is used only to
//! parse references): the challenge and token exchange (`auth.rs`), the
//! manifests (`manifest.rs`) and the config blob (`blob.rs`), through one
//! GET loop (`request.rs`). That is what lets this module bound every
//! read (documents at [`MAX_DOCUMENT_BYTES`], token answers at
//! [`MAX_TOKEN_ANSWER_BYTES`], error answers at
//! [`MAX_ERROR_BYTES`]), the total time, where requests may go
//! (`reach.rs`), and what of an answer reaches a message: every outside
//! text is scrubbed of this fetch's credentials (`redact.rs`) and quoted
//! by [`crate::text::quote`]; a token service's body is never shown.
//!
//! # Redirects
//!
//! Redirects are followed by hand, at most [`MAX_REDIRECTS`] per request;
//! credentials (`Authorization`) are sent to the registry's own origin
//! only, never to where it redirects. Token requests follow no redirect.
//!
//! - **Blobs** follow redirects to any HTTP(S) host. Real registries send
//!   blob downloads to storage on other hosts (S3, a CDN), and a blob is
//!   checked against the digest the manifest names, so where its bytes come
//!   from cannot make provgate accept other bytes.
//! - **Manifests** follow a redirect only to where provgate would go for a
//!   reference of its own: any HTTPS URL, or plain HTTP to a host named by
//!   `--insecure-registry`. A manifest fetched by tag has no digest to be
//!   checked against, so the transport is all that vouches for it, and a
//!   redirect must not downgrade it to plain HTTP the user did not allow.
//!   Redirects to other HTTPS hosts are followed: real registries use them
//!   (registry.k8s.io answers `/v2/` requests with redirects to regional
//!   backends), and the registry that sends one could as well have served
//!   any bytes itself.
//!
//! # Reach
//!
//! What a registry sends (a token realm, a redirect) is the registry's
//! choice, not the caller's. For `verify` and `audit`, run by a user for
//! the user's own references, it may lead anywhere ([`Reach::Anywhere`]).
//! Under `serve` ([`Reach::Guarded`]) a caller picks the image and a
//! registry in `--allow-registry` picks where it sends provgate next: a
//! token realm may only be the registry's own `HOST:PORT`, a host named by
//! `--allow-auth-host`, or a host whose every address is public; a
//! redirect likewise with `--allow-redirect-host`. Otherwise the request
//! is never sent, and the fetch fails naming the host, why it was
//! refused and the flag that would allow it (see `reach.rs` for how the
//! address connected to is the one checked).

mod auth;
mod blob;
mod error;
mod manifest;
pub mod push;
mod reach;
mod redact;
mod request;
mod shared;

use std::time::Duration;

use oci_client::Reference;
use reqwest::Url;
use serde_json::Value;

use crate::input::credentials::{self, AuthSources, Credentials};
use crate::input::inspect::{self, InspectOptions};
use crate::input::platform;
use crate::subject::Subject;
use manifest::{is_index, registry_origin};
use redact::Secrets;
use shared::{Clients, client_for};

pub use auth::MAX_TOKEN_ANSWER_BYTES;
pub use error::{Fault, FetchError};
pub use reach::Reach;
pub use request::MAX_ERROR_BYTES;

/// Manifests and configs are small; anything bigger is refused.
pub const MAX_DOCUMENT_BYTES: usize = 4 << 20;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects one manifest request follows at most.
pub const MAX_REDIRECTS: usize = 10;

pub struct RegistryOptions {
    /// Where credentials are looked for.
    pub auth: AuthSources,
    /// `os/arch[/variant]` whose image to judge in an index.
    pub platform: String,
    /// `HOST:PORT`s that may be reached over plain HTTP.
    pub insecure: Vec<String>,
    /// Total time for the whole fetch.
    pub timeout: Duration,
    /// Where token realms and redirects may lead.
    pub reach: Reach,
}

/// What the registry told us about one image.
#[derive(Debug)]
pub struct Fetched {
    pub subject: Subject,
    /// For an index: the platform judged and its manifest digest.
    pub platform: Option<(String, String)>,
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
                "repository {} has upper-case letters; repository names are lower case",
                crate::text::quote(parsed.repository())
            ),
        });
    }
    Ok(parsed)
}

/// Fetches the subject for `reference`, within `opts.timeout` in total.
pub async fn fetch(reference: &str, opts: &RegistryOptions) -> Result<Fetched, FetchError> {
    let parsed = parse_reference(reference)?;
    within(&parsed, opts, PULL, async |ctx: Ctx<'_>| {
        fetch_with(&ctx, reference, &parsed, opts).await
    })
    .await
}

/// Runs `work` with a context for `reference` whose tokens are asked for
/// `actions` ([`PULL`], or `pull,push` for `push.rs`), all within
/// `opts.timeout`: credentials first (a helper is killed when the deadline
/// expires, as its future is dropped), then the work.
async fn within<T>(
    parsed: &Reference,
    opts: &RegistryOptions,
    actions: &str,
    work: impl AsyncFnOnce(Ctx<'_>) -> Result<T, FetchError>,
) -> Result<T, FetchError> {
    let registry = parsed.resolve_registry().to_string();
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let timeout = || FetchError::Timeout {
        registry: registry.clone(),
        seconds: opts.timeout.as_secs_f64(),
    };
    let credentials = match tokio::time::timeout_at(deadline, credentials(parsed, opts)).await {
        Ok(found) => found?,
        Err(_) => {
            return Err(FetchError::HelperTimeout {
                registry,
                seconds: opts.timeout.as_secs_f64(),
            });
        }
    };
    let unreachable = |reason| FetchError::Unreachable {
        registry: registry.clone(),
        reason,
    };
    let clients: Clients = client_for(opts).map_err(unreachable)?;
    let origin = Url::parse(&registry_origin(parsed, &opts.insecure))
        .map_err(|e| unreachable(format!("no URL for the registry: {e}")))?;
    let secrets = Secrets::of(&credentials);
    let ctx = Ctx {
        clients: &clients,
        credentials: &credentials,
        secrets: &secrets,
        registry: &registry,
        origin: &origin,
        repository: parsed.repository(),
        opts,
        actions,
    };
    tokio::time::timeout_at(deadline, work(ctx))
        .await
        .unwrap_or_else(|_| Err(timeout()))
}

async fn fetch_with(
    ctx: &Ctx<'_>,
    given: &str,
    reference: &Reference,
    opts: &RegistryOptions,
) -> Result<Fetched, FetchError> {
    let what = format!("manifest {}", reference.whole());
    let (top, top_digest) = ctx.manifest(reference, &what).await?;
    let (image, platform) = if is_index(&top) {
        let (platform, digest) = choose_platform(&top, &opts.platform, &top_digest)?;
        let platform = shown_name(&platform);
        let digest = ctx.checked_digest(&digest, &format!("the index {top_digest}"))?;
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
        .ok_or_else(|| ctx.unusable("the image manifest", "it has no config descriptor".into()))?;
    let config_digest = ctx.checked_digest(config_digest, "the image manifest")?;
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

/// One fetch: its clients, credentials and registry, and where errors name it.
struct Ctx<'a> {
    clients: &'a Clients,
    credentials: &'a Credentials,
    /// What no message of this fetch may show.
    secrets: &'a Secrets,
    registry: &'a str,
    /// `{scheme}://{registry}`: the only origin credentials are sent to.
    origin: &'a Url,
    repository: &'a str,
    opts: &'a RegistryOptions,
    /// What a token is asked for: [`PULL`], or `pull,push` (`push.rs`).
    actions: &'a str,
}

/// The token scope's actions of every fetch that only reads.
const PULL: &str = "pull";

impl Ctx<'_> {
    fn unusable(&self, what: &str, reason: String) -> FetchError {
        FetchError::Unusable {
            registry: self.registry.into(),
            what: what.into(),
            reason,
        }
    }

    /// A classified error, said in terms of this fetch: a refusal without
    /// credentials is their absence. (TLS failures are named where the
    /// request failed, `request.rs`.)
    fn error(&self, e: FetchError) -> FetchError {
        match e {
            FetchError::AuthRefused {
                registry,
                repository,
                reason,
            } if self.credentials.is_anonymous() => FetchError::AuthMissing {
                registry,
                repository,
                reason,
            },
            other => other,
        }
    }

    /// A digest a registry document names (`in_what`), which provgate puts
    /// in a URL and in messages: `sha256:` and 64 lower-case hex digits, the
    /// only digests it checks bytes against.
    fn checked_digest(&self, digest: &str, in_what: &str) -> Result<String, FetchError> {
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(digest.to_string())
        } else {
            Err(self.unusable(
                in_what,
                format!(
                    "it names the digest {}, which is not sha256: and 64 lower-case hex digits",
                    self.secrets.show(digest)
                ),
            ))
        }
    }
}

/// A platform name from an index, as messages and the subject carry it:
/// as it is when it looks like one (`linux/arm64/v8`), else quoted.
fn shown_name(name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= crate::text::MAX_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'-' | b'_'));
    if plain {
        name.to_string()
    } else {
        crate::text::quote(name)
    }
}

/// The credentials docker, skopeo and crane would use for the reference's
/// registry (see [`credentials`]). Helpers run as child processes under the fetch's time-out, killed when
/// it expires; nothing here waits on a runtime worker.
async fn credentials(reference: &Reference, opts: &RegistryOptions) -> Result<Credentials, FetchError> {
    let registry = reference.resolve_registry();
    credentials::for_registry(registry, &opts.auth)
        .await
        .map_err(|e| FetchError::Credentials {
            registry: registry.into(),
            reason: e.to_string(),
        })
}

/// The index entry for `wanted`: `(platform, manifest digest)`.
fn choose_platform(index: &Value, wanted: &str, index_digest: &str) -> Result<(String, String), FetchError> {
    platform::choose_in_index(index, wanted).map_err(|available| FetchError::PlatformAbsent {
        platform: wanted.into(),
        digest: index_digest.into(),
        available: if available.is_empty() {
            "no platform images".into()
        } else {
            available.iter().map(|a| shown_name(a)).collect::<Vec<_>>().join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_upper_case_repository_is_the_callers_error() {
        let e = parse_reference("Name/app:1").expect_err("upper case");
        assert_eq!(e.fault(), Fault::Caller);
        assert!(e.is_input_error());
        assert!(e.to_string().contains("Name/app"), "{e}");
        assert!(parse_reference("registry.example/name/app:1").is_ok());
    }

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
}
