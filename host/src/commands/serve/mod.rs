//! `provgate serve`: the verifier as an HTTP service for the control plane
//! (SPEC §5, issue 5).
//!
//! One process, one policy at a time, one look-up cache shared by every
//! request. A request's path is the CLI's: a subject (fetched from an allowed
//! registry, or given as facts) → `crate::judge` (a fresh instance of the
//! policy, run on the worker for the microseconds the guest computes) → the
//! verdict JSON. A question whose answer is cached is answered in the same
//! instance at once; one that needs Gitea is awaited as a future after the
//! instance is dropped, queued behind `--gitea-concurrency`. So a slow Gitea
//! or registry answer holds no thread and no instance, and never holds up a
//! request that does not need it. Credential helpers run as child processes
//! under the registry time-out.
//!
//! - [`api`]: the routes, request parsing, auth and the per-request log line.
//! - [`metrics`]: the Prometheus registry.
//! - here: start-up, the shared state, policy reload (SIGHUP) and graceful
//!   shutdown (SIGTERM, Ctrl-C).

mod api;
mod metrics;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;
use sha2::{Digest, Sha256};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{NetworkArgs, PolicyArgs, seconds};
use crate::exit::{Exit, Failure};
use crate::input::registry::RegistryOptions;
use crate::lookup::cache::CachePolicy;
use crate::lookup::gitea::Token;
use crate::lookup::{Source, Stack};
use crate::policy::Policy;
use crate::record::Record;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

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
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub shutdown_timeout: f64,

    /// Append the decision record of every verdict to FILE (`-`: standard
    /// output), one JSON line each, for `provgate replay`.
    #[arg(long, value_name = "FILE|-")]
    pub decision_log: Option<String>,
}

pub fn run(args: &ServeArgs) -> Result<Exit, Failure> {
    let auth = match &args.auth_token_env {
        Some(name) => Some(auth_digest(name)?),
        None => None,
    };
    let allow = allow_list(&args.allow_registry)?;
    for insecure in &args.network.insecure_registry {
        if !allow.contains(&insecure.trim().to_ascii_lowercase()) {
            tracing::warn!(
                registry = %insecure,
                "--insecure-registry names a registry that --allow-registry does not: requests for it get 403"
            );
        }
    }
    let decision_log = args.decision_log.as_deref().map(DecisionLog::open).transpose()?;
    let settings = Settings {
        gitea_timeout: seconds(args.network.gitea_timeout, "--gitea-timeout")?,
        gitea_concurrency: args.network.gitea_concurrency as usize,
        decision_log,
        registry: args.network.registry()?,
        shutdown_timeout: seconds(args.shutdown_timeout, "--shutdown-timeout")?,
        policy_path: args.policy.policy.clone(),
        policy_digest: args.policy.policy_digest.clone(),
        allow,
        auth,
        gitea_token: Token::from_env(),
    };

    // Exit 3 before anything listens when the artifact is unusable.
    let policy = super::load_policy(&args.policy, super::Verdicts::Many)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("provgate-serve")
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::usage)?;
    let result = runtime.block_on(serve(&args.listen, settings, policy));
    // Blocking threads may still wait on a hung Gitea look-up: don't wait for them.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

/// What the command line decided, checked.
struct Settings {
    gitea_timeout: Duration,
    gitea_concurrency: usize,
    decision_log: Option<DecisionLog>,
    registry: RegistryOptions,
    shutdown_timeout: Duration,
    policy_path: Option<PathBuf>,
    policy_digest: Option<String>,
    /// Lower-cased `host[:port]`s.
    allow: Vec<String>,
    /// sha256 of the bearer token, compared in constant time.
    auth: Option<[u8; 32]>,
    gitea_token: Option<Token>,
}

/// The policy that judges requests, with the look-up stack for its Gitea.
/// Swapped as a whole on reload; requests in flight keep the one they took.
pub(crate) struct Active {
    pub policy: Policy,
    pub lookup: Arc<Stack>,
}

/// One look-up stack per Gitea base URL ever configured (a reload may point
/// the policy at another Gitea), so answers and counters survive reloads.
pub(crate) type Caches = Mutex<HashMap<String, Arc<Stack>>>;

