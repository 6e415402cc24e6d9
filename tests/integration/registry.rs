//! `provgate verify IMAGE_REF` against a REAL registry (Debian's
//! `docker-registry`, see `testkit/src/registry.rs`): references, manifest
//! kinds, platforms, auth, integrity and failures, each through the real
//! `provgate` binary (SPEC §5, issue 3).
//!
//! Gitea is answered from a `--replay` recording, so only the registry is
//! live. `DOCKER_CONFIG` always points at a temporary directory and
//! `REGISTRY_AUTH_FILE` (which comes before it) is removed: the developer's
//! own credentials are never read.


use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};
use provgate_testkit::registry::{
    Format, HungHelper, Pushed, Registry, Scratch, eventually, process_dead, sha256_digest, write_docker_config,
};
use provgate_testkit::*;

const REPO: &str = "molecule-ai/app";
/// A second commit, for an image whose tag names another revision.
const OTHER_SHA: &str = "0f6c2d4be1a9387e5b2d7c1f4a6e8b9d0c3f5a71";
/// The revision of the arm64 image of the two-platform index.
const ARM_SHA: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
const USER: &str = "ci-bot";
const PASSWORD: &str = "s3cret-Pa55word";

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

/// The `provgate` binary with `env`, and no `REGISTRY_AUTH_FILE` but one
/// that `env` sets.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = provgate_command(args, &[]);
    cmd.env_remove("REGISTRY_AUTH_FILE");
    cmd.envs(env.iter().copied());
    cmd.output().expect("provgate runs")
}

/// `provgate verify REF --replay …` plus `extra`, with `DOCKER_CONFIG` set
/// to `docker_config` and `env` added.
fn verify_env(
    reference: &str,
    extra: &[&str],
    scratch: &Scratch,
    docker_config: &Path,
    env: &[(&str, &str)],
) -> Output {
    let replay = scratch.replay();
    let mut args = vec!["verify", reference, "--replay", replay.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut env = env.to_vec();
    env.insert(0, ("DOCKER_CONFIG", docker_config.to_str().unwrap()));
    run(&args, &env)
}

/// `provgate verify REF --replay …` plus `extra`, with `DOCKER_CONFIG` set
/// to `docker_config`.
fn verify_with(reference: &str, extra: &[&str], scratch: &Scratch, docker_config: &Path) -> Output {
    verify_env(reference, extra, scratch, docker_config, &[])
}

/// `verify_with`, allowed to use plain HTTP to `reg`, JSON output, and the
/// scratch's docker config.
fn verify(reg: &Registry, reference: &str, extra: &[&str], scratch: &Scratch) -> Output {
    let host = reg.host();
    let mut args = vec!["--insecure-registry", host.as_str(), "--format", "json"];
    args.extend_from_slice(extra);
    verify_with(reference, &args, scratch, &scratch.docker_config())
}

fn verdict(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not a verdict ({e}):\n{}\nstderr:\n{}", stdout(o), stderr(o)))
}

fn outcome(v: &Value, rule: &str) -> String {
    v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} finding in {v}"))["outcome"]
        .as_str()
        .unwrap()
        .to_string()
}

fn outcomes(v: &Value) -> Vec<(String, String)> {
    v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Exit code `expected`, with both streams in the failure message.
#[track_caller]
fn assert_exit(o: &Output, expected: i32) {
    assert_eq!(code(o), expected, "stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
}

/// A fetch failure: exit 4, no verdict on stdout, a reason on stderr.
#[track_caller]
fn assert_fetch_failure(o: &Output) -> String {
    assert_exit(o, 4);
    let err = stderr(o);
    assert!(!err.trim().is_empty(), "exit 4 without a reason on stderr");
    assert!(
        serde_json::from_slice::<Value>(&o.stdout).is_err(),
        "exit 4 but a verdict on stdout: {}",
        stdout(o)
    );
    err
}

/// Every `sha256:<64 hex>` in `text`.
fn digests_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("sha256:") {
        let hex: String = rest[at + 7..].chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        if hex.len() == 64 {
            found.push(format!("sha256:{hex}"));
        }
        rest = &rest[at + 7..];
    }
    found
}

fn staging(sha: &str) -> String {
    format!("staging-{sha}")
}

fn push_good(reg: &Registry, format: Format) -> Pushed {
    reg.push_image(REPO, &staging(SHA), &good_labels(SHA), format)
}

// ---------------------------------------------------------------------------
// References

#[test]
fn tag_reference_is_judged_with_its_manifest_digest() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    let pushed = push_good(&reg, Format::Oci);
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));

    let o = verify(&reg, &reference, &[], &scratch);
    assert_exit(&o, 0);
    let v = verdict(&o);
    assert_eq!(v["subject"]["reference"], reference.as_str());
    assert_eq!(v["subject"]["digest"], pushed.manifest_digest.as_str());
    assert_eq!(v["status"], "verified");
    assert_eq!(v["allowed"], true);
    assert_eq!(v["event"], "redeploy.verify.reachable");
    assert_eq!(outcome(&v, "tag.consistent"), "pass");
    assert_eq!(outcome(&v, "labels.present"), "pass");
}

