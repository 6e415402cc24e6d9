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
//! - wrong bytes and lying `Content-Length`s exit 4.
//!
//! Every run is watched: a provgate that has not finished after
//! [`WATCHDOG`] is killed and the test fails ("did not finish"), instead of
//! hanging the suite. That is the only clock these tests look at.

#[allow(dead_code)]

use std::io::Read;
use std::process::Output;
use std::time::{Duration, Instant};

use provgate_testkit::registry_liar::{Liar, Lie, Route};
use serde_json::Value;
use provgate_testkit::registry::{Format, Pushed, Registry, Scratch, base64, sha256_digest, write_docker_config};
use provgate_testkit::*;

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

// ---------------------------------------------------------------------------
// The liar itself

#[test]
fn the_liar_without_lies_is_a_faithful_proxy() {
    let reg = Registry::start();
    let pushed = push_good(&reg);
    let liar = Liar::proxy(&reg.host());
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(&tag_ref(&liar.host()), &[&liar.host()], &[], &scratch);
    assert_verified(&o, &pushed.manifest_digest);
    assert_eq!(liar.seen_for("/manifests/").len(), 1, "{:?}", liar.seen());
    assert_eq!(liar.seen_for("/blobs/").len(), 1, "{:?}", liar.seen());
}

#[test]
fn the_other_host_127_0_0_2_is_reachable() {
    let reg = Registry::start();
    let pushed = push_good(&reg);
    let elsewhere = Liar::start("127.0.0.2", Some(&reg.host()), None);
    assert!(elsewhere.host().starts_with("127.0.0.2:"), "{}", elsewhere.host());
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(&tag_ref(&elsewhere.host()), &[&elsewhere.host()], &[], &scratch);
    assert_verified(&o, &pushed.manifest_digest);
}

// ---------------------------------------------------------------------------
// Slow drips: the total time-out, not a per-read one

#[test]
fn a_manifest_dripping_one_byte_a_second_hits_the_total_timeout() {
    let reg = Registry::start();
    push_good(&reg);
    let liar = Liar::proxy(&reg.host());
    liar.lie(Route::Manifest, None, Lie::Drip { chunked: true });
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    // Every read gets a byte within a second: only a total bound ends this.
    let o = verify(
        &tag_ref(&liar.host()),
        &[&liar.host()],
        &["--registry-timeout", "2"],
        &scratch,
    );
    let err = assert_fetch_failure(&o, &[&liar.host(), "did not finish answering within 2 s"]);
    assert!(!err.contains("larger than"), "{err}");
}

#[test]
fn a_config_blob_dripping_one_byte_a_second_under_its_content_length_hits_the_total_timeout() {
    let reg = Registry::start();
    push_good(&reg);
    let liar = Liar::proxy(&reg.host());
    liar.lie(Route::Blob, None, Lie::Drip { chunked: false });
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(
        &tag_ref(&liar.host()),
        &[&liar.host()],
        &["--registry-timeout", "2"],
        &scratch,
    );
    assert_fetch_failure(&o, &[&liar.host(), "did not finish answering within 2 s"]);
    // It got past the manifest: the drip it timed out on was the config's.
    assert_eq!(liar.seen_for("/blobs/").len(), 1, "{:?}", liar.seen());
}

// ---------------------------------------------------------------------------
// Redirects to another host

#[test]
fn a_config_blob_redirected_to_another_host_is_followed_and_judged() {
    let reg = Registry::start();
    let pushed = push_good(&reg);
    let storage = Liar::start("127.0.0.2", Some(&reg.host()), None);
    let liar = Liar::proxy(&reg.host());
    liar.lie(
        Route::Blob,
        None,
        Lie::Redirect {
            status: 307,
            to: storage.url(),
        },
    );
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    // Only the registry is named insecure: the storage host is reached
    // over plain HTTP anyway, because its bytes are checked by digest.
    let o = verify(&tag_ref(&liar.host()), &[&liar.host()], &[], &scratch);
    assert_verified(&o, &pushed.manifest_digest);
    let fetched = storage.seen_for(&pushed.config_digest);
    assert_eq!(fetched.len(), 1, "{:?}", storage.seen());
    assert!(storage.seen_for("/manifests/").is_empty(), "{:?}", storage.seen());
}

