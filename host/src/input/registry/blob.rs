//! The config blob, through oci-client (which follows its redirects to
//! storage anywhere): read up to the cap and checked against its digest.

use futures_util::StreamExt;
use oci_client::Reference;

use super::error::mismatch;
use super::{Ctx, FetchError, MAX_DOCUMENT_BYTES};
use crate::digest::sha256_digest;

impl Ctx<'_> {
    /// A blob, read up to the cap and checked against its digest.
    pub(super) async fn blob(&self, reference: &Reference, digest: &str) -> Result<Vec<u8>, FetchError> {
        let what = format!("config blob {digest}");
        let mut stream = self
            .client
            .pull_blob_stream(reference, digest)
            .await
            .map_err(|e| self.error(e, &what))?;
        if stream.content_length.is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
            return Err(FetchError::TooLarge {
                what,
                limit: MAX_DOCUMENT_BYTES,
            });
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.io_error(e, &what, digest))?;
            if bytes.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(FetchError::TooLarge {
                    what,
                    limit: MAX_DOCUMENT_BYTES,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(FetchError::DigestMismatch {
                what,
                expected: digest.into(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// A stream error: oci-client's verifying stream reports a mismatch as an
    /// I/O error at the end; recover the digests when it does.
    fn io_error(&self, e: std::io::Error, what: &str, expected: &str) -> FetchError {
        let text = e.to_string();
        if let Some((_, actual)) = mismatch(&text) {
            return FetchError::DigestMismatch {
                what: what.into(),
                expected: expected.into(),
                actual,
            };
        }
        FetchError::Unreachable {
            registry: self.registry.into(),
            reason: format!("reading {what}: {text}"),
        }
    }
}