#[test]
fn tag_reference_in_text_output_is_verified() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    let pushed = push_good(&reg, Format::Oci);
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));
    let host = reg.host();

    let o = verify_with(
        &reference,
        &["--insecure-registry", &host],
        &scratch,
        &scratch.docker_config(),
    );
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(out.starts_with("VERIFIED"), "{out}");
    assert!(out.contains(&pushed.manifest_digest), "{out}");
}

#[test]
fn digest_reference_is_judged_with_that_digest() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    let pushed = push_good(&reg, Format::Oci);
    let reference = format!("{}/{REPO}@{}", reg.host(), pushed.manifest_digest);

    let o = verify(&reg, &reference, &[], &scratch);
    assert_exit(&o, 0);
    let v = verdict(&o);
    assert_eq!(v["subject"]["reference"], reference.as_str());
    assert_eq!(v["subject"]["digest"], pushed.manifest_digest.as_str());
    assert_eq!(v["status"], "verified");
    // No tag in the reference: nothing for tag.consistent to compare.
    assert_ne!(outcome(&v, "tag.consistent"), "fail");
}

#[test]
fn tag_at_digest_reference_fetches_the_digest_and_passes_a_matching_tag() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    let first = push_good(&reg, Format::Oci);
    let second = reg.push_image(REPO, &staging(OTHER_SHA), &good_labels(OTHER_SHA), Format::Oci);
    assert_ne!(first.manifest_digest, second.manifest_digest);
    let reference = format!("{}/{REPO}:{}@{}", reg.host(), staging(SHA), first.manifest_digest);

    let o = verify(&reg, &reference, &[], &scratch);
    assert_exit(&o, 0);
    let v = verdict(&o);
    assert_eq!(v["subject"]["digest"], first.manifest_digest.as_str());
    assert_eq!(outcome(&v, "tag.consistent"), "pass");
}

#[test]
fn tag_at_digest_reference_lets_the_digest_win_and_still_checks_the_tag() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    let first = push_good(&reg, Format::Oci);
    let second = reg.push_image(REPO, &staging(OTHER_SHA), &good_labels(OTHER_SHA), Format::Oci);
    // The tag names OTHER_SHA (and points at the second image); the digest is
    // the first image's, whose revision label is SHA.
    let reference = format!("{}/{REPO}:{}@{}", reg.host(), staging(OTHER_SHA), first.manifest_digest);

    let o = verify(&reg, &reference, &[], &scratch);
    assert_exit(&o, 1);
    let v = verdict(&o);
    assert_eq!(v["subject"]["digest"], first.manifest_digest.as_str());
    assert_ne!(v["subject"]["digest"], second.manifest_digest.as_str());
    assert_eq!(outcome(&v, "tag.consistent"), "fail");
    assert_eq!(v["status"], "rejected");
    assert_eq!(v["allowed"], false);
    assert_eq!(v["event"], "redeploy.verify.pin_mismatch");
}

// ---------------------------------------------------------------------------
// Multi-platform images

fn push_two_platforms(reg: &Registry, format: Format) -> provgate_testkit::registry::PushedIndex {
    reg.push_index(
        REPO,
        &staging(SHA),
        &[("linux/amd64", good_labels(SHA)), ("linux/arm64", good_labels(ARM_SHA))],
        format,
    )
}

