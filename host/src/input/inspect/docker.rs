//! `docker inspect` (`docker image inspect`): an array of one image, or the
//! one object `--format '{{json .}}'` prints. The digest is the
//! `RepoDigests` entry of the reference's repository, never `Id` (the image
//! config's digest, which no pin stores).

use oci_client::Reference;
use serde_json::{Map, Value};

use super::json::{field_path, kind, labels_in, take_object, take_strings};
use super::{InspectError, InspectOptions, Inspected, Shape, describe_keys};
use crate::subject::Subject;

/// `docker image inspect` always prints `RepoTags` and `RepoDigests`
/// (`docker container inspect` prints neither).
pub(super) fn is_docker(top: &Map<String, Value>) -> bool {
    top.contains_key("RepoDigests") || (top.contains_key("Id") && top.contains_key("RepoTags"))
}

pub(super) fn docker_array(items: Vec<Value>, opts: &InspectOptions<'_>) -> Result<Inspected, InspectError> {
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

pub(super) fn docker(
    mut image: Map<String, Value>,
    path: &str,
    opts: &InspectOptions<'_>,
) -> Result<Inspected, InspectError> {
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
        subject: Subject::new(reference, digest, labels),
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
            found: crate::text::quote(&entry),
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

/// `reg/repo:tag@sha256:…` → `reg/repo`. Cut by hand, not parsed: a tag
/// or digest the registry client would refuse must not hide the repository.
fn repository_of(reference: &str) -> &str {
    let name = reference.split_once('@').map_or(reference, |(name, _)| name);
    match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    }
}

/// The repository in full, as the registry client names it: `app` →
/// `docker.io/library/app`, `org/app` → `docker.io/org/app`, other
/// registries as they are. A name it cannot read is compared as written.
fn canonical_repository(repository: &str) -> String {
    match Reference::try_from(repository) {
        Ok(parsed) => format!("{}/{}", parsed.registry(), parsed.repository()),
        Err(_) => repository.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{REV_AMD64, REV_LOCAL, err, fixture, labels, ok, with_reference};
    use super::super::{InspectOptions, Shape};
    use super::{canonical_repository, repository_of};

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
        let got = ok(
            fixture!("docker-inspect.json"),
            &with_reference("mirror.moleculesai.app/molecule-ai/app:v1"),
        );
        assert_eq!(got.subject.reference, "mirror.moleculesai.app/molecule-ai/app:v1");
        assert_eq!(
            got.subject.digest,
            "sha256:6f41d0406a93318cc5a104d8a6690cf5e75c40ecb4b00fb34697e5f3d4167ed1"
        );
    }

    #[test]
    fn docker_inspect_without_matching_repository_falls_back_to_first_repo_digest() {
        let got = ok(
            fixture!("docker-inspect.json"),
            &with_reference("elsewhere.example/app:v1"),
        );
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
    fn repository_of_strips_tag_and_digest_but_not_port() {
        assert_eq!(repository_of("reg:5000/a/b:tag@sha256:1"), "reg:5000/a/b");
        assert_eq!(repository_of("reg:5000/a/b"), "reg:5000/a/b");
        assert_eq!(repository_of("alpine"), "alpine");
        assert_eq!(canonical_repository("alpine"), "docker.io/library/alpine");
        assert_eq!(canonical_repository("index.docker.io/org/app"), "docker.io/org/app");
        assert_eq!(canonical_repository("localhost/app"), "localhost/app");
    }
}