#[test]
fn a_blob_redirect_to_another_host_does_not_carry_the_registry_credentials() {
    let reg = Registry::start_with_basic_auth(USER, PASSWORD);
    let pushed = push_good(&reg);
    // The storage host needs nothing from the client (like a presigned URL).
    let basic = format!("Basic {}", base64(format!("{USER}:{PASSWORD}").as_bytes()));
    let storage = Liar::start("127.0.0.2", Some(&reg.host()), Some(&basic));
    let liar = Liar::proxy(&reg.host());
    liar.lie(
        Route::Blob,
        None,
        Lie::Redirect {
            status: 302,
            to: storage.url(),
        },
    );
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);
    write_docker_config(&scratch.docker_config(), &liar.host(), USER, PASSWORD);

    let o = verify(&tag_ref(&liar.host()), &[&liar.host()], &[], &scratch);
    assert_verified(&o, &pushed.manifest_digest);
    // The registry got the credentials; the other host never did.
    let manifest_requests = liar.seen_for("/manifests/");
    assert!(
        manifest_requests.iter().any(|s| s.authorization.is_some()),
        "{manifest_requests:?}"
    );
    let blob_requests = storage.seen_for(&pushed.config_digest);
    assert_eq!(blob_requests.len(), 1, "{:?}", storage.seen());
    assert!(
        blob_requests.iter().all(|s| s.authorization.is_none()),
        "credentials sent to another host: {blob_requests:?}"
    );
}

#[test]
fn a_token_registry_is_asked_for_a_token_and_only_the_registry_sees_it() {
    let reg = Registry::start();
    let pushed = push_good(&reg);
    let storage = Liar::start("127.0.0.2", Some(&reg.host()), None);
    let liar = Liar::proxy(&reg.host());
    liar.require_token("t0k3n");
    liar.lie(
        Route::Blob,
        None,
        Lie::Redirect {
            status: 307,
            to: storage.url(),
        },
    );
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(&tag_ref(&liar.host()), &[&liar.host()], &[], &scratch);
    assert_verified(&o, &pushed.manifest_digest);
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
    let stored_blob = storage.seen_for(&pushed.config_digest);
    assert_eq!(stored_blob.len(), 1, "{:?}", storage.seen());
    assert_eq!(stored_blob[0].authorization, None, "the token went to another host");
}

#[test]
fn wrong_config_bytes_behind_a_blob_redirect_exit_4_naming_both_digests() {
    let reg = Registry::start();
    let pushed = push_good(&reg);
    // The other host serves a config for another commit: labels that would
    // pass, under the digest of the real config.
    let forged = rewritten(&stored(&reg, &pushed.config_digest), SHA, OTHER_SHA);
    let storage = Liar::start("127.0.0.2", Some(&reg.host()), None);
    storage.lie(
        Route::Blob,
        Some(&pushed.config_digest),
        Lie::Replace {
            body: forged.clone(),
            digest_header: true,
        },
    );
    let liar = Liar::proxy(&reg.host());
    liar.lie(
        Route::Blob,
        None,
        Lie::Redirect {
            status: 307,
            to: storage.url(),
        },
    );
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(&tag_ref(&liar.host()), &[&liar.host()], &[], &scratch);
    assert_fetch_failure(
        &o,
        &[
            &format!("config blob {}", pushed.config_digest),
            &sha256_digest(&forged),
        ],
    );
}

#[test]
fn a_manifest_redirected_to_a_plain_http_host_not_named_insecure_is_refused() {
    let reg = Registry::start();
    push_good(&reg);
    let elsewhere = Liar::start("127.0.0.2", Some(&reg.host()), None);
    let liar = Liar::proxy(&reg.host());
    liar.lie(
        Route::Manifest,
        None,
        Lie::Redirect {
            status: 307,
            to: elsewhere.url(),
        },
    );
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(&tag_ref(&liar.host()), &[&liar.host()], &[], &scratch);
    assert_fetch_failure(
        &o,
        &[&liar.host(), "redirected", &elsewhere.url(), "--insecure-registry"],
    );
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
}

#[test]
fn a_manifest_redirected_to_another_host_named_insecure_is_followed() {
    let reg = Registry::start();
    let pushed = push_good(&reg);
    let elsewhere = Liar::start("127.0.0.2", Some(&reg.host()), None);
    let liar = Liar::proxy(&reg.host());
    liar.lie(
        Route::Manifest,
        None,
        Lie::Redirect {
            status: 302,
            to: elsewhere.url(),
        },
    );
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(
        &tag_ref(&liar.host()),
        &[&liar.host(), &elsewhere.host()],
        &[],
        &scratch,
    );
    assert_verified(&o, &pushed.manifest_digest);
    assert_eq!(elsewhere.seen_for("/manifests/").len(), 1, "{:?}", elsewhere.seen());
}

#[test]
fn a_manifest_redirect_loop_exits_4() {
    let reg = Registry::start();
    push_good(&reg);
    let liar = Liar::proxy(&reg.host());
    let own = liar.url();
    liar.lie(Route::Manifest, None, Lie::Redirect { status: 307, to: own });
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(&tag_ref(&liar.host()), &[&liar.host()], &[], &scratch);
    assert_fetch_failure(&o, &[&liar.host(), "redirect"]);
}

