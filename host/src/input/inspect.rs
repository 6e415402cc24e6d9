//! `provgate verify --inspect FILE|-`: offline JSON that describes an image,
//! turned into a [`Subject`] (SPEC §2, §5).
//!
//! Four shapes are recognised by their top-level keys:
//!
//! | shape | digest | reference | labels |
//! |---|---|---|---|
//! | `docker buildx imagetools inspect --format '{{json .}}'` | `manifest.digest` (the index digest for an index) | `name` | `image.config.Labels`, or `image["os/arch"].config.Labels` for several platforms |
//! | `skopeo inspect` | `Digest` | `Name` | `Labels` |
//! | `docker inspect` (an array of one image) | the `RepoDigests` entry of the reference's repository | first of `RepoTags` | `Config.Labels` |
//! | a bare OCI image config | `--digest` only | `--reference` or empty | `config.Labels` |
//!
//! `--digest` and `--reference` always win over what the JSON says.
//!
//! The host only gathers facts here; it never judges them. A digest of the
//! wrong form or a missing label is the policy's business: this module
//! rejects only input it cannot read facts from, and every error names the
//! JSON path that failed and what was expected there.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::subject::Subject;

/// The platform whose labels are judged when the input holds several.
pub const DEFAULT_PLATFORM: &str = "linux/amd64";

/// How to read the input: the command line's `--platform`, `--digest`, `--reference`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InspectOptions<'a> {
    /// `os/arch` or `os/arch/variant`: picks an image config from a buildx
    /// platform map. Matched exactly first, then after the normalisation
    /// buildx (containerd) applies to its keys (`linux/arm64/v8` is
    /// `linux/arm64`, `linux/arm` is `linux/arm/v7`, `x86_64` is `amd64`).
    pub platform: &'a str,
    /// Supplies the subject digest, or overrides the JSON's.
    pub digest: Option<&'a str>,
    /// Supplies the subject reference, or overrides the JSON's.
    pub reference: Option<&'a str>,
}

impl Default for InspectOptions<'_> {
    fn default() -> Self {
        InspectOptions {
            platform: DEFAULT_PLATFORM,
            digest: None,
            reference: None,
        }
    }
}

/// Which tool's output the input was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    BuildxImagetools,
    SkopeoInspect,
    DockerInspect,
    OciConfig,
}

