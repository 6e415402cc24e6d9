//! `provgate serve`: the verifier as an HTTP service for the control plane
//! (docs/reference.md §7.4 and §8, docs/serve.md; issue 5).
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
//! - [`args`]: the flags; [`settings`]: what they decided, checked.
//! - [`api`]: the routes, request parsing, auth and the per-request log line;
//!   [`error`]: every way a request fails, as a status and a body.
//! - [`metrics`]: the Prometheus registry.
//! - here: start-up, the shared state ([`app`]: the routes without a
//!   socket), policy reload (SIGHUP) and graceful shutdown (SIGTERM, Ctrl-C).

mod api;
mod args;
mod error;
mod metrics;
mod settings;
#[cfg(test)]
mod tests;

pub use args::ServeArgs;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::signal::unix::{SignalKind, signal};

use super::{Outcome, Verdicts};
use crate::lookup::cache::CachePolicy;
use crate::lookup::{Source, Stack};
use crate::policy::Policy;
use crate::usage::UsageError;

use settings::Settings;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn run(args: &ServeArgs) -> anyhow::Result<Outcome> {
    let settings = Settings::from_args(args)?;
    // Exit 3 before anything listens when the artifact is unusable.
    let policy = super::load_policy(args.policy.path(), args.policy.digest(), Verdicts::Many)?;
    let runtime = super::multi_thread("provgate-serve")?;
    let result = runtime.block_on(serve(&args.listen, settings, policy));
    // Blocking threads may still wait on a hung Gitea look-up: don't wait for them.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
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

/// The routes and the state they share, without a socket: `serve` binds
/// them to one, the tests call them in process.
fn app(settings: Settings, policy: Policy) -> anyhow::Result<(Router, Arc<Shared>)> {
    let caches: Arc<Caches> = Arc::default();
    let lookup = Shared::cache_for(&caches, &settings, &policy).map_err(UsageError::from)?;
    let active = Arc::new(RwLock::new(Arc::new(Active { policy, lookup })));
    let metrics = metrics::Metrics::new(active.clone(), caches.clone());
    let shared = Arc::new(Shared {
        settings,
        active,
        caches,
        metrics,
    });
    Ok((api::router(shared.clone()), shared))
}

async fn serve(listen: &str, settings: Settings, policy: Policy) -> anyhow::Result<Outcome> {
    let (router, shared) = app(settings, policy)?;

    // Handlers first: SIGHUP's default action would end the process, and a
    // caller may signal as soon as it sees the address.
    let signals = || -> std::io::Result<_> {
        Ok((
            signal(SignalKind::hangup())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    };
    let (mut hangup, mut terminate, mut interrupt) = signals().context("cannot install signal handlers")?;

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))
        .map_err(UsageError::from)?;
    let addr = listener.local_addr().context("cannot read the address listened on")?;
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
    let mut graceful = stop_rx.clone();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
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
    outcome?;
    tracing::info!("stopped");
    Ok(Outcome::Allowed)
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
        tokio::task::spawn_blocking(move || super::load_policy(Some(&load_path), digest.as_deref(), Verdicts::Many))
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
        Ok(Err(e)) => refused(format!("{e:#}")),
        Err(e) => refused(format!("loading it failed: {e}")),
    }
}