#[test]
fn index_judges_linux_amd64_by_default_with_the_index_digest() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    let index = push_two_platforms(&reg, Format::Oci);
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));

    let o = verify(&reg, &reference, &[], &scratch);
    assert_exit(&o, 0);
    let v = verdict(&o);
    assert_eq!(v["subject"]["digest"], index.index_digest.as_str());
    assert_eq!(v["subject"]["platform"], "linux/amd64");
    assert_eq!(v["status"], "verified");
    assert_eq!(outcome(&v, "tag.consistent"), "pass");
}

#[test]
fn index_platform_flag_judges_the_arm64_labels_with_the_index_digest() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    let index = push_two_platforms(&reg, Format::Oci);
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));

    let o = verify(&reg, &reference, &["--platform", "linux/arm64"], &scratch);
    // The arm64 image was built from ARM_SHA, not the tag's SHA.
    assert_exit(&o, 1);
    let v = verdict(&o);
    assert_eq!(v["subject"]["digest"], index.index_digest.as_str());
    assert_eq!(v["subject"]["platform"], "linux/arm64");
    assert_eq!(outcome(&v, "tag.consistent"), "fail");
    assert_eq!(v["event"], "redeploy.verify.pin_mismatch");
}

#[test]
fn index_text_output_names_the_chosen_platforms_digest() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    let index = push_two_platforms(&reg, Format::Oci);
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));
    let host = reg.host();

    let o = verify_with(
        &reference,
        &["--insecure-registry", &host, "--platform", "linux/arm64"],
        &scratch,
        &scratch.docker_config(),
    );
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(out.contains(&index.index_digest), "{out}");
    assert!(out.contains(&index.platform("linux/arm64").manifest_digest), "{out}");
    assert!(out.contains("linux/arm64"), "{out}");
}

#[test]
fn platform_absent_from_the_index_exits_4_naming_it() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    push_two_platforms(&reg, Format::Oci);
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));

    let o = verify(&reg, &reference, &["--platform", "linux/s390x"], &scratch);
    let err = assert_fetch_failure(&o);
    assert!(err.contains("linux/s390x"), "{err}");
}

// ---------------------------------------------------------------------------
// Docker media types

#[test]
fn docker_v2_manifest_is_judged() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    let pushed = push_good(&reg, Format::Docker);
    let (_, content_type, _) = reg.get_manifest(REPO, &staging(SHA));
    assert_eq!(content_type, provgate_testkit::registry::DOCKER_MANIFEST);
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));

    let o = verify(&reg, &reference, &[], &scratch);
    assert_exit(&o, 0);
    let v = verdict(&o);
    assert_eq!(v["subject"]["digest"], pushed.manifest_digest.as_str());
    assert_eq!(v["status"], "verified");
}

#[test]
fn docker_manifest_list_is_judged_per_platform() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    let list = push_two_platforms(&reg, Format::Docker);
    let (_, content_type, _) = reg.get_manifest(REPO, &staging(SHA));
    assert_eq!(content_type, provgate_testkit::registry::DOCKER_LIST);
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));

    let o = verify(&reg, &reference, &[], &scratch);
    assert_exit(&o, 0);
    let v = verdict(&o);
    assert_eq!(v["subject"]["digest"], list.index_digest.as_str());
    assert_eq!(v["subject"]["platform"], "linux/amd64");
    assert_eq!(v["status"], "verified");

    let o = verify(&reg, &reference, &["--platform", "linux/arm64"], &scratch);
    assert_exit(&o, 1);
    let v = verdict(&o);
    assert_eq!(v["subject"]["digest"], list.index_digest.as_str());
    assert_eq!(v["subject"]["platform"], "linux/arm64");
    assert_eq!(outcome(&v, "tag.consistent"), "fail");
}

// ---------------------------------------------------------------------------
// Auth

fn assert_no_credentials(o: &Output) {
    let auth = provgate_testkit::registry::base64(format!("{USER}:{PASSWORD}").as_bytes());
    for secret in [PASSWORD, auth.as_str()] {
        assert!(!stdout(o).contains(secret), "a credential in stdout: {}", stdout(o));
        assert!(!stderr(o).contains(secret), "a credential in stderr: {}", stderr(o));
    }
}