impl Shape {
    /// A human name: the command that prints this shape.
    pub const fn name(self) -> &'static str {
        match self {
            Shape::BuildxImagetools => "docker buildx imagetools inspect",
            Shape::SkopeoInspect => "skopeo inspect",
            Shape::DockerInspect => "docker inspect",
            Shape::OciConfig => "OCI image config",
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The facts read from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    pub shape: Shape,
    pub subject: Subject,
    /// The platform the labels came from, when chosen from a buildx platform map.
    pub platform: Option<String>,
}

const ACCEPTED: &str = "one of: \
    `docker buildx imagetools inspect --format '{{json .}}'` output (an object with `name` and `manifest`); \
    `skopeo inspect` output (an object with `Name` and `Digest`); \
    `docker inspect` output (an array of one object with `RepoTags` and `RepoDigests`); \
    or a bare OCI image config (an object with `architecture`, `os`, `config` and `rootfs`; needs --digest)";

/// Why the input gave no subject. Each message names the JSON path (or the
/// line and column) that failed and what was expected there.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("the input is empty; expected {accepted}", accepted = ACCEPTED)]
    Empty,
    #[error("the input is not valid JSON: {0}")]
    Json(serde_json::Error),
    #[error("unrecognised JSON ({seen}); expected {accepted}", accepted = ACCEPTED)]
    UnknownShape { seen: String },
    #[error("{path}: expected {expected}, found {found}")]
    WrongType {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{path}: missing; expected {expected}")]
    Missing { path: String, expected: &'static str },
    #[error("{path}: expected `repository@digest`, found {found}")]
    BadRepoDigest { path: String, found: String },
    #[error("{what}: --digest sha256:… is required for this {shape} input (the manifest digest a pin stores)")]
    DigestRequired { shape: Shape, what: &'static str },
    #[error(
        "{path}: no image for platform {platform} in the {shape} output; available: {available}; choose one with --platform",
        shape = Shape::BuildxImagetools
    )]
    PlatformNotFound {
        path: String,
        platform: String,
        available: String,
    },
    #[error("top-level array: {}", image_count(*.count))]
    ImageCount { count: usize },
}

fn image_count(count: usize) -> String {
    if count == 0 {
        "docker inspect output with no image (did docker inspect find the image?); expected exactly one".to_owned()
    } else {
        format!("docker inspect output with {count} images; expected exactly one: inspect one image at a time")
    }
}

/// Reads `json` (any of the four shapes) into a subject.
pub fn parse(json: &[u8], opts: &InspectOptions<'_>) -> Result<Inspected, InspectError> {
    let json = json.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(json);
    if json.iter().all(u8::is_ascii_whitespace) {
        return Err(InspectError::Empty);
    }
    let value: Value = serde_json::from_slice(json).map_err(InspectError::Json)?;
    match value {
        Value::Array(items) => docker_array(items, opts),
        Value::Object(top) => {
            if is_buildx(&top) {
                buildx(top, opts)
            } else if is_docker(&top) {
                // `docker inspect --format '{{json .}}'` prints the one object.
                docker(top, "", opts)
            } else if is_skopeo(&top) {
                skopeo(top, opts)
            } else if is_oci_config(&top) {
                oci_config(top, opts)
            } else {
                Err(InspectError::UnknownShape {
                    seen: describe_keys("an object", &top),
                })
            }
        }
        other => Err(InspectError::UnknownShape {
            seen: format!("the top level is {}", kind(&other)),
        }),
    }
}

fn is_buildx(top: &Map<String, Value>) -> bool {
    top.contains_key("manifest") && (top.contains_key("name") || top.contains_key("image"))
}

/// `docker image inspect` always prints `RepoTags` and `RepoDigests`
/// (`docker container inspect` prints neither).
fn is_docker(top: &Map<String, Value>) -> bool {
    top.contains_key("RepoDigests") || (top.contains_key("Id") && top.contains_key("RepoTags"))
}

fn is_skopeo(top: &Map<String, Value>) -> bool {
    top.contains_key("Digest")
        && ["Name", "Layers", "LayersData", "Architecture", "Os", "Labels"]
            .iter()
            .any(|k| top.contains_key(*k))
}

fn is_oci_config(top: &Map<String, Value>) -> bool {
    top.contains_key("rootfs")
        || (top.contains_key("config") && (top.contains_key("architecture") || top.contains_key("os")))
}

fn buildx(mut top: Map<String, Value>, opts: &InspectOptions<'_>) -> Result<Inspected, InspectError> {
    let mut manifest = take_object(&mut top, "manifest", "")?
        .ok_or_else(|| missing("manifest".to_owned(), "the manifest or index descriptor"))?;
    let digest = match opts.digest {
        Some(digest) => digest.to_owned(),
        None => take_string(&mut manifest, "digest", "manifest")?
            .filter(|d| !d.is_empty())
            .ok_or(InspectError::DigestRequired {
                shape: Shape::BuildxImagetools,
                what: "manifest.digest is missing or empty",
            })?,
    };
    let reference = match opts.reference {
        Some(reference) => reference.to_owned(),
        None => take_string(&mut top, "name", "")?.unwrap_or_default(),
    };

    let image = take(&mut top, "image").ok_or_else(|| {
        missing(
            "image".to_owned(),
            "the image config, or a map from platform to image config",
        )
    })?;
    let Value::Object(image) = image else {
        return Err(wrong(
            "image".to_owned(),
            "an object (an image config or a platform map)",
            &image,
        ));
    };
    let (config, path, platform) = if is_platform_map(&image) {
        let (platform, config) = choose_platform(image, opts.platform)?;
        let path = format!("image[{}]", quote(&platform));
        let Value::Object(config) = config else {
            return Err(wrong(path, "an object (an image config)", &config));
        };
        (config, path, Some(platform))
    } else {
        (image, "image".to_owned(), None)
    };
    let mut config = config;
    let labels = labels_in(take_object(&mut config, "config", &path)?, &field_path(&path, "config"))?;

    Ok(Inspected {
        shape: Shape::BuildxImagetools,
        subject: Subject {
            reference,
            digest,
            labels,
            pin: None,
            platform: platform
                .clone()
                .map(|name| crate::subject::Platform { name, digest: None }),
        },
        platform,
    })
}

/// buildx prints `image` as a map from platform (`os/arch[/variant]`) to
/// image config when the image has several platforms, and as the config
/// itself otherwise. No key of an image config contains a `/`.
fn is_platform_map(image: &Map<String, Value>) -> bool {
    !image.is_empty() && image.keys().all(|k| k.contains('/'))
}

fn choose_platform(mut image: Map<String, Value>, wanted: &str) -> Result<(String, Value), InspectError> {
    if let Some(config) = image.remove(wanted) {
        return Ok((wanted.to_owned(), config));
    }
    let normal = normalize_platform(wanted);
    let key = image.keys().find(|k| normalize_platform(k) == normal).cloned();
    match key.and_then(|k| image.remove(&k).map(|config| (k, config))) {
        Some(found) => Ok(found),
        None => Err(InspectError::PlatformNotFound {
            path: format!("image[{}]", quote(wanted)),
            platform: wanted.to_owned(),
            available: list(image.keys().map(String::as_str), 16),
        }),
    }
}

/// The normal form containerd's `platforms.Normalize` gives, which is how
/// buildx writes its platform keys.
pub(crate) fn normalize_platform(platform: &str) -> String {
    let lower = platform.to_ascii_lowercase();
    let mut parts = lower.split('/');
    let (Some(os), Some(arch), variant, None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return lower;
    };
    let variant = variant.unwrap_or("");
    let (arch, variant) = match (arch, variant) {
        ("amd64" | "x86_64" | "x86-64", "v1") => ("amd64", ""),
        ("amd64" | "x86_64" | "x86-64", v) => ("amd64", v),
        ("arm64" | "aarch64", "8" | "v8" | "v8.0") => ("arm64", ""),
        ("arm64" | "aarch64", v) => ("arm64", v),
        ("armhf", _) => ("arm", "v7"),
        ("armel", _) => ("arm", "v6"),
        ("arm", "" | "7") => ("arm", "v7"),
        ("arm", "5") => ("arm", "v5"),
        ("arm", "6") => ("arm", "v6"),
        ("arm", "8") => ("arm", "v8"),
        ("i386", v) => ("386", v),
        (a, v) => (a, v),
    };
    if variant.is_empty() {
        format!("{os}/{arch}")
    } else {
        format!("{os}/{arch}/{variant}")
    }
}

fn skopeo(mut top: Map<String, Value>, opts: &InspectOptions<'_>) -> Result<Inspected, InspectError> {
    let digest = match opts.digest {
        Some(digest) => digest.to_owned(),
        None => take_string(&mut top, "Digest", "")?
            .filter(|d| !d.is_empty())
            .ok_or(InspectError::DigestRequired {
                shape: Shape::SkopeoInspect,
                what: "Digest is missing or empty",
            })?,
    };
    let reference = match opts.reference {
        Some(reference) => reference.to_owned(),
        None => take_string(&mut top, "Name", "")?.unwrap_or_default(),
    };
    let labels = labels_in(Some(top), "")?;
    Ok(Inspected {
        shape: Shape::SkopeoInspect,
        subject: Subject {
            reference,
            digest,
            labels,
            pin: None,
            platform: None,
        },
        platform: None,
    })
}

fn docker_array(items: Vec<Value>, opts: &InspectOptions<'_>) -> Result<Inspected, InspectError> {
    let count = items.len();
    let mut items = items.into_iter();
    match (items.next(), count) {
        (Some(Value::Object(image)), 1) if is_docker(&image) => docker(image, "[0]", opts),
        (Some(Value::Object(other)), _) if !is_docker(&other) => Err(InspectError::UnknownShape {
            seen: describe_keys("an array whose first element is an object", &other),
        }),
        (Some(Value::Object(_)), _) | (None, _) => Err(InspectError::ImageCount { count }),
        (Some(other), _) => Err(InspectError::UnknownShape {
            seen: format!("the top level is an array whose first element is {}", kind(&other)),
        }),
    }
}

fn docker(mut image: Map<String, Value>, path: &str, opts: &InspectOptions<'_>) -> Result<Inspected, InspectError> {
    let config_path = field_path(path, "Config");
    let labels = labels_in(take_object(&mut image, "Config", path)?, &config_path)?;

    let tags = match opts.reference {
        Some(_) => Vec::new(),
        None => take_strings(&mut image, "RepoTags", path)?,
    };
    let need_repo_digests = opts.digest.is_none() || (opts.reference.is_none() && tags.is_empty());
    let repo_digests = if need_repo_digests {
        let digests_path = field_path(path, "RepoDigests");
        take_strings(&mut image, "RepoDigests", path)?
            .into_iter()
            .enumerate()
            .map(|(i, entry)| split_repo_digest(entry, &digests_path, i))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };

    let reference = match (opts.reference, tags.into_iter().next(), repo_digests.first()) {
        (Some(reference), _, _) => reference.to_owned(),
        (None, Some(tag), _) => tag,
        (None, None, Some((repository, _))) => repository.clone(),
        (None, None, None) => String::new(),
    };
    let digest = match opts.digest {
        Some(digest) => digest.to_owned(),
        None => pick_repo_digest(&repo_digests, &reference).ok_or(InspectError::DigestRequired {
            shape: Shape::DockerInspect,
            what: if path.is_empty() {
                NO_REPO_DIGESTS
            } else {
                NO_REPO_DIGESTS_IN_ARRAY
            },
        })?,
    };
    Ok(Inspected {
        shape: Shape::DockerInspect,
        subject: Subject {
            reference,
            digest,
            labels,
            pin: None,
            platform: None,
        },
        platform: None,
    })
}

const NO_REPO_DIGESTS: &str = "RepoDigests has no entry, as for a locally built image that was never pushed \
    (`Id` is the image config's digest, not a manifest digest)";
const NO_REPO_DIGESTS_IN_ARRAY: &str = "[0].RepoDigests has no entry, as for a locally built image that was never pushed \
    (`Id` is the image config's digest, not a manifest digest)";

/// `repo@sha256:…` → (`repo`, `sha256:…`).
fn split_repo_digest(entry: String, parent: &str, index: usize) -> Result<(String, String), InspectError> {
    match entry.split_once('@') {
        Some((repository, digest)) if !repository.is_empty() && !digest.is_empty() => {
            Ok((repository.to_owned(), digest.to_owned()))
        }
        _ => Err(InspectError::BadRepoDigest {
            path: format!("{parent}[{index}]"),
            found: quote(&entry),
        }),
    }
}

/// The digest of the entry whose repository is the reference's, else of the first entry.
fn pick_repo_digest(entries: &[(String, String)], reference: &str) -> Option<String> {
    let wanted = canonical_repository(repository_of(reference));
    entries
        .iter()
        .find(|(repository, _)| !reference.is_empty() && canonical_repository(repository) == wanted)
        .or(entries.first())
        .map(|(_, digest)| digest.clone())
}

/// `reg/repo:tag@sha256:…` → `reg/repo`.
fn repository_of(reference: &str) -> &str {
    let name = reference.split_once('@').map_or(reference, |(name, _)| name);
    match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    }
}

