//! `provgate promote SOURCE_REF --to TAG` end to end (SPEC §5): a real
//! registry (`testkit/src/registry.rs`), the Gitea stand-in the policy
//! trusts, a lying proxy that moves the tag after it was read, and the
//! control-plane stand-in that takes the pin.

use std::process::Output;

use provgate_testkit::cp::{ControlPlane, PINS_PATH, PROMOTE_PATH};
use provgate_testkit::gitea::GiteaStandIn;
use provgate_testkit::registry::{Format, Registry};
use provgate_testkit::registry_liar::{Liar, Lie, Route};
use provgate_testkit::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const REPO: &str = "molecule-ai/app";
/// Long enough that every 8-character window of it is distinctive.
const TOKEN: &str = "cp-admin-Zq8vN3kR5tW1xY7m";

struct World {
    _dir: tempfile::TempDir,
    gitea: GiteaStandIn,
    registry: Registry,
    policy: String,
}

/// A registry, a stand-in with `molecule-ai/app@SHA`, and a policy trusting it.
fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let gitea = GiteaStandIn::start();
    gitea.add_commit("molecule-ai", "app", SHA);
    let policy = policy_for(&gitea.base_url(), dir.path());
    World {
        _dir: dir,
        gitea,
        registry: Registry::start(),
        policy,
    }
}

impl World {
    /// The four labels of an image built from the stand-in's `molecule-ai/app` at `SHA`.
    fn labels(&self) -> Vec<(String, String)> {
        vec![
            (SOURCE.into(), format!("{}/molecule-ai/app", self.gitea.base_url())),
            (REVISION.into(), SHA.into()),
            (CREATED.into(), "2024-05-02T10:20:30Z".into()),
            (RUN_ID.into(), "4242".into()),
        ]
    }

    /// `provgate promote` with this world's policy, plain HTTP to `host`.
    fn promote(&self, host: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut all = vec!["promote"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--policy", &self.policy, "--insecure-registry", host]);
        provgate_command(&all, env).output().expect("provgate runs")
    }

    /// `(digest, content type, bytes)` of `repo:reference`, or `None` when absent.
    fn manifest(&self, repo: &str, reference: &str) -> Option<(String, String, Vec<u8>)> {
        let (status, content_type, bytes) = self.registry.get_manifest(repo, reference);
        match status {
            StatusCode::OK => Some((registry::sha256_digest(&bytes), content_type, bytes)),
            StatusCode::NOT_FOUND => None,
            other => panic!("GET {repo}:{reference}: HTTP {other}"),
        }
    }
}

fn pairs(labels: &[(String, String)]) -> Vec<(&str, &str)> {
    labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[track_caller]
fn assert_exit(o: &Output, expected: i32) {
    assert_eq!(code(o), expected, "stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
}

fn json_line(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON line ({e}):\n{}\nstderr:\n{}",
            stdout(o),
            stderr(o)
        )
    })
}

/// No 8-character piece of the token anywhere in what provgate printed.
#[track_caller]
fn assert_no_token(o: &Output) {
    let printed = format!("{}{}", stdout(o), stderr(o));
    for at in 0..=TOKEN.len() - 8 {
        let piece = &TOKEN[at..at + 8];
        assert!(
            !printed.contains(piece),
            "{piece:?} of the token was printed:\n{printed}"
        );
    }
}

#[test]
fn a_single_manifest_and_a_two_platform_index_are_promoted_byte_identically() {
    let w = world();
    let host = w.registry.host();
    let source_tag = format!("staging-{SHA}");
    let labels = w.labels();

    // One image manifest (OCI).
    let pushed = w.registry.push_image(REPO, &source_tag, &pairs(&labels), Format::Oci);
    let source = format!("{host}/{REPO}:{source_tag}");
    let o = w.promote(&host, &[&source, "--to", "latest", "--format", "json"], &[]);
    assert_exit(&o, 0);
    let v = json_line(&o);
    assert_eq!(v["allowed"], true, "{v}");
    assert_eq!(v["subject"]["digest"], pushed.manifest_digest.as_str(), "{v}");
    assert_eq!(
        v["promoted"],
        json!({"tag": "latest", "reference": format!("{host}/{REPO}:latest"), "digest": pushed.manifest_digest}),
    );
    assert_eq!(v["pinned"], Value::Null, "no --pin: nothing to say");
    let before = w.manifest(REPO, &source_tag).unwrap();
    let after = w.manifest(REPO, "latest").expect("latest written");
    assert_eq!(after, before, "the same bytes, type and digest");
    assert_eq!(after.0, pushed.manifest_digest);

    // Again: the same bytes under the same tag, nothing changes.
    let o = w.promote(&host, &[&source, "--to", "latest"], &[]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains(&format!("promoted  {host}/{REPO}:latest → {}", pushed.manifest_digest)),
        "{}",
        stdout(&o)
    );
    assert_eq!(w.manifest(REPO, "latest").unwrap(), before);

    // A two-platform Docker manifest list, in another repository.
    let multi = "molecule-ai/multi";
    let index = w.registry.push_index(
        multi,
        &source_tag,
        &[("linux/amd64", pairs(&labels)), ("linux/arm64", pairs(&labels))],
        Format::Docker,
    );
    let source = format!("{host}/{multi}:{source_tag}");
    let o = w.promote(&host, &[&source, "--to", "stable", "--format", "json"], &[]);
    assert_exit(&o, 0);
    let v = json_line(&o);
    assert_eq!(v["promoted"]["digest"], index.index_digest.as_str(), "{v}");
    let before = w.manifest(multi, &source_tag).unwrap();
    let after = w.manifest(multi, "stable").expect("stable written");
    assert_eq!(after, before);
    assert_eq!(after.0, index.index_digest, "the index digest, not a platform's");
    assert_eq!(after.1, Format::Docker.index_type());
}

