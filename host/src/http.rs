//! What every HTTP exchange provgate makes shares: the client's start (TLS
//! provider, user agent, no redirect followed on its own), bodies read
//! under a cap, and an error's chain of causes as one line.
//!
//! TLS is rustls with the `ring` provider, so the binary links no system
//! OpenSSL, whose loading cost every process before `main`
//! (docs/benchmarks.md).

use reqwest::Response;

/// The `User-Agent` of every request provgate sends.
pub const USER_AGENT: &str = concat!("provgate/", env!("CARGO_PKG_VERSION"));

/// The start of every HTTP client provgate builds itself (Gitea, the
/// control plane's pins, registry manifests): the TLS provider installed,
/// provgate's user agent, and no redirect followed on its own — each caller
/// decides what a redirect means (Gitea and the pins URL: an error; a
/// manifest: followed by the registry code under its own rules).
pub fn client_builder() -> reqwest::ClientBuilder {
    install_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        // The system's trust store and the `--ca-file` CAs (crate::tls).
        .tls_certs_merge(crate::tls::extra_roots())
}

/// Makes `ring` the process-wide rustls provider; call before building a
/// client. Idempotent: a provider already installed is kept.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Why a body was not read whole under its cap.
#[derive(Debug)]
pub enum CappedError {
    /// Content-Length said more than the cap; nothing was read.
    Declared(u64),
    /// More than the cap arrived (chunked, or Content-Length lied).
    TooLarge,
    /// The body broke off.
    Read(reqwest::Error),
}

/// A body of at most `limit` bytes, refused as soon as it says or shows
/// that it is larger: memory stays bounded whatever the peer sends.
/// Content-Length is only a shortcut; bytes are counted as they arrive.
pub async fn read_capped(response: &mut Response, limit: usize) -> Result<Vec<u8>, CappedError> {
    if let Some(len) = response.content_length()
        && len > limit as u64
    {
        return Err(CappedError::Declared(len));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(CappedError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(CappedError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The first `limit` bytes of a body, for quoting an error answer; a body
/// that breaks off ends the excerpt, the rest is never read.
pub async fn read_prefix(response: &mut Response, limit: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    while bytes.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk[..chunk.len().min(limit - bytes.len())]),
            _ => break,
        }
    }
    bytes
}

/// Every message in an error's chain, once each: a top-level text alone
/// ("error sending request") rarely says what to fix, and layers often
/// repeat their cause's text.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn https_clients_build_with_the_bundled_provider() {
        super::install_provider();
        let client = reqwest::Client::builder().https_only(true).build();
        assert!(client.is_ok(), "{:?}", client.err());
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