#[test]
fn basic_auth_with_the_right_password_from_docker_config_is_allowed() {
    let reg = Registry::start_with_basic_auth(USER, PASSWORD);
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    let pushed = push_good(&reg, Format::Oci);
    write_docker_config(&scratch.docker_config(), &reg.host(), USER, PASSWORD);
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));

    let o = verify(&reg, &reference, &[], &scratch);
    assert_exit(&o, 0);
    assert_eq!(verdict(&o)["subject"]["digest"], pushed.manifest_digest.as_str());
    assert_no_credentials(&o);
}

#[test]
fn basic_auth_with_username_and_password_fields_is_allowed() {
    let reg = Registry::start_with_basic_auth(USER, PASSWORD);
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    push_good(&reg, Format::Oci);
    let config = json!({"auths": {reg.host(): {"username": USER, "password": PASSWORD}}});
    std::fs::write(scratch.docker_config().join("config.json"), config.to_string()).unwrap();
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));

    let o = verify(&reg, &reference, &[], &scratch);
    assert_exit(&o, 0);
    assert_no_credentials(&o);
}

#[test]
fn basic_auth_with_a_wrong_password_exits_4_about_authentication() {
    let reg = Registry::start_with_basic_auth(USER, PASSWORD);
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    push_good(&reg, Format::Oci);
    write_docker_config(&scratch.docker_config(), &reg.host(), USER, "not-the-password");
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));

    let o = verify(&reg, &reference, &[], &scratch);
    let err = assert_fetch_failure(&o).to_lowercase();
    assert!(
        err.contains("auth") || err.contains("credential") || err.contains("401"),
        "{err}"
    );
    assert!(!err.contains("not-the-password"), "the password leaked: {err}");
    assert_no_credentials(&o);
}

#[test]
fn basic_auth_registry_without_any_docker_config_exits_4() {
    let reg = Registry::start_with_basic_auth(USER, PASSWORD);
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    push_good(&reg, Format::Oci);
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));

    let o = verify(&reg, &reference, &[], &scratch);
    let err = assert_fetch_failure(&o).to_lowercase();
    assert!(
        err.contains("auth") || err.contains("credential") || err.contains("401"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Which credentials file (host/src/input/credentials.rs): --authfile, then
// $REGISTRY_AUTH_FILE, then $DOCKER_CONFIG/config.json, then ~/.docker.

/// `{"auths": {host: user:password}}` written to `scratch/name`.
fn auth_file(scratch: &Scratch, name: &str, host: &str, password: &str) -> String {
    let path = scratch.path(name);
    let auth = provgate_testkit::registry::base64(format!("{USER}:{password}").as_bytes());
    std::fs::write(&path, json!({"auths": {host: {"auth": auth}}}).to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn authfile_flag_is_read_instead_of_registry_auth_file_and_docker_config() {
    let reg = Registry::start_with_basic_auth(USER, PASSWORD);
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    let pushed = push_good(&reg, Format::Oci);
    write_docker_config(&scratch.docker_config(), &reg.host(), USER, "not-the-password");
    let wrong = auth_file(&scratch, "wrong.json", &reg.host(), "not-the-password-either");
    let right = auth_file(&scratch, "auth.json", &reg.host(), PASSWORD);
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));
    let host = reg.host();

    let o = verify_env(
        &reference,
        &["--insecure-registry", &host, "--format", "json", "--authfile", &right],
        &scratch,
        &scratch.docker_config(),
        &[("REGISTRY_AUTH_FILE", &wrong)],
    );
    assert_exit(&o, 0);
    assert_eq!(verdict(&o)["subject"]["digest"], pushed.manifest_digest.as_str());
    assert_no_credentials(&o);
}

#[test]
fn registry_auth_file_is_read_instead_of_docker_config() {
    let reg = Registry::start_with_basic_auth(USER, PASSWORD);
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    push_good(&reg, Format::Oci);
    write_docker_config(&scratch.docker_config(), &reg.host(), USER, "not-the-password");
    let right = auth_file(&scratch, "auth.json", &reg.host(), PASSWORD);
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));
    let host = reg.host();
    let args = ["--insecure-registry", host.as_str(), "--format", "json"];

    let o = verify_env(
        &reference,
        &args,
        &scratch,
        &scratch.docker_config(),
        &[("REGISTRY_AUTH_FILE", &right)],
    );
    assert_exit(&o, 0);
    // And without it, the docker config's wrong password is what is sent.
    let o = verify_with(&reference, &args, &scratch, &scratch.docker_config());
    assert_fetch_failure(&o);
}

