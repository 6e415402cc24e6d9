//! A policy artifact in a registry (docs/reference.md §7): written by
//! `provgate policy push`, read back whole by `policy pull` and `--policy
//! oci://REF`, with the cosign signatures stored beside it.
//!
//! The layout is the CNCF WebAssembly OCI artifact layout (TAG Runtime,
//! "Wasm OCI Artifact layout"): an OCI image manifest whose config has media
//! type [`WASM_CONFIG_MEDIA_TYPE`] and whose one layer, of media type
//! [`WASM_LAYER_MEDIA_TYPE`], is the artifact file itself, so the layer's
//! digest is the artifact's digest. What the config and annotations say is
//! the caller's (`policy/oci.rs`); this file moves bytes and checks them.
//!
//! Writing is the distribution spec's "push": each blob that the registry
//! does not have already (`HEAD`) is uploaded in two steps (`POST
//! /blobs/uploads/`, then `PUT <Location>?digest=…` with the bytes), then the
//! manifest is `PUT` under the tag. The token is asked for with the scope
//! `repository:REPO:pull,push`; credentials are found as for a fetch, and
//! go to the registry's own origin only (an upload `Location` on another
//! host is refused). Reading goes through the fetch's own GET loop
//! (`request.rs`): every manifest and blob is capped and checked against
//! its digest.
//!
//! `provgate promote` uses the same two halves for an image: it reads a
//! manifest (or index) once as bytes ([`read_manifest`]) and writes those
//! very bytes under another tag ([`put_manifest`]).

use oci_client::Reference;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use super::error::{status_error, transport};
use super::manifest::registry_url;
use super::request::{Kind, same_origin};
use super::shared::{Authorization, authorizations};
use super::within;
use super::{Ctx, FetchError, MAX_DOCUMENT_BYTES, MAX_ERROR_BYTES, RegistryOptions, parse_reference};
use crate::digest::sha256_digest;
use crate::http::CappedError;

/// The config of a Wasm artifact (CNCF Wasm OCI artifact layout).
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Its one layer: the WebAssembly file itself.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The manifest of an artifact (and of a cosign signature).
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// A cosign signature's layer: the simple-signing payload (sigstore/cosign
/// `specs/SIGNATURE_SPEC.md`).
pub const COSIGN_PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 of the signature over the payload.
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// A signature payload is a small JSON document.
pub const MAX_PAYLOAD_BYTES: usize = 64 << 10;
/// A signature manifest lists at most this many signatures that are read.
const MAX_SIGNATURES: usize = 16;

/// What the registry holds under a reference, read whole and checked.
#[derive(Debug)]
pub struct Pulled {
    /// `sha256:…` of the manifest bytes.
    pub manifest_digest: String,
    /// The manifest's exact bytes (their sha256 is `manifest_digest`).
    pub manifest: Vec<u8>,
    /// `sha256:…` of the artifact: the one layer's digest.
    pub layer_digest: String,
    /// The artifact's bytes (their sha256 is `layer_digest`).
    pub layer: Vec<u8>,
    /// The cosign signatures stored for the manifest, when asked for.
    pub signatures: Vec<Signature>,
}

/// One cosign signature: the payload's bytes (checked against the digest
/// its signature manifest names) and the annotation's base64 signature.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Signature {
    pub payload: Vec<u8>,
    pub signature: String,
}

/// What [`pull`] reads besides the manifest.
pub struct Want<'a> {
    /// The artifact's bytes are refused past this size.
    pub max_layer_bytes: usize,
    /// The artifact's bytes when they are at hand already (a cache keyed by
    /// digest; the bytes are checked against the digest all the same).
    pub have: &'a (dyn Fn(&str) -> Option<Vec<u8>> + Sync),
    /// Whether to read the `sha256-<hex>.sig` signatures too.
    pub signatures: bool,
}

