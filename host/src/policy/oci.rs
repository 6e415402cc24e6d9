//! The artifact in an OCI registry (docs/reference.md §7): `oci://REF`
//! references, the manifest `policy push` writes, and loading an artifact
//! through the local artifact cache.
//!
//! # The artifact cache
//!
//! `<cache>/artifacts/` beside the compiled-code cache (the same directory
//! rules: `$PROVGATE_CACHE_DIR`, else `$XDG_CACHE_HOME/provgate`, else
//! `~/.cache/provgate`; `off` disables it) holds what was pulled, each file
//! named by the sha256 of its own bytes and checked against it on every
//! read, so a file that was changed is ignored (and fetched again), never
//! used:
//!
//! - `sha256-<hex>.wasm`: an artifact (the layer), `hex` its digest;
//! - `sha256-<hex>.manifest.json`: a manifest, `hex` its digest, so that a
//!   reference by digest that was pulled before needs no network;
//! - `sha256-<hex>.signatures.json`: the cosign signatures that verified for
//!   the manifest `hex`, verified again with the `--policy-key` of every
//!   run that reads them (they are not named by their own digest: they are
//!   only ever trusted once they verify).
//!
//! Every file is written to a temporary file in the same directory and
//! renamed into place.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::artifact::{Artifact, MAX_ARTIFACT_BYTES, Origin};
use super::signature::{self, PublicKey};
use super::{Description, PolicyError};
use crate::digest::sha256_digest;
use crate::input::registry::push::{
    self, OCI_MANIFEST_MEDIA_TYPE, Signature, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE, Want,
};
use crate::input::registry::{FetchError, RegistryOptions, parse_reference};

/// What every registry reference of a policy starts with.
pub const SCHEME: &str = "oci://";

/// `REF` of `oci://REF`; `None` for anything else (a path).
pub fn strip(given: &str) -> Option<&str> {
    given.strip_prefix(SCHEME)
}

/// An `oci://REF` as given, checked to be a reference.
#[derive(Clone, Debug)]
pub struct OciRef {
    /// `REF`, without `oci://`.
    pub reference: String,
    parsed: oci_client::Reference,
}

impl OciRef {
    /// `oci://REF` (or `REF`); a reference that cannot be one is the
    /// caller's mistake, named.
    pub fn parse(given: &str) -> Result<OciRef, FetchError> {
        let reference = strip(given).unwrap_or(given).to_string();
        let parsed = parse_reference(&reference)?;
        Ok(OciRef { reference, parsed })
    }

    pub fn digest(&self) -> Option<&str> {
        self.parsed.digest()
    }

    pub fn tag(&self) -> Option<&str> {
        self.parsed.tag()
    }

    /// `registry/repo`: what cosign calls the docker reference.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.parsed.registry(), self.parsed.repository())
    }

    /// `oci://registry/repo@digest`: the reference that pins a manifest.
    pub fn pinned(&self, manifest_digest: &str) -> String {
        format!("{SCHEME}{}@{manifest_digest}", self.repository())
    }
}

/// The annotations `policy push` writes, when given.
#[derive(Clone, Debug, Default)]
pub struct Annotations {
    pub source: Option<String>,
    pub revision: Option<String>,
    pub version: Option<String>,
    pub title: Option<String>,
}

/// The config blob and manifest of an artifact in the CNCF Wasm OCI
/// artifact layout: `(config, manifest)`, both exact bytes.
pub fn layout(
    artifact: &[u8],
    description: &Description,
    annotations: &Annotations,
    created: &str,
) -> (Vec<u8>, Vec<u8>) {
    let layer_digest = sha256_digest(artifact);
    let config = serde_json::to_vec(&json!({
        "created": created,
        "author": description.name,
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer_digest],
        "component": {"target": description.world, "imports": [], "exports": []},
    }))
    .expect("JSON serialises");
    let mut notes = serde_json::Map::new();
    notes.insert("org.opencontainers.image.created".into(), json!(created));
    let named = [
        ("org.opencontainers.image.source", &annotations.source),
        ("org.opencontainers.image.revision", &annotations.revision),
        ("org.opencontainers.image.version", &annotations.version),
        ("org.opencontainers.image.title", &annotations.title),
    ];
    for (key, value) in named {
        if let Some(value) = value {
            notes.insert(key.into(), json!(value));
        }
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": WASM_CONFIG_MEDIA_TYPE,
            "digest": sha256_digest(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": WASM_LAYER_MEDIA_TYPE,
            "digest": layer_digest,
            "size": artifact.len(),
        }],
        "annotations": Value::Object(notes),
    }))
    .expect("JSON serialises");
    (config, manifest)
}

