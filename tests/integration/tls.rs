//! HTTPS for real: Debian's `docker-registry` with `http.tls`, and the
//! Gitea and control-plane stand-ins behind a TLS front, all with
//! certificates of the tests' own CA. Trusted with `--ca-file` (or
//! `SSL_CERT_FILE`), refused without, and each certificate failure named
//! with its host. Every case runs the `provgate` binary: the trust store is
//! the process's.

use std::net::SocketAddr;

use provgate_testkit::cp::{ControlPlane, PINS_PATH};
use provgate_testkit::gitea::GiteaStandIn;
use provgate_testkit::registry::{Format, Registry};
use provgate_testkit::tls::{Pki, ServerCert, TlsFront};
use provgate_testkit::{CREATED, REVISION, RUN_ID, SOURCE, code, policy_for, provgate_env, stderr, stdout};

const SHA: &str = "3f786850e387550fdab836ed7e6dc881de23001b";

fn addr_of(base: &str) -> SocketAddr {
    base.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("a stand-in on IP:PORT")
}

/// A TLS registry holding one image whose source is an HTTPS Gitea
/// stand-in that knows its commit, and a policy trusting that Gitea.
struct Stage {
    pki: Pki,
    registry: Registry,
    gitea: GiteaStandIn,
    _front: TlsFront,
    _dir: tempfile::TempDir,
    policy: String,
    reference: String,
}

/// The stage with the registry `start` makes (a TLS one with a
/// certificate of the stage's CA, or a plain one).
fn stage_with(registry_cert: impl FnOnce(&Pki) -> ServerCert) -> Stage {
    stage_on(|pki| Registry::start_tls(&registry_cert(pki)))
}

fn stage_on(start: impl FnOnce(&Pki) -> Registry) -> Stage {
    let pki = Pki::new();
    let gitea = GiteaStandIn::start();
    gitea.add_commit("molecule-ai", "app", SHA);
    let front = TlsFront::start(addr_of(&gitea.base_url()), &pki.server(&["127.0.0.1"]));
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = policy_for(&front.base(), dir.path());
    let registry = start(&pki);
    let source = format!("{}/molecule-ai/app", front.base());
    let tag = format!("staging-{SHA}");
    let labels = [
        (SOURCE, source.as_str()),
        (REVISION, SHA),
        (CREATED, "2026-11-01T10:00:00Z"),
        (RUN_ID, "4242"),
    ];
    registry.push_image("molecule-ai/app", &tag, &labels, Format::Oci);
    let reference = format!("{}/molecule-ai/app:{tag}", registry.host());
    Stage {
        pki,
        registry,
        gitea,
        _front: front,
        _dir: dir,
        policy,
        reference,
    }
}

fn stage() -> Stage {
    stage_with(|pki| pki.server(&["127.0.0.1", "localhost"]))
}

impl Stage {
    fn verify(&self, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut args = vec!["verify", &self.reference, "--policy", &self.policy, "--format", "json"];
        args.extend_from_slice(extra);
        provgate_env(&args, None, env)
    }

    fn ca(&self) -> String {
        self.pki.ca_file().to_str().expect("utf-8").to_string()
    }
}

#[track_caller]
fn assert_verified(o: &std::process::Output) {
    let (out, err) = (stdout(o), stderr(o));
    assert_eq!(code(o), 0, "{out}\n{err}");
    let verdict: serde_json::Value = serde_json::from_str(&out).expect("verdict JSON");
    assert_eq!(verdict["status"], "verified", "{out}");
}

#[track_caller]
fn assert_fetch_failed(o: &std::process::Output, words: &[&str]) -> String {
    let err = stderr(o);
    assert_eq!(code(o), 4, "{err}");
    for word in words {
        assert!(err.contains(word), "{word:?} missing from {err}");
    }
    err
}

#[test]
fn the_tls_registry_and_the_tls_gitea_are_trusted_with_ca_file() {
    let stage = stage();
    assert_verified(&stage.verify(&["--ca-file", &stage.ca()], &[]));
}

#[test]
fn ssl_cert_file_trusts_the_ca_as_openssl_based_tools_do() {
    let stage = stage();
    assert_verified(&stage.verify(&[], &[("SSL_CERT_FILE", &stage.ca())]));
}

#[test]
fn without_the_ca_the_registry_is_refused_naming_the_host_and_the_fix() {
    let stage = stage();
    assert_fetch_failed(
        &stage.verify(&[], &[]),
        &[
            &stage.registry.host(),
            "issuer this machine does not trust",
            "--ca-file",
        ],
    );
}