/// The one layer of a Wasm artifact manifest: `(digest, size)`. Anything
/// else (an index, another config type, more layers, another layer type)
/// is refused, named.
pub fn artifact_layer(manifest: &Value) -> Result<(String, u64), String> {
    let kind = manifest.get("mediaType").and_then(Value::as_str);
    if kind.is_some_and(|k| k != OCI_MANIFEST_MEDIA_TYPE) || manifest.get("manifests").is_some() {
        return Err(format!(
            "it is {}, not an OCI image manifest of a Wasm artifact",
            crate::text::quote(kind.unwrap_or("an index"))
        ));
    }
    let config = manifest.pointer("/config/mediaType").and_then(Value::as_str);
    if config != Some(WASM_CONFIG_MEDIA_TYPE) {
        return Err(format!(
            "its config has media type {}, not {WASM_CONFIG_MEDIA_TYPE} (the CNCF Wasm OCI artifact layout)",
            crate::text::quote(config.unwrap_or("(none)"))
        ));
    }
    let layers = manifest
        .get("layers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let [layer] = layers else {
        return Err(format!(
            "it has {} layers; a Wasm artifact has exactly one",
            layers.len()
        ));
    };
    let media = layer.get("mediaType").and_then(Value::as_str);
    if media != Some(WASM_LAYER_MEDIA_TYPE) {
        return Err(format!(
            "its layer has media type {}, not {WASM_LAYER_MEDIA_TYPE}",
            crate::text::quote(media.unwrap_or("(none)"))
        ));
    }
    let digest = layer.get("digest").and_then(Value::as_str).unwrap_or_default();
    if !is_sha256(digest) {
        return Err(format!(
            "its layer names the digest {}, which is not sha256: and 64 lower-case hex digits",
            crate::text::quote(digest)
        ));
    }
    let size = layer.get("size").and_then(Value::as_u64).unwrap_or(0);
    Ok((digest.to_string(), size))
}

/// The cosign signature tag of a manifest digest: `sha256-<hex>.sig`.
pub fn signature_tag(manifest_digest: &str) -> String {
    format!("{}.sig", manifest_digest.replacen(':', "-", 1))
}

fn is_sha256(digest: &str) -> bool {
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Pushes `blobs` (each by its sha256) and then `manifest` under the
/// reference's tag (or digest), within `opts.timeout` in all. The
/// manifest's digest.
pub async fn push(
    reference: &str,
    opts: &RegistryOptions,
    blobs: &[&[u8]],
    manifest: &[u8],
    media_type: &str,
) -> Result<String, FetchError> {
    let parsed = parse_reference(reference)?;
    within(&parsed, opts, "pull,push", async |ctx: Ctx<'_>| {
        for blob in blobs {
            ctx.upload_blob(&parsed, blob).await?;
        }
        ctx.put_manifest(&parsed, manifest, media_type).await
    })
    .await
}

/// The manifest kinds an image is stored as, and so the ones `promote`
/// reads and writes back: an OCI index or Docker manifest list, an OCI
/// image manifest or a Docker one.
pub const IMAGE_MANIFEST_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    OCI_MANIFEST_MEDIA_TYPE,
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// A manifest (or index) as its registry stores it: the exact bytes, their
/// sha256, and the media type they are written back under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredManifest {
    /// `sha256:…` of `bytes`.
    pub digest: String,
    pub bytes: Vec<u8>,
    /// One of [`IMAGE_MANIFEST_MEDIA_TYPES`].
    pub media_type: String,
}

/// Reads the manifest (or index) at `reference` once, by digest or by tag,
/// as bytes: checked against the reference's digest or, by tag, against the
/// registry's `Docker-Content-Digest`, capped, within `opts.timeout`. Its
/// media type is the document's own `mediaType`, else the answer's
/// `Content-Type`, else what its shape says; a kind other than
/// [`IMAGE_MANIFEST_MEDIA_TYPES`] is refused.
pub async fn read_manifest(reference: &str, opts: &RegistryOptions) -> Result<StoredManifest, FetchError> {
    let parsed = parse_reference(reference)?;
    within(&parsed, opts, "pull", async |ctx: Ctx<'_>| {
        let what = format!("manifest {}", parsed.whole());
        ctx.stored_manifest(&parsed, &what).await
    })
    .await
}