/// Docker's familiar names in full: `app` → `docker.io/library/app`,
/// `org/app` → `docker.io/org/app`; other registries as they are.
fn canonical_repository(repository: &str) -> String {
    let (domain, rest) = match repository.split_once('/') {
        Some((domain, rest))
            if domain.contains(['.', ':'])
                || domain == "localhost"
                || domain.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (domain, rest)
        }
        _ => ("docker.io", repository),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    if domain == "docker.io" && !rest.contains('/') {
        format!("docker.io/library/{rest}")
    } else {
        format!("{domain}/{rest}")
    }
}

fn oci_config(mut top: Map<String, Value>, opts: &InspectOptions<'_>) -> Result<Inspected, InspectError> {
    let digest = opts.digest.ok_or(InspectError::DigestRequired {
        shape: Shape::OciConfig,
        what: "a bare image config carries no manifest digest",
    })?;
    let labels = labels_in(take_object(&mut top, "config", "")?, "config")?;
    Ok(Inspected {
        shape: Shape::OciConfig,
        subject: Subject {
            reference: opts.reference.unwrap_or_default().to_owned(),
            digest: digest.to_owned(),
            labels,
            pin: None,
            platform: None,
        },
        platform: None,
    })
}

/// `container.Labels` (the container at `path`): missing or `null` is no labels.
fn labels_in(container: Option<Map<String, Value>>, path: &str) -> Result<BTreeMap<String, String>, InspectError> {
    let Some(mut container) = container else {
        return Ok(BTreeMap::new());
    };
    let Some(labels) = take_object(&mut container, "Labels", path)? else {
        return Ok(BTreeMap::new());
    };
    let labels_path = field_path(path, "Labels");
    labels
        .into_iter()
        .map(|(key, value)| match value {
            Value::String(value) => Ok((key, value)),
            other => Err(wrong(field_path(&labels_path, &key), "a string label value", &other)),
        })
        .collect()
}

/// `obj[key]`, with `null` read as missing.
fn take(obj: &mut Map<String, Value>, key: &str) -> Option<Value> {
    obj.remove(key).filter(|value| !value.is_null())
}

fn take_object(
    obj: &mut Map<String, Value>,
    key: &str,
    parent: &str,
) -> Result<Option<Map<String, Value>>, InspectError> {
    match take(obj, key) {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(wrong(field_path(parent, key), "an object", &other)),
    }
}

