//! The config blob, fetched by provgate itself: redirects to storage on
//! other hosts followed by hand (credentials stay with the registry), the
//! body read up to the cap and checked against its digest.

use oci_client::Reference;

use super::manifest::registry_url;
use super::request::Kind;
use super::{Ctx, FetchError};
use crate::digest::sha256_digest;

impl Ctx<'_> {
    /// A blob, read up to the cap and checked against its digest.
    pub(super) async fn blob(&self, reference: &Reference, digest: &str) -> Result<Vec<u8>, FetchError> {
        let what = format!("config blob {digest}");
        let url = registry_url(reference, &self.opts.insecure, &format!("blobs/{digest}"))
            .map_err(|e| self.unusable(&what, format!("no blob URL: {e}")))?;
        let response = self.get(&url, None, Kind::Blob, &what).await?;
        let bytes = self.read_document(response, &what).await?;
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
}
