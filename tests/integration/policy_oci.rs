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
