//! `docker buildx imagetools inspect --format '{{json .}}'`: the digest of
//! the manifest (or index) descriptor, the labels of one image config.

use serde_json::{Map, Value};

use super::json::{field_path, key_literal, labels_in, list, missing, take, take_object, take_string, wrong};
use super::{InspectError, InspectOptions, Inspected, Shape};
use crate::input::platform;
use crate::subject::Subject;

pub(super) fn is_buildx(top: &Map<String, Value>) -> bool {
    top.contains_key("manifest") && (top.contains_key("name") || top.contains_key("image"))
}

pub(super) fn buildx(mut top: Map<String, Value>, opts: &InspectOptions<'_>) -> Result<Inspected, InspectError> {
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
        let path = format!("image[{}]", key_literal(&platform));
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
    let key = platform::find_key(&image, wanted).cloned();
    match key.and_then(|k| image.remove(&k).map(|config| (k, config))) {
        Some(found) => Ok(found),
        None => Err(InspectError::PlatformNotFound {
            path: format!("image[{}]", key_literal(wanted)),
            platform: wanted.to_owned(),
            available: list(image.keys().map(String::as_str), 16),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{REV_AMD64, REV_ARM64, err, fixture, labels, ok, with_platform};
    use super::super::{InspectOptions, Shape};

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
}