#[test]
fn a_denied_image_is_not_promoted_and_github_says_promoted_false() {
    let w = world();
    let host = w.registry.host();
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("github_output");

    // Unlabeled: denied, nothing written.
    w.registry.push_image(REPO, "old", &[], Format::Oci);
    let source = format!("{host}/{REPO}:old");
    let env = [("GITHUB_OUTPUT", outputs.to_str().unwrap())];
    let o = w.promote(&host, &[&source, "--to", "latest", "--format", "github"], &env);
    assert_exit(&o, 1);
    assert!(w.manifest(REPO, "latest").is_none(), "a denied image left a tag behind");
    let written = std::fs::read_to_string(&outputs).unwrap();
    assert!(
        written.contains("allowed=false\n") && written.contains("promoted=false\n"),
        "{written}"
    );
    assert!(
        stdout(&o).contains("::error title=provgate not promoted::"),
        "{}",
        stdout(&o)
    );

    let o = w.promote(&host, &[&source, "--to", "latest", "--format", "json"], &[]);
    assert_exit(&o, 1);
    assert_eq!(json_line(&o)["promoted"], Value::Null);

    // Allowed: promoted=true and the digest in the step outputs.
    let source_tag = format!("staging-{SHA}");
    let pushed = w
        .registry
        .push_image(REPO, &source_tag, &pairs(&w.labels()), Format::Oci);
    std::fs::write(&outputs, "").unwrap();
    let source = format!("{host}/{REPO}:{source_tag}");
    let o = w.promote(&host, &[&source, "--to", "latest", "--format", "github"], &env);
    assert_exit(&o, 0);
    let written = std::fs::read_to_string(&outputs).unwrap();
    for line in [
        format!("digest={}", pushed.manifest_digest),
        "status=verified".into(),
        "allowed=true".into(),
        "promoted=true".into(),
    ] {
        assert!(written.lines().any(|l| l == line), "no {line:?} in:\n{written}");
    }
    assert!(
        written.contains("policy_digest=sha256:") && written.contains("event="),
        "{written}"
    );
    assert!(
        stdout(&o).contains("::notice title=provgate promoted::"),
        "{}",
        stdout(&o)
    );
    assert_eq!(w.manifest(REPO, "latest").unwrap().0, pushed.manifest_digest);
}

#[test]
fn a_tag_moved_after_it_was_read_never_promotes_the_other_image() {
    let w = world();
    let source_tag = format!("staging-{SHA}");
    let good = w
        .registry
        .push_image(REPO, &source_tag, &pairs(&w.labels()), Format::Oci);
    // What the tag is moved to: an unlabeled image in the same repository.
    let bad = w.registry.push_image(REPO, "bad", &[], Format::Oci);
    let (_, _, bad_bytes) = w.manifest(REPO, "bad").unwrap();

    let liar = Liar::proxy(&w.registry.host());
    liar.lie(Route::Manifest, Some(&source_tag), Lie::swap_after_first(bad_bytes));
    let host = liar.host();
    let source = format!("{host}/{REPO}:{source_tag}");
    let o = w.promote(&host, &[&source, "--to", "latest", "--format", "json"], &[]);
    assert_exit(&o, 0);
    let v = json_line(&o);
    assert_eq!(v["promoted"]["digest"], good.manifest_digest.as_str(), "{v}");
    let tagged = w.manifest(REPO, "latest").expect("latest written").0;
    assert_eq!(tagged, good.manifest_digest);
    assert_ne!(tagged, bad.manifest_digest);
    let gets: Vec<_> = liar
        .seen_for(&format!("/manifests/{source_tag}"))
        .into_iter()
        .filter(|s| s.method == "GET")
        .collect();
    assert_eq!(gets.len(), 1, "the tag was read more than once: {gets:?}");

    // The lie is real: whoever reads the tag again now gets the other image.
    let o = provgate_command(
        &[
            "verify",
            &source,
            "--policy",
            &w.policy,
            "--insecure-registry",
            &host,
            "--format",
            "json",
        ],
        &[],
    )
    .output()
    .unwrap();
    assert_exit(&o, 1);
    assert_eq!(json_line(&o)["subject"]["digest"], bad.manifest_digest.as_str());
}