#[test]
fn a_credentials_file_that_does_not_parse_is_exit_2_naming_it_not_anonymous() {
    // An anonymous registry: a broken file must still not be taken as "no credentials".
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    push_good(&reg, Format::Oci);
    let config = scratch.docker_config().join("config.json");
    std::fs::write(&config, "{\"auths\": {\"registry.example\": ").unwrap();
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));

    let o = verify(&reg, &reference, &[], &scratch);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(err.contains(config.to_str().unwrap()), "{err}");
    assert!(err.contains("not valid JSON"), "{err}");
    assert!(stdout(&o).is_empty(), "a verdict without credentials: {}", stdout(&o));

    // A file named by --authfile must exist.
    let missing = scratch.path("no-such-auth.json");
    let o = verify(&reg, &reference, &["--authfile", missing.to_str().unwrap()], &scratch);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains(missing.to_str().unwrap()) && err.contains("--authfile"),
        "{err}"
    );
}

#[test]
fn a_hung_credential_helper_ends_at_the_registry_timeout_with_exit_4_and_is_killed() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    push_good(&reg, Format::Oci);
    let hang = HungHelper::install(&scratch.path("helper"));
    hang.configure(&scratch.docker_config(), &reg.host());
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));
    let host = reg.host();
    let path = hang.path_env();

    let o = verify_env(
        &reference,
        &[
            "--insecure-registry",
            &host,
            "--format",
            "json",
            "--registry-timeout",
            "2",
        ],
        &scratch,
        &scratch.docker_config(),
        &[("PATH", &path)],
    );
    let err = assert_fetch_failure(&o);
    assert!(err.contains(&host) && err.contains("within 2 s"), "{err}");
    // It was the helper that was waited for: it ran, and it and what it
    // started are killed, not left behind with provgate gone.
    let started = hang.started();
    assert_eq!(started.len(), 1, "the helper ran {} times: {err}", started.len());
    for (helper, child) in started {
        for pid in [helper, child] {
            assert!(
                eventually(Duration::from_secs(10), || process_dead(pid)),
                "process {pid} of the hung helper still runs after provgate exited"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Integrity

#[test]
fn tampered_config_blob_exits_4_naming_expected_and_received_digests() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    let pushed = push_good(&reg, Format::Oci);
    reg.tamper_blob(&pushed.config_digest);
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));

    let o = verify(&reg, &reference, &[], &scratch);
    let err = assert_fetch_failure(&o);
    assert!(err.contains(&pushed.config_digest), "{err}");
    let received = sha256_digest(&std::fs::read(reg.blob_path(&pushed.config_digest)).unwrap());
    let others: Vec<String> = digests_in(&err)
        .into_iter()
        .filter(|d| *d != pushed.config_digest)
        .collect();
    assert!(!others.is_empty(), "no received digest named: {err}");
    assert!(
        others.contains(&received),
        "the received bytes hash to {received}: {err}"
    );
}

#[test]
fn tampered_manifest_under_a_digest_reference_exits_4() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    let pushed = push_good(&reg, Format::Oci);
    reg.tamper_blob(&pushed.manifest_digest);
    let reference = format!("{}/{REPO}@{}", reg.host(), pushed.manifest_digest);

    let o = verify(&reg, &reference, &[], &scratch);
    let err = assert_fetch_failure(&o);
    assert!(err.contains(&pushed.manifest_digest), "{err}");
}

// ---------------------------------------------------------------------------
// Failures

#[test]
fn unknown_tag_exits_4() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    push_good(&reg, Format::Oci);
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(OTHER_SHA));

    let o = verify(&reg, &reference, &[], &scratch);
    let err = assert_fetch_failure(&o);
    assert!(err.contains(&staging(OTHER_SHA)), "{err}");
}

#[test]
fn unknown_digest_exits_4() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    push_good(&reg, Format::Oci);
    let missing = sha256_digest(b"never pushed");
    let reference = format!("{}/{REPO}@{missing}", reg.host());

    let o = verify(&reg, &reference, &[], &scratch);
    assert_fetch_failure(&o);
}

