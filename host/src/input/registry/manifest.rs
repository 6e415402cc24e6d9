//! Manifests, read by provgate itself (with oci-client's tokens) so that
//! a body is refused as soon as it passes the cap, and redirects are
//! followed only as the registry module documentation says.

use oci_client::Reference;
use oci_client::RegistryOperation;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use reqwest::header::{ACCEPT, LOCATION};
use reqwest::{StatusCode, Url};
use serde_json::Value;

use super::error::{request_error, status_error};
use super::shared::{Authorization, authorizations};
use super::{Ctx, FetchError, MAX_DOCUMENT_BYTES, MAX_REDIRECTS};
use crate::digest::sha256_digest;
use crate::http::CappedError;

/// How much of an error answer's body is read (for its message).
const MAX_ERROR_BYTES: usize = 64 << 10;

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
    /// per repository. Redirects: see the registry module documentation.
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
/// registry module documentation for why.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::registry::parse_reference;
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
