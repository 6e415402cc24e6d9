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

use provgate_testkit::registry::{
    Format, HungHelper, Pushed, PushedIndex, Registry, Scratch, eventually, process_dead, sha256_digest,
    write_docker_config,
};
use provgate_testkit::*;
use serde_json::{Value, json};

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

fn push_two_platforms(reg: &Registry, format: Format) -> PushedIndex {
    reg.push_index(
        REPO,
        &staging(SHA),
        &[("linux/amd64", good_labels(SHA)), ("linux/arm64", good_labels(ARM_SHA))],
        format,
    )
}

/// A recording in which every commit of this file exists.
fn scratch() -> Scratch {
    Scratch::new(&[SHA, OTHER_SHA, ARM_SHA])
}

/// Where (almost) every test starts: a running registry, what was pushed to
/// it, and a [`scratch`] recording with its (empty) docker config.
struct Stage<P = Pushed> {
    scratch: Scratch,
    pushed: P,
    reg: Registry,
}

impl Stage {
    /// The good image, OCI, on an anonymous registry.
    fn good() -> Stage {
        Stage::with(Registry::start(), |reg| push_good(reg, Format::Oci))
    }

    /// The good image, OCI, on a registry that wants [`USER`] and [`PASSWORD`].
    fn basic_auth() -> Stage {
        Stage::with(Registry::start_with_basic_auth(USER, PASSWORD), |reg| {
            push_good(reg, Format::Oci)
        })
    }
}

impl Stage<PushedIndex> {
    /// The two-platform index (amd64 from `SHA`, arm64 from `ARM_SHA`) in
    /// `format`, on an anonymous registry.
    fn two_platforms(format: Format) -> Stage<PushedIndex> {
        Stage::with(Registry::start(), |reg| push_two_platforms(reg, format))
    }
}

impl<P> Stage<P> {
    /// `reg` with whatever `push` pushes to it.
    fn with(reg: Registry, push: impl FnOnce(&Registry) -> P) -> Stage<P> {
        let scratch = scratch();
        let pushed = push(&reg);
        Stage { scratch, pushed, reg }
    }

    /// The scratch's docker config holding `user:password` for this registry.
    fn log_in_as(&self, user: &str, password: &str) {
        write_docker_config(&self.scratch.docker_config(), &self.reg.host(), user, password);
    }

    /// `HOST/molecule-ai/app:staging-<SHA>` on this registry.
    fn tag(&self) -> String {
        format!("{}/{REPO}:{}", self.reg.host(), staging(SHA))
    }

    /// `HOST/molecule-ai/app@<digest>` on this registry.
    fn at(&self, digest: &str) -> String {
        format!("{}/{REPO}@{digest}", self.reg.host())
    }

    /// `verify` of `reference`, allowed to use plain HTTP to this registry,
    /// JSON output and the scratch's docker config, plus `extra`.
    fn verify(&self, reference: &str, extra: &[&str]) -> Output {
        self.verify_env(reference, extra, &[])
    }

    /// [`Stage::verify`] with `env` added.
    fn verify_env(&self, reference: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let host = self.reg.host();
        let mut args = vec!["--insecure-registry", host.as_str(), "--format", "json"];
        args.extend_from_slice(extra);
        verify_env(reference, &args, &self.scratch, &self.scratch.docker_config(), env)
    }

    /// [`verify_with`] of `reference` with just `args`: plain HTTP to this
    /// registry only if they say so, the text format unless they ask for JSON.
    fn verify_args(&self, reference: &str, args: &[&str]) -> Output {
        verify_with(reference, args, &self.scratch, &self.scratch.docker_config())
    }

    /// [`Stage::verify_args`] allowed plain HTTP to this registry, in the
    /// text format, plus `extra`.
    fn verify_text(&self, reference: &str, extra: &[&str]) -> Output {
        let host = self.reg.host();
        let mut args = vec!["--insecure-registry", host.as_str()];
        args.extend_from_slice(extra);
        self.verify_args(reference, &args)
    }
}

/// The verdict of a run that exited `exit`.
#[track_caller]
fn judged(o: &Output, exit: i32) -> Value {
    assert_exit(o, exit);
    verdict(o)
}

/// The index's tag verified (with `--platform` if given), exiting `exit`:
/// judged under the index digest, on the platform chosen. The verdict.
#[track_caller]
fn judged_on(stage: &Stage<PushedIndex>, platform: Option<&str>, exit: i32) -> Value {
    let extra: Vec<&str> = platform.into_iter().flat_map(|p| ["--platform", p]).collect();
    let v = judged(&stage.verify(&stage.tag(), &extra), exit);
    assert_eq!(v["subject"]["digest"], stage.pushed.index_digest.as_str());
    assert_eq!(v["subject"]["platform"], platform.unwrap_or("linux/amd64"));
    v
}