#[test]
fn unknown_repository_exits_4() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    push_good(&reg, Format::Oci);
    let reference = format!("{}/molecule-ai/no-such-app:{}", reg.host(), staging(SHA));

    let o = verify(&reg, &reference, &[], &scratch);
    assert_fetch_failure(&o);
}

#[test]
fn registry_down_exits_4_on_the_refused_connection_not_at_the_timeout() {
    let mut reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    push_good(&reg, Format::Oci);
    reg.stop();
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));

    let o = verify(&reg, &reference, &["--registry-timeout", "60"], &scratch);
    let err = assert_fetch_failure(&o);
    assert!(err.contains(&reg.host()), "{err}");
    assert!(!err.contains("within 60 s"), "it waited for the time-out: {err}");
}

#[test]
fn plain_http_registry_is_not_used_without_insecure_registry() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    push_good(&reg, Format::Oci);
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));

    let o = verify_with(
        &reference,
        &["--format", "json", "--registry-timeout", "10"],
        &scratch,
        &scratch.docker_config(),
    );
    let err = assert_fetch_failure(&o).to_lowercase();
    // It spoke TLS to a plain-HTTP port, and said so.
    assert!(
        err.contains("https") || err.contains("tls") || err.contains("ssl"),
        "{err}"
    );
}

#[test]
fn insecure_registry_for_another_host_does_not_allow_plain_http_here() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    push_good(&reg, Format::Oci);
    let reference = format!("{}/{REPO}:{}", reg.host(), staging(SHA));

    let o = verify_with(
        &reference,
        &["--insecure-registry", "127.0.0.1:1", "--format", "json"],
        &scratch,
        &scratch.docker_config(),
    );
    assert_fetch_failure(&o);
}

#[test]
fn registry_that_never_answers_times_out_with_exit_4() {
    // Not a registry: a socket that accepts and then says nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    let reference = format!("{host}/{REPO}:{}", staging(SHA));

    let o = verify_with(
        &reference,
        &[
            "--insecure-registry",
            &host,
            "--format",
            "json",
            "--registry-timeout",
            "2",
        ],
        &scratch,
        &scratch.docker_config(),
    );
    let err = assert_fetch_failure(&o);
    assert!(err.contains(&host) && err.contains("within 2 s"), "{err}");
}

#[test]
fn oversized_config_blob_exits_4() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    // A 5 MiB label: the config blob is over the 4 MiB cap for documents.
    let huge = "x".repeat(5 << 20);
    let mut big = good_labels(SHA);
    big.push(("org.example.padding", &huge));
    push_good(&reg, Format::Oci);
    reg.push_image(REPO, "huge", &big, Format::Oci);
    let reference = format!("{}/{REPO}:huge", reg.host());

    let o = verify(&reg, &reference, &[], &scratch);
    assert_fetch_failure(&o);
}

#[test]
fn nested_repository_path_is_fetched() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    let repo = "molecule-ai/images/workspace/app";
    let pushed = reg.push_image(repo, &staging(SHA), &good_labels(SHA), Format::Oci);
    let reference = format!("{}/{repo}:{}", reg.host(), staging(SHA));

    let o = verify(&reg, &reference, &[], &scratch);
    assert_exit(&o, 0);
    let v = verdict(&o);
    assert_eq!(v["subject"]["reference"], reference.as_str());
    assert_eq!(v["subject"]["digest"], pushed.manifest_digest.as_str());
}

// ---------------------------------------------------------------------------
// Registry and --inspect agree