// ---------------------------------------------------------------------------
// Huge and endless bodies: capped, naming what was too big

#[test]
fn a_50_mb_manifest_with_its_content_length_is_refused_naming_the_manifest() {
    let reg = Registry::start();
    push_good(&reg);
    let liar = Liar::proxy(&reg.host());
    liar.lie(
        Route::Manifest,
        None,
        Lie::Huge {
            len: HUGE,
            declared: true,
        },
    );
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(&tag_ref(&liar.host()), &[&liar.host()], &[], &scratch);
    assert_fetch_failure(
        &o,
        &[&format!("manifest {}", tag_ref(&liar.host())), "larger than", CAP],
    );
}

#[test]
fn a_50_mb_chunked_manifest_is_cut_off_at_the_cap() {
    let reg = Registry::start();
    push_good(&reg);
    let liar = Liar::proxy(&reg.host());
    liar.lie(
        Route::Manifest,
        None,
        Lie::Huge {
            len: HUGE,
            declared: false,
        },
    );
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(&tag_ref(&liar.host()), &[&liar.host()], &[], &scratch);
    assert_fetch_failure(
        &o,
        &[&format!("manifest {}", tag_ref(&liar.host())), "larger than", CAP],
    );
}

#[test]
fn an_endless_manifest_is_cut_off_at_the_cap_not_at_the_timeout() {
    let reg = Registry::start();
    push_good(&reg);
    let liar = Liar::proxy(&reg.host());
    liar.lie(Route::Manifest, None, Lie::Endless);
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(
        &tag_ref(&liar.host()),
        &[&liar.host()],
        &["--registry-timeout", "60"],
        &scratch,
    );
    let err = assert_fetch_failure(
        &o,
        &[&format!("manifest {}", tag_ref(&liar.host())), "larger than", CAP],
    );
    assert!(!err.contains("did not finish"), "{err}");
}

#[test]
fn an_endless_manifest_under_a_digest_reference_is_cut_off_at_the_cap() {
    let reg = Registry::start();
    let pushed = push_good(&reg);
    let liar = Liar::proxy(&reg.host());
    liar.lie(Route::Manifest, None, Lie::Endless);
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);
    let reference = format!("{}/{REPO}@{}", liar.host(), pushed.manifest_digest);

    let o = verify(&reference, &[&liar.host()], &["--registry-timeout", "60"], &scratch);
    assert_fetch_failure(&o, &[&pushed.manifest_digest, "larger than", CAP]);
}

#[test]
fn a_50_mb_config_blob_behind_a_small_descriptor_is_refused_naming_the_config() {
    let reg = Registry::start();
    let pushed = push_good(&reg);
    let liar = Liar::proxy(&reg.host());
    liar.lie(
        Route::Blob,
        None,
        Lie::Huge {
            len: HUGE,
            declared: true,
        },
    );
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(&tag_ref(&liar.host()), &[&liar.host()], &[], &scratch);
    assert_fetch_failure(
        &o,
        &[&format!("config blob {}", pushed.config_digest), "larger than", CAP],
    );
}

#[test]
fn an_endless_config_blob_is_cut_off_at_the_cap_not_at_the_timeout() {
    let reg = Registry::start();
    let pushed = push_good(&reg);
    let liar = Liar::proxy(&reg.host());
    liar.lie(Route::Blob, None, Lie::Endless);
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(
        &tag_ref(&liar.host()),
        &[&liar.host()],
        &["--registry-timeout", "60"],
        &scratch,
    );
    let err = assert_fetch_failure(
        &o,
        &[&format!("config blob {}", pushed.config_digest), "larger than", CAP],
    );
    assert!(!err.contains("did not finish"), "{err}");
}

// ---------------------------------------------------------------------------
// Bytes that do not match their digest
// (tampered storage is in tests/registry.rs; these are lies in transit)

#[test]
fn a_manifest_by_digest_rewritten_with_a_matching_digest_header_exits_4_naming_both_digests() {
    let reg = Registry::start();
    let pushed = push_good(&reg);
    // The other commit's image, served for the first image's digest, with
    // a Docker-Content-Digest header that vouches for the forged bytes.
    let other = reg.push_image(REPO, &staging(OTHER_SHA), &good_labels(OTHER_SHA), Format::Oci);
    let forged = stored(&reg, &other.manifest_digest);
    let liar = Liar::proxy(&reg.host());
    liar.lie(
        Route::Manifest,
        Some(&pushed.manifest_digest),
        Lie::Replace {
            body: forged,
            digest_header: true,
        },
    );
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);
    let reference = format!("{}/{REPO}@{}", liar.host(), pushed.manifest_digest);

    let o = verify(&reference, &[&liar.host()], &[], &scratch);
    assert_fetch_failure(
        &o,
        &[
            "does not match its digest",
            &pushed.manifest_digest,
            &other.manifest_digest,
        ],
    );
}