/// What [`push`] wrote.
pub struct PushedArtifact {
    /// `oci://registry/repo@sha256:<manifest>`.
    pub pinned: String,
    pub manifest_digest: String,
    /// The artifact's digest: the layer's.
    pub artifact_digest: String,
}

/// Pushes `artifact` (described by `description`) under `target`'s tag.
pub async fn push(
    target: &OciRef,
    artifact: &[u8],
    description: &Description,
    annotations: &Annotations,
    created: &str,
    opts: &RegistryOptions,
) -> Result<PushedArtifact, FetchError> {
    let (config, manifest) = layout(artifact, description, annotations, created);
    let manifest_digest = push::push(
        &target.reference,
        opts,
        &[artifact, &config],
        &manifest,
        OCI_MANIFEST_MEDIA_TYPE,
    )
    .await?;
    Ok(PushedArtifact {
        pinned: target.pinned(&manifest_digest),
        manifest_digest,
        artifact_digest: sha256_digest(artifact),
    })
}

/// An artifact loaded from a registry (or the cache), checked.
pub struct Resolved {
    pub artifact: Artifact,
    pub manifest_digest: String,
}

/// Loads the artifact at `reference`: from the cache when the reference
/// has a digest and everything is cached (then no network at all), else
/// from the registry, every byte checked, and into the cache. With `key`,
/// the manifest must carry a valid cosign signature made with it.
///
/// A bad reference is a [`FetchError::Reference`]; everything else that
/// keeps the artifact from being used is a [`PolicyError`] (exit 3).
pub async fn resolve(
    reference: &OciRef,
    opts: &RegistryOptions,
    key: Option<&PublicKey>,
) -> Result<Resolved, PolicyError> {
    let cache = ArtifactCache::from_env();
    let shown = format!("{SCHEME}{}", reference.reference);
    let failed = |e: FetchError| PolicyError::Load(format!("cannot load the policy {shown}: {e}"));
    let unsigned = |why: String| PolicyError::Load(format!("the policy {shown} is refused: {why}"));

    // By digest, cached: no network (signatures too, when they are).
    if let Some(manifest_digest) = reference.digest()
        && let Some(cache) = &cache
        && let Some(manifest) = cache.read(manifest_digest, "manifest.json")
        && let Ok(json) = serde_json::from_slice::<Value>(&manifest)
        && let Ok((layer_digest, _)) = push::artifact_layer(&json)
        && let Some(layer) = cache.read(&layer_digest, "wasm")
    {
        if let Some(key) = key {
            let cached = cache.signatures(manifest_digest);
            if signature::check(key, &cached, manifest_digest).is_err() {
                let found = push::signatures(&reference.reference, opts, manifest_digest)
                    .await
                    .map_err(failed)?;
                signature::check(key, &found, manifest_digest).map_err(unsigned)?;
                cache.write_signatures(manifest_digest, &found);
            }
        }
        tracing::debug!(policy = %shown, "policy artifact from the cache");
        return Ok(resolved(reference, manifest_digest, layer));
    }

    let have = |digest: &str| cache.as_ref().and_then(|c| c.read(digest, "wasm"));
    let want = Want {
        max_layer_bytes: MAX_ARTIFACT_BYTES as usize,
        have: &have,
        signatures: key.is_some(),
    };
    let pulled = push::pull(&reference.reference, opts, &want).await.map_err(failed)?;
    if let Some(key) = key {
        signature::check(key, &pulled.signatures, &pulled.manifest_digest).map_err(unsigned)?;
    }
    if let Some(cache) = &cache {
        cache.write(&pulled.layer_digest, "wasm", &pulled.layer);
        cache.write(&pulled.manifest_digest, "manifest.json", &pulled.manifest);
        if key.is_some() {
            cache.write_signatures(&pulled.manifest_digest, &pulled.signatures);
        }
    }
    Ok(resolved(reference, &pulled.manifest_digest, pulled.layer))
}

