//! The `sha256:<hex>` digests that name artifacts, manifests, blobs and
//! decision records.

use sha2::{Digest, Sha256};

/// `sha256:` and the lower-case hex of `bytes`' SHA-256.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}
