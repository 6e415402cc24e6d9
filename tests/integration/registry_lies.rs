//! Registries that lie (issue 7, registry side): `provgate verify` through
//! the lying proxy of `testkit/src/registry_liar.rs`, standing in front of a
//! REAL registry (Debian's `docker-registry`, `testkit/src/registry.rs`).
//!
//! - slow drips end at the total `--registry-timeout`, not at a per-read one;
//! - redirects: blob redirects are followed anywhere (the bytes are checked
//!   against their digest, and credentials stay behind); manifest redirects
//!   are followed only where provgate would itself go (HTTPS, or a host
//!   named by `--insecure-registry`);
//! - huge and endless manifests and configs are cut off at the 4 MiB cap,
//!   naming what was too big;
//! - wrong bytes and lying `Content-Length`s exit 4;
//! - token services: a huge or endless answer is cut off at the 64 KiB cap
//!   naming the token service, its error body is never shown, and an
//!   identity token is exchanged by the OAuth2 refresh-token `POST`;
//! - error answers: a 100 MiB body shows as a short prefix, hostile bytes
//!   (newlines, `::error::`, ESC, U+202E) are escaped, and an echoed
//!   `Authorization: Basic` shows neither the password nor its base64.
//!
//! (Where a registry may send `serve`, token realms and redirects to
//! internal hosts, is tested in `serve_ssrf.rs`.)
//!
//! Every run is watched: a provgate that has not finished after
//! [`WATCHDOG`] is killed and the test fails ("did not finish"), instead of
//! hanging the suite. That is the only clock these tests look at.

use std::io::Read;
use std::process::Output;
use std::time::{Duration, Instant};

use provgate_testkit::registry::{Format, Pushed, Registry, Scratch, base64, sha256_digest, write_docker_config};
use provgate_testkit::registry_liar::{Liar, Lie, Route, TokenAnswer, envelope, form_pairs};
use provgate_testkit::*;
use serde_json::Value;

const REPO: &str = "molecule-ai/app";
const OTHER_SHA: &str = "0f6c2d4be1a9387e5b2d7c1f4a6e8b9d0c3f5a71";
const USER: &str = "ci-bot";
const PASSWORD: &str = "s3cret-Pa55word";
/// Well past anything a bounded fetch takes on a loaded machine; only a
/// fetch with no bound at all reaches it.
const WATCHDOG: Duration = Duration::from_secs(120);
/// "50 MB": far over the 4 MiB cap.
const HUGE: u64 = 50_000_000;
const CAP: &str = "4194304";

/// `provgate verify REF --replay … --format json --insecure-registry H…`
/// plus `extra`, killed after [`WATCHDOG`].
fn verify(reference: &str, insecure: &[&str], extra: &[&str], scratch: &Scratch) -> Output {
    let replay = scratch.replay();
    let mut args = vec![
        "verify",
        reference,
        "--replay",
        replay.to_str().unwrap(),
        "--format",
        "json",
    ];
    for host in insecure {
        args.extend(["--insecure-registry", host]);
    }
    args.extend_from_slice(extra);
    watched(&args, &[("DOCKER_CONFIG", scratch.docker_config().to_str().unwrap())])
}