/// Writes `manifest`'s exact bytes under the tag of `reference` (a token
/// with `pull,push` scope, as [`push`] asks for), within `opts.timeout`;
/// the digest the registry stored, which is `manifest.digest`. Writing the
/// same bytes under the same tag again changes nothing.
pub async fn put_manifest(
    reference: &str,
    opts: &RegistryOptions,
    manifest: &StoredManifest,
) -> Result<String, FetchError> {
    let parsed = parse_reference(reference)?;
    within(&parsed, opts, "pull,push", async |ctx: Ctx<'_>| {
        ctx.put_manifest(&parsed, &manifest.bytes, &manifest.media_type).await
    })
    .await
}

/// Reads the artifact at `reference` (by digest or tag) whole: the
/// manifest (checked against the reference's digest when it has one), its
/// one layer (checked against the layer's digest), and with
/// [`Want::signatures`] the cosign signatures of the manifest.
pub async fn pull(reference: &str, opts: &RegistryOptions, want: &Want<'_>) -> Result<Pulled, FetchError> {
    let parsed = parse_reference(reference)?;
    within(&parsed, opts, "pull", async |ctx: Ctx<'_>| {
        let what = format!("manifest {}", parsed.whole());
        let (manifest, manifest_digest) = ctx.raw_manifest(&parsed, &what).await?;
        let json: Value =
            serde_json::from_slice(&manifest).map_err(|e| ctx.unusable(&what, format!("not JSON: {e}")))?;
        let (layer_digest, size) = artifact_layer(&json).map_err(|reason| ctx.unusable(&what, reason))?;
        let what = format!("artifact layer {layer_digest}");
        if size > want.max_layer_bytes as u64 {
            return Err(FetchError::TooLarge {
                what,
                limit: want.max_layer_bytes,
            });
        }
        let layer = match (want.have)(&layer_digest).filter(|b| sha256_digest(b) == layer_digest) {
            Some(bytes) => bytes,
            None => {
                ctx.blob_at_most(&parsed, &layer_digest, want.max_layer_bytes, &what)
                    .await?
            }
        };
        let signatures = if want.signatures {
            ctx.signatures(&parsed, &manifest_digest).await?
        } else {
            Vec::new()
        };
        Ok(Pulled {
            manifest_digest,
            manifest,
            layer_digest,
            layer,
            signatures,
        })
    })
    .await
}

/// The cosign signatures of `manifest_digest` in the repository of
/// `reference`, alone (for a manifest that is at hand already).
pub async fn signatures(
    reference: &str,
    opts: &RegistryOptions,
    manifest_digest: &str,
) -> Result<Vec<Signature>, FetchError> {
    let parsed = parse_reference(reference)?;
    within(&parsed, opts, "pull", async |ctx: Ctx<'_>| {
        ctx.signatures(&parsed, manifest_digest).await
    })
    .await
}