#[test]
fn the_pin_is_posted_once_in_each_shape_with_the_token_and_a_500_is_exit_5() {
    let w = world();
    let host = w.registry.host();
    let source_tag = format!("staging-{SHA}");
    let pushed = w
        .registry
        .push_image(REPO, &source_tag, &pairs(&w.labels()), Format::Oci);
    let source = format!("{host}/{REPO}:{source_tag}");
    let cp = ControlPlane::start(TOKEN, "[]".into());
    let env = [("CP_ADMIN_API_TOKEN", TOKEN)];
    let bearer = format!("Bearer {TOKEN}");

    // The pins endpoint's shape.
    let pins_url = cp.pins_url();
    let args = [
        &source,
        "--to",
        "latest",
        "--pin",
        &pins_url,
        "--runtime",
        "python",
        "--format",
        "json",
    ];
    let o = w.promote(&host, &args, &env);
    assert_exit(&o, 0);
    assert_eq!(json_line(&o)["pinned"], true);
    assert_no_token(&o);
    let posts = cp.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(
        (posts[0].path.as_str(), posts[0].authorization.as_deref()),
        (PINS_PATH, Some(bearer.as_str()))
    );
    assert_eq!(
        posts[0].json(),
        json!({"runtime": "python", "digest": pushed.manifest_digest, "source_sha": SHA})
    );

    // The promote endpoint's shape.
    let promote_url = cp.promote_url();
    let args = [
        &source,
        "--to",
        "stable",
        "--pin",
        &promote_url,
        "--runtime",
        "python",
        "--pin-shape",
        "promote",
    ];
    let o = w.promote(&host, &args, &env);
    assert_exit(&o, 0);
    assert_no_token(&o);
    let posts = cp.posts();
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert_eq!(
        (posts[1].path.as_str(), posts[1].authorization.as_deref()),
        (PROMOTE_PATH, Some(bearer.as_str()))
    );
    assert_eq!(
        posts[1].json(),
        json!({"template_name": "python", "image_digest": pushed.manifest_digest, "git_sha": SHA})
    );
    assert_eq!(w.manifest(REPO, "stable").unwrap().0, pushed.manifest_digest);

    // The control plane fails: the tag is moved, the pin is not, exit 5.
    cp.answer_posts_with(500);
    let args = [
        &source,
        "--to",
        "next",
        "--pin",
        &pins_url,
        "--runtime",
        "python",
        "-vv",
        "--format",
        "json",
    ];
    let o = w.promote(&host, &args, &env);
    assert_exit(&o, 5);
    assert_no_token(&o);
    assert!(stderr(&o).contains("HTTP 500"), "{}", stderr(&o));
    let v = json_line(&o);
    assert_eq!(
        (&v["pinned"], &v["promoted"]["digest"]),
        (&json!(false), &json!(pushed.manifest_digest))
    );
    assert_eq!(
        w.manifest(REPO, "next").expect("next was written").0,
        pushed.manifest_digest
    );
    assert_eq!(cp.posts().len(), 3, "one attempt");

    // Run again once the control plane is back: both writes repeat harmlessly.
    cp.answer_posts_with(201);
    let o = w.promote(&host, &args, &env);
    assert_exit(&o, 0);
    assert_no_token(&o);
    let posts = cp.posts();
    assert_eq!(posts.len(), 4);
    assert_eq!(posts[3].json(), posts[0].json(), "the same pin");

    // Without the token nothing is written at all.
    let o = w.promote(
        &host,
        &[&source, "--to", "other", "--pin", &pins_url, "--runtime", "python"],
        &[("CP_ADMIN_API_TOKEN", "")],
    );
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("CP_ADMIN_API_TOKEN"), "{}", stderr(&o));
    assert!(w.manifest(REPO, "other").is_none());
    assert_eq!(cp.posts().len(), 4);
}