/// What a tag names now, for `serve --policy-refresh`: `Ok(None)` while
/// `reference`'s tag still names the manifest `current`; otherwise the
/// artifact it names, checked as [`resolve`] checks it (every byte, and
/// with `key` a valid cosign signature on the new manifest) and cached.
/// Each call reads the tag's manifest; the layer is read only when it is
/// neither `current_layer` (its bytes checked all the same) nor cached.
pub async fn follow(
    reference: &OciRef,
    opts: &RegistryOptions,
    key: Option<&PublicKey>,
    current: &str,
    current_layer: &[u8],
) -> Result<Option<Resolved>, PolicyError> {
    let cache = ArtifactCache::from_env();
    let shown = format!("{SCHEME}{}", reference.reference);
    let failed = |e: FetchError| PolicyError::Load(format!("cannot load the policy {shown}: {e}"));
    let have = |digest: &str| {
        if sha256_digest(current_layer) == digest {
            return Some(current_layer.to_vec());
        }
        cache.as_ref().and_then(|c| c.read(digest, "wasm"))
    };
    let want = Want {
        max_layer_bytes: MAX_ARTIFACT_BYTES as usize,
        have: &have,
        signatures: false,
    };
    let pulled = push::pull(&reference.reference, opts, &want).await.map_err(failed)?;
    if pulled.manifest_digest == current {
        return Ok(None);
    }
    if let Some(key) = key {
        let found = push::signatures(&reference.reference, opts, &pulled.manifest_digest)
            .await
            .map_err(failed)?;
        signature::check(key, &found, &pulled.manifest_digest).map_err(PolicyError::Load)?;
        if let Some(cache) = &cache {
            cache.write_signatures(&pulled.manifest_digest, &found);
        }
    }
    if let Some(cache) = &cache {
        cache.write(&pulled.layer_digest, "wasm", &pulled.layer);
        cache.write(&pulled.manifest_digest, "manifest.json", &pulled.manifest);
    }
    Ok(Some(resolved(reference, &pulled.manifest_digest, pulled.layer)))
}

/// The manifest digest of an artifact [`resolve`] or [`follow`] loaded:
/// its origin is `oci://registry/repo@sha256:…`.
pub fn manifest_digest(artifact: &Artifact) -> Option<&str> {
    match &artifact.origin {
        Origin::Registry(pinned) if pinned.starts_with(SCHEME) => pinned.rsplit_once('@').map(|(_, d)| d),
        _ => None,
    }
}

fn resolved(reference: &OciRef, manifest_digest: &str, layer: Vec<u8>) -> Resolved {
    let artifact = Artifact::from_bytes(Cow::Owned(layer), Origin::Registry(reference.pinned(manifest_digest)));
    Resolved {
        artifact,
        manifest_digest: manifest_digest.to_string(),
    }
}

/// An artifact by its digest from the cache alone (for `replay`, which
/// finds a recorded artifact by digest), checked.
pub fn cached(digest: &str) -> Option<Artifact> {
    let bytes = ArtifactCache::from_env()?.read(digest, "wasm")?;
    Some(Artifact::from_bytes(
        Cow::Owned(bytes),
        Origin::Registry(format!("the artifact cache ({digest})")),
    ))
}

/// `<cache>/artifacts/`.
struct ArtifactCache {
    dir: PathBuf,
}

impl ArtifactCache {
    fn from_env() -> Option<ArtifactCache> {
        super::cache::CodeCache::from_env().map(|c| ArtifactCache {
            dir: c.dir().join("artifacts"),
        })
    }