pub(crate) struct Shared {
    settings: Settings,
    active: Arc<RwLock<Arc<Active>>>,
    caches: Arc<Caches>,
    metrics: metrics::Metrics,
}

impl Shared {
    /// The policy to judge one request with.
    fn active(&self) -> Arc<Active> {
        self.active.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The shared look-up stack for `policy`'s Gitea, created on first use.
    fn cache_for(caches: &Caches, settings: &Settings, policy: &Policy) -> anyhow::Result<Arc<Stack>> {
        let base = &policy.description().settings.gitea_base_url;
        let mut caches = caches.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(stack) = caches.get(base) {
            return Ok(stack.clone());
        }
        let source = Source::Gitea {
            token: settings.gitea_token.clone(),
            timeout: settings.gitea_timeout,
            concurrency: settings.gitea_concurrency,
        };
        let stack = Arc::new(Stack::build(source, base, CachePolicy::server())?);
        caches.insert(base.clone(), stack.clone());
        Ok(stack)
    }

    fn activate(&self, policy: Policy) -> anyhow::Result<()> {
        let lookup = Shared::cache_for(&self.caches, &self.settings, &policy)?;
        let active = Arc::new(Active { policy, lookup });
        *self.active.write().unwrap_or_else(|e| e.into_inner()) = active;
        Ok(())
    }
}

async fn serve(listen: &str, settings: Settings, policy: Policy) -> Result<Exit, Failure> {
    let caches: Arc<Caches> = Arc::default();
    let lookup = Shared::cache_for(&caches, &settings, &policy).map_err(Failure::usage)?;
    let active = Arc::new(RwLock::new(Arc::new(Active { policy, lookup })));
    let metrics = metrics::Metrics::new(active.clone(), caches.clone());
    let shared = Arc::new(Shared {
        settings,
        active,
        caches,
        metrics,
    });

    // Handlers first: SIGHUP's default action would end the process, and a
    // caller may signal as soon as it sees the address.
    let signals = || -> std::io::Result<_> {
        Ok((
            signal(SignalKind::hangup())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    };
    let (mut hangup, mut terminate, mut interrupt) = signals()
        .context("cannot install signal handlers")
        .map_err(Failure::usage)?;

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))
        .map_err(Failure::usage)?;
    let addr = listener
        .local_addr()
        .context("cannot read the address listened on")
        .map_err(Failure::usage)?;
    {
        let active = shared.active();
        let artifact = active.policy.artifact();
        let line = format!(
            "listening on http://{addr} with policy {} ({}, Gitea {})",
            artifact.digest,
            artifact.origin,
            active.policy.description().settings.gitea_base_url
        );
        if tracing::enabled!(tracing::Level::INFO) {
            tracing::info!(
                %addr,
                policy = %artifact.digest,
                allow_registry = ?shared.settings.allow,
                auth = shared.settings.auth.is_some(),
                "{line}"
            );
        } else {
            // Per-request lines are at info (-v); the address is always printed.
            eprintln!("provgate: {line}");
        }
    }

    let reloader = {
        let shared = shared.clone();
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                reload(&shared).await;
            }
        })
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let which = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!("{which}: no longer accepting connections; finishing requests in flight");
        let _ = stop_tx.send(true);
    });

    let grace = shared.settings.shutdown_timeout;
    let app = api::router(shared.clone());
    let mut graceful = stop_rx.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = graceful.wait_for(|stop| *stop).await;
    });
    let mut deadline = stop_rx;
    let outcome = tokio::select! {
        served = async { server.await } => served.context("the server failed"),
        _ = async {
            let _ = deadline.wait_for(|stop| *stop).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(
                in_flight = shared.metrics.in_flight(),
                "requests still in flight after {grace:?}; exiting without them"
            );
            Ok(())
        }
    };
    reloader.abort();
    outcome.map_err(Failure::usage)?;
    tracing::info!("stopped");
    Ok(Exit::Allowed)
}