#[test]
fn a_manifest_by_tag_whose_bytes_contradict_the_digest_header_exits_4_naming_both_digests() {
    let reg = Registry::start();
    let pushed = push_good(&reg);
    let other = reg.push_image(REPO, &staging(OTHER_SHA), &good_labels(OTHER_SHA), Format::Oci);
    let forged = stored(&reg, &other.manifest_digest);
    let liar = Liar::proxy(&reg.host());
    // Keeps the registry's header (the real digest), swaps the bytes.
    liar.lie(
        Route::Manifest,
        Some(&staging(SHA)),
        Lie::Replace {
            body: forged,
            digest_header: false,
        },
    );
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(&tag_ref(&liar.host()), &[&liar.host()], &[], &scratch);
    assert_fetch_failure(
        &o,
        &[
            "does not match its digest",
            &pushed.manifest_digest,
            &other.manifest_digest,
        ],
    );
}

#[test]
fn a_config_blob_rewritten_in_transit_with_a_matching_digest_header_exits_4_naming_both_digests() {
    let reg = Registry::start();
    let pushed = push_good(&reg);
    let forged = rewritten(&stored(&reg, &pushed.config_digest), SHA, OTHER_SHA);
    let liar = Liar::proxy(&reg.host());
    liar.lie(
        Route::Blob,
        Some(&pushed.config_digest),
        Lie::Replace {
            body: forged.clone(),
            digest_header: true,
        },
    );
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(&tag_ref(&liar.host()), &[&liar.host()], &[], &scratch);
    assert_fetch_failure(
        &o,
        &[
            &format!("config blob {}", pushed.config_digest),
            &sha256_digest(&forged),
        ],
    );
}

// ---------------------------------------------------------------------------
// A Content-Length that lies

#[test]
fn a_manifest_shorter_than_its_content_length_then_closed_exits_4() {
    let reg = Registry::start();
    push_good(&reg);
    let liar = Liar::proxy(&reg.host());
    liar.lie(
        Route::Manifest,
        None,
        Lie::Length {
            delta: 100,
            hold_open: false,
        },
    );
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(&tag_ref(&liar.host()), &[&liar.host()], &[], &scratch);
    assert_fetch_failure(&o, &[&liar.host(), &format!("manifest {}", tag_ref(&liar.host()))]);
}

#[test]
fn a_config_blob_shorter_than_its_content_length_on_a_held_connection_hits_the_total_timeout() {
    let reg = Registry::start();
    push_good(&reg);
    let liar = Liar::proxy(&reg.host());
    liar.lie(
        Route::Blob,
        None,
        Lie::Length {
            delta: 100,
            hold_open: true,
        },
    );
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(
        &tag_ref(&liar.host()),
        &[&liar.host()],
        &["--registry-timeout", "2"],
        &scratch,
    );
    assert_fetch_failure(&o, &[&liar.host(), "did not finish answering within 2 s"]);
}

#[test]
fn a_config_blob_longer_than_its_content_length_is_cut_there_and_exits_4_naming_both_digests() {
    let reg = Registry::start();
    let pushed = push_good(&reg);
    let config = stored(&reg, &pushed.config_digest);
    let liar = Liar::proxy(&reg.host());
    liar.lie(
        Route::Blob,
        None,
        Lie::Length {
            delta: -10,
            hold_open: false,
        },
    );
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(&tag_ref(&liar.host()), &[&liar.host()], &[], &scratch);
    let cut = sha256_digest(&config[..config.len() - 10]);
    assert_fetch_failure(&o, &[&format!("config blob {}", pushed.config_digest), &cut]);
}

#[test]
fn a_manifest_by_tag_longer_than_its_content_length_is_cut_there_and_exits_4_naming_both_digests() {
    let reg = Registry::start();
    let pushed = push_good(&reg);
    let manifest = stored(&reg, &pushed.manifest_digest);
    let liar = Liar::proxy(&reg.host());
    liar.lie(
        Route::Manifest,
        None,
        Lie::Length {
            delta: -10,
            hold_open: false,
        },
    );
    let scratch = Scratch::new(&[SHA, OTHER_SHA]);

    let o = verify(&tag_ref(&liar.host()), &[&liar.host()], &[], &scratch);
    // The registry's Docker-Content-Digest header is the one to contradict.
    let cut = sha256_digest(&manifest[..manifest.len() - 10]);
    assert_fetch_failure(&o, &[&pushed.manifest_digest, &cut]);
}