/// The provgate binary as `provgate_testkit::provgate_env` runs it, but without a
/// `REGISTRY_AUTH_FILE` from the caller's environment (it would come before
/// the test's `DOCKER_CONFIG`), and killed (and the test failed) if it has
/// not finished within [`WATCHDOG`].
fn watched(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = provgate_command(args, &[]);
    cmd.env_remove("REGISTRY_AUTH_FILE").envs(env.iter().copied());
    let mut child = cmd.spawn().expect("provgate starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + WATCHDOG;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
            panic!("provgate {args:?} did not finish within {WATCHDOG:?}; stderr so far:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn staging(sha: &str) -> String {
    format!("staging-{sha}")
}

fn push_good(reg: &Registry) -> Pushed {
    reg.push_image(REPO, &staging(SHA), &good_labels(SHA), Format::Oci)
}

/// `HOST/molecule-ai/app:staging-<SHA>`.
fn tag_ref(host: &str) -> String {
    format!("{host}/{REPO}:{}", staging(SHA))
}

#[track_caller]
fn assert_exit(o: &Output, expected: i32) {
    assert_eq!(
        o.status.code(),
        Some(expected),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// Exit 4, no verdict on stdout; the reason on stderr, which must contain
/// each of `words`.
#[track_caller]
fn assert_fetch_failure(o: &Output, words: &[&str]) -> String {
    assert_exit(o, 4);
    assert!(
        serde_json::from_slice::<Value>(&o.stdout).is_err(),
        "exit 4 but a verdict on stdout: {}",
        stdout(o)
    );
    let err = stderr(o);
    for word in words {
        assert!(err.contains(word), "{word:?} missing from stderr:\n{err}");
    }
    err
}

/// A pass, judged on `digest`.
#[track_caller]
fn assert_verified(o: &Output, digest: &str) {
    assert_exit(o, 0);
    let v: Value = serde_json::from_slice(&o.stdout).expect("a verdict");
    assert_eq!(v["subject"]["digest"], digest, "{v}");
    assert_eq!(v["allowed"], true, "{v}");
}

/// The stored bytes of blob `digest` (manifests are blobs too).
fn stored(reg: &Registry, digest: &str) -> Vec<u8> {
    std::fs::read(reg.blob_path(digest)).unwrap()
}

/// `bytes` with every `from` replaced by `to`, which must change them.
fn rewritten(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(text.contains(from), "{from} not in {text}");
    text.replace(from, to).into_bytes()
}

/// What every lie is told in front of: the real registry holding the good
/// image, the liar proxying to it, and a recording in which both commits
/// exist. Every test here starts from one.
/// (The liar is dropped before the registry behind it.)
struct Stage {
    liar: Liar,
    scratch: Scratch,
    pushed: Pushed,
    reg: Registry,
}

impl Stage {
    /// An anonymous registry behind the liar, telling no lie yet.
    fn new() -> Stage {
        Stage::on(Registry::start())
    }

    /// `reg` with the good image pushed, behind a fresh liar.
    fn on(reg: Registry) -> Stage {
        let pushed = push_good(&reg);
        let liar = Liar::proxy(&reg.host());
        let scratch = Scratch::new(&[SHA, OTHER_SHA]);
        Stage {
            liar,
            scratch,
            pushed,
            reg,
        }
    }

    /// A stage whose liar answers every `route` request with `lie`.
    fn lying(route: Route, lie: Lie) -> Stage {
        let stage = Stage::new();
        stage.liar.lie(route, None, lie);
        stage
    }

    /// Another host, 127.0.0.2, proxying to the same registry and sending
    /// `authorization` upstream itself when a request brings none (storage
    /// that needs nothing from the client, like a presigned URL).
    fn elsewhere(&self, authorization: Option<&str>) -> Liar {
        Liar::start("127.0.0.2", Some(&self.reg.host()), authorization)
    }

    /// The liar redirecting (`status`) every `route` request to a fresh
    /// [`Stage::elsewhere`], which it returns.
    fn redirected(&self, route: Route, status: u16, authorization: Option<&str>) -> Liar {
        let elsewhere = self.elsewhere(authorization);
        self.liar.lie(
            route,
            None,
            Lie::Redirect {
                status,
                to: elsewhere.url(),
            },
        );
        elsewhere
    }

    /// The good image's tag reference through the liar.
    fn tag(&self) -> String {
        tag_ref(&self.liar.host())
    }

    /// The good image's digest reference through the liar.
    fn by_digest(&self) -> String {
        format!("{}/{REPO}@{}", self.liar.host(), self.pushed.manifest_digest)
    }

    /// What a fetch failure on `route` names: the manifest by the tag
    /// reference, or the config blob by its digest.
    fn named(&self, route: Route) -> String {
        match route {
            Route::Manifest => format!("manifest {}", self.tag()),
            Route::Blob => format!("config blob {}", self.pushed.config_digest),
        }
    }

    /// [`verify`] of `reference`, the liar's host named insecure, plus `extra`.
    fn verify(&self, reference: &str, extra: &[&str]) -> Output {
        verify(reference, &[&self.liar.host()], extra, &self.scratch)
    }
}

/// The good image's tag verified (with `extra`) through a liar that answers
/// every `route` request with `lie`: all most lies need.
fn lie_about(route: Route, lie: Lie, extra: &[&str]) -> (Stage, Output) {
    let stage = Stage::lying(route, lie);
    let o = stage.verify(&stage.tag(), extra);
    (stage, o)
}

/// [`lie_about`] under `--registry-timeout 2`, which is what must end it:
/// exit 4 naming the liar and the 2 s. The stage and stderr.
#[track_caller]
fn timed_out(route: Route, lie: Lie) -> (Stage, String) {
    let (stage, o) = lie_about(route, lie, &["--registry-timeout", "2"]);
    let err = assert_fetch_failure(&o, &[&stage.liar.host(), "did not finish answering within 2 s"]);
    (stage, err)
}

/// A [`HUGE`] body, under its `Content-Length` when `declared`, chunked otherwise.
fn huge(declared: bool) -> Lie {
    Lie::Huge { len: HUGE, declared }
}

/// For [`huge`]: with and without a `Content-Length`.
const DECLARED: bool = true;
const CHUNKED: bool = false;

/// [`lie_about`] with a body that must be cut off at the 4 MiB cap: exit 4
/// naming what `route` fetched, "larger than" and the cap. Stderr.
#[track_caller]
fn capped(route: Route, lie: Lie, extra: &[&str]) -> String {
    let (stage, o) = lie_about(route, lie, extra);
    assert_fetch_failure(&o, &[&stage.named(route), "larger than", CAP])
}

// ---------------------------------------------------------------------------
// The liar itself

#[test]
fn the_liar_without_lies_is_a_faithful_proxy() {
    let stage = Stage::new();

    let o = stage.verify(&stage.tag(), &[]);
    assert_verified(&o, &stage.pushed.manifest_digest);
    let liar = &stage.liar;
    assert_eq!(liar.seen_for("/manifests/").len(), 1, "{:?}", liar.seen());
    assert_eq!(liar.seen_for("/blobs/").len(), 1, "{:?}", liar.seen());
}

#[test]
fn the_other_host_127_0_0_2_is_reachable() {
    let stage = Stage::new();
    let elsewhere = stage.elsewhere(None);
    assert!(elsewhere.host().starts_with("127.0.0.2:"), "{}", elsewhere.host());

    let o = verify(&tag_ref(&elsewhere.host()), &[&elsewhere.host()], &[], &stage.scratch);
    assert_verified(&o, &stage.pushed.manifest_digest);
}

// ---------------------------------------------------------------------------
// Slow drips: the total time-out, not a per-read one

#[test]
fn a_manifest_dripping_one_byte_a_second_hits_the_total_timeout() {
    // Every read gets a byte within a second: only a total bound ends this.
    let (_, err) = timed_out(Route::Manifest, Lie::Drip { chunked: true });
    assert!(!err.contains("larger than"), "{err}");
}

#[test]
fn a_config_blob_dripping_one_byte_a_second_under_its_content_length_hits_the_total_timeout() {
    let (stage, _) = timed_out(Route::Blob, Lie::Drip { chunked: false });
    // It got past the manifest: the drip it timed out on was the config's.
    assert_eq!(stage.liar.seen_for("/blobs/").len(), 1, "{:?}", stage.liar.seen());
}

// ---------------------------------------------------------------------------
// Redirects to another host

#[test]
fn a_config_blob_redirected_to_another_host_is_followed_and_judged() {
    let stage = Stage::new();
    let storage = stage.redirected(Route::Blob, 307, None);

    // Only the registry is named insecure: the storage host is reached
    // over plain HTTP anyway, because its bytes are checked by digest.
    let o = stage.verify(&stage.tag(), &[]);
    assert_verified(&o, &stage.pushed.manifest_digest);
    let fetched = storage.seen_for(&stage.pushed.config_digest);
    assert_eq!(fetched.len(), 1, "{:?}", storage.seen());
    assert!(storage.seen_for("/manifests/").is_empty(), "{:?}", storage.seen());
}

#[test]
fn a_blob_redirect_to_another_host_does_not_carry_the_registry_credentials() {
    let stage = Stage::on(Registry::start_with_basic_auth(USER, PASSWORD));
    // The storage host needs nothing from the client (like a presigned URL).
    let basic = format!("Basic {}", base64(format!("{USER}:{PASSWORD}").as_bytes()));
    let storage = stage.redirected(Route::Blob, 302, Some(&basic));
    write_docker_config(&stage.scratch.docker_config(), &stage.liar.host(), USER, PASSWORD);

    let o = stage.verify(&stage.tag(), &[]);
    assert_verified(&o, &stage.pushed.manifest_digest);
    // The registry got the credentials; the other host never did.
    let manifest_requests = stage.liar.seen_for("/manifests/");
    assert!(
        manifest_requests.iter().any(|s| s.authorization.is_some()),
        "{manifest_requests:?}"
    );
    let blob_requests = storage.seen_for(&stage.pushed.config_digest);
    assert_eq!(blob_requests.len(), 1, "{:?}", storage.seen());
    assert!(
        blob_requests.iter().all(|s| s.authorization.is_none()),
        "credentials sent to another host: {blob_requests:?}"
    );
}

#[test]
fn a_token_registry_is_asked_for_a_token_and_only_the_registry_sees_it() {
    let stage = Stage::new();
    let liar = &stage.liar;
    liar.require_token("t0k3n");
    let storage = stage.redirected(Route::Blob, 307, None);

    let o = stage.verify(&stage.tag(), &[]);
    assert_verified(&o, &stage.pushed.manifest_digest);
    assert!(!liar.seen_for("/token").is_empty(), "{:?}", liar.seen());
    let bearer = Some("Bearer t0k3n".to_string());
    let manifest_requests = liar.seen_for("/manifests/");
    assert!(
        manifest_requests.iter().any(|s| s.authorization == bearer),
        "{manifest_requests:?}"
    );
    let blob_requests = liar.seen_for("/blobs/");
    assert!(
        blob_requests.iter().any(|s| s.authorization == bearer),
        "{blob_requests:?}"
    );
    let stored_blob = storage.seen_for(&stage.pushed.config_digest);
    assert_eq!(stored_blob.len(), 1, "{:?}", storage.seen());
    assert_eq!(stored_blob[0].authorization, None, "the token went to another host");
}

#[test]
fn wrong_config_bytes_behind_a_blob_redirect_exit_4_naming_both_digests() {
    forged_config_exits_4_naming_both_digests(true);
}

#[test]
fn a_manifest_redirected_to_a_plain_http_host_not_named_insecure_is_refused() {
    let stage = Stage::new();
    let elsewhere = stage.redirected(Route::Manifest, 307, None);

    let o = stage.verify(&stage.tag(), &[]);
    assert_fetch_failure(
        &o,
        &[
            &stage.liar.host(),
            "redirected",
            &elsewhere.url(),
            "--insecure-registry",
        ],
    );
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
}

#[test]
fn a_manifest_redirected_to_another_host_named_insecure_is_followed() {
    let stage = Stage::new();
    let elsewhere = stage.redirected(Route::Manifest, 302, None);

    let insecure = [stage.liar.host(), elsewhere.host()];
    let o = verify(&stage.tag(), &[&insecure[0], &insecure[1]], &[], &stage.scratch);
    assert_verified(&o, &stage.pushed.manifest_digest);
    assert_eq!(elsewhere.seen_for("/manifests/").len(), 1, "{:?}", elsewhere.seen());
}

#[test]
fn a_manifest_redirect_loop_exits_4() {
    let stage = Stage::new();
    let own = stage.liar.url();
    stage
        .liar
        .lie(Route::Manifest, None, Lie::Redirect { status: 307, to: own });

    let o = stage.verify(&stage.tag(), &[]);
    assert_fetch_failure(&o, &[&stage.liar.host(), "redirect"]);
}

// ---------------------------------------------------------------------------
// Huge and endless bodies: capped, naming what was too big

#[test]
fn a_50_mb_manifest_with_its_content_length_is_refused_naming_the_manifest() {
    capped(Route::Manifest, huge(DECLARED), &[]);
}

#[test]
fn a_50_mb_chunked_manifest_is_cut_off_at_the_cap() {
    capped(Route::Manifest, huge(CHUNKED), &[]);
}

#[test]
fn an_endless_manifest_is_cut_off_at_the_cap_not_at_the_timeout() {
    let err = capped(Route::Manifest, Lie::Endless, &["--registry-timeout", "60"]);
    assert!(!err.contains("did not finish"), "{err}");
}

#[test]
fn an_endless_manifest_under_a_digest_reference_is_cut_off_at_the_cap() {
    let stage = Stage::lying(Route::Manifest, Lie::Endless);

    let o = stage.verify(&stage.by_digest(), &["--registry-timeout", "60"]);
    assert_fetch_failure(&o, &[&stage.pushed.manifest_digest, "larger than", CAP]);
}

#[test]
fn a_50_mb_config_blob_behind_a_small_descriptor_is_refused_naming_the_config() {
    capped(Route::Blob, huge(DECLARED), &[]);
}

#[test]
fn an_endless_config_blob_is_cut_off_at_the_cap_not_at_the_timeout() {
    let err = capped(Route::Blob, Lie::Endless, &["--registry-timeout", "60"]);
    assert!(!err.contains("did not finish"), "{err}");
}

// ---------------------------------------------------------------------------
// Bytes that do not match their digest
// (tampered storage is in tests/registry.rs; these are lies in transit)

/// The other commit's image is pushed, and the liar serves its manifest
/// for the good image's digest (`by_digest`) or tag, the
/// `Docker-Content-Digest` header rewritten to vouch for the forged bytes
/// (`digest_header`) or the registry's kept. Exit 4 naming both digests.
fn swapped_manifest_exits_4_naming_both_digests(by_digest: bool, digest_header: bool) {
    let stage = Stage::new();
    let other = stage
        .reg
        .push_image(REPO, &staging(OTHER_SHA), &good_labels(OTHER_SHA), Format::Oci);
    let forged = stored(&stage.reg, &other.manifest_digest);
    let (reference, served_for) = if by_digest {
        (stage.by_digest(), stage.pushed.manifest_digest.clone())
    } else {
        (stage.tag(), staging(SHA))
    };
    stage.liar.lie(
        Route::Manifest,
        Some(&served_for),
        Lie::Replace {
            body: forged,
            digest_header,
        },
    );

    let o = stage.verify(&reference, &[]);
    assert_fetch_failure(
        &o,
        &[
            "does not match its digest",
            &stage.pushed.manifest_digest,
            &other.manifest_digest,
        ],
    );
}

/// The good config rewritten to name the other commit (labels that would
/// pass), served under the real config's digest with a matching digest
/// header: by the liar itself, or `behind_redirect` by the other host the
/// liar redirects blobs to. Exit 4 naming both digests.
fn forged_config_exits_4_naming_both_digests(behind_redirect: bool) {
    let stage = Stage::new();
    let forged = rewritten(&stored(&stage.reg, &stage.pushed.config_digest), SHA, OTHER_SHA);
    let storage = behind_redirect.then(|| stage.redirected(Route::Blob, 307, None));
    storage.as_ref().unwrap_or(&stage.liar).lie(
        Route::Blob,
        Some(&stage.pushed.config_digest),
        Lie::Replace {
            body: forged.clone(),
            digest_header: true,
        },
    );

    let o = stage.verify(&stage.tag(), &[]);
    assert_fetch_failure(&o, &[&stage.named(Route::Blob), &sha256_digest(&forged)]);
}

#[test]
fn a_manifest_by_digest_rewritten_with_a_matching_digest_header_exits_4_naming_both_digests() {
    swapped_manifest_exits_4_naming_both_digests(true, true);
}

#[test]
fn a_manifest_by_tag_whose_bytes_contradict_the_digest_header_exits_4_naming_both_digests() {
    swapped_manifest_exits_4_naming_both_digests(false, false);
}

#[test]
fn a_config_blob_rewritten_in_transit_with_a_matching_digest_header_exits_4_naming_both_digests() {
    forged_config_exits_4_naming_both_digests(false);
}

// ---------------------------------------------------------------------------
// A Content-Length that lies

/// A body 10 bytes longer than the `Content-Length` the liar gives for it
/// on `route`: provgate reads only that much, and the cut bytes do not
/// match the digest. Exit 4 naming what was fetched and the cut's digest.
fn longer_than_its_content_length_exits_4_naming_both_digests(route: Route) {
    let declared_short = Lie::Length {
        delta: -10,
        hold_open: false,
    };
    let (stage, o) = lie_about(route, declared_short, &[]);
    let (digest, named) = match route {
        // The registry's Docker-Content-Digest header is the one to contradict.
        Route::Manifest => (&stage.pushed.manifest_digest, stage.pushed.manifest_digest.clone()),
        Route::Blob => (&stage.pushed.config_digest, stage.named(Route::Blob)),
    };
    let body = stored(&stage.reg, digest);
    let cut = sha256_digest(&body[..body.len() - 10]);
    assert_fetch_failure(&o, &[&named, &cut]);
}

#[test]
fn a_manifest_shorter_than_its_content_length_then_closed_exits_4() {
    let declared_long = Lie::Length {
        delta: 100,
        hold_open: false,
    };
    let (stage, o) = lie_about(Route::Manifest, declared_long, &[]);
    assert_fetch_failure(&o, &[&stage.liar.host(), &stage.named(Route::Manifest)]);
}

#[test]
fn a_config_blob_shorter_than_its_content_length_on_a_held_connection_hits_the_total_timeout() {
    let held = Lie::Length {
        delta: 100,
        hold_open: true,
    };
    timed_out(Route::Blob, held);
}

#[test]
fn a_config_blob_longer_than_its_content_length_is_cut_there_and_exits_4_naming_both_digests() {
    longer_than_its_content_length_exits_4_naming_both_digests(Route::Blob);
}

#[test]
fn a_manifest_by_tag_longer_than_its_content_length_is_cut_there_and_exits_4_naming_both_digests() {
    longer_than_its_content_length_exits_4_naming_both_digests(Route::Manifest);
}

// ---------------------------------------------------------------------------
// Token services: answers read under a cap, never shown; identity tokens
// exchanged the OAuth2 way

/// The cap on a token answer, as errors name it.
const TOKEN_CAP: &str = "65536";
/// "256 MiB": what a token service once made provgate read whole.
const HUGE_TOKEN: u64 = 256 << 20;

/// A stage whose liar is a token registry whose realm is another liar
/// (on 127.0.0.1, another port) answering `/token` with `answer`, and the
/// token the registry wants. The token service is returned.
fn token_stage(token: &str, answer: TokenAnswer) -> (Stage, Liar) {
    let stage = Stage::new();
    let tokens = Liar::standalone("127.0.0.1");
    tokens.tokens(answer);
    stage.liar.require_token_from(token, &tokens.realm());
    (stage, tokens)
}

/// A token service that answers with far more than any token: exit 4
/// naming the token service and the cap, well before the time-out.
#[track_caller]
fn token_answer_is_capped(answer: TokenAnswer) {
    let (stage, tokens) = token_stage("t0k3n", answer);
    let o = stage.verify(&stage.tag(), &["--registry-timeout", "60"]);
    let err = assert_fetch_failure(&o, &["token service", &tokens.host(), "larger than", TOKEN_CAP]);
    assert!(!err.contains("did not finish"), "{err}");
    assert_eq!(tokens.seen_for("/token").len(), 1, "{:?}", tokens.seen());
    assert!(stage.liar.seen_for("/blobs/").is_empty(), "{:?}", stage.liar.seen());
}

#[test]
fn a_256_mib_token_answer_with_its_content_length_is_refused_naming_the_token_service_and_the_cap() {
    token_answer_is_capped(TokenAnswer::Huge {
        len: HUGE_TOKEN,
        declared: true,
    });
}

#[test]
fn a_256_mib_chunked_token_answer_is_cut_off_at_the_cap() {
    token_answer_is_capped(TokenAnswer::Huge {
        len: HUGE_TOKEN,
        declared: false,
    });
}

#[test]
fn an_endless_token_answer_is_cut_off_at_the_cap_not_at_the_timeout() {
    token_answer_is_capped(TokenAnswer::Endless);
}

#[test]
fn a_token_service_error_names_its_host_and_status_but_never_shows_its_body() {
    let body = b"INTERNAL-ADMIN-PAGE secret=hunter2\n::error::FORGED".to_vec();
    let (stage, tokens) = token_stage("t0k3n", TokenAnswer::Fail { status: 500, body });
    let o = stage.verify(&stage.tag(), &[]);
    let err = assert_fetch_failure(&o, &["token service", &tokens.host(), "HTTP 500"]);
    for shown in ["INTERNAL-ADMIN-PAGE", "hunter2", "FORGED"] {
        assert!(!err.contains(shown), "the token service's body was shown: {err}");
    }
}

#[test]
fn an_identity_token_is_exchanged_at_the_realm_for_an_access_token_by_oauth2_post() {
    const REFRESH: &str = "refresh-tok-5e1f0a";
    const ACCESS: &str = "access-tok-77c2b9";
    let (stage, tokens) = token_stage(
        ACCESS,
        TokenAnswer::Exchange {
            refresh_token: REFRESH.into(),
            access_token: ACCESS.into(),
        },
    );
    let config = serde_json::json!({"auths": {stage.liar.host(): {"identitytoken": REFRESH}}});
    std::fs::write(stage.scratch.docker_config().join("config.json"), config.to_string()).unwrap();

    let o = stage.verify(&stage.tag(), &[]);
    assert_verified(&o, &stage.pushed.manifest_digest);
    // The token service got the spec's refresh-token form, by POST.
    let exchanges = tokens.seen_for("/token");
    assert_eq!(exchanges.len(), 1, "{:?}", tokens.seen());
    let exchange = &exchanges[0];
    assert_eq!(exchange.method, "POST", "{exchange:?}");
    let form = form_pairs(exchange.body.as_bytes());
    let field = |k: &str| form.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!(field("grant_type"), Some("refresh_token"), "{form:?}");
    assert_eq!(field("refresh_token"), Some(REFRESH), "{form:?}");
    assert_eq!(field("client_id"), Some("provgate"), "{form:?}");
    assert_eq!(field("service"), Some("liar"), "{form:?}");
    assert_eq!(
        field("scope"),
        Some(format!("repository:{REPO}:pull").as_str()),
        "{form:?}"
    );
    // The registry got the access token, and nobody the refresh token as a bearer.
    let bearer = Some(format!("Bearer {ACCESS}"));
    let manifests = stage.liar.seen_for("/manifests/");
    assert!(manifests.iter().any(|s| s.authorization == bearer), "{manifests:?}");
    let everywhere = stage.liar.seen().into_iter().chain(tokens.seen());
    for seen in everywhere {
        assert!(
            !seen.authorization.as_deref().unwrap_or_default().contains(REFRESH),
            "the refresh token was sent as a credential: {seen:?}"
        );
    }
    assert_no_secret(&o, &[REFRESH, ACCESS]);
}

// ---------------------------------------------------------------------------
// Error answers: a bounded prefix, quoted, scrubbed of credentials

/// "100 MiB": an error body provgate once read and printed whole.
const HUGE_ERROR: u64 = 100 << 20;
/// Hostile bytes for an error message: a forged workflow command on a line
/// of its own, a terminal escape and a right-to-left override.
const HOSTILE: &str = "oops\n::error title=x::FORGED\u{1b}[2J\u{202e}dlrow";

/// No line of `err` a workflow runner would take for a command, and no
/// raw control (other than the line ends), escape or bidi character.
#[track_caller]
fn assert_clean(err: &str) {
    for line in err.lines() {
        assert!(
            !line.trim_start().starts_with("::"),
            "a forged workflow command: {line:?}\n{err}"
        );
    }
    let bad = |c: char| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    assert!(!err.chars().any(bad), "a raw control or bidi character: {err:?}");
}

/// Neither `secrets` nor their base64 on stdout or stderr.
#[track_caller]
fn assert_no_secret(o: &Output, secrets: &[&str]) {
    for secret in secrets {
        let b64 = base64(secret.as_bytes());
        for (name, text) in [("stdout", stdout(o)), ("stderr", stderr(o))] {
            assert!(
                !text.contains(secret) && !text.contains(&b64),
                "a credential on {name}: {text}"
            );
        }
    }
}

#[test]
fn a_100_mib_blob_error_body_is_shown_as_a_short_prefix_only() {
    let (stage, o) = lie_about(
        Route::Blob,
        Lie::HugeFail {
            status: 500,
            len: HUGE_ERROR,
        },
        &["--registry-timeout", "60"],
    );
    let err = assert_fetch_failure(&o, &[&stage.named(Route::Blob), "HTTP 500"]);
    assert!(err.len() < 4096, "{} bytes of stderr:\n{err}", err.len());
    assert!(!err.contains("did not finish"), "{err}");
    // Only the first 4 KiB were read: that is the size the excerpt names.
    let read = format!("({} bytes)", provgate::input::registry::MAX_ERROR_BYTES);
    assert!(err.contains(&read), "{read} missing from stderr:\n{err}");
}

#[test]
fn a_hostile_error_envelope_on_a_manifest_forges_no_workflow_command_or_control_character() {
    let body = envelope("MANIFEST_UNKNOWN", HOSTILE).into_bytes();
    let (stage, o) = lie_about(Route::Manifest, Lie::Fail { status: 404, body }, &[]);
    let err = assert_fetch_failure(&o, &[&stage.named(Route::Manifest), "FORGED"]);
    assert_clean(&err);
}

#[test]
fn a_hostile_5xx_body_on_a_blob_forges_no_workflow_command_or_control_character() {
    let body = HOSTILE.as_bytes().to_vec();
    let (stage, o) = lie_about(Route::Blob, Lie::Fail { status: 503, body }, &[]);
    let err = assert_fetch_failure(&o, &[&stage.named(Route::Blob), "HTTP 503", "FORGED"]);
    assert_clean(&err);
}

#[test]
fn a_registry_echoing_the_basic_credentials_in_its_error_shows_neither_password_nor_base64() {
    let stage = Stage::on(Registry::start_with_basic_auth(USER, PASSWORD));
    write_docker_config(&stage.scratch.docker_config(), &stage.liar.host(), USER, PASSWORD);
    stage.liar.lie(Route::Manifest, None, Lie::Echo { status: 403 });

    let o = stage.verify(&stage.tag(), &[]);
    // The echo is shown (so it was there to leak), without the credential.
    let err = assert_fetch_failure(&o, &[&stage.liar.host(), "you sent"]);
    let basic = base64(format!("{USER}:{PASSWORD}").as_bytes());
    assert!(
        stage
            .liar
            .seen_for("/manifests/")
            .iter()
            .any(|s| s.authorization == Some(format!("Basic {basic}"))),
        "the credentials were never sent: {err}"
    );
    assert_no_secret(&o, &[PASSWORD, &format!("{USER}:{PASSWORD}")]);
    assert!(!err.contains(&basic[..12]), "{err}");
}

#[test]
fn a_token_service_echoing_the_basic_credentials_shows_neither_password_nor_base64() {
    let (stage, tokens) = token_stage("t0k3n", TokenAnswer::Echo { status: 401 });
    write_docker_config(&stage.scratch.docker_config(), &stage.liar.host(), USER, PASSWORD);

    let o = stage.verify(&stage.tag(), &[]);
    assert_fetch_failure(&o, &["token service", &tokens.host(), "401"]);
    let basic = base64(format!("{USER}:{PASSWORD}").as_bytes());
    let asked = tokens.seen_for("/token");
    assert!(
        asked.iter().any(|s| s.authorization == Some(format!("Basic {basic}"))),
        "the token service never got the credentials: {asked:?}"
    );
    assert_no_secret(&o, &[PASSWORD, &format!("{USER}:{PASSWORD}")]);
}
