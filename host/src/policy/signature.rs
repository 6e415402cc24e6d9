//! `--policy-key`: a cosign public key, and the check that an artifact's
//! manifest carries a signature made with it.
//!
//! The format is cosign's, as sigstore/cosign documents it in
//! `specs/SIGNATURE_SPEC.md`: the signatures of the manifest `sha256:<hex>`
//! are the layers of the manifest tagged `sha256-<hex>.sig` in the same
//! repository; each layer (media type
//! `application/vnd.dev.cosign.simplesigning.v1+json`) is a "simple signing"
//! payload,
//!
//! ```json
//! {"critical": {"identity": {"docker-reference": "registry/repo"},
//!               "image": {"docker-manifest-digest": "sha256:…"},
//!               "type": "cosign container image signature"},
//!  "optional": null}
//! ```
//!
//! and the layer's annotation `dev.cosignproject.cosign/signature` is the
//! base64 of an ASN.1 DER ECDSA P-256 SHA-256 signature over the payload's
//! exact bytes (what `cosign generate-key-pair` keys and `cosign sign --key`
//! make). A signature counts when it verifies with the key, its payload's
//! type is cosign's and its `docker-manifest-digest` is the manifest's
//! digest. Like `cosign verify`, the `docker-reference` is not required to
//! name the repository the artifact was pulled from (a signed artifact
//! copied to a mirror stays signed): the digest binds the signature to the
//! manifest, and the manifest to the artifact's bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use serde_json::Value;

use crate::input::registry::push::Signature;

/// A key file is a few hundred bytes.
const MAX_KEY_FILE_BYTES: u64 = 64 << 10;
/// `id-ecPublicKey` (1.2.840.10045.2.1), DER contents.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// `prime256v1` / `secp256r1` (1.2.840.10045.3.1.7), DER contents.
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// The payload type cosign writes.
pub const COSIGN_TYPE: &str = "cosign container image signature";

/// An ECDSA P-256 public key: its uncompressed point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    point: Vec<u8>,
    /// The file it came from, for messages.
    pub file: String,
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) file; every
    /// failure names the file and what is wrong.
    pub fn from_file(path: &std::path::Path) -> Result<PublicKey, String> {
        let file = path.display().to_string();
        let shown = crate::text::quote(&file);
        let bytes = crate::input::read_at_most(&file, MAX_KEY_FILE_BYTES)
            .map_err(|e| format!("--policy-key {shown}: cannot read it: {e:#}"))?;
        let text = String::from_utf8(bytes).map_err(|_| format!("--policy-key {shown}: not a PEM file"))?;
        let point = point_of_pem(&text).map_err(|why| format!("--policy-key {shown}: {why}"))?;
        Ok(PublicKey { point, file })
    }

    /// Whether `signature` (base64 of ASN.1 DER) is this key's over `message`.
    pub fn verifies(&self, message: &[u8], signature_b64: &str) -> bool {
        let Ok(signature) = STANDARD.decode(signature_b64.trim()) else {
            return false;
        };
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(message, &signature)
            .is_ok()
    }
}

/// The uncompressed point of the one `PUBLIC KEY` block of a PEM text.
fn point_of_pem(text: &str) -> Result<Vec<u8>, String> {
    const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
    const END: &str = "-----END PUBLIC KEY-----";
    let start = text
        .find(BEGIN)
        .ok_or("holds no -----BEGIN PUBLIC KEY----- block (a cosign public key, cosign.pub)")?;
    let body = &text[start + BEGIN.len()..];
    let end = body.find(END).ok_or("its PUBLIC KEY block does not end")?;
    let b64: String = body[..end].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD
        .decode(b64)
        .map_err(|e| format!("its PUBLIC KEY block is not base64 ({e})"))?;
    point_of_spki(&der)
}

/// SubjectPublicKeyInfo ::= SEQUENCE { SEQUENCE { OID ecPublicKey, OID
/// prime256v1 }, BIT STRING (0x00, 0x04 ‖ X ‖ Y) }: the 65-byte point.
fn point_of_spki(der: &[u8]) -> Result<Vec<u8>, String> {
    let not = "not an ECDSA P-256 public key";
    let (spki, rest) = tlv(der, 0x30).ok_or(not)?;
    if !rest.is_empty() {
        return Err(format!("{not} (bytes after the key)"));
    }
    let (algorithm, rest) = tlv(spki, 0x30).ok_or(not)?;
    let (bits, rest) = tlv(rest, 0x03).ok_or(not)?;
    if !rest.is_empty() {
        return Err(not.into());
    }
    let (oid, params) = tlv(algorithm, 0x06).ok_or(not)?;
    if oid != OID_EC_PUBLIC_KEY {
        return Err(format!("{not}: cosign keys are ECDSA P-256 (cosign generate-key-pair)"));
    }
    let (curve, rest) = tlv(params, 0x06).ok_or(not)?;
    if curve != OID_P256 || !rest.is_empty() {
        return Err(format!("{not}: an EC key on another curve"));
    }
    match bits {
        [0x00, point @ ..] if point.len() == 65 && point[0] == 0x04 => Ok(point.to_vec()),
        _ => Err(format!("{not}: its point is not an uncompressed P-256 point")),
    }
}

