//! The policy artifact in a REAL registry (docs/reference.md §7, issue
//! 16): `policy push`, `pull` and `digest`, `--policy oci://REF` through
//! the artifact cache (offline once cached by digest), integrity, and
//! cosign signatures with `--policy-key`.
//!
//! Signatures are made here in cosign's documented format (sigstore/cosign
//! `specs/SIGNATURE_SPEC.md`: the `sha256-<hex>.sig` tag, the simple-signing
//! payload, the base64 ASN.1 DER ECDSA P-256 signature in the layer's
//! `dev.cosignproject.cosign/signature` annotation) with ring and a key
//! made for the test: there is no cosign binary here.
//!
//! Each test has an artifact cache of its own (`PROVGATE_CACHE_DIR`), so
//! what one pulled never answers for another.

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use provgate::policy::Artifact;
use provgate::policy::signature::cosign_payload;
use provgate_testkit::registry::{OCI_MANIFEST, Registry, sha256_digest};
use provgate_testkit::*;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::Value;
use tempfile::TempDir;

const REPO: &str = "policies/provgate";
const VERIFIED: &str = "docs/examples/verified.json";
const VERIFIED_RECORD: &str = "docs/examples/verified.record.json";

/// One test's scratch: the artifact file, its own cache, keys.
struct Scratch {
    dir: TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.wasm"), &Artifact::builtin().bytes).unwrap();
        Scratch { dir }
    }

    fn artifact(&self) -> PathBuf {
        self.dir.path().join("policy.wasm")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `provgate ARGS` with this test's own artifact cache.
    fn run(&self, args: &[&str]) -> Output {
        let cache = self.path("cache");
        provgate_command(args, &[("PROVGATE_CACHE_DIR", cache.to_str().unwrap())])
            .output()
            .expect("provgate runs")
    }

    /// `policy push` of the built-in artifact to `REPO:tag`, with a
    /// revision of this test's own (so its manifest is its own); the
    /// pinned reference and the manifest digest.
    fn push(&self, reg: &Registry, tag: &str, revision: &str) -> (String, String) {
        let target = format!("oci://{}/{REPO}:{tag}", reg.host());
        let o = self.run(&[
            "policy",
            "push",
            self.artifact().to_str().unwrap(),
            &target,
            "--insecure-registry",
            &reg.host(),
            "--source",
            "https://git.example.org/platform/policies",
            "--revision",
            revision,
        ]);
        assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
        let out = stdout(&o);
        let mut lines = out.lines();
        let pinned = lines.next().expect("the pinned reference").to_string();
        let digest = pinned
            .rsplit_once('@')
            .map(|(_, d)| d.to_string())
            .expect("oci://…@sha256:…");
        assert_eq!(
            lines.next(),
            Some(format!("digest  {}", Artifact::builtin().digest).as_str()),
            "{out}"
        );
        (pinned, digest)
    }

    /// `verify` of the shipped example with `--format json` and `extra`.
    fn verify(&self, extra: &[&str]) -> Output {
        let mut args = vec![
            "verify",
            "--inspect",
            VERIFIED,
            "--replay",
            VERIFIED_RECORD,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// A fresh P-256 key pair: the signer, and its public key's PEM written
    /// as `name` (SubjectPublicKeyInfo, as `cosign generate-key-pair`
    /// writes `cosign.pub`).
    fn key(&self, name: &str) -> (EcdsaKeyPair, PathBuf) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let signer = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING point }
        let mut der = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
            0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        der.extend_from_slice(signer.public_key().as_ref());
        let b64 = STANDARD.encode(&der);
        let body: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            body.join("\n")
        );
        let path = self.path(name);
        std::fs::write(&path, pem).unwrap();
        (signer, path)
    }
}