/// SIGHUP: load `--policy` again. A new artifact that does not load, or
/// fails `--policy-digest`, is refused and the current one keeps serving.
async fn reload(shared: &Arc<Shared>) {
    let current = shared.active().policy.artifact().digest.clone();
    let Some(path) = shared.settings.policy_path.clone() else {
        tracing::info!(
            policy = %current,
            "SIGHUP: the built-in policy is part of this binary; nothing to reload"
        );
        shared.metrics.reloaded("builtin");
        return;
    };
    let (load_path, digest) = (path.clone(), shared.settings.policy_digest.clone());
    let loaded =
        tokio::task::spawn_blocking(move || super::load(Some(&load_path), digest.as_deref(), super::Verdicts::Many))
            .await;
    let refused = |reason: String| {
        tracing::warn!(
            policy = %path.display(),
            current = %current,
            "policy reload refused, still serving {current}: {reason}"
        );
        shared.metrics.reloaded("refused");
    };
    match loaded {
        Ok(Ok(policy)) => {
            let new = policy.artifact().digest.clone();
            match shared.activate(policy) {
                Ok(()) => {
                    tracing::info!(old = %current, new = %new, "policy reloaded: {current} → {new}");
                    shared.metrics.reloaded("ok");
                }
                Err(e) => refused(format!("{e:#}")),
            }
        }
        Ok(Err(failure)) => refused(format!("{:#}", failure.error)),
        Err(e) => refused(format!("loading it failed: {e}")),
    }
}

/// `--decision-log`: records are handed to a thread of their own that
/// writes and flushes them, so no request waits on the disk.
pub(crate) struct DecisionLog {
    lines: std::sync::mpsc::Sender<Vec<u8>>,
}

impl DecisionLog {
    fn open(target: &str) -> Result<DecisionLog, Failure> {
        let mut out: Box<dyn std::io::Write + Send> = if target == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(target)
                    .with_context(|| format!("cannot open --decision-log {target}"))
                    .map_err(Failure::usage)?,
            )
        };
        let (lines, received) = std::sync::mpsc::channel::<Vec<u8>>();
        let target = target.to_owned();
        std::thread::Builder::new()
            .name("provgate-decisions".into())
            .spawn(move || {
                while let Ok(line) = received.recv() {
                    // One whole line per write; the OS appends it at once.
                    if let Err(e) = out.write_all(&line).and_then(|()| out.flush()) {
                        tracing::error!(target = %target, "cannot write the decision log: {e}");
                    }
                }
            })
            .context("cannot start the decision-log writer")
            .map_err(Failure::usage)?;
        Ok(DecisionLog { lines })
    }

    pub(crate) fn write(&self, record: &Record) {
        let _ = self.lines.send(record.line());
    }
}

/// The sha256 of the bearer token in the environment variable `name`.
fn auth_digest(name: &str) -> Result<[u8; 32], Failure> {
    let value = match std::env::var(name) {
        Ok(value) => value,
        Err(std::env::VarError::NotPresent) => {
            return Err(Failure::usage(anyhow!(
                "--auth-token-env {name}: the environment variable {name} is not set"
            )));
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(Failure::usage(anyhow!(
                "--auth-token-env {name}: the value of {name} is not valid Unicode"
            )));
        }
    };
    // A trailing newline from a secret file would otherwise lock every caller out.
    let token = value.trim();
    if token.is_empty() {
        return Err(Failure::usage(anyhow!(
            "--auth-token-env {name}: the environment variable {name} is empty"
        )));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Failure::usage(anyhow!(
            "--auth-token-env {name}: the token must be visible ASCII characters without spaces"
        )));
    }
    Ok(Sha256::digest(token.as_bytes()).into())
}

/// `--allow-registry` entries, checked and lower-cased.
fn allow_list(entries: &[String]) -> Result<Vec<String>, Failure> {
    entries
        .iter()
        .map(|entry| {
            let host = entry.trim().to_ascii_lowercase();
            let plain = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
            if plain {
                Ok(host)
            } else {
                Err(Failure::usage(anyhow!(
                    "--allow-registry {entry:?}: expected HOST or HOST:PORT as written in image references \
                     (no scheme, path or user name)"
                )))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_takes_hosts_and_ports_only() {
        let ok = allow_list(&["Registry.Example:5000".into(), "ghcr.io".into()]).expect("plain hosts");
        assert_eq!(ok, ["registry.example:5000", "ghcr.io"]);
        for bad in ["", "https://ghcr.io", "ghcr.io/org", "user@ghcr.io", "a b"] {
            assert!(allow_list(&[bad.into()]).is_err(), "{bad:?} accepted");
        }
    }
}
