//! A bare OCI image config: labels in `config.Labels`, and no manifest
//! digest at all, so `--digest` is required.

use serde_json::{Map, Value};

use super::json::{labels_in, take_object};
use super::{InspectError, InspectOptions, Inspected, Shape};
use crate::subject::Subject;

pub(super) fn is_oci_config(top: &Map<String, Value>) -> bool {
    top.contains_key("rootfs")
        || (top.contains_key("config") && (top.contains_key("architecture") || top.contains_key("os")))
}

pub(super) fn oci_config(mut top: Map<String, Value>, opts: &InspectOptions<'_>) -> Result<Inspected, InspectError> {
    let digest = opts.digest.ok_or(InspectError::DigestRequired {
        shape: Shape::OciConfig,
        what: "a bare image config carries no manifest digest",
    })?;
    let labels = labels_in(take_object(&mut top, "config", "")?, "config")?;
    Ok(Inspected {
        shape: Shape::OciConfig,
        subject: Subject::new(opts.reference.unwrap_or_default().to_owned(), digest.to_owned(), labels),
        platform: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{REV_AMD64, err, fixture, labels, ok};
    use super::super::{InspectOptions, Shape};

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
    fn labels_that_are_not_an_object_are_named() {
        let json = br#"{"architecture": "amd64", "os": "linux", "config": {"Labels": ["a=b"]}, "rootfs": {}}"#;
        let opts = InspectOptions {
            digest: Some("sha256:1"),
            ..Default::default()
        };
        assert_eq!(err(json, &opts), "config.Labels: expected an object, found an array");
    }
}