    fn path(&self, digest: &str, ext: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.dir.join(format!("sha256-{hex}.{ext}")))
    }

    /// The file named by `digest`, when it holds exactly those bytes.
    fn read(&self, digest: &str, ext: &str) -> Option<Vec<u8>> {
        let path = self.path(digest, ext)?;
        let bytes = read_bounded(&path)?;
        if sha256_digest(&bytes) == digest {
            Some(bytes)
        } else {
            tracing::warn!(file = %path.display(), "ignoring a cached policy file that does not match its digest");
            None
        }
    }

    fn signatures(&self, manifest_digest: &str) -> Vec<Signature> {
        self.path(manifest_digest, "signatures.json")
            .and_then(|p| read_bounded(&p))
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    fn write_signatures(&self, manifest_digest: &str, signatures: &[Signature]) {
        if let Ok(bytes) = serde_json::to_vec(signatures) {
            self.write(manifest_digest, "signatures.json", &bytes);
        }
    }

    /// Written atomically; a cache that cannot be written is logged, never
    /// an error (the artifact was checked and is used all the same).
    fn write(&self, digest: &str, ext: &str, bytes: &[u8]) {
        let Some(path) = self.path(digest, ext) else { return };
        if let Err(e) = write_atomically(&self.dir, &path, bytes) {
            tracing::warn!(file = %path.display(), "cannot write the policy artifact cache: {e}");
        }
    }
}

fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_ARTIFACT_BYTES + 1), &mut bytes).ok()?;
    (bytes.len() as u64 <= MAX_ARTIFACT_BYTES).then_some(bytes)
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let temp = dir.join(format!(
        ".{}.{}-{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// When `policy push` says the artifact was made: `$SOURCE_DATE_EPOCH`
/// when set (a reproducible push gives the same manifest), else now; RFC
/// 3339 in seconds.
pub fn created_now() -> String {
    let at = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .unwrap_or_else(std::time::SystemTime::now);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::SettingsView;

    fn description() -> Description {
        Description {
            name: "provgate-molecule".into(),
            version: "0.2.0".into(),
            digest: String::new(),
            world: "provgate:policy/provgate@0.2.0".into(),
            rules: Vec::new(),
            settings: SettingsView {
                gitea_base_url: String::new(),
                allowed_owners: Vec::new(),
                created_max_skew_seconds: 300,
                on_unavailable: "deny",
            },
        }
    }

    #[test]
    fn the_layout_is_the_wasm_artifact_layout_with_the_file_as_its_layer() {
        let notes = Annotations {
            source: Some("https://git.example/org/policies".into()),
            revision: Some("a".repeat(40)),
            version: Some("0.2.0".into()),
            title: None,
        };
        let (config, manifest) = layout(b"\0asm-bytes", &description(), &notes, "2026-12-01T00:00:00Z");
        let manifest: Value = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(
            push::artifact_layer(&manifest).unwrap(),
            (sha256_digest(b"\0asm-bytes"), 10)
        );
        assert_eq!(manifest["config"]["digest"], sha256_digest(&config));
        assert_eq!(manifest["annotations"]["org.opencontainers.image.version"], "0.2.0");
        assert!(manifest["annotations"].get("org.opencontainers.image.title").is_none());
        let config: Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(config["architecture"], "wasm");
        assert_eq!(config["os"], "wasip2");
        assert_eq!(config["layerDigests"][0], sha256_digest(b"\0asm-bytes"));
    }

    #[test]
    fn references_take_the_oci_scheme_or_none() {
        let r = OciRef::parse("oci://127.0.0.1:5000/policies/provgate:v1").unwrap();
        assert_eq!(r.reference, "127.0.0.1:5000/policies/provgate:v1");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(
            r.pinned("sha256:ab"),
            "oci://127.0.0.1:5000/policies/provgate@sha256:ab"
        );
        assert!(OciRef::parse("oci://Bad/Name").is_err());
        assert_eq!(strip("policy.wasm"), None);
    }

    #[test]
    fn a_cached_file_is_used_only_when_it_matches_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache {
            dir: dir.path().join("artifacts"),
        };
        let digest = sha256_digest(b"bytes");
        assert_eq!(cache.read(&digest, "wasm"), None);
        cache.write(&digest, "wasm", b"bytes");
        assert_eq!(cache.read(&digest, "wasm").as_deref(), Some(&b"bytes"[..]));
        std::fs::write(cache.path(&digest, "wasm").unwrap(), b"other").unwrap();
        assert_eq!(cache.read(&digest, "wasm"), None);
        assert_eq!(cache.path("sha256:../x", "wasm"), None);
    }
}