/// Signs the manifest `digest` of `REPO` with `signer` and pushes the
/// signature the way cosign stores it.
fn sign(reg: &Registry, signer: &EcdsaKeyPair, digest: &str) {
    let payload = cosign_payload(&format!("{}/{REPO}", reg.host()), digest);
    let signature = signer.sign(&SystemRandom::new(), &payload).unwrap();
    reg.push_cosign_signature(REPO, digest, &payload, &STANDARD.encode(signature.as_ref()));
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

#[track_caller]
fn assert_refused(o: &Output, says: &str) {
    assert_eq!(code(o), 3, "{}\n{}", stdout(o), stderr(o));
    assert!(o.stdout.is_empty(), "no verdict: {}", stdout(o));
    assert!(stderr(o).contains(says), "{}", stderr(o));
}

fn file_digest(path: &Path) -> String {
    sha256_digest(&std::fs::read(path).unwrap())
}

#[test]
fn push_writes_the_wasm_artifact_layout_with_the_file_as_its_layer() {
    let reg = Registry::start();
    let s = Scratch::new();
    let revision = "1111111111111111111111111111111111111111";
    let (pinned, digest) = s.push(&reg, "v1", revision);
    assert_eq!(pinned, format!("oci://{}/{REPO}@{digest}", reg.host()));

    let (status, content_type, body) = reg.get_manifest(REPO, "v1");
    assert!(status.is_success(), "{status}");
    assert_eq!(content_type, OCI_MANIFEST);
    assert_eq!(sha256_digest(&body), digest, "the printed digest is the manifest's");
    let manifest: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(manifest["mediaType"], OCI_MANIFEST);
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.wasm.config.v0+json");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    assert_eq!(layers[0]["digest"], file_digest(&s.artifact()), "the layer is the file");
    let notes = &manifest["annotations"];
    assert_eq!(
        notes["org.opencontainers.image.source"],
        "https://git.example.org/platform/policies"
    );
    assert_eq!(notes["org.opencontainers.image.revision"], revision);
    assert_eq!(notes["org.opencontainers.image.version"], "0.2.0");

    // The config is the Wasm layout's.
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config: Value = serde_json::from_slice(&std::fs::read(reg.blob_path(config_digest)).unwrap()).unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip2");

    // Pushing to a digest is refused.
    let o = s.run(&[
        "policy",
        "push",
        s.artifact().to_str().unwrap(),
        &pinned,
        "--insecure-registry",
        &reg.host(),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

#[test]
fn a_policy_by_digest_judges_as_the_file_does_and_needs_no_network_once_cached() {
    let mut reg = Registry::start();
    let s = Scratch::new();
    let (pinned, _) = s.push(&reg, "v1", "2222222222222222222222222222222222222222");
    let host = reg.host();

    let from_file = s.verify(&["--policy", s.artifact().to_str().unwrap()]);
    assert_eq!(code(&from_file), 0, "{}", stderr(&from_file));
    let from_registry = s.verify(&["--policy", &pinned, "--insecure-registry", &host]);
    assert_eq!(code(&from_registry), 0, "{}", stderr(&from_registry));
    assert_eq!(
        stdout(&from_registry),
        stdout(&from_file),
        "the same verdict, byte for byte"
    );

    // digest: the file's sha256, and the layer's.
    let o = s.run(&["policy", "digest", s.artifact().to_str().unwrap()]);
    assert_eq!(stdout(&o), format!("{}\n", file_digest(&s.artifact())));
    let o = s.run(&["policy", "digest", &pinned, "--insecure-registry", &host]);
    assert_eq!(
        stdout(&o),
        format!("{}\n", file_digest(&s.artifact())),
        "{}",
        stderr(&o)
    );
    let by_tag = format!("oci://{host}/{REPO}:v1");
    let o = s.run(&["policy", "digest", &by_tag, "--insecure-registry", &host]);
    assert_eq!(
        stdout(&o),
        format!("{}\n", file_digest(&s.artifact())),
        "{}",
        stderr(&o)
    );

    // pull: byte-identical.
    let out = s.path("pulled.wasm");
    let o = s.run(&[
        "policy",
        "pull",
        &pinned,
        "--out",
        out.to_str().unwrap(),
        "--insecure-registry",
        &host,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(s.artifact()).unwrap());

    // The registry is gone: by digest, the cache answers; by tag, nothing can.
    reg.stop();
    let offline = s.verify(&["--policy", &pinned, "--insecure-registry", &host]);
    assert_eq!(code(&offline), 0, "{}", stderr(&offline));
    assert_eq!(stdout(&offline), stdout(&from_file));
    let o = s.verify(&["--policy", &by_tag, "--insecure-registry", &host]);
    assert_refused(&o, "unreachable");
}

#[test]
fn a_tampered_layer_or_another_digest_gives_no_verdict() {
    let reg = Registry::start();
    let s = Scratch::new();
    let (pinned, _) = s.push(&reg, "v1", "3333333333333333333333333333333333333333");
    let host = reg.host();

    let other = sha256_digest(b"another artifact");
    let o = s.verify(&[
        "--policy",
        &pinned,
        "--insecure-registry",
        &host,
        "--policy-digest",
        &other,
    ]);
    assert_refused(&o, "policy digest mismatch");

    reg.tamper_blob(&file_digest(&s.artifact()));
    // A cache of its own that has never seen the artifact.
    let fresh = Scratch::new();
    let o = fresh.verify(&["--policy", &pinned, "--insecure-registry", &host]);
    assert_refused(&o, "does not match its digest");
    let out = fresh.path("pulled.wasm");
    let o = fresh.run(&[
        "policy",
        "pull",
        &pinned,
        "--out",
        out.to_str().unwrap(),
        "--insecure-registry",
        &host,
    ]);
    assert_ne!(code(&o), 0);
    assert!(!out.exists(), "nothing is written from tampered bytes");
}

#[test]
fn policy_key_requires_a_valid_cosign_signature_made_with_it() {
    let reg = Registry::start();
    let s = Scratch::new();
    let (pinned, digest) = s.push(&reg, "v1", "4444444444444444444444444444444444444444");
    let host = reg.host();
    let (signer, key) = s.key("cosign.pub");
    let (stranger, _) = s.key("stranger.pub");
    let with_key = |s: &Scratch| {
        s.verify(&[
            "--policy",
            &pinned,
            "--insecure-registry",
            &host,
            "--policy-key",
            key.to_str().unwrap(),
        ])
    };

    assert_refused(&with_key(&s), "no cosign signature");

    sign(&reg, &stranger, &digest);
    assert_refused(&with_key(&s), "not made with the key");

    sign(&reg, &signer, &digest);
    let o = with_key(&s);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["policy"]["digest"], file_digest(&s.artifact()));

    // A signature of another manifest does not sign this one.
    let (other, other_digest) = s.push(&reg, "v2", "5555555555555555555555555555555555555555");
    assert_ne!(other_digest, digest);
    let fresh = Scratch::new();
    let o = fresh.verify(&[
        "--policy",
        &other,
        "--insecure-registry",
        &host,
        "--policy-key",
        key.to_str().unwrap(),
    ]);
    assert_refused(&o, "no cosign signature");

    // --policy-key is for a policy in a registry.
    let o = s.verify(&[
        "--policy",
        s.artifact().to_str().unwrap(),
        "--policy-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

// ---------------------------------------------------------------------------
// `serve --policy oci://REPO:TAG --policy-refresh`: following a moving tag;
// `replay` finding a record's artifact in the artifact cache.
// ---------------------------------------------------------------------------

/// The built-in rules with settings of their own (another skew): an
/// artifact with another digest than the built-in one.
fn other_artifact(s: &Scratch) -> PathBuf {
    let path = policy_with_settings(
        s.dir.path(),
        "other",
        &serde_json::json!({
            "gitea_base_url": "https://git.moleculesai.app",
            "allowed_owners": ["molecule-ai"],
            "created_max_skew_seconds": 600,
            "on_unavailable": "deny",
        }),
    );
    let path = PathBuf::from(path);
    assert_ne!(file_digest(&path), Artifact::builtin().digest);
    path
}

/// `policy push FILE oci://…/REPO:tag`: the manifest digest.
fn push_file(s: &Scratch, reg: &Registry, file: &Path, tag: &str) -> String {
    let target = format!("oci://{}/{REPO}:{tag}", reg.host());
    let o = s.run(&[
        "policy",
        "push",
        file.to_str().unwrap(),
        &target,
        "--insecure-registry",
        &reg.host(),
    ]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    out.lines()
        .next()
        .and_then(|pinned| pinned.rsplit_once('@'))
        .map(|(_, d)| d.to_string())
        .unwrap_or_else(|| panic!("no pinned reference: {out}"))
}

/// A running `provgate serve` with the test's own artifact cache, killed
/// when dropped.
struct Served {
    child: std::process::Child,
    addr: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

fn listening(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("listening on http://")?;
    Some(rest.split_whitespace().next()?.to_string())
}

impl Served {
    fn start(s: &Scratch, args: &[&str]) -> Served {
        let cache = s.path("cache");
        let mut argv = vec!["serve", "--listen", "127.0.0.1:0"];
        argv.extend_from_slice(args);
        let mut cmd = provgate_command(&argv, &[("PROVGATE_CACHE_DIR", cache.to_str().unwrap())]);
        cmd.stdout(std::process::Stdio::null());
        let mut child = cmd.spawn().expect("provgate serve starts");
        let (log, rx) = watch_stderr(child.stderr.take().unwrap(), listening);
        let addr = match rx.recv_timeout(std::time::Duration::from_secs(120)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("serve did not listen:\n{}", log.lock().unwrap().join("\n"));
            }
        };
        Served { child, addr, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "{what}: not so\n{}", self.log());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on a connection of its own: the status and body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("the server accepts");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("an answer");
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, rest.to_string())
}

/// A log-only subject that asks nothing of Gitea: its verdict's policy digest.
fn verdict_digest(addr: &str) -> (u16, String) {
    let body = serde_json::json!({
        "mode": "log-only",
        "subject": {"reference": "registry.example/molecule-ai/app:old", "digest": DIGEST, "labels": {}},
    });
    let (status, text) = http(addr, "POST", "/v1/verify", &body.to_string());
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, v["policy"]["digest"].as_str().unwrap_or_default().to_string())
}

fn metrics(addr: &str) -> String {
    let (status, text) = http(addr, "GET", "/metrics", "");
    assert_eq!(status, 200, "{text}");
    text
}

/// The value of the series `series` (name and labels) in `text`.
fn series(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

fn follow_args<'a>(reg_host: &'a str, reference: &'a str, key: &'a Path) -> Vec<&'a str> {
    vec![
        "--policy",
        reference,
        "--policy-key",
        key.to_str().unwrap(),
        "--insecure-registry",
        reg_host,
        "--policy-refresh",
        "1s",
    ]
}

#[test]
fn serve_follows_a_moved_signed_tag_and_swaps_it_in_with_no_failed_request() {
    let reg = Registry::start();
    let s = Scratch::new();
    let host = reg.host();
    let (signer, key) = s.key("cosign.pub");
    let old = Artifact::builtin().digest;
    let other = other_artifact(&s);
    let new = file_digest(&other);
    let first = push_file(&s, &reg, &s.artifact(), "live");
    sign(&reg, &signer, &first);
    let reference = format!("oci://{host}/{REPO}:live");
    let server = Served::start(&s, &follow_args(&host, &reference, &key));
    let before = series(&metrics(&server.addr), "provgate_policy_last_reload_timestamp_seconds")
        .unwrap_or_else(|| panic!("no last-reload time:\n{}", metrics(&server.addr)));

    // A client that never stops asking while the tag moves.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(u16, String)>::new()));
    let load = {
        let (stop, seen, addr) = (stop.clone(), seen.clone(), server.addr.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let answer = verdict_digest(&addr);
                seen.lock().unwrap().push(answer);
            }
        })
    };
    server.wait_for("the old policy answers", || {
        seen.lock().unwrap().iter().any(|(_, d)| *d == old)
    });

    let second = push_file(&s, &reg, &other, "live");
    assert_ne!(second, first);
    sign(&reg, &signer, &second);
    server.wait_for("the new policy answers", || {
        seen.lock().unwrap().iter().any(|(_, d)| *d == new)
    });
    // A few more answers after the swap.
    let swapped_at = seen.lock().unwrap().len();
    server.wait_for("answers after the swap", || seen.lock().unwrap().len() > swapped_at + 5);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    load.join().expect("the load thread");

    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().all(|(status, _)| *status == 200), "{seen:?}");
    // The old digest, then the new one, and never the old one again.
    let digests: Vec<&str> = seen.iter().map(|(_, d)| d.as_str()).collect();
    let switch = digests.iter().position(|d| *d == new).unwrap();
    assert!(switch > 0, "{digests:?}");
    assert!(digests[..switch].iter().all(|d| *d == old), "{digests:?}");
    assert!(digests[switch..].iter().all(|d| *d == new), "{digests:?}");

    let text = metrics(&server.addr);
    assert!(text.contains(&format!("digest=\"{new}\"")), "{text}");
    assert!(
        series(&text, "provgate_policy_reloads_total{result=\"ok\"}").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    let after = series(&text, "provgate_policy_last_reload_timestamp_seconds").unwrap();
    assert!(after >= before, "{before} then {after}");
    let (status, ready) = http(&server.addr, "GET", "/readyz", "");
    assert_eq!(status, 200, "{ready}");
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["policy"], new, "{ready}");
    assert!(server.log().contains("policy refreshed"), "{}", server.log());
}

#[test]
fn serve_refuses_a_tag_moved_to_an_unsigned_artifact_and_keeps_serving_the_old_one() {
    let reg = Registry::start();
    let s = Scratch::new();
    let host = reg.host();
    let (signer, key) = s.key("cosign.pub");
    let old = Artifact::builtin().digest;
    let first = push_file(&s, &reg, &s.artifact(), "live");
    sign(&reg, &signer, &first);
    let reference = format!("oci://{host}/{REPO}:live");
    let server = Served::start(&s, &follow_args(&host, &reference, &key));
    assert_eq!(verdict_digest(&server.addr), (200, old.clone()));

    // Moved to an artifact nobody signed.
    let other = other_artifact(&s);
    let unsigned = push_file(&s, &reg, &other, "live");
    assert_ne!(unsigned, first);
    server.wait_for("a refused refresh is counted", || {
        series(
            &metrics(&server.addr),
            "provgate_policy_reloads_total{result=\"refused\"}",
        )
        .is_some_and(|n| n >= 1.0)
    });
    assert_eq!(verdict_digest(&server.addr), (200, old.clone()));
    let text = metrics(&server.addr);
    assert!(text.contains(&format!("digest=\"{old}\"")), "{text}");
    assert!(
        series(&text, "provgate_policy_reloads_total{result=\"ok\"}").is_none(),
        "{text}"
    );
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("policy refresh refused"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("no cosign signature"), "{line}");
}

#[test]
fn policy_refresh_of_a_moving_tag_requires_policy_key() {
    let s = Scratch::new();
    let o = s.run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--policy",
        "oci://127.0.0.1:1/policies/provgate:live",
        "--policy-refresh",
        "1s",
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--policy-refresh") && stderr(&o).contains("--policy-key"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn replay_finds_a_records_artifact_in_the_artifact_cache() {
    let reg = Registry::start();
    let s = Scratch::new();
    let host = reg.host();
    let other = other_artifact(&s);
    let manifest = push_file(&s, &reg, &other, "v1");
    let pinned = format!("oci://{host}/{REPO}@{manifest}");
    let record = s.path("decision.json");
    let o = s.verify(&[
        "--policy",
        &pinned,
        "--insecure-registry",
        &host,
        "--record",
        record.to_str().unwrap(),
    ]);
    assert!(matches!(code(&o), 0 | 1), "{}", stderr(&o));
    let recorded: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(recorded["policy"]["digest"], file_digest(&other), "{recorded}");

    // Pulled before: the cache has it, and replay needs nothing else.
    let o = s.run(&["replay", record.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("1 agree, 0 differ"), "{}", stderr(&o));
    // And named by digest with --policy, from the same cache, offline.
    let o = s.run(&["replay", record.to_str().unwrap(), "--policy", &pinned]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("1 agree, 0 differ"), "{}", stderr(&o));

    // A cache that never saw it: exit 3, saying where it looked.
    let fresh = Scratch::new();
    let o = fresh.run(&["replay", record.to_str().unwrap()]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("artifact cache"), "{}", stderr(&o));
}

#[test]
fn policy_inspect_takes_an_oci_reference_with_the_registry_flags() {
    let reg = Registry::start();
    let s = Scratch::new();
    let host = reg.host();
    push_file(&s, &reg, &s.artifact(), "v1");
    let reference = format!("oci://{host}/{REPO}:v1");
    let o = s.run(&[
        "policy",
        "inspect",
        &reference,
        "--insecure-registry",
        &host,
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["digest"], Artifact::builtin().digest, "{v}");
    // Without --insecure-registry it is HTTPS, which this registry does not speak.
    let o = s.run(&["policy", "inspect", &reference, "--registry-timeout", "5"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
}
