//! `provgate serve`'s arguments.

use std::time::Duration;

use clap::Args;

use crate::commands::args::{NetworkArgs, PolicyArgs, registry_host, seconds};

/// `--listen`: `:PORT` is `0.0.0.0:PORT`; `HOST:PORT` is kept as given
/// (binding it says what is wrong with it); a bare `PORT`, which would
/// otherwise fail to bind with a puzzling message, is refused here.
fn listen_address(value: &str) -> Result<String, String> {
    let example = "give HOST:PORT (127.0.0.1:8080) or :PORT for every interface (:8080)";
    if let Some(port) = value.strip_prefix(':') {
        return match port.parse::<u16>() {
            Ok(port) => Ok(format!("0.0.0.0:{port}")),
            Err(_) => Err(format!("not a port number after ':'; {example}")),
        };
    }
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("a port alone is not an address; {example}"));
    }
    Ok(value.to_owned())
}

#[derive(Debug, Args)]
#[command(after_help = "Routes: POST /v1/verify, GET /healthz, GET /readyz, GET /metrics.\n\n\
    Signals: SIGHUP reloads --policy (a failing artifact is refused and the old one keeps serving; \
    --policy-refresh also follows a tag in a registry); \
    SIGTERM or Ctrl-C stops accepting, lets requests in flight finish and exits 0.\n\n\
    Examples:\n  \
    provgate serve --listen 127.0.0.1:8080 --allow-registry git.moleculesai.app\n  \
    PROVGATE_TOKEN=… provgate serve --listen :8080 \\\n    \
    --auth-token-env PROVGATE_TOKEN --policy /etc/provgate/policy.wasm \\\n    \
    --policy-digest sha256:…")]
pub struct ServeArgs {
    /// Address to listen on: HOST:PORT (e.g. 127.0.0.1:8080, [::1]:8080), or
    /// :PORT for every IPv4 interface (0.0.0.0:PORT). A bare PORT is refused.
    /// Port 0 picks a free port; the address bound is logged as
    /// `listening on http://ADDR`.
    #[arg(long, value_name = "ADDR", value_parser = listen_address)]
    pub listen: String,

    /// A registry (HOST or HOST:PORT, exactly as in image references) the server
    /// may fetch images from; repeatable. Any other registry is refused with 403.
    #[arg(long = "allow-registry", value_name = "HOST[:PORT]")]
    pub allow_registry: Vec<String>,

    /// A token service host (HOST for any port, or HOST:PORT) an allowed
    /// registry's `WWW-Authenticate` realm may name although it is not
    /// public (loopback, private, link-local, …); repeatable. Without it a
    /// realm may only be the registry's own HOST:PORT or a host whose every
    /// address is public; any other is refused with 502 and never contacted.
    #[arg(long = "allow-auth-host", value_name = "HOST[:PORT]", value_parser = registry_host)]
    pub allow_auth_host: Vec<String>,

    /// A host (HOST for any port, or HOST:PORT) an allowed registry may
    /// redirect manifest and blob requests to although it is not public;
    /// repeatable. Without it a redirect may only lead to the registry's own
    /// HOST:PORT or to a host whose every address is public (reached
    /// directly, not through a proxy); any other is refused with 502 and
    /// never contacted.
    #[arg(long = "allow-redirect-host", value_name = "HOST[:PORT]", value_parser = registry_host)]
    pub allow_redirect_host: Vec<String>,

    /// Require `Authorization: Bearer <token>` on /v1/verify and /metrics, the
    /// token being the value of this environment variable (which must be set).
    #[arg(long, value_name = "NAME")]
    pub auth_token_env: Option<String>,

    #[command(flatten)]
    pub policy: PolicyArgs,

    #[command(flatten)]
    pub network: NetworkArgs,

    /// Follow the tag of --policy oci://REPO:TAG: resolve it again this
    /// often and, when it names another manifest, pull it, check it (digest,
    /// signature: --policy-key is required) and swap it in while requests
    /// keep being answered. An artifact that fails is refused and the old
    /// one keeps serving. SIGHUP resolves the tag at once.
    #[arg(long, value_name = "DURATION", value_parser = seconds)]
    pub policy_refresh: Option<Duration>,

    /// On SIGTERM, how long requests in flight may take to finish before the
    /// server exits anyway.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    pub shutdown_timeout: Duration,

    /// Connections open at once; above it a new connection is answered 503
    /// and closed at once. Default: half the open-file limit left after 64,
    /// at most 1024.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: Option<u32>,

    /// How long a client may take to send a request's headers (for a new
    /// connection: from when it is accepted) before the connection is closed.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    pub header_timeout: Duration,

    /// How long a client may take to send a request's body once its headers
    /// are in; slower is answered 408.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    pub body_timeout: Duration,

    /// How long a kept-alive connection may wait for its next request before
    /// it is closed. Keep it above the idle time-out of a load balancer in front.
    #[arg(long, value_name = "SECONDS", default_value = "75", value_parser = seconds)]
    pub idle_timeout: Duration,

    /// Append the decision record of every verdict to FILE (`-`: standard
    /// output), one JSON line each, for `provgate replay`.
    #[arg(long, value_name = "FILE|-")]
    pub decision_log: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::listen_address;

    #[test]
    fn listen_takes_host_and_port_or_a_colon_and_port() {
        assert_eq!(listen_address(":8080").unwrap(), "0.0.0.0:8080");
        assert_eq!(listen_address(":0").unwrap(), "0.0.0.0:0");
        assert_eq!(listen_address("127.0.0.1:80").unwrap(), "127.0.0.1:80");
        assert_eq!(listen_address("[::1]:80").unwrap(), "[::1]:80");
        assert!(listen_address("8080").unwrap_err().contains(":PORT"));
        assert!(listen_address(":http").is_err() && listen_address(":70000").is_err());
    }
}