#[test]
fn inspect_of_the_skopeo_json_gives_the_same_verdict_as_the_registry() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    let pushed = push_good(&reg, Format::Oci);
    let name = format!("{}/{REPO}", reg.host());
    let reference = format!("{name}@{}", pushed.manifest_digest);

    let from_registry = verify(&reg, &reference, &[], &scratch);
    assert_exit(&from_registry, 0);
    let from_registry = verdict(&from_registry);

    let label_map: serde_json::Map<String, Value> = good_labels(SHA)
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let skopeo = json!({
        "Name": name,
        "Digest": pushed.manifest_digest,
        "RepoTags": [staging(SHA)],
        "Labels": label_map,
        "Architecture": "amd64",
        "Os": "linux",
        "Layers": [],
    });
    let file = scratch.path("skopeo.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&skopeo).unwrap()).unwrap();
    let replay = scratch.replay();
    let o = provgate_env(
        &[
            "verify",
            "--inspect",
            file.to_str().unwrap(),
            "--replay",
            replay.to_str().unwrap(),
            "--format",
            "json",
        ],
        None,
        &[("DOCKER_CONFIG", scratch.docker_config().to_str().unwrap())],
    );
    assert_exit(&o, 0);
    let from_inspect = verdict(&o);

    assert_eq!(from_inspect["subject"]["digest"], from_registry["subject"]["digest"]);
    assert_eq!(from_inspect["status"], from_registry["status"]);
    assert_eq!(from_inspect["allowed"], from_registry["allowed"]);
    assert_eq!(from_inspect["event"], from_registry["event"]);
    assert_eq!(outcomes(&from_inspect), outcomes(&from_registry));
}

#[test]
fn inspect_and_registry_agree_on_a_rejected_image_too() {
    let reg = Registry::start();
    let scratch = Scratch::new(&[SHA, OTHER_SHA, ARM_SHA]);
    // Built from a forge the policy does not trust.
    let bad = vec![
        (SOURCE, "https://github.com/someone/app"),
        (REVISION, SHA),
        (CREATED, "2026-11-01T10:00:00Z"),
        (RUN_ID, "4242"),
    ];
    let pushed = reg.push_image(REPO, &staging(SHA), &bad, Format::Docker);
    let name = format!("{}/{REPO}", reg.host());
    let reference = format!("{name}@{}", pushed.manifest_digest);

    let from_registry = verify(&reg, &reference, &[], &scratch);
    assert_exit(&from_registry, 1);
    let from_registry = verdict(&from_registry);
    assert_eq!(from_registry["event"], "redeploy.verify.untrusted_source");

    let label_map: serde_json::Map<String, Value> = bad.into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let skopeo = json!({
        "Name": name,
        "Digest": pushed.manifest_digest,
        "Labels": label_map,
        "Architecture": "amd64",
        "Os": "linux",
    });
    let file = scratch.path("skopeo.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&skopeo).unwrap()).unwrap();
    let replay = scratch.replay();
    let o = provgate(
        &[
            "verify",
            "--inspect",
            file.to_str().unwrap(),
            "--replay",
            replay.to_str().unwrap(),
            "--format",
            "json",
        ],
        None,
    );
    assert_exit(&o, 1);
    let from_inspect = verdict(&o);
    assert_eq!(from_inspect["subject"]["digest"], from_registry["subject"]["digest"]);
    assert_eq!(from_inspect["status"], from_registry["status"]);
    assert_eq!(from_inspect["event"], from_registry["event"]);
    assert_eq!(outcomes(&from_inspect), outcomes(&from_registry));
}

// ---------------------------------------------------------------------------
// The harness itself

#[test]
fn harness_pushes_exactly_the_digests_it_reports() {
    let reg = Registry::start();
    let pushed = push_good(&reg, Format::Oci);
    let (status, content_type, body) = reg.get_manifest(REPO, &staging(SHA));
    assert_eq!(status, 200);
    assert_eq!(content_type, provgate_testkit::registry::OCI_MANIFEST);
    assert_eq!(sha256_digest(&body), pushed.manifest_digest);
    let manifest: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(manifest["config"]["digest"], pushed.config_digest.as_str());

    let index = push_two_platforms(&reg, Format::Oci);
    let (status, content_type, body) = reg.get_manifest(REPO, &staging(SHA));
    assert_eq!(status, 200);
    assert_eq!(content_type, provgate_testkit::registry::OCI_INDEX);
    assert_eq!(sha256_digest(&body), index.index_digest);

    let config = std::fs::read(reg.blob_path(&pushed.config_digest)).unwrap();
    assert_eq!(sha256_digest(&config), pushed.config_digest);
    reg.tamper_blob(&pushed.config_digest);
    let tampered = std::fs::read(reg.blob_path(&pushed.config_digest)).unwrap();
    assert_eq!(tampered.len(), config.len());
    assert_ne!(sha256_digest(&tampered), pushed.config_digest);
    serde_json::from_slice::<Value>(&tampered).expect("a tampered config is still JSON");
}