// ---------------------------------------------------------------------------
// References

#[test]
fn tag_reference_is_judged_with_its_manifest_digest() {
    let stage = Stage::good();
    let reference = stage.tag();

    let v = judged(&stage.verify(&reference, &[]), 0);
    assert_eq!(v["subject"]["reference"], reference.as_str());
    assert_eq!(v["subject"]["digest"], stage.pushed.manifest_digest.as_str());
    assert_eq!(v["status"], "verified");
    assert_eq!(v["allowed"], true);
    assert_eq!(v["event"], "redeploy.verify.reachable");
    assert_eq!(outcome(&v, "tag.consistent"), "pass");
    assert_eq!(outcome(&v, "labels.present"), "pass");
}

#[test]
fn tag_reference_in_text_output_is_verified() {
    let stage = Stage::good();

    let o = stage.verify_text(&stage.tag(), &[]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(out.starts_with("VERIFIED"), "{out}");
    assert!(out.contains(&stage.pushed.manifest_digest), "{out}");
}

#[test]
fn digest_reference_is_judged_with_that_digest() {
    let stage = Stage::good();
    let reference = stage.at(&stage.pushed.manifest_digest);

    let v = judged(&stage.verify(&reference, &[]), 0);
    assert_eq!(v["subject"]["reference"], reference.as_str());
    assert_eq!(v["subject"]["digest"], stage.pushed.manifest_digest.as_str());
    assert_eq!(v["status"], "verified");
    // No tag in the reference: nothing for tag.consistent to compare.
    assert_ne!(outcome(&v, "tag.consistent"), "fail");
}

/// The good image and a second one (built from `OTHER_SHA`, tagged for
/// it); `TAG@DIGEST` with the tag of `tag_sha` and the first image's digest,
/// verified and exiting `exit`: the digest is the one judged. The verdict
/// and the second image.
fn tag_at_the_first_digest(tag_sha: &str, exit: i32) -> (Value, Pushed) {
    let stage = Stage::good();
    let first = &stage.pushed;
    let second = stage
        .reg
        .push_image(REPO, &staging(OTHER_SHA), &good_labels(OTHER_SHA), Format::Oci);
    assert_ne!(first.manifest_digest, second.manifest_digest);
    let reference = format!(
        "{}/{REPO}:{}@{}",
        stage.reg.host(),
        staging(tag_sha),
        first.manifest_digest
    );

    let v = judged(&stage.verify(&reference, &[]), exit);
    assert_eq!(v["subject"]["digest"], first.manifest_digest.as_str());
    (v, second)
}

#[test]
fn tag_at_digest_reference_fetches_the_digest_and_passes_a_matching_tag() {
    let (v, _) = tag_at_the_first_digest(SHA, 0);
    assert_eq!(outcome(&v, "tag.consistent"), "pass");
}

#[test]
fn tag_at_digest_reference_lets_the_digest_win_and_still_checks_the_tag() {
    // The tag names OTHER_SHA (and points at the second image); the digest is
    // the first image's, whose revision label is SHA.
    let (v, second) = tag_at_the_first_digest(OTHER_SHA, 1);
    assert_ne!(v["subject"]["digest"], second.manifest_digest.as_str());
    assert_eq!(outcome(&v, "tag.consistent"), "fail");
    assert_eq!(v["status"], "rejected");
    assert_eq!(v["allowed"], false);
    assert_eq!(v["event"], "redeploy.verify.pin_mismatch");
}

// ---------------------------------------------------------------------------
// Multi-platform images

#[test]
fn index_judges_linux_amd64_by_default_with_the_index_digest() {
    let stage = Stage::two_platforms(Format::Oci);

    let v = judged_on(&stage, None, 0);
    assert_eq!(v["status"], "verified");
    assert_eq!(outcome(&v, "tag.consistent"), "pass");
}

#[test]
fn index_platform_flag_judges_the_arm64_labels_with_the_index_digest() {
    let stage = Stage::two_platforms(Format::Oci);

    // The arm64 image was built from ARM_SHA, not the tag's SHA.
    let v = judged_on(&stage, Some("linux/arm64"), 1);
    assert_eq!(outcome(&v, "tag.consistent"), "fail");
    assert_eq!(v["event"], "redeploy.verify.pin_mismatch");
}

#[test]
fn index_text_output_names_the_chosen_platforms_digest() {
    let stage = Stage::two_platforms(Format::Oci);
    let index = &stage.pushed;

    let o = stage.verify_text(&stage.tag(), &["--platform", "linux/arm64"]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(out.contains(&index.index_digest), "{out}");
    assert!(out.contains(&index.platform("linux/arm64").manifest_digest), "{out}");
    assert!(out.contains("linux/arm64"), "{out}");
}

#[test]
fn platform_absent_from_the_index_exits_4_naming_it() {
    let stage = Stage::two_platforms(Format::Oci);

    let o = stage.verify(&stage.tag(), &["--platform", "linux/s390x"]);
    let err = assert_fetch_failure(&o);
    assert!(err.contains("linux/s390x"), "{err}");
}

// ---------------------------------------------------------------------------
// Docker media types

#[test]
fn docker_v2_manifest_is_judged() {
    let stage = Stage::with(Registry::start(), |reg| push_good(reg, Format::Docker));
    let (_, content_type, _) = stage.reg.get_manifest(REPO, &staging(SHA));
    assert_eq!(content_type, provgate_testkit::registry::DOCKER_MANIFEST);

    let v = judged(&stage.verify(&stage.tag(), &[]), 0);
    assert_eq!(v["subject"]["digest"], stage.pushed.manifest_digest.as_str());
    assert_eq!(v["status"], "verified");
}

#[test]
fn docker_manifest_list_is_judged_per_platform() {
    let stage = Stage::two_platforms(Format::Docker);
    let (_, content_type, _) = stage.reg.get_manifest(REPO, &staging(SHA));
    assert_eq!(content_type, provgate_testkit::registry::DOCKER_LIST);

    let v = judged_on(&stage, None, 0);
    assert_eq!(v["status"], "verified");

    let v = judged_on(&stage, Some("linux/arm64"), 1);
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

/// A fetch failure (exit 4) that is about authentication. Its stderr,
/// lower-cased.
#[track_caller]
fn assert_auth_failure(o: &Output) -> String {
    let err = assert_fetch_failure(o).to_lowercase();
    // Which registry, and that it refused (HTTP 401) the credentials.
    assert!(err.contains("127.0.0.1:") && err.contains("401"), "{err}");
    assert!(err.contains("credentials"), "{err}");
    err
}

/// Exit 0, the good image judged, and no credential printed.
#[track_caller]
fn assert_verified_without_credentials(stage: &Stage, o: &Output) {
    assert_eq!(judged(o, 0)["subject"]["digest"], stage.pushed.manifest_digest.as_str());
    assert_no_credentials(o);
}

#[test]
fn basic_auth_with_the_right_password_from_docker_config_is_allowed() {
    let stage = Stage::basic_auth();
    stage.log_in_as(USER, PASSWORD);

    assert_verified_without_credentials(&stage, &stage.verify(&stage.tag(), &[]));
}

#[test]
fn basic_auth_with_username_and_password_fields_is_allowed() {
    let stage = Stage::basic_auth();
    let config = json!({"auths": {stage.reg.host(): {"username": USER, "password": PASSWORD}}});
    std::fs::write(stage.scratch.docker_config().join("config.json"), config.to_string()).unwrap();

    let o = stage.verify(&stage.tag(), &[]);
    assert_exit(&o, 0);
    assert_no_credentials(&o);
}

#[test]
fn basic_auth_with_a_wrong_password_exits_4_about_authentication() {
    let stage = Stage::basic_auth();
    stage.log_in_as(USER, "not-the-password");

    let o = stage.verify(&stage.tag(), &[]);
    let err = assert_auth_failure(&o);
    assert!(!err.contains("not-the-password"), "the password leaked: {err}");
    assert_no_credentials(&o);
}

#[test]
fn basic_auth_registry_without_any_docker_config_exits_4() {
    let stage = Stage::basic_auth();

    assert_auth_failure(&stage.verify(&stage.tag(), &[]));
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

/// [`Stage::basic_auth`] whose docker config holds a wrong password, and
/// an auth file `auth.json` with the right one (its path).
fn basic_auth_with_a_right_auth_file() -> (Stage, String) {
    let stage = Stage::basic_auth();
    stage.log_in_as(USER, "not-the-password");
    let right = auth_file(&stage.scratch, "auth.json", &stage.reg.host(), PASSWORD);
    (stage, right)
}

#[test]
fn authfile_flag_is_read_instead_of_registry_auth_file_and_docker_config() {
    let (stage, right) = basic_auth_with_a_right_auth_file();
    let wrong = auth_file(
        &stage.scratch,
        "wrong.json",
        &stage.reg.host(),
        "not-the-password-either",
    );

    let o = stage.verify_env(&stage.tag(), &["--authfile", &right], &[("REGISTRY_AUTH_FILE", &wrong)]);
    assert_verified_without_credentials(&stage, &o);
}

#[test]
fn registry_auth_file_is_read_instead_of_docker_config() {
    let (stage, right) = basic_auth_with_a_right_auth_file();
    let reference = stage.tag();

    let o = stage.verify_env(&reference, &[], &[("REGISTRY_AUTH_FILE", &right)]);
    assert_exit(&o, 0);
    // And without it, the docker config's wrong password is what is sent.
    let o = stage.verify(&reference, &[]);
    assert_auth_failure(&o);
}

#[test]
fn a_credentials_file_that_does_not_parse_is_exit_2_naming_it_not_anonymous() {
    // An anonymous registry: a broken file must still not be taken as "no credentials".
    let stage = Stage::good();
    let config = stage.scratch.docker_config().join("config.json");
    std::fs::write(&config, "{\"auths\": {\"registry.example\": ").unwrap();
    let reference = stage.tag();

    let o = stage.verify(&reference, &[]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(err.contains(config.to_str().unwrap()), "{err}");
    assert!(err.contains("not valid JSON"), "{err}");
    assert!(stdout(&o).is_empty(), "a verdict without credentials: {}", stdout(&o));

    // A file named by --authfile must exist.
    let missing = stage.scratch.path("no-such-auth.json");
    let o = stage.verify(&reference, &["--authfile", missing.to_str().unwrap()]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains(missing.to_str().unwrap()) && err.contains("--authfile"),
        "{err}"
    );
}

#[test]
fn a_hung_credential_helper_ends_at_the_registry_timeout_with_exit_4_and_is_killed() {
    let stage = Stage::good();
    let scratch = &stage.scratch;
    let hang = HungHelper::install(&scratch.path("helper"));
    hang.configure(&scratch.docker_config(), &stage.reg.host());
    let host = stage.reg.host();
    let path = hang.path_env();

    let o = stage.verify_env(&stage.tag(), &["--registry-timeout", "2"], &[("PATH", &path)]);
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
    let stage = Stage::good();
    let (reg, pushed) = (&stage.reg, &stage.pushed);
    reg.tamper_blob(&pushed.config_digest);

    let err = assert_fetch_failure(&stage.verify(&stage.tag(), &[]));
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
    let stage = Stage::good();
    let digest = &stage.pushed.manifest_digest;
    stage.reg.tamper_blob(digest);

    let err = assert_fetch_failure(&stage.verify(&stage.at(digest), &[]));
    assert!(err.contains(digest), "{err}");
}

// ---------------------------------------------------------------------------
// Failures

/// The good image on an anonymous registry, and `verify` of the reference
/// `reference` makes of its host, with `extra`: a fetch failure. Stderr.
#[track_caller]
fn fails_to_fetch(reference: impl FnOnce(&Stage) -> String, extra: &[&str]) -> String {
    let stage = Stage::good();
    assert_fetch_failure(&stage.verify(&reference(&stage), extra))
}

#[test]
fn unknown_tag_exits_4() {
    let err = fails_to_fetch(
        |stage| format!("{}/{REPO}:{}", stage.reg.host(), staging(OTHER_SHA)),
        &[],
    );
    assert!(err.contains(&staging(OTHER_SHA)), "{err}");
}

#[test]
fn unknown_digest_exits_4() {
    let never = sha256_digest(b"never pushed");
    let err = fails_to_fetch(|stage| stage.at(&never), &[]);
    assert!(err.contains(&never) && err.contains("404"), "{err}");
}

#[test]
fn unknown_repository_exits_4() {
    let err = fails_to_fetch(
        |stage| format!("{}/molecule-ai/no-such-app:{}", stage.reg.host(), staging(SHA)),
        &[],
    );
    assert!(err.contains("molecule-ai/no-such-app") && err.contains("404"), "{err}");
}

#[test]
fn registry_down_exits_4_on_the_refused_connection_not_at_the_timeout() {
    let mut stage = Stage::good();
    stage.reg.stop();

    let err = assert_fetch_failure(&stage.verify(&stage.tag(), &["--registry-timeout", "60"]));
    assert!(err.contains(&stage.reg.host()), "{err}");
    assert!(!err.contains("within 60 s"), "it waited for the time-out: {err}");
}

#[test]
fn plain_http_registry_is_not_used_without_insecure_registry() {
    let stage = Stage::good();

    let o = stage.verify_args(&stage.tag(), &["--format", "json", "--registry-timeout", "10"]);
    let err = assert_fetch_failure(&o);
    // It spoke TLS to a plain-HTTP port, and said so, naming the way out.
    let host = stage.reg.host();
    assert!(
        err.contains("plain HTTP") && err.contains(&format!("--insecure-registry {host}")),
        "{err}"
    );
}

#[test]
fn insecure_registry_for_another_host_does_not_allow_plain_http_here() {
    let stage = Stage::good();

    let o = stage.verify_args(
        &stage.tag(),
        &["--insecure-registry", "127.0.0.1:1", "--format", "json"],
    );
    let err = assert_fetch_failure(&o);
    let host = stage.reg.host();
    assert!(
        err.contains("plain HTTP") && err.contains(&format!("--insecure-registry {host}")),
        "{err}"
    );
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
    let scratch = scratch();
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
    let stage = Stage::good();
    // A 5 MiB label: the config blob is over the 4 MiB cap for documents.
    let huge = "x".repeat(5 << 20);
    let mut big = good_labels(SHA);
    big.push(("org.example.padding", &huge));
    stage.reg.push_image(REPO, "huge", &big, Format::Oci);
    let reference = format!("{}/{REPO}:huge", stage.reg.host());

    let err = assert_fetch_failure(&stage.verify(&reference, &[]));
    assert!(
        err.contains("config blob sha256:") && err.contains("larger than 4194304 bytes"),
        "{err}"
    );
}

#[test]
fn nested_repository_path_is_fetched() {
    let repo = "molecule-ai/images/workspace/app";
    let stage = Stage::with(Registry::start(), |reg| {
        reg.push_image(repo, &staging(SHA), &good_labels(SHA), Format::Oci)
    });
    let reference = format!("{}/{repo}:{}", stage.reg.host(), staging(SHA));

    let v = judged(&stage.verify(&reference, &[]), 0);
    assert_eq!(v["subject"]["reference"], reference.as_str());
    assert_eq!(v["subject"]["digest"], stage.pushed.manifest_digest.as_str());
}

// ---------------------------------------------------------------------------
// Registry and --inspect agree

/// The image `stage` pushed (with `labels`) judged twice, exiting `exit`
/// both times: by digest from the registry, and from a skopeo JSON of it
/// (`skopeo`'s fields, plus its name, digest and `labels`) by `--inspect`.
/// Both agree on the digest, status, event and every finding. (registry's,
/// inspect's) verdicts.
#[track_caller]
fn from_registry_and_inspect(stage: &Stage, labels: &[(&str, &str)], mut skopeo: Value, exit: i32) -> (Value, Value) {
    let name = format!("{}/{REPO}", stage.reg.host());
    let from_registry = judged(&stage.verify(&stage.at(&stage.pushed.manifest_digest), &[]), exit);

    let label_map: serde_json::Map<String, Value> = labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    skopeo["Name"] = json!(name);
    skopeo["Digest"] = json!(stage.pushed.manifest_digest);
    skopeo["Labels"] = json!(label_map);
    let scratch = &stage.scratch;
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
    let from_inspect = judged(&o, exit);

    assert_eq!(from_inspect["subject"]["digest"], from_registry["subject"]["digest"]);
    assert_eq!(from_inspect["status"], from_registry["status"]);
    assert_eq!(from_inspect["event"], from_registry["event"]);
    assert_eq!(outcomes(&from_inspect), outcomes(&from_registry));
    (from_registry, from_inspect)
}

#[test]
fn inspect_of_the_skopeo_json_gives_the_same_verdict_as_the_registry() {
    let stage = Stage::good();
    let skopeo = json!({
        "RepoTags": [staging(SHA)],
        "Architecture": "amd64",
        "Os": "linux",
        "Layers": [],
    });

    let (from_registry, from_inspect) = from_registry_and_inspect(&stage, &good_labels(SHA), skopeo, 0);
    assert_eq!(from_inspect["allowed"], from_registry["allowed"]);
}

#[test]
fn inspect_and_registry_agree_on_a_rejected_image_too() {
    // Built from a forge the policy does not trust.
    let bad = vec![
        (SOURCE, "https://github.com/someone/app"),
        (REVISION, SHA),
        (CREATED, "2026-11-01T10:00:00Z"),
        (RUN_ID, "4242"),
    ];
    let stage = Stage::with(Registry::start(), |reg| {
        reg.push_image(REPO, &staging(SHA), &bad, Format::Docker)
    });
    let skopeo = json!({"Architecture": "amd64", "Os": "linux"});

    let (from_registry, _) = from_registry_and_inspect(&stage, &bad, skopeo, 1);
    assert_eq!(from_registry["event"], "redeploy.verify.untrusted_source");
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
