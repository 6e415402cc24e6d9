//! `provgate serve`'s arguments.

use std::time::Duration;

use clap::Args;

use crate::commands::args::{NetworkArgs, PolicyArgs, seconds};

#[derive(Debug, Args)]
#[command(after_help = "Routes: POST /v1/verify, GET /healthz, GET /readyz, GET /metrics.\n\n\
    Signals: SIGHUP reloads --policy (a failing artifact is refused and the old one keeps serving); \
    SIGTERM or Ctrl-C stops accepting, lets requests in flight finish and exits 0.\n\n\
    Examples:\n  \
    provgate serve --listen 127.0.0.1:8080 --allow-registry git.moleculesai.app\n  \
    PROVGATE_TOKEN=… provgate serve --listen 0.0.0.0:8080 --auth-token-env PROVGATE_TOKEN \\\n      \
    --policy /etc/provgate/policy.wasm --policy-digest sha256:…")]
pub struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port; the
    /// address bound is logged as `listening on http://ADDR`).
    #[arg(long, value_name = "ADDR")]
    pub listen: String,

    /// A registry (HOST or HOST:PORT, exactly as in image references) the server
    /// may fetch images from; repeatable. Any other registry is refused with 403.
    #[arg(long = "allow-registry", value_name = "HOST[:PORT]")]
    pub allow_registry: Vec<String>,

    /// Require `Authorization: Bearer <token>` on /v1/verify and /metrics, the
    /// token being the value of this environment variable (which must be set).
    #[arg(long, value_name = "NAME")]
    pub auth_token_env: Option<String>,

    #[command(flatten)]
    pub policy: PolicyArgs,

    #[command(flatten)]
    pub network: NetworkArgs,

    /// On SIGTERM, how long requests in flight may take to finish before the
    /// server exits anyway.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    pub shutdown_timeout: Duration,

    /// Append the decision record of every verdict to FILE (`-`: standard
    /// output), one JSON line each, for `provgate replay`.
    #[arg(long, value_name = "FILE|-")]
    pub decision_log: Option<String>,
}