/// One DER element of tag `tag` at the start of `der`: its contents and
/// what follows it. Definite lengths of at most 4 bytes only.
fn tlv(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = der.split_first()?;
    if first != tag {
        return None;
    }
    let (&len, mut rest) = rest.split_first()?;
    let len = if len < 0x80 {
        usize::from(len)
    } else {
        let n = usize::from(len & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// Whether one of `signatures` is a valid cosign signature of the manifest
/// `manifest_digest` made with `key`; `Err` says why none is, for an
/// operator.
pub fn check(key: &PublicKey, signatures: &[Signature], manifest_digest: &str) -> Result<(), String> {
    let key_shown = crate::text::quote(&key.file);
    if signatures.is_empty() {
        return Err(format!(
            "the manifest {manifest_digest} has no cosign signature (no {} tag with a simple-signing layer); \
             sign it with cosign sign --key, then verify with --policy-key {key_shown}",
            crate::input::registry::push::signature_tag(manifest_digest)
        ));
    }
    let mut reasons = Vec::new();
    for signature in signatures {
        if !key.verifies(&signature.payload, &signature.signature) {
            reasons.push(format!("a signature not made with the key {key_shown}"));
            continue;
        }
        match payload_digest(&signature.payload) {
            Ok(digest) if digest == manifest_digest => return Ok(()),
            Ok(digest) => reasons.push(format!(
                "a signature with the key for another manifest ({})",
                crate::text::quote(&digest)
            )),
            Err(why) => reasons.push(format!("a signature with the key over {why}")),
        }
    }
    reasons.dedup();
    Err(format!(
        "the manifest {manifest_digest} has no valid cosign signature made with {key_shown}: it has {}",
        reasons.join("; ")
    ))
}

/// The `critical.image.docker-manifest-digest` of a cosign payload, which
/// must be of cosign's type.
fn payload_digest(payload: &[u8]) -> Result<String, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| "a payload that is not JSON".to_string())?;
    let kind = value.pointer("/critical/type").and_then(Value::as_str);
    if kind != Some(COSIGN_TYPE) {
        return Err(format!(
            "a payload of type {}, not {COSIGN_TYPE:?}",
            crate::text::quote(kind.unwrap_or("(none)"))
        ));
    }
    value
        .pointer("/critical/image/docker-manifest-digest")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| "a payload without critical.image.docker-manifest-digest".to_string())
}

/// The simple-signing payload cosign signs for `manifest_digest` of the
/// repository `docker_reference` (`registry/repo`), byte for byte as cosign
/// writes it (for tests and for documentation; provgate never signs).
pub fn cosign_payload(docker_reference: &str, manifest_digest: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": COSIGN_TYPE,
        },
        "optional": null,
    }))
    .expect("a JSON value serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    /// A fresh key pair: the signer and the PEM of its public key.
    fn pair() -> (EcdsaKeyPair, String) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let signer = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let mut der = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
            0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        der.extend_from_slice(signer.public_key().as_ref());
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(&der)
        );
        (signer, pem)
    }

    fn sign(signer: &EcdsaKeyPair, payload: &[u8]) -> String {
        STANDARD.encode(signer.sign(&SystemRandom::new(), payload).unwrap().as_ref())
    }

    fn key(pem: &str) -> PublicKey {
        PublicKey {
            point: point_of_pem(pem).unwrap(),
            file: "cosign.pub".into(),
        }
    }

    #[test]
    fn a_signature_counts_only_with_the_key_and_for_the_manifest() {
        let (signer, pem) = pair();
        let (other, _) = pair();
        let digest = format!("sha256:{}", "1f".repeat(32));
        let payload = cosign_payload("reg.example/policies/provgate", &digest);
        let good = Signature {
            payload: payload.clone(),
            signature: sign(&signer, &payload),
        };
        assert_eq!(check(&key(&pem), std::slice::from_ref(&good), &digest), Ok(()));

        let wrong_key = Signature {
            payload: payload.clone(),
            signature: sign(&other, &payload),
        };
        let e = check(&key(&pem), std::slice::from_ref(&wrong_key), &digest).unwrap_err();
        assert!(e.contains("not made with the key"), "{e}");
        // One good signature among bad ones is enough.
        assert_eq!(check(&key(&pem), &[wrong_key, good], &digest), Ok(()));

        let elsewhere = cosign_payload("reg.example/policies/provgate", &format!("sha256:{}", "2e".repeat(32)));
        let moved = Signature {
            signature: sign(&signer, &elsewhere),
            payload: elsewhere,
        };
        assert!(
            check(&key(&pem), &[moved], &digest)
                .unwrap_err()
                .contains("another manifest")
        );
        assert!(
            check(&key(&pem), &[], &digest)
                .unwrap_err()
                .contains("no cosign signature")
        );

        let mut tampered = payload.clone();
        tampered.push(b' ');
        let e = check(
            &key(&pem),
            &[Signature {
                payload: tampered,
                signature: sign(&signer, &payload),
            }],
            &digest,
        )
        .unwrap_err();
        assert!(e.contains("not made with the key"), "{e}");
    }

    #[test]
    fn only_a_p256_public_key_pem_is_a_key() {
        let (_, pem) = pair();
        assert_eq!(point_of_pem(&pem).unwrap().len(), 65);
        assert!(point_of_pem("nothing here").unwrap_err().contains("BEGIN PUBLIC KEY"));
        assert!(point_of_pem("-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----").is_err());
        let mut der = STANDARD.decode(pem.lines().nth(1).unwrap()).unwrap();
        der[20] ^= 1; // the curve's OID
        let bent = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----",
            STANDARD.encode(&der)
        );
        assert!(point_of_pem(&bent).unwrap_err().contains("P-256"));
        assert!(point_of_spki(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(point_of_spki(&[]).is_err());
    }
}
