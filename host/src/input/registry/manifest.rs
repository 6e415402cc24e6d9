//! Manifests, read by provgate itself so that a body is refused as soon
//! as it passes the cap, and redirects are followed only as the registry
//! module documentation says.

use oci_client::Reference;
use reqwest::Url;
use serde_json::Value;

use super::error::transport;
use super::request::Kind;
use super::{Ctx, FetchError, MAX_DOCUMENT_BYTES};
use crate::digest::sha256_digest;
use crate::http::CappedError;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const ACCEPTED: [&str; 4] = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

impl Ctx<'_> {
    /// A manifest, read up to the cap and checked against the reference's
    /// digest or, for a tag, against the registry's `Docker-Content-Digest`
    /// (when it sends one, it must at least agree with its own bytes).
    pub(super) async fn manifest(&self, reference: &Reference, what: &str) -> Result<(Value, String), FetchError> {
        let name = reference.digest().or(reference.tag()).unwrap_or("latest");
        let url = registry_url(reference, &self.opts.insecure, &format!("manifests/{name}"))
            .map_err(|e| self.unusable(what, format!("no manifest URL: {e}")))?;
        let response = self.get(&url, Some(&ACCEPTED.join(", ")), Kind::Manifest, what).await?;
        let header = response
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = self.read_document(response, what).await?;
        let actual = sha256_digest(&bytes);
        let header = header.filter(|d| d.starts_with("sha256:"));
        let expected = reference.digest().or(header.as_deref()).unwrap_or(&actual);
        if actual != expected {
            return Err(FetchError::DigestMismatch {
                what: what.into(),
                expected: digest_shown(expected),
                actual,
            });
        }
        let json = serde_json::from_slice(&bytes).map_err(|e| self.unusable(what, format!("not JSON: {e}")))?;
        Ok((json, actual))
    }

    /// A document's body, refused as soon as it says or shows that it is
    /// over the cap: memory stays bounded whatever the registry sends.
    pub(super) async fn read_document(
        &self,
        mut response: reqwest::Response,
        what: &str,
    ) -> Result<Vec<u8>, FetchError> {
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
                    reason: format!("reading {what}: {}", transport(e)),
                },
            })
    }
}

/// Whether a manifest is an index (OCI) or manifest list (Docker); one
/// without a media type is one when it lists manifests.
pub(super) fn is_index(manifest: &Value) -> bool {
    match manifest.get("mediaType").and_then(Value::as_str) {
        Some(OCI_INDEX | DOCKER_LIST) => true,
        Some(_) => false,
        None => manifest.get("manifests").is_some_and(Value::is_array),
    }
}

/// `{scheme}://{registry}/v2/{repository}/{path}`, as oci-client builds
/// it (plain HTTP for `--insecure-registry` hosts, `?ns=` for a mirror).
pub(super) fn registry_url(reference: &Reference, insecure: &[String], path: &str) -> Result<Url, String> {
    let mut url = format!(
        "{}/v2/{}/{path}",
        registry_origin(reference, insecure),
        reference.repository()
    );
    if let Some(ns) = reference.namespace() {
        url.push_str(&format!("?ns={ns}"));
    }
    Url::parse(&url).map_err(|e| format!("{url}: {e}"))
}

/// `{scheme}://{registry}`: where credentials are sent.
pub(super) fn registry_origin(reference: &Reference, insecure: &[String]) -> String {
    let registry = reference.resolve_registry();
    let scheme = if insecure.iter().any(|h| h == registry) {
        "http"
    } else {
        "https"
    };
    format!("{scheme}://{registry}")
}

/// A digest as an error names it: as it is when it is one (`sha256:` and
/// 64 lower-case hex digits), else quoted (a registry's header can say
/// anything).
fn digest_shown(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        digest.to_string()
    } else {
        crate::text::quote(digest)
    }
}

/// `HOST[:PORT]` of a URL, as `--insecure-registry` names hosts.
fn host_port(url: &Url) -> String {
    super::reach::suggestion(url)
}

/// Whether a manifest request follows a redirect to `next`: to HTTPS
/// anywhere, to plain HTTP only for a `--insecure-registry` host. See the
/// registry module documentation for why.
pub(super) fn manifest_redirect_allowed(next: &Url, insecure: &[String]) -> Result<(), String> {
    match next.scheme() {
        "https" => Ok(()),
        "http" if insecure.contains(&host_port(next)) => Ok(()),
        "http" => Err(format!(
            "plain HTTP to {}, which --insecure-registry does not name (a manifest is followed only over HTTPS \
             or to --insecure-registry hosts)",
            super::reach::plain(&host_port(next))
        )),
        other => Err(format!("{}: is not HTTP", crate::text::quote(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::registry::parse_reference;
    use crate::input::registry::request::same_origin;
    use serde_json::json;

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
            let reference = parse_reference(r).unwrap();
            let name = reference.digest().or(reference.tag()).unwrap_or("latest").to_string();
            registry_url(&reference, &insecure, &format!("manifests/{name}"))
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