impl Ctx<'_> {
    /// One request to the registry's own origin, authenticated as the
    /// registry last accepted for this repository and these actions, once
    /// more after a 401 with what its challenge asks for. Any other status
    /// is the caller's to read.
    async fn send(
        &self,
        method: Method,
        url: &Url,
        what: &str,
        body: Option<(&[u8], &str)>,
    ) -> Result<reqwest::Response, FetchError> {
        if !same_origin(url, self.origin) {
            return Err(self.unusable(
                what,
                format!(
                    "it sent provgate to {}, not to the registry itself (credentials stay with the registry)",
                    self.secrets.show(url.as_str())
                ),
            ));
        }
        let key = (
            self.registry.to_string(),
            format!("{} {}", self.repository, self.actions),
        );
        let mut authorization = authorizations().get(&key).cloned();
        if let Some(Authorization::Bearer(token)) = &authorization {
            self.secrets.add(token);
        }
        let mut challenged = false;
        loop {
            let mut request = self.clients.http.request(method.clone(), url.clone());
            if let Some((bytes, content_type)) = body {
                request = request.header(CONTENT_TYPE, content_type).body(bytes.to_vec());
            }
            request = match &authorization {
                Some(Authorization::Bearer(token)) => request.bearer_auth(token),
                Some(Authorization::Basic(user, password)) => request.basic_auth(user, Some(password)),
                None => request,
            };
            let response = crate::latency::timed(crate::retry::Peer::Registry, request.send())
                .await
                .map_err(|e| self.send_error(e, url, None, ""))?;
            if response.status() == StatusCode::UNAUTHORIZED && !challenged {
                challenged = true;
                if let Some(found) = self.authenticate(response.headers()).await? {
                    authorizations().insert(key.clone(), found.clone());
                    authorization = Some(found);
                    continue;
                }
            }
            return Ok(response);
        }
    }

    /// The registry's answer that is not what was asked for, as an error.
    async fn failed(&self, mut response: reqwest::Response, what: &str) -> FetchError {
        let status = response.status();
        let body = crate::http::read_prefix(&mut response, MAX_ERROR_BYTES).await;
        let shown = |text: &str| self.secrets.show(text);
        self.error(status_error(status, &body, self.registry, self.repository, what, shown))
    }

    fn url(&self, reference: &Reference, path: &str, what: &str) -> Result<Url, FetchError> {
        registry_url(reference, &self.opts.insecure, path).map_err(|e| self.unusable(what, format!("no URL: {e}")))
    }

    /// Uploads `bytes` unless the registry has them already.
    async fn upload_blob(&self, reference: &Reference, bytes: &[u8]) -> Result<(), FetchError> {
        let digest = sha256_digest(bytes);
        let what = format!("blob {digest}");
        let url = self.url(reference, &format!("blobs/{digest}"), &what)?;
        let head = self.send(Method::HEAD, &url, &what, None).await?;
        if head.status() == StatusCode::OK {
            return Ok(());
        }
        let start = self.url(reference, "blobs/uploads/", &what)?;
        let started = self.send(Method::POST, &start, &what, None).await?;
        if started.status() != StatusCode::ACCEPTED {
            return Err(self.failed(started, &format!("the upload of {what}")).await);
        }
        let location = started
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.unusable(&what, "an upload answer (HTTP 202) without a Location".into()))?;
        let mut upload = start.join(location).map_err(|e| {
            self.unusable(
                &what,
                format!("an upload Location {}: {e}", self.secrets.show(location)),
            )
        })?;
        upload.query_pairs_mut().append_pair("digest", &digest);
        let put = self
            .send(Method::PUT, &upload, &what, Some((bytes, "application/octet-stream")))
            .await?;
        if !matches!(
            put.status(),
            StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::OK
        ) {
            return Err(self.failed(put, &format!("the upload of {what}")).await);
        }
        Ok(())
    }

    /// PUTs the manifest under the reference's tag (else digest); its digest.
    async fn put_manifest(
        &self,
        reference: &Reference,
        manifest: &[u8],
        media_type: &str,
    ) -> Result<String, FetchError> {
        let digest = sha256_digest(manifest);
        let name = reference.tag().or(reference.digest()).unwrap_or("latest").to_string();
        let what = format!("manifest {}", reference.whole());
        let url = self.url(reference, &format!("manifests/{name}"), &what)?;
        let put = self
            .send(Method::PUT, &url, &what, Some((manifest, media_type)))
            .await?;
        if !matches!(put.status(), StatusCode::CREATED | StatusCode::OK) {
            return Err(self.failed(put, &what).await);
        }
        // The registry names what it stored: it must be these bytes.
        let stored = put.headers().get("Docker-Content-Digest").and_then(|v| v.to_str().ok());
        if let Some(stored) = stored
            && stored != digest
        {
            return Err(FetchError::DigestMismatch {
                what: format!("the stored {what}"),
                expected: digest,
                actual: crate::text::quote(stored),
            });
        }
        Ok(digest)
    }

    /// A manifest's exact bytes and their digest, checked against the
    /// reference's digest or, by tag, the registry's `Docker-Content-Digest`.
    async fn raw_manifest(&self, reference: &Reference, what: &str) -> Result<(Vec<u8>, String), FetchError> {
        let name = reference.digest().or(reference.tag()).unwrap_or("latest").to_string();
        let url = self.url(reference, &format!("manifests/{name}"), what)?;
        let response = self
            .get(&url, Some(OCI_MANIFEST_MEDIA_TYPE), Kind::Manifest, what)
            .await?;
        let header = response
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .filter(|d| d.starts_with("sha256:"))
            .map(str::to_string);
        let bytes = self.read_document(response, what).await?;
        let actual = vouched(&bytes, reference, header, what)?;
        Ok((bytes, actual))
    }

    /// An image manifest or index as stored: see [`read_manifest`].
    async fn stored_manifest(&self, reference: &Reference, what: &str) -> Result<StoredManifest, FetchError> {
        let name = reference.digest().or(reference.tag()).unwrap_or("latest").to_string();
        let url = self.url(reference, &format!("manifests/{name}"), what)?;
        let accept = IMAGE_MANIFEST_MEDIA_TYPES.join(", ");
        let response = self.get(&url, Some(&accept), Kind::Manifest, what).await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let digest_header = header("Docker-Content-Digest").filter(|d| d.starts_with("sha256:"));
        let content_type =
            header(CONTENT_TYPE.as_str()).and_then(|t| t.split(';').next().map(|t| t.trim().to_ascii_lowercase()));
        let bytes = self.read_document(response, what).await?;
        let actual = vouched(&bytes, reference, digest_header, what)?;
        let json: Value = serde_json::from_slice(&bytes).map_err(|e| self.unusable(what, format!("not JSON: {e}")))?;
        let own = json.get("mediaType").and_then(Value::as_str).filter(|t| !t.is_empty());
        let media_type = match (own, content_type.as_deref()) {
            (Some(own), _) => own.to_string(),
            (None, Some(sent)) if IMAGE_MANIFEST_MEDIA_TYPES.contains(&sent) => sent.to_string(),
            (None, _) if json.get("manifests").is_some_and(Value::is_array) => IMAGE_MANIFEST_MEDIA_TYPES[0].into(),
            (None, _) => OCI_MANIFEST_MEDIA_TYPE.into(),
        };
        if !IMAGE_MANIFEST_MEDIA_TYPES.contains(&media_type.as_str()) {
            return Err(self.unusable(
                what,
                format!(
                    "it is {}, not an OCI or Docker v2 image manifest or index",
                    crate::text::quote(&media_type)
                ),
            ));
        }
        Ok(StoredManifest {
            digest: actual,
            bytes,
            media_type,
        })
    }

    /// A blob of at most `limit` bytes, checked against its digest.
    async fn blob_at_most(
        &self,
        reference: &Reference,
        digest: &str,
        limit: usize,
        what: &str,
    ) -> Result<Vec<u8>, FetchError> {
        let url = self.url(reference, &format!("blobs/{digest}"), what)?;
        let mut response = self.get(&url, None, Kind::Blob, what).await?;
        let bytes = crate::http::read_capped(&mut response, limit)
            .await
            .map_err(|e| match e {
                CappedError::Declared(_) | CappedError::TooLarge => FetchError::TooLarge {
                    what: what.into(),
                    limit,
                },
                CappedError::Read(e) => FetchError::Unreachable {
                    registry: self.registry.into(),
                    reason: format!("reading {what}: {}", transport(e)),
                },
            })?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(FetchError::DigestMismatch {
                what: what.into(),
                expected: digest.into(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// The cosign signatures stored for `manifest_digest`: the layers of
    /// the manifest tagged `sha256-<hex>.sig` whose media type is the
    /// simple-signing payload's, each payload checked against its digest.
    /// No such tag: none.
    async fn signatures(&self, reference: &Reference, manifest_digest: &str) -> Result<Vec<Signature>, FetchError> {
        let tag = signature_tag(manifest_digest);
        let what = format!("signature manifest {tag}");
        let url = self.url(reference, &format!("manifests/{tag}"), &what)?;
        let response = match self
            .get(&url, Some(OCI_MANIFEST_MEDIA_TYPE), Kind::Manifest, &what)
            .await
        {
            Ok(response) => response,
            Err(FetchError::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let bytes = self.read_document(response, &what).await?;
        let manifest: Value =
            serde_json::from_slice(&bytes).map_err(|e| self.unusable(&what, format!("not JSON: {e}")))?;
        let layers = manifest
            .get("layers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut found = Vec::new();
        for layer in layers.iter().take(MAX_SIGNATURES) {
            if layer.get("mediaType").and_then(Value::as_str) != Some(COSIGN_PAYLOAD_MEDIA_TYPE) {
                continue;
            }
            let Some(signature) = layer
                .pointer(&format!(
                    "/annotations/{}",
                    COSIGN_SIGNATURE_ANNOTATION.replace('/', "~1")
                ))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let digest = layer.get("digest").and_then(Value::as_str).unwrap_or_default();
            let digest = self.checked_digest(digest, &what)?;
            let payload = self
                .blob_at_most(
                    reference,
                    &digest,
                    MAX_PAYLOAD_BYTES.min(MAX_DOCUMENT_BYTES),
                    &format!("signature payload {digest}"),
                )
                .await?;
            found.push(Signature {
                payload,
                signature: signature.to_string(),
            });
        }
        Ok(found)
    }
}

/// The sha256 of a manifest's `bytes`, which must be the digest the
/// reference names or, by tag, the one the registry's
/// `Docker-Content-Digest` vouches for (when it sent one).
fn vouched(bytes: &[u8], reference: &Reference, header: Option<String>, what: &str) -> Result<String, FetchError> {
    let actual = sha256_digest(bytes);
    let expected = reference
        .digest()
        .map(str::to_string)
        .or(header)
        .unwrap_or_else(|| actual.clone());
    if actual != expected {
        return Err(FetchError::DigestMismatch {
            what: what.into(),
            expected: crate::text::quote(&expected),
            actual,
        });
    }
    Ok(actual)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(config: &str, layers: Value) -> Value {
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST_MEDIA_TYPE,
               "config": {"mediaType": config, "digest": "sha256:x", "size": 2}, "layers": layers})
    }

    #[test]
    fn a_wasm_artifact_has_one_wasm_layer_and_the_wasm_config() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let layer = json!([{"mediaType": WASM_LAYER_MEDIA_TYPE, "digest": digest, "size": 7}]);
        assert_eq!(
            artifact_layer(&manifest(WASM_CONFIG_MEDIA_TYPE, layer.clone())),
            Ok((digest.clone(), 7))
        );
        let e = artifact_layer(&manifest("application/vnd.oci.image.config.v1+json", layer)).unwrap_err();
        assert!(e.contains(WASM_CONFIG_MEDIA_TYPE), "{e}");
        let two = json!([{"mediaType": WASM_LAYER_MEDIA_TYPE, "digest": digest}, {"mediaType": WASM_LAYER_MEDIA_TYPE, "digest": digest}]);
        assert!(
            artifact_layer(&manifest(WASM_CONFIG_MEDIA_TYPE, two))
                .unwrap_err()
                .contains("2 layers")
        );
        let tar = json!([{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest}]);
        assert!(artifact_layer(&manifest(WASM_CONFIG_MEDIA_TYPE, tar)).is_err());
        let short = json!([{"mediaType": WASM_LAYER_MEDIA_TYPE, "digest": "sha256:ab"}]);
        assert!(artifact_layer(&manifest(WASM_CONFIG_MEDIA_TYPE, short)).is_err());
        assert!(
            artifact_layer(&json!({"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []})).is_err()
        );
    }

    #[test]
    fn the_signature_tag_is_cosigns() {
        assert_eq!(
            signature_tag(&format!("sha256:{}", "0a".repeat(32))),
            format!("sha256-{}.sig", "0a".repeat(32))
        );
    }
}
