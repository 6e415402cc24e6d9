//! `provgate verify --inspect FILE|-`: offline JSON that describes an image,
//! turned into a [`Subject`] (docs/reference.md §2, §7.2).
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

mod buildx;
mod docker;
mod json;
mod oci_config;
mod skopeo;
#[cfg(test)]
mod test_support;

use std::fmt;

use serde_json::{Map, Value};

use crate::subject::Subject;
use buildx::{buildx, is_buildx};
use docker::{docker, docker_array, is_docker};
use json::{kind, list};
use oci_config::{is_oci_config, oci_config};
use skopeo::{is_skopeo, skopeo};

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
    use super::test_support::{err, fixture, ok};
    use super::*;

    #[test]
    fn default_options_judge_linux_amd64() {
        assert_eq!(InspectOptions::default().platform, "linux/amd64");
        assert_eq!(DEFAULT_PLATFORM, "linux/amd64");
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
}