/// A registry with the certificate `cert` makes, trusted CA and all, is
/// refused: exit 4, naming the registry and `why`.
#[track_caller]
fn assert_certificate_refused(cert: impl FnOnce(&Pki) -> ServerCert, why: &str) {
    let stage = stage_with(cert);
    assert_fetch_failed(
        &stage.verify(&["--ca-file", &stage.ca()], &[]),
        &[&stage.registry.host(), why],
    );
}

#[test]
fn a_registry_certificate_for_another_name_is_refused_as_such() {
    assert_certificate_refused(|pki| pki.server(&["registry.other.example"]), "not valid for that name");
}

#[test]
fn an_expired_registry_certificate_is_refused_as_such() {
    assert_certificate_refused(|pki| pki.expired(&["127.0.0.1"]), "expired");
}

#[test]
fn plain_http_to_the_tls_registry_gets_a_one_line_hint() {
    let stage = stage();
    let host = stage.registry.host();
    let err = assert_fetch_failed(
        &stage.verify(&["--ca-file", &stage.ca(), "--insecure-registry", &host], &[]),
        &[&host, "speaks HTTPS"],
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn tls_to_a_plain_registry_gets_a_one_line_hint_naming_the_flag() {
    let registry = Registry::start();
    let host = registry.host();
    let o = provgate_env(&["verify", &format!("{host}/molecule-ai/app:1")], None, &[]);
    let err = assert_fetch_failed(&o, &[&host, "plain HTTP", &format!("--insecure-registry {host}")]);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn a_tls_gitea_without_the_ca_is_indeterminate_and_says_why() {
    // The registry speaks plain HTTP; only Gitea is behind TLS.
    let stage = stage_on(|_| Registry::start());
    let host = stage.registry.host();
    let o = stage.verify(&["--insecure-registry", &host], &[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}\n{}", stderr(&o));
    let verdict: serde_json::Value = serde_json::from_str(&out).expect("verdict JSON");
    assert_eq!(verdict["status"], "indeterminate", "{out}");
    assert!(out.contains("issuer this machine does not trust"), "{out}");
    assert!(
        stage.gitea.requests().is_empty(),
        "no request got through the refused handshake"
    );
}

#[test]
fn the_control_planes_pins_over_tls_are_read_with_the_ca_file_and_its_token() {
    const TOKEN: &str = "cp-tls-token-6f2e91";
    let pki = Pki::new();
    let pins = serde_json::json!([{
        "runtime": "python",
        "image": "127.0.0.1:9/app",
        "digest": format!("sha256:{}", "a".repeat(64)),
        "source_sha": SHA,
    }])
    .to_string();
    let cp = ControlPlane::start(TOKEN, pins);
    let front = TlsFront::start(addr_of(&cp.base_url()), &pki.server(&["127.0.0.1"]));
    let url = format!("{}{PINS_PATH}", front.base());
    let args = ["audit", "--pins", &url, "--insecure-registry", "127.0.0.1:9"];
    let env = [("CP_ADMIN_API_TOKEN", TOKEN)];

    let without = provgate_env(&args, None, &env);
    let err = stderr(&without);
    assert_eq!(code(&without), 2, "{err}");
    assert!(
        err.contains("issuer this machine does not trust") && err.contains("127.0.0.1"),
        "{err}"
    );
    assert!(cp.requests().is_empty(), "the handshake was refused before any request");

    let ca = pki.ca_file();
    let mut with: Vec<&str> = args.to_vec();
    with.extend(["--ca-file", ca.to_str().expect("utf-8")]);
    let o = provgate_env(&with, None, &env);
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    let requests = cp.requests();
    assert_eq!(requests.len(), 1, "{:?}", requests.len());
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert!(
        !err.contains(TOKEN) && !stdout(&o).contains(TOKEN),
        "the token is never printed"
    );
}

#[test]
fn a_ca_file_that_holds_no_certificate_is_exit_2_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-ca.pem");
    std::fs::write(&file, "hello\n").expect("write");
    let o = provgate_env(
        &[
            "verify",
            "127.0.0.1:9/app:1",
            "--ca-file",
            file.to_str().expect("utf-8"),
        ],
        None,
        &[],
    );
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{err}");
    assert!(err.contains("--ca-file") && err.contains("not-a-ca.pem"), "{err}");
}

#[test]
fn an_ssl_cert_file_that_is_not_a_regular_bundle_is_exit_2_naming_it() {
    // The trust store reads SSL_CERT_FILE whole: /dev/zero would never end.
    let o = provgate_env(
        &["verify", "127.0.0.1:9/app:1", "--insecure-registry", "127.0.0.1:9"],
        None,
        &[("SSL_CERT_FILE", "/dev/zero")],
    );
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{err}");
    assert!(
        err.contains("SSL_CERT_FILE") && err.contains("/dev/zero") && err.contains("regular file"),
        "{err}"
    );
}
