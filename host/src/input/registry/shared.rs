//! What every fetch of the process shares: the HTTP clients, and the
//! authorization each registry last accepted.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use oci_client::Client;
use oci_client::client::{ClientConfig, ClientProtocol};

use super::RegistryOptions;

/// The clients of one set of options: oci-client's (auth, blobs) and a
/// plain one for manifests that follows no redirect by itself.
#[derive(Clone)]
pub(super) struct Clients {
    pub(super) oci: Client,
    pub(super) http: reqwest::Client,
}

/// One pair of clients per set of options, shared by every fetch of the
/// process: building one loads the system's certificate store, which
/// dominated an audit of many images. Both are cheap handles onto shared
/// state.
pub(super) fn client_for(opts: &RegistryOptions) -> Result<Clients, String> {
    type Key = (Vec<String>, Duration);
    static CLIENTS: Mutex<Vec<(Key, Clients)>> = Mutex::new(Vec::new());
    let key = (opts.insecure.clone(), opts.timeout);
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, found)) = clients.iter().find(|(k, _)| *k == key) {
        return Ok(found.clone());
    }
    crate::http::install_provider();
    let connect_timeout = opts.timeout.min(Duration::from_secs(10));
    let oci = Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(opts.insecure.clone()),
        platform_resolver: None,
        connect_timeout: Some(connect_timeout),
        read_timeout: Some(opts.timeout),
        user_agent: crate::http::USER_AGENT,
        ..ClientConfig::default()
    });
    let http = crate::http::client_builder()
        .connect_timeout(connect_timeout)
        .read_timeout(opts.timeout)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {}", crate::http::error_chain(&e)))?;
    let built = Clients { oci, http };
    clients.push((key, built.clone()));
    Ok(built)
}

/// How a manifest request authenticates.
#[derive(Clone)]
pub(super) enum Authorization {
    Bearer(String),
    Basic(String, String),
}

/// The authorization a registry last accepted for a repository, so that a
/// token registry's token is fetched once, not for every image; a 401 with
/// it fetches a new one.
static AUTHORIZATIONS: LazyLock<Mutex<HashMap<(String, String), Authorization>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Keyed by `(registry, repository)`.
pub(super) fn authorizations() -> MutexGuard<'static, HashMap<(String, String), Authorization>> {
    AUTHORIZATIONS.lock().unwrap_or_else(|e| e.into_inner())
}
