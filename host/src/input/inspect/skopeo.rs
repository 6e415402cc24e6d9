//! `skopeo inspect`: `Digest`, `Name` and `Labels` at the top level.

use serde_json::{Map, Value};

use super::json::{labels_in, take_string};
use super::{InspectError, InspectOptions, Inspected, Shape};
use crate::subject::Subject;

pub(super) fn is_skopeo(top: &Map<String, Value>) -> bool {
    top.contains_key("Digest")
        && ["Name", "Layers", "LayersData", "Architecture", "Os", "Labels"]
            .iter()
            .any(|k| top.contains_key(*k))
}

pub(super) fn skopeo(mut top: Map<String, Value>, opts: &InspectOptions<'_>) -> Result<Inspected, InspectError> {
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
        subject: Subject::new(reference, digest, labels),
        platform: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{REV_AMD64, err, fixture, labels, ok, with_reference};
    use super::super::{InspectOptions, Shape};

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
    fn skopeo_empty_digest_requires_digest_flag() {
        let e = err(
            br#"{"Name": "r/a", "Digest": "", "Os": "linux"}"#,
            &InspectOptions::default(),
        );
        assert!(e.starts_with("Digest is missing or empty: --digest"), "{e}");
    }

    #[test]
    fn reference_flag_alone_keeps_the_jsons_digest() {
        let got = ok(fixture!("skopeo.json"), &with_reference("reg.example/other:2"));
        assert_eq!(got.subject.reference, "reg.example/other:2");
        assert_eq!(
            got.subject.digest,
            "sha256:401e2d47e2adaeb466e19307654aa038417fc296f1cd8cc50e25d4d9b44b1eb3"
        );
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
}