fn take_string(obj: &mut Map<String, Value>, key: &str, parent: &str) -> Result<Option<String>, InspectError> {
    match take(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong(field_path(parent, key), "a string", &other)),
    }
}

/// An array of strings; missing or `null` is empty.
fn take_strings(obj: &mut Map<String, Value>, key: &str, parent: &str) -> Result<Vec<String>, InspectError> {
    let path = field_path(parent, key);
    match take(obj, key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s),
                other => Err(wrong(format!("{path}[{i}]"), "a string", &other)),
            })
            .collect(),
        Some(other) => Err(wrong(path, "an array of strings", &other)),
    }
}

fn wrong(path: String, expected: &'static str, found: &Value) -> InspectError {
    InspectError::WrongType {
        path,
        expected,
        found: kind(found),
    }
}

fn missing(path: String, expected: &'static str) -> InspectError {
    InspectError::Missing { path, expected }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `parent.key` for a plain key, `parent["key"]` for any other (label keys
/// have dots); a bare key at the top level.
fn field_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .enumerate()
            .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
    match (plain, parent.is_empty()) {
        (true, true) => key.to_owned(),
        (true, false) => format!("{parent}.{key}"),
        (false, _) => format!("{parent}[{}]", quote(key)),
    }
}

/// `s` as a JSON string, cut after 80 characters so a message stays short.
/// JSON escapes only U+0000-U+001F; DEL and the C1 controls (U+0080-U+009F,
/// U+009B is a terminal's CSI) are escaped too, so a key never reaches a
/// terminal raw.
fn quote(s: &str) -> String {
    const MAX_CHARS: usize = 80;
    let (kept, cut) = match s.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => (&s[..cut], "…"),
        None => (s, ""),
    };
    let json = Value::String(kept.to_owned()).to_string();
    let mut out = String::with_capacity(json.len() + cut.len());
    for c in json.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out.push_str(cut);
    out
}

/// At most `max` items, then how many more.
fn list<'a>(items: impl ExactSizeIterator<Item = &'a str>, max: usize) -> String {
    let total = items.len();
    let mut out = items.take(max).map(quote).collect::<Vec<_>>().join(", ");
    if total > max {
        out.push_str(&format!(" and {} more", total - max));
    }
    out
}

