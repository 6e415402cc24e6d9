//! What every fetch of the process shares: the HTTP clients, and the
//! authorization each registry last accepted.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use super::RegistryOptions;
use super::reach::{PublicOnly, Reach};

/// The clients of one set of options; neither follows a redirect by
/// itself (the registry code follows them under its own rules).
#[derive(Clone)]
pub(super) struct Clients {
    /// For the registry, and for hosts the options trust.
    pub(super) http: reqwest::Client,
    /// Under [`Reach::Guarded`], for every other host: its resolver
    /// refuses a name with any address that is not public, and it uses no
    /// proxy, so that the address checked is the one connected to.
    pub(super) public_only: Option<reqwest::Client>,
}

/// One set of clients per set of options, shared by every fetch of the
/// process: building one loads the system's certificate store, which
/// dominated an audit of many images. They are cheap handles onto shared
/// state.
pub(super) fn client_for(opts: &RegistryOptions) -> Result<Clients, String> {
    type Key = (Vec<String>, Duration, bool);
    static CLIENTS: Mutex<Vec<(Key, Clients)>> = Mutex::new(Vec::new());
    let guarded = matches!(opts.reach, Reach::Guarded { .. });
    let key = (opts.insecure.clone(), opts.timeout, guarded);
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, found)) = clients.iter().find(|(k, _)| *k == key) {
        return Ok(found.clone());
    }
    let connect_timeout = opts.timeout.min(Duration::from_secs(10));
    let builder = || {
        crate::http::client_builder()
            .connect_timeout(connect_timeout)
            .read_timeout(opts.timeout)
    };
    let built = |b: reqwest::ClientBuilder| {
        b.build()
            .map_err(|e| format!("cannot build an HTTP client: {}", crate::http::error_chain(&e)))
    };
    let http = built(builder())?;
    let public_only = if guarded {
        Some(built(builder().no_proxy().dns_resolver(PublicOnly))?)
    } else {
        None
    };
    let made = Clients { http, public_only };
    clients.push((key, made.clone()));
    Ok(made)
}

/// How a registry request authenticates.
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
