//! TLS for every HTTPS client provgate builds (Gitea, registries, the
//! control plane): rustls with the `ring` provider, so the binary links no
//! system OpenSSL — loading and relocating libssl/libcrypto cost every
//! process ~0.75 ms before `main` (docs/benchmarks.md).

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
}

/// Makes `ring` the process-wide rustls provider; call before building a
/// client. Idempotent: a provider already installed is kept.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
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