fn describe_keys(what: &str, obj: &Map<String, Value>) -> String {
    let mut seen = if obj.is_empty() {
        format!("the top level is {what} with no keys")
    } else {
        format!(
            "the top level is {what} with keys {}",
            list(obj.keys().map(String::as_str), 10)
        )
    };
    if obj.contains_key("schemaVersion") {
        seen.push_str(
            "; that looks like a raw manifest or index (`--raw`, `{{json .Manifest}}`), which carries no labels",
        );
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/data/inspect/",
                $name
            ))
            .as_slice()
        };
    }

    const REV_AMD64: &str = "36b68ae653f75d2ed731081e35541b6f6a0e7c0b";
    const REV_ARM64: &str = "5d9ee30983e84f6012f39a955c89feab135942df";
    const REV_LOCAL: &str = "d59ef4645ec16653e575fc13ebf5d364f53f841a";
    const SOURCE: &str = "https://git.moleculesai.app/molecule-ai/app";

    fn labels(revision: &str) -> BTreeMap<String, String> {
        [
            ("org.opencontainers.image.source", SOURCE),
            ("org.opencontainers.image.revision", revision),
            ("org.opencontainers.image.created", "2026-11-01T10:00:00Z"),
            ("molecule.workflow.run_id", "4242"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn ok(json: &[u8], opts: &InspectOptions<'_>) -> Inspected {
        parse(json, opts).unwrap_or_else(|e| panic!("expected a subject, got: {e}"))
    }

    fn err(json: &[u8], opts: &InspectOptions<'_>) -> String {
        match parse(json, opts) {
            Ok(inspected) => panic!("expected an error, got {inspected:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn with_platform(platform: &str) -> InspectOptions<'_> {
        InspectOptions {
            platform,
            ..InspectOptions::default()
        }
    }

    #[test]
    fn default_options_judge_linux_amd64() {
        assert_eq!(InspectOptions::default().platform, "linux/amd64");
        assert_eq!(DEFAULT_PLATFORM, "linux/amd64");
    }

    #[test]
    fn buildx_single_takes_digest_from_manifest_descriptor_and_labels_from_image_config() {
        let got = ok(fixture!("buildx-single.json"), &InspectOptions::default());
        assert_eq!(got.shape, Shape::BuildxImagetools);
        assert_eq!(
            got.subject.reference,
            format!("git.moleculesai.app/molecule-ai/app:staging-{REV_AMD64}")
        );
        assert_eq!(
            got.subject.digest,
            "sha256:8cbffb2fd0364dd51e206a3ed61d584d5a7668fb71df7469702d24b6d2536d09"
        );
        assert_eq!(got.subject.labels, labels(REV_AMD64));
        assert_eq!(got.subject.pin, None);
        assert_eq!(got.platform, None, "a single config is not chosen from a map");
    }

    #[test]
    fn buildx_single_platform_index_with_attestation_uses_index_digest() {
        // buildx pushes an index (image + provenance attestation) by default;
        // with one real platform, `image` is that config, not a map.
        let got = ok(fixture!("buildx-single-attested.json"), &InspectOptions::default());
        assert_eq!(
            got.subject.digest,
            "sha256:3c20b414f49cad57f0da4b3f6fb3012fc3df24cef01f888e42681e434e613c63"
        );
        assert_eq!(got.subject.labels, labels(REV_AMD64));
        assert_eq!(got.platform, None);
    }

    #[test]
    fn buildx_index_uses_index_digest_and_linux_amd64_labels_by_default() {
        let got = ok(fixture!("buildx-index.json"), &InspectOptions::default());
        assert_eq!(got.shape, Shape::BuildxImagetools);
        assert_eq!(
            got.subject.digest, "sha256:abd7759eb4144f11e5090e992c09878e86d6d5a28b50ba113230c074e8e72660",
            "the index digest, not the amd64 manifest's"
        );
        assert_eq!(got.subject.labels, labels(REV_AMD64));
        assert_eq!(got.platform.as_deref(), Some("linux/amd64"));
    }

    #[test]
    fn buildx_index_platform_linux_arm64_takes_arm64_labels_and_keeps_index_digest() {
        let got = ok(fixture!("buildx-index.json"), &with_platform("linux/arm64"));
        assert_eq!(got.subject.labels, labels(REV_ARM64));
        assert_eq!(
            got.subject.digest,
            "sha256:abd7759eb4144f11e5090e992c09878e86d6d5a28b50ba113230c074e8e72660"
        );
        assert_eq!(got.platform.as_deref(), Some("linux/arm64"));
    }

    #[test]
    fn buildx_platform_matches_after_containerd_normalisation() {
        for wanted in ["linux/arm64/v8", "linux/aarch64", "Linux/ARM64"] {
            let got = ok(fixture!("buildx-index.json"), &with_platform(wanted));
            assert_eq!(got.subject.labels, labels(REV_ARM64), "{wanted}");
            assert_eq!(got.platform.as_deref(), Some("linux/arm64"), "{wanted}");
        }
        let got = ok(fixture!("buildx-index.json"), &with_platform("linux/x86_64"));
        assert_eq!(got.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(normalize_platform("linux/arm"), "linux/arm/v7");
        assert_eq!(normalize_platform("linux/arm/v6"), "linux/arm/v6");
        assert_eq!(normalize_platform("linux/amd64/v3"), "linux/amd64/v3");
    }

    #[test]
    fn buildx_missing_platform_names_it_and_lists_the_available_ones() {
        let e = err(fixture!("buildx-index.json"), &with_platform("linux/s390x"));
        assert!(e.contains(r#"image["linux/s390x"]"#), "{e}");
        assert!(e.contains("platform linux/s390x"), "{e}");
        assert!(e.contains(r#"available: "linux/amd64", "linux/arm64""#), "{e}");
        assert!(e.contains("--platform"), "{e}");
    }

    #[test]
    fn buildx_platform_arm_v7_is_not_arm64() {
        let e = err(fixture!("buildx-index.json"), &with_platform("linux/arm/v7"));
        assert!(e.contains(r#"image["linux/arm/v7"]"#), "{e}");
    }

    #[test]
    fn buildx_without_manifest_digest_requires_digest_flag() {
        let json = br#"{"name": "reg.example/app:1", "manifest": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1052},
                        "image": {"architecture": "amd64", "os": "linux", "config": {"Labels": {"a": "b"}}}}"#;
        let e = err(json, &InspectOptions::default());
        assert!(e.contains("manifest.digest"), "{e}");
        assert!(e.contains("--digest"), "{e}");
        assert!(e.contains("docker buildx imagetools inspect"), "{e}");

        let got = ok(
            json,
            &InspectOptions {
                digest: Some("sha256:given"),
                ..InspectOptions::default()
            },
        );
        assert_eq!(got.subject.digest, "sha256:given");
        assert_eq!(got.subject.labels.get("a").map(String::as_str), Some("b"));
    }

    #[test]
    fn buildx_empty_digest_counts_as_missing() {
        let json = br#"{"name": "r/a:1", "manifest": {"digest": ""}, "image": {"os": "linux", "config": {}}}"#;
        assert!(err(json, &InspectOptions::default()).contains("manifest.digest"));
    }

    #[test]
    fn buildx_without_image_config_is_an_error_naming_image() {
        let json = br#"{"name": "r/a:1", "manifest": {"digest": "sha256:1"}}"#;
        let e = err(json, &InspectOptions::default());
        assert!(e.starts_with("image: missing"), "{e}");
    }

    #[test]
    fn buildx_wrong_type_names_the_json_path() {
        let json = br#"{"name": "r/a:1", "manifest": {"digest": 7}, "image": {"os": "linux"}}"#;
        assert_eq!(
            err(json, &InspectOptions::default()),
            "manifest.digest: expected a string, found a number"
        );
        let json = br#"{"name": "r/a:1", "manifest": {"digest": "sha256:1"}, "image": {"os": "linux", "config": []}}"#;
        assert_eq!(
            err(json, &InspectOptions::default()),
            "image.config: expected an object, found an array"
        );
        let json = br#"{"name": "r/a:1", "manifest": {"digest": "sha256:1"}, "image": {"linux/amd64": "x"}}"#;
        assert_eq!(
            err(json, &InspectOptions::default()),
            r#"image["linux/amd64"]: expected an object (an image config), found a string"#
        );
    }

    #[test]
    fn skopeo_reads_name_digest_and_labels() {
        let got = ok(fixture!("skopeo.json"), &InspectOptions::default());
        assert_eq!(got.shape, Shape::SkopeoInspect);
        assert_eq!(
            got.subject.reference, "git.moleculesai.app/molecule-ai/app",
            "kept as skopeo prints it"
        );
        assert_eq!(
            got.subject.digest,
            "sha256:401e2d47e2adaeb466e19307654aa038417fc296f1cd8cc50e25d4d9b44b1eb3"
        );
        assert_eq!(got.subject.labels, labels(REV_AMD64));
        assert_eq!(got.platform, None);
    }

    #[test]
    fn skopeo_null_labels_are_an_empty_map() {
        let json = br#"{"Name": "docker.io/library/alpine", "Digest": "sha256:1", "RepoTags": ["3.20"],
                        "Labels": null, "Architecture": "amd64", "Os": "linux", "Layers": []}"#;
        let got = ok(json, &InspectOptions::default());
        assert_eq!(got.shape, Shape::SkopeoInspect);
        assert!(got.subject.labels.is_empty());
        assert_eq!(got.subject.reference, "docker.io/library/alpine");
    }

    #[test]
    fn docker_inspect_uses_repo_digest_of_first_tags_repository_never_id() {
        let got = ok(fixture!("docker-inspect.json"), &InspectOptions::default());
        assert_eq!(got.shape, Shape::DockerInspect);
        assert_eq!(
            got.subject.reference,
            format!("git.moleculesai.app/molecule-ai/app:staging-{REV_AMD64}")
        );
        // RepoDigests[0] is a mirror; [1] is the tag's repository; `Id` is the config digest.
        assert_eq!(
            got.subject.digest,
            "sha256:1f5148ae5a3e4fe070322c65ead5b94f956e7a9e08cedba0434b1e7fa1a18a9e"
        );
        assert_eq!(got.subject.labels, labels(REV_AMD64));
        assert_eq!(got.platform, None);
    }

    #[test]
    fn docker_inspect_reference_flag_picks_its_repositorys_repo_digest() {
        let opts = InspectOptions {
            reference: Some("mirror.moleculesai.app/molecule-ai/app:v1"),
            ..Default::default()
        };
        let got = ok(fixture!("docker-inspect.json"), &opts);
        assert_eq!(got.subject.reference, "mirror.moleculesai.app/molecule-ai/app:v1");
        assert_eq!(
            got.subject.digest,
            "sha256:6f41d0406a93318cc5a104d8a6690cf5e75c40ecb4b00fb34697e5f3d4167ed1"
        );
    }

    #[test]
    fn docker_inspect_without_matching_repository_falls_back_to_first_repo_digest() {
        let opts = InspectOptions {
            reference: Some("elsewhere.example/app:v1"),
            ..Default::default()
        };
        let got = ok(fixture!("docker-inspect.json"), &opts);
        assert_eq!(
            got.subject.digest,
            "sha256:6f41d0406a93318cc5a104d8a6690cf5e75c40ecb4b00fb34697e5f3d4167ed1"
        );
    }

    #[test]
    fn docker_inspect_matches_familiar_names_against_full_ones() {
        let json = br#"[{"Id": "sha256:c0nf19", "RepoTags": ["docker.io/library/alpine:3.20"],
                         "RepoDigests": ["other/alpine@sha256:0ther", "alpine@sha256:a1p1ne"], "Config": {"Labels": null}}]"#;
        let got = ok(json, &InspectOptions::default());
        assert_eq!(got.subject.digest, "sha256:a1p1ne");
        assert!(got.subject.labels.is_empty());
    }

    #[test]
    fn docker_inspect_without_tags_takes_reference_from_repo_digests() {
        let json = br#"[{"Id": "sha256:c0nf19", "RepoTags": [],
                         "RepoDigests": ["localhost:5000/team/app@sha256:d1", "localhost:5000/other@sha256:d2"]}]"#;
        let got = ok(json, &InspectOptions::default());
        assert_eq!(got.subject.reference, "localhost:5000/team/app");
        assert_eq!(got.subject.digest, "sha256:d1");
        assert!(got.subject.labels.is_empty(), "missing Config means no labels");
    }

    #[test]
    fn docker_inspect_without_repo_digests_requires_digest_flag() {
        let e = err(fixture!("docker-inspect-local.json"), &InspectOptions::default());
        assert!(e.contains("[0].RepoDigests"), "{e}");
        assert!(e.contains("never pushed"), "{e}");
        assert!(e.contains("--digest"), "{e}");
        assert!(e.contains("required"), "{e}");
        assert!(!e.contains("a93afbf1"), "the config digest is never offered: {e}");
    }

    #[test]
    fn docker_inspect_local_image_with_digest_flag_gives_subject() {
        let opts = InspectOptions {
            digest: Some("sha256:pushed"),
            ..Default::default()
        };
        let got = ok(fixture!("docker-inspect-local.json"), &opts);
        assert_eq!(got.subject.digest, "sha256:pushed");
        assert_eq!(got.subject.reference, "molecule-ai/app:dev");
        assert_eq!(got.subject.labels, labels(REV_LOCAL));
    }

    #[test]
    fn docker_inspect_of_several_images_asks_for_one() {
        let text = std::str::from_utf8(fixture!("docker-inspect.json")).expect("utf-8 fixture");
        let element = text.trim().trim_start_matches('[').trim_end_matches(']');
        let two = format!("[{element},{element}]");
        let e = err(two.as_bytes(), &InspectOptions::default());
        assert!(e.contains("2 images"), "{e}");
        assert!(e.contains("one image at a time"), "{e}");

        let e = err(b"[]", &InspectOptions::default());
        assert!(e.contains("no image"), "{e}");
    }

    #[test]
    fn docker_inspect_single_object_is_accepted() {
        let text = std::str::from_utf8(fixture!("docker-inspect.json")).expect("utf-8 fixture");
        let element = text.trim().trim_start_matches('[').trim_end_matches(']');
        let got = ok(element.as_bytes(), &InspectOptions::default());
        assert_eq!(got.shape, Shape::DockerInspect);
        assert_eq!(
            got.subject.digest,
            "sha256:1f5148ae5a3e4fe070322c65ead5b94f956e7a9e08cedba0434b1e7fa1a18a9e"
        );
        let e = err(
            br#"{"Id": "sha256:c", "RepoTags": ["a:1"], "RepoDigests": []}"#,
            &InspectOptions::default(),
        );
        assert!(e.starts_with("RepoDigests has no entry"), "{e}");
    }

    #[test]
    fn docker_inspect_bad_repo_digest_entry_is_named() {
        let json = br#"[{"Id": "sha256:c", "RepoTags": ["a:1"], "RepoDigests": ["a:1"]}]"#;
        assert_eq!(
            err(json, &InspectOptions::default()),
            r#"[0].RepoDigests[0]: expected `repository@digest`, found "a:1""#
        );
        let json = br#"[{"Id": "sha256:c", "RepoTags": ["a:1"], "RepoDigests": [5]}]"#;
        assert_eq!(
            err(json, &InspectOptions::default()),
            "[0].RepoDigests[0]: expected a string, found a number"
        );
    }

    #[test]
    fn bare_oci_config_requires_digest_flag() {
        let e = err(fixture!("oci-config.json"), &InspectOptions::default());
        assert!(e.contains("--digest"), "{e}");
        assert!(e.contains("OCI image config"), "{e}");
    }

    #[test]
    fn bare_oci_config_with_flags_gives_subject() {
        let opts = InspectOptions {
            digest: Some("sha256:0c1"),
            reference: Some("git.moleculesai.app/molecule-ai/app:staging-x"),
            ..Default::default()
        };
        let got = ok(fixture!("oci-config.json"), &opts);
        assert_eq!(got.shape, Shape::OciConfig);
        assert_eq!(got.subject.digest, "sha256:0c1");
        assert_eq!(got.subject.reference, "git.moleculesai.app/molecule-ai/app:staging-x");
        assert_eq!(got.subject.labels, labels(REV_AMD64));

        let opts = InspectOptions {
            digest: Some("sha256:0c1"),
            ..Default::default()
        };
        assert_eq!(
            ok(fixture!("oci-config.json"), &opts).subject.reference,
            "",
            "no --reference: empty"
        );
    }

    #[test]
    fn digest_and_reference_flags_override_every_shape() {
        let opts = InspectOptions {
            digest: Some("sha256:flag"),
            reference: Some("reg.example/flag:1"),
            ..Default::default()
        };
        for (json, shape) in [
            (fixture!("buildx-single.json"), Shape::BuildxImagetools),
            (fixture!("buildx-index.json"), Shape::BuildxImagetools),
            (fixture!("skopeo.json"), Shape::SkopeoInspect),
            (fixture!("docker-inspect.json"), Shape::DockerInspect),
            (fixture!("docker-inspect-local.json"), Shape::DockerInspect),
            (fixture!("oci-config.json"), Shape::OciConfig),
        ] {
            let got = ok(json, &opts);
            assert_eq!(got.shape, shape);
            assert_eq!(got.subject.digest, "sha256:flag", "{shape}");
            assert_eq!(got.subject.reference, "reg.example/flag:1", "{shape}");
        }
    }

    #[test]
    fn fields_the_flags_replace_are_not_read() {
        let opts = InspectOptions {
            digest: Some("sha256:flag"),
            reference: Some("reg.example/flag:1"),
            ..Default::default()
        };
        let json =
            br#"[{"Id": "sha256:c", "RepoTags": 5, "RepoDigests": ["no-at-sign"], "Config": {"Labels": {"a": "b"}}}]"#;
        assert_eq!(ok(json, &opts).subject.labels.get("a").map(String::as_str), Some("b"));
        let json = br#"{"name": 1, "manifest": {"digest": 7}, "image": {"os": "linux", "config": {}}}"#;
        assert_eq!(ok(json, &opts).subject.digest, "sha256:flag");
        let json = br#"{"Name": [], "Digest": {}, "Os": "linux"}"#;
        assert_eq!(ok(json, &opts).subject.reference, "reg.example/flag:1");
    }

    #[test]
    fn skopeo_empty_digest_requires_digest_flag() {
        let e = err(
            br#"{"Name": "r/a", "Digest": "", "Os": "linux"}"#,
            &InspectOptions::default(),
        );
        assert!(e.starts_with("Digest is missing or empty: --digest"), "{e}");
    }

    #[test]
    fn reference_flag_alone_keeps_the_jsons_digest() {
        let opts = InspectOptions {
            reference: Some("reg.example/other:2"),
            ..Default::default()
        };
        let got = ok(fixture!("skopeo.json"), &opts);
        assert_eq!(got.subject.reference, "reg.example/other:2");
        assert_eq!(
            got.subject.digest,
            "sha256:401e2d47e2adaeb466e19307654aa038417fc296f1cd8cc50e25d4d9b44b1eb3"
        );
    }

    #[test]
    fn non_string_label_value_error_names_the_label() {
        let json = br#"[{"Id": "sha256:c", "RepoTags": ["a:1"], "RepoDigests": ["a@sha256:1"],
                         "Config": {"Labels": {"ok": "yes", "foo": 42}}}]"#;
        assert_eq!(
            err(json, &InspectOptions::default()),
            "[0].Config.Labels.foo: expected a string label value, found a number"
        );

        let json = br#"{"Name": "r/a", "Digest": "sha256:1", "Labels": {"org.opencontainers.image.revision": null}}"#;
        assert_eq!(
            err(json, &InspectOptions::default()),
            r#"Labels["org.opencontainers.image.revision"]: expected a string label value, found null"#
        );

        let json = br#"{"name": "r/a:1", "manifest": {"digest": "sha256:1"},
                        "image": {"linux/amd64": {"os": "linux", "config": {"Labels": {"molecule.workflow.run_id": 4242}}}}}"#;
        assert_eq!(
            err(json, &InspectOptions::default()),
            r#"image["linux/amd64"].config.Labels["molecule.workflow.run_id"]: expected a string label value, found a number"#
        );
    }

    #[test]
    fn labels_that_are_not_an_object_are_named() {
        let json = br#"{"architecture": "amd64", "os": "linux", "config": {"Labels": ["a=b"]}, "rootfs": {}}"#;
        let opts = InspectOptions {
            digest: Some("sha256:1"),
            ..Default::default()
        };
        assert_eq!(err(json, &opts), "config.Labels: expected an object, found an array");
    }

    #[test]
    fn malformed_json_reports_line_and_column() {
        let e = err(
            b"{\n  \"name\": \"r/a:1\",\n  \"manifest\": {\n}",
            &InspectOptions::default(),
        );
        assert!(e.starts_with("the input is not valid JSON"), "{e}");
        assert!(e.contains("line 4 column 1"), "{e}");
        assert!(matches!(
            parse(b"{,}", &InspectOptions::default()),
            Err(InspectError::Json(_))
        ));
    }

    #[test]
    fn empty_input_is_its_own_error() {
        assert!(matches!(
            parse(b" \n\t", &InspectOptions::default()),
            Err(InspectError::Empty)
        ));
        assert!(matches!(
            parse(b"", &InspectOptions::default()),
            Err(InspectError::Empty)
        ));
    }

    #[test]
    fn utf8_byte_order_mark_is_skipped() {
        let mut json = b"\xEF\xBB\xBF".to_vec();
        json.extend_from_slice(fixture!("skopeo.json"));
        assert_eq!(ok(&json, &InspectOptions::default()).shape, Shape::SkopeoInspect);
    }

    #[test]
    fn unknown_shape_lists_accepted_shapes_and_keys_seen() {
        let e = err(fixture!("unknown-shape.json"), &InspectOptions::default());
        for shape in [
            "docker buildx imagetools inspect",
            "skopeo inspect",
            "docker inspect",
            "OCI image config",
        ] {
            assert!(e.contains(shape), "{shape} missing from: {e}");
        }
        for key in [
            "\"schemaVersion\"",
            "\"mediaType\"",
            "\"config\"",
            "\"layers\"",
            "\"annotations\"",
        ] {
            assert!(e.contains(key), "{key} missing from: {e}");
        }
        assert!(e.contains("raw manifest"), "{e}");
    }

    #[test]
    fn unknown_shape_truncates_a_long_key_list() {
        let keys: Vec<String> = (0..40).map(|i| format!("\"key{i:02}\": {i}")).collect();
        let json = format!("{{{}}}", keys.join(","));
        let e = err(json.as_bytes(), &InspectOptions::default());
        assert!(e.contains("\"key00\""), "{e}");
        assert!(e.contains("and 30 more"), "{e}");
        assert!(!e.contains("\"key39\""), "{e}");
    }

    #[test]
    fn top_level_scalar_or_foreign_array_is_unknown_shape() {
        assert!(err(b"\"sha256:1\"", &InspectOptions::default()).contains("the top level is a string"));
        let e = err(br#"[{"State": {}, "Image": "sha256:1"}]"#, &InspectOptions::default());
        assert!(e.contains("\"State\""), "{e}");
        assert!(e.contains("docker inspect"), "{e}");
        assert!(err(b"[1, 2]", &InspectOptions::default()).contains("first element is a number"));
    }

    #[test]
    fn megabyte_label_value_passes_through_intact() {
        let value: String = "0123456789abcdef\u{e9}\u{1F600}\"\\\n".repeat((1 << 20) / 24);
        assert!(value.len() >= 1 << 20);
        let json = serde_json::json!({
            "Name": "r/a", "Digest": "sha256:1", "Os": "linux",
            "Labels": {"big": value, "org.opencontainers.image.revision": REV_AMD64},
        });
        let bytes = serde_json::to_vec(&json).expect("serialise");
        let got = ok(&bytes, &InspectOptions::default());
        assert_eq!(got.subject.labels.get("big"), Some(&value));
        assert_eq!(got.subject.labels.len(), 2);
    }

    #[test]
    fn control_characters_in_a_key_are_escaped_in_messages() {
        let json = "{\"Name\": \"r/a\", \"Digest\": \"sha256:1\", \"Labels\": {\"a\u{7f}\u{9b}2J\\u001b\": 1}}";
        let e = err(json.as_bytes(), &InspectOptions::default());
        assert_eq!(
            e,
            r#"Labels["a\u007f\u009b2J\u001b"]: expected a string label value, found a number"#
        );
    }

    #[test]
    fn long_label_key_is_cut_short_in_messages() {
        let key = "k.".repeat(5000);
        let json = format!(r#"{{"Name": "r/a", "Digest": "sha256:1", "Labels": {{"{key}": 1}}}}"#);
        let e = err(json.as_bytes(), &InspectOptions::default());
        assert!(e.len() < 300, "{} bytes: {e:.300}", e.len());
        assert!(e.starts_with(r#"Labels["k.k."#), "{e:.300}");
        assert!(e.contains("…"), "{e:.300}");
    }

    #[test]
    fn truncated_or_mangled_fixtures_never_panic() {
        let fixtures = [
            fixture!("buildx-single.json"),
            fixture!("buildx-index.json"),
            fixture!("skopeo.json"),
            fixture!("docker-inspect.json"),
            fixture!("oci-config.json"),
        ];
        let mut errors = 0;
        for json in fixtures {
            for cut in (0..json.len()).step_by(7) {
                errors += usize::from(parse(&json[..cut], &InspectOptions::default()).is_err());
            }
            // Every string value or key replaced by a number, one at a time.
            let text = std::str::from_utf8(json).expect("utf-8 fixture");
            let quotes: Vec<usize> = text.match_indices('"').map(|(i, _)| i).collect();
            for pair in quotes.chunks_exact(2) {
                let mangled = format!("{}7{}", &text[..pair[0]], &text[pair[1] + 1..]);
                let _ = parse(mangled.as_bytes(), &InspectOptions::default());
            }
        }
        assert!(errors > 0);
    }

    #[test]
    fn shapes_have_human_names() {
        assert_eq!(Shape::BuildxImagetools.to_string(), "docker buildx imagetools inspect");
        assert_eq!(Shape::SkopeoInspect.to_string(), "skopeo inspect");
        assert_eq!(Shape::DockerInspect.to_string(), "docker inspect");
        assert_eq!(Shape::OciConfig.to_string(), "OCI image config");
    }

    #[test]
    fn repository_of_strips_tag_and_digest_but_not_port() {
        assert_eq!(repository_of("reg:5000/a/b:tag@sha256:1"), "reg:5000/a/b");
        assert_eq!(repository_of("reg:5000/a/b"), "reg:5000/a/b");
        assert_eq!(repository_of("alpine"), "alpine");
        assert_eq!(canonical_repository("alpine"), "docker.io/library/alpine");
        assert_eq!(canonical_repository("index.docker.io/org/app"), "docker.io/org/app");
        assert_eq!(canonical_repository("localhost/app"), "localhost/app");
    }
}
