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
//! - here: start-up, the shared state ([`app_with`]: the routes without a
//!   socket), policy reload (SIGHUP) and graceful shutdown (SIGTERM, Ctrl-C);
//!   and connection hygiene: the accept loop, the time-outs and the
//!   connection cap (below, from `accept_loop` on).

mod api;
mod args;
mod error;
mod metrics;
mod openapi;
mod settings;
#[cfg(test)]
mod tests;

pub use args::ServeArgs;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::{FutureExt, StreamExt};
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;

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
    let connections = Connections::from_args(args, raise_open_file_limit());
    // Exit 3 before anything listens when the artifact is unusable.
    let policy = super::load_policy(args.policy.path(), args.policy.digest(), Verdicts::Many)?;
    let runtime = super::multi_thread("provgate-serve")?;
    let result = runtime.block_on(serve(&args.listen, settings, connections, policy));
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
    connections: Connections,
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

/// [`app_with`] with the default connection limits, for the tests.
#[cfg(test)]
fn app(settings: Settings, policy: Policy) -> anyhow::Result<(Router, Arc<Shared>)> {
    app_with(settings, Connections::default(), policy)
}

/// The routes and the state they share, without a socket: `serve` binds
/// them to one, the tests call them in process (through `app`).
fn app_with(settings: Settings, connections: Connections, policy: Policy) -> anyhow::Result<(Router, Arc<Shared>)> {
    let caches: Arc<Caches> = Arc::default();
    let lookup = Shared::cache_for(&caches, &settings, &policy).map_err(UsageError::from)?;
    let active = Arc::new(RwLock::new(Arc::new(Active { policy, lookup })));
    let metrics = metrics::Metrics::new(active.clone(), caches.clone());
    let shared = Arc::new(Shared {
        settings,
        connections,
        active,
        caches,
        metrics,
    });
    Ok((api::router(shared.clone()), shared))
}

async fn serve(listen: &str, settings: Settings, connections: Connections, policy: Policy) -> anyhow::Result<Outcome> {
    let (router, shared) = app_with(settings, connections, policy)?;

    // Handlers first: SIGHUP's default action would end the process, and a
    // caller may signal as soon as it sees the address.
    let signals = || -> std::io::Result<_> {
        Ok((
            signal(SignalKind::hangup())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    };
    let (hangup, mut terminate, mut interrupt) = signals().context("cannot install signal handlers")?;

    let listener = TcpListener::bind(listen)
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
            crate::logging::say(&format!("provgate: {line}"));
        }
    }

    let reloader = {
        let shared = shared.clone();
        tokio::spawn(async move { follow_policy(&shared, hangup).await })
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
    let server = accept_loop(listener, router, shared.clone(), stop_rx.clone());
    let mut deadline = stop_rx;
    tokio::select! {
        () = server => {}
        _ = async {
            let _ = deadline.wait_for(|stop| *stop).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(
                in_flight = shared.metrics.in_flight(),
                "requests still in flight after {grace:?}; exiting without them"
            );
        }
    };
    reloader.abort();
    tracing::info!("stopped");
    Ok(Outcome::Allowed)
}

/// How much of a loader's error a refused reload's log line repeats: the
/// line stays one short line (a 300-character budget) whatever the loader
/// says.
const MAX_REASON_CHARS: usize = 100;

/// SIGHUP, and every `--policy-refresh`: one at a time, in this task, so a
/// signal and a refresh never load two artifacts at once.
async fn follow_policy(shared: &Arc<Shared>, mut hangup: tokio::signal::unix::Signal) {
    let mut ticks = shared.settings.policy_refresh.map(|every| {
        let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    let mut last_refused = None;
    loop {
        let tick = async {
            match ticks.as_mut() {
                Some(ticks) => {
                    ticks.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            got = hangup.recv() => match got {
                Some(()) => reload(shared).await,
                None => break,
            },
            () = tick => refresh(shared, &mut last_refused).await,
        }
    }
}

/// SIGHUP: load `--policy` again (an `oci://` one with the same
/// `--policy-key` and registry flags as at start-up: a tag is resolved
/// anew). A new artifact that does not load, fails `--policy-digest` or
/// its signature check, is refused and the current one keeps serving.
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
    let settings = &shared.settings;
    let (load_path, digest) = (path.clone(), settings.policy_digest.clone());
    let (key, registry) = (settings.policy_key.clone(), settings.policy_registry.clone());
    let loaded = tokio::task::spawn_blocking(move || {
        let at = super::args::PolicyAt {
            path: Some(&load_path),
            key: key.as_deref(),
            registry: Some(&registry),
        };
        super::load_policy(at, digest.as_deref(), Verdicts::Many)
    })
    .await;
    let refused = |reason: String| {
        // One short line: a loader's error may run to a dump of the bytes.
        // The reason names the file or reference.
        let reason = crate::policy::short_reason(&reason, MAX_REASON_CHARS);
        tracing::warn!("policy reload refused, still serving {current}: {reason}");
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

/// `--policy-refresh`: resolve the tag of `--policy oci://REPO:TAG`; when
/// it names another manifest than the one serving, pull that, check it
/// (every byte, its cosign signature with `--policy-key`, `--policy-digest`),
/// compile it off the request workers and swap it in. Requests keep being
/// answered throughout, by the old policy until the swap. An artifact that
/// fails is refused (counted every time, logged once for the same reason)
/// and the old one keeps serving; the next refresh tries again.
async fn refresh(shared: &Arc<Shared>, last_refused: &mut Option<String>) {
    use crate::policy::oci::{self, OciRef};
    let active = shared.active();
    let artifact = active.policy.artifact();
    let settings = &shared.settings;
    let (Some(path), Some(manifest)) = (settings.policy_path.as_deref(), oci::manifest_digest(artifact)) else {
        return;
    };
    let Some(reference) = path.to_str().and_then(|p| OciRef::parse(p).ok()) else {
        return;
    };
    let current = artifact.digest.clone();
    let followed = async {
        let key = settings
            .policy_key
            .as_deref()
            .map(crate::policy::signature::PublicKey::from_file)
            .transpose()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let opts = settings.policy_registry.options();
        let Some(resolved) = oci::follow(&reference, &opts, key.as_ref(), manifest, &artifact.bytes).await? else {
            return Ok(None);
        };
        if let Some(expected) = &settings.policy_digest {
            resolved.artifact.require_digest(expected)?;
        }
        let pinned = resolved.artifact.origin.to_string();
        let policy = tokio::task::spawn_blocking(move || super::load_artifact(resolved.artifact, Verdicts::Many))
            .await
            .map_err(|e| anyhow::anyhow!("loading it failed: {e}"))??;
        shared.activate(policy)?;
        anyhow::Ok(Some(pinned))
    };
    let shown = format!("{}{}", oci::SCHEME, reference.reference);
    match followed.await {
        Ok(None) => tracing::debug!(policy = %shown, "policy refresh: the tag has not moved"),
        Ok(Some(pinned)) => {
            let new = shared.active().policy.artifact().digest.clone();
            tracing::info!(
                old = %current,
                new = %new,
                "policy refreshed: {shown} moved to {pinned}: {current} → {new}"
            );
            shared.metrics.reloaded("ok");
            *last_refused = None;
        }
        Err(e) => {
            let reason = crate::policy::short_reason(&format!("{e:#}"), MAX_REASON_CHARS + 40);
            if last_refused.as_deref() == Some(reason.as_str()) {
                tracing::debug!(policy = %shown, "policy refresh refused again, still serving {current}: {reason}");
            } else {
                tracing::warn!(policy = %shown, "policy refresh refused, still serving {current}: {reason}");
            }
            shared.metrics.reloaded("refused");
            *last_refused = Some(reason);
        }
    }
}

// ---------------------------------------------------------------------------
// Connection hygiene: the accept loop, the time-outs, the cap.
// ---------------------------------------------------------------------------

/// How long a client may take, and how many are served at once
/// (docs/serve.md, "Connections").
#[derive(Clone, Copy, Debug)]
pub(crate) struct Connections {
    /// Connections served at once; above it a new one is shed (503, closed).
    pub max: usize,
    /// A new connection's first request, or a request whose first byte has
    /// arrived, must have sent all its headers within this.
    pub header_timeout: Duration,
    /// Once the headers are in, the whole body must be within this (408).
    pub body_timeout: Duration,
    /// A kept-alive connection may wait this long for its next request.
    pub idle_timeout: Duration,
}

/// The `--max-connections` used when none is given and the open-file
/// limit is unknown or unlimited.
const MAX_CONNECTIONS: usize = 1024;
/// File descriptors kept for everything but client connections: the
/// policy, the log, Gitea's and the registry's connections.
const RESERVED_FILES: u64 = 64;

impl Default for Connections {
    fn default() -> Connections {
        Connections {
            max: MAX_CONNECTIONS,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
        }
    }
}

impl Connections {
    fn from_args(args: &ServeArgs, open_files: Option<u64>) -> Connections {
        let max = match args.max_connections {
            Some(n) => n as usize,
            None => default_max_connections(open_files),
        };
        tracing::debug!(max_connections = max, "connection cap");
        Connections {
            max,
            header_timeout: args.header_timeout,
            body_timeout: args.body_timeout,
            idle_timeout: args.idle_timeout,
        }
    }
}

/// Half the open-file limit left after [`RESERVED_FILES`] (each request
/// may open a registry and a Gitea connection of its own), between 16 and
/// [`MAX_CONNECTIONS`].
fn default_max_connections(open_files: Option<u64>) -> usize {
    match open_files {
        Some(limit) if limit < u64::MAX => {
            (limit.saturating_sub(RESERVED_FILES) / 2).clamp(16, MAX_CONNECTIONS as u64) as usize
        }
        _ => MAX_CONNECTIONS,
    }
}

/// Raises the soft open-file limit to the hard one (the usual soft 1024 is
/// used up by a thousand idle sockets); the limit in force afterwards.
fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!("cannot read the open-file limit: {}", std::io::Error::last_os_error());
        return None;
    }
    let (soft, hard) = (limit.rlim_cur, limit.rlim_max);
    if soft >= hard {
        tracing::info!(open_files = soft, "open-file limit {soft} (already the hard limit)");
        return Some(soft);
    }
    let raised = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit only reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        tracing::info!(
            open_files = hard,
            "open-file limit raised from {soft} to {hard} (the hard limit)"
        );
        Some(hard)
    } else {
        tracing::warn!(
            open_files = soft,
            "cannot raise the open-file limit from {soft} to {hard}: {}",
            std::io::Error::last_os_error()
        );
        Some(soft)
    }
}

/// Accepts connections until `stop`, then waits for the open ones to end
/// (each finishes the request it is answering, then closes).
///
/// Never stops accepting and never spins: above `--max-connections` a new
/// connection is answered 503 and closed at once; when `accept` fails for
/// want of file descriptors, one spare descriptor kept for the purpose is
/// let go, the waiting connection accepted and shed the same way, and the
/// spare taken again; any other failure backs off briefly.
async fn accept_loop(listener: TcpListener, router: Router, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let limits = shared.connections;
    let slots = Arc::new(Semaphore::new(limits.max));
    // Every connection holds a receiver; `closed()` once all are gone.
    let (open_tx, open_rx) = watch::channel(());
    let mut builder = http1::Builder::new();
    // The watchdog below enforces the header and idle time-outs: hyper's
    // own header time-out also runs while a kept-alive connection is idle.
    builder.keep_alive(true).header_read_timeout(None);
    let mut spare = spare_descriptor();
    let mut shed_warned = Every::new(Duration::from_secs(10));
    let mut accept_warned = Every::new(Duration::from_secs(10));
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let error = match accepted {
            Ok((stream, _)) => {
                match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        let connection =
                            serve_connection(stream, router.clone(), builder.clone(), shared.clone(), stop.clone());
                        let open = open_rx.clone();
                        tokio::spawn(async move {
                            connection.await;
                            drop((slot, open));
                        });
                    }
                    Err(_) => {
                        if shed_warned.now() {
                            tracing::warn!(
                                max_connections = limits.max,
                                "{} connections open (--max-connections): new ones are answered 503 and closed",
                                limits.max
                            );
                        }
                        shed(stream, &shared);
                    }
                }
                continue;
            }
            Err(error) => error,
        };
        if per_connection(&error) {
            continue;
        }
        shared.metrics.accept_failed();
        if accept_warned.now() {
            tracing::warn!("cannot accept a connection: {error}; backing off");
        }
        if out_of_descriptors(&error)
            && let Some(file) = spare.take()
        {
            drop(file);
            let shed_one = match listener.accept().now_or_never() {
                Some(Ok((stream, _))) => {
                    shed(stream, &shared);
                    true
                }
                _ => false,
            };
            spare = spare_descriptor();
            if spare.is_some() && shed_one {
                // Shed one: there may be more waiting, and a descriptor for each.
                continue;
            }
        }
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        if spare.is_none() {
            spare = spare_descriptor();
        }
    }
    // No longer accepting: a new connection is refused from here on.
    drop(listener);
    drop(open_rx);
    open_tx.closed().await;
}

/// A descriptor to let go of when `accept` runs out of them.
fn spare_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// A failure of one connection that was never ours (it went away before
/// it was accepted): accept the next.
fn per_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    ) || matches!(error.raw_os_error(), Some(libc::EPROTO | libc::EPERM))
}

fn out_of_descriptors(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// What a shed connection is told, whole, before it is closed.
fn shed_answer() -> &'static [u8] {
    static ANSWER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    ANSWER.get_or_init(|| {
        let body = json!({
            "error": "this server is serving as many connections as it may (--max-connections, or its open-file \
                      limit); try again shortly"
        })
        .to_string();
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             retry-after: 1\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    })
}

/// Answers 503 and closes, without waiting for anything: what the client
/// has sent already is read first (so the close is a FIN, not a reset),
/// the answer fits any socket buffer, and the descriptor is let go at once.
fn shed(stream: TcpStream, shared: &Shared) {
    shared.metrics.shed();
    let mut scratch = [0u8; 4096];
    while let Ok(n) = stream.try_read(&mut scratch) {
        if n < scratch.len() {
            break;
        }
    }
    let _ = stream.try_write(shed_answer());
}

/// Logs at most once per `period`.
struct Every {
    period: Duration,
    last: Option<Instant>,
}

impl Every {
    fn new(period: Duration) -> Every {
        Every { period, last: None }
    }

    fn now(&mut self) -> bool {
        let now = Instant::now();
        let due = self.last.is_none_or(|last| now.duration_since(last) >= self.period);
        if due {
            self.last = Some(now);
        }
        due
    }
}

/// Where a connection is: no byte of its first request yet, reading a
/// request's headers, answering one, or kept alive between requests.
const NEW: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;
const IDLE: u8 = 3;

/// One connection's phase and since when, written by its socket reads and
/// its service calls, read by its watchdog (all on the connection's task).
struct Phase {
    start: Instant,
    phase: AtomicU8,
    since_ms: AtomicU64,
    changed: Notify,
    /// A request was answered before its body was read (413, 408).
    unread: AtomicBool,
}

impl Phase {
    fn new() -> Phase {
        Phase {
            start: Instant::now(),
            phase: AtomicU8::new(NEW),
            since_ms: AtomicU64::new(0),
            changed: Notify::new(),
            unread: AtomicBool::new(false),
        }
    }

    fn enter(&self, phase: u8) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.since_ms.store(ms, Ordering::Release);
        self.phase.store(phase, Ordering::Release);
        self.changed.notify_one();
    }

    /// Bytes came in: the first of a request's head, when waiting for one.
    fn read_some(&self) {
        if matches!(self.phase.load(Ordering::Acquire), NEW | IDLE) {
            self.enter(HEAD);
        }
    }

    /// When the current phase runs out, and the name of the time-out that
    /// ends it (none while a request is being answered: that phase ends
    /// with the answer, and the body has a time-out of its own).
    fn deadline(&self, limits: &Connections) -> (Instant, Option<&'static str>) {
        let since = self.start + Duration::from_millis(self.since_ms.load(Ordering::Acquire));
        match self.phase.load(Ordering::Acquire) {
            NEW | HEAD => (since + limits.header_timeout, Some("header")),
            IDLE => (since + limits.idle_timeout, Some("idle")),
            _ => (Instant::now() + limits.idle_timeout, None),
        }
    }
}

/// In a request's extensions: its connection's [`Phase`], for
/// [`read_body`] to say that it answered without reading the body.
#[derive(Clone)]
struct Unread(Arc<Phase>);

/// The socket, telling its [`Phase`] when bytes arrive.
struct Watched {
    /// Taken only when dropped.
    stream: Option<TcpStream>,
    phase: Arc<Phase>,
}

impl Watched {
    fn stream(self: Pin<&mut Self>) -> Pin<&mut TcpStream> {
        Pin::new(
            self.get_mut()
                .stream
                .as_mut()
                .expect("the socket is taken only when dropped"),
        )
    }
}

/// Sockets being drained after an early answer, at most [`LINGERERS`].
static LINGERING: AtomicUsize = AtomicUsize::new(0);
const LINGERERS: usize = 64;

impl Drop for Watched {
    /// After an answer given before the body was read (hyper has sent it
    /// and a FIN), what the client still sends is read and dropped for a
    /// moment before the socket closes: closing with unread bytes would
    /// reset the connection, and a client still writing its body might
    /// then lose the answer with it. At most 1 MiB or 2 s, and only
    /// [`LINGERERS`] sockets at once.
    fn drop(&mut self) {
        if !self.phase.unread.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if LINGERING.fetch_add(1, Ordering::AcqRel) >= LINGERERS {
            LINGERING.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let Some(mut stream) = self.stream.take() else {
            LINGERING.fetch_sub(1, Ordering::AcqRel);
            return;
        };
        runtime.spawn(async move {
            let drain = async {
                let mut scratch = [0u8; 16 * 1024];
                let mut total = 0;
                while total < (1 << 20) {
                    match tokio::io::AsyncReadExt::read(&mut stream, &mut scratch).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => total += n,
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
            LINGERING.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let phase = self.phase.clone();
        let poll = self.stream().poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            phase.read_some();
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.stream().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.stream().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }
}

/// Serves one connection (HTTP/1.1, kept alive) until it ends, times out,
/// or — after `stop` — has finished the request it was answering.
async fn serve_connection(
    stream: TcpStream,
    router: Router,
    builder: http1::Builder,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let _open = shared.metrics.connection_opened();
    let _ = stream.set_nodelay(true);
    let limits = shared.connections;
    let phase = Arc::new(Phase::new());
    let io = TokioIo::new(Watched {
        stream: Some(stream),
        phase: phase.clone(),
    });
    let routes = TowerToHyperService::new(router);
    let service = {
        let phase = phase.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            phase.enter(BUSY);
            request.extensions_mut().insert(Unread(phase.clone()));
            let answer = routes.call(request);
            let phase = phase.clone();
            async move {
                let response = answer.await;
                phase.enter(IDLE);
                response
            }
        })
    };
    let connection = builder.serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let mut stopping = false;
    loop {
        let (deadline, _) = phase.deadline(&limits);
        tokio::select! {
            done = connection.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!("connection ended: {e}");
                }
                return;
            }
            _ = stop.wait_for(|stop| *stop), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
            () = phase.changed.notified() => {}
            () = tokio::time::sleep_until(deadline) => {
                // The phase may have moved on since the sleep began.
                let (deadline, timeout) = phase.deadline(&limits);
                if let Some(timeout) = timeout && deadline <= Instant::now() {
                    shared.metrics.timed_out(timeout);
                    tracing::debug!("connection closed: no request within the {timeout} time-out");
                    return;
                }
            }
        }
    }
}

/// Reads the whole body before any handler sees it: a `Content-Length`
/// over [`MAX_BODY_BYTES`] is answered 413 at once, unread; a body that
/// grows past it 413; one not in within `--body-timeout` 408. Either closes
/// the connection. The handler gets the bytes read.
pub(super) async fn read_body(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let unread = request.extensions().get::<Unread>().cloned();
    let refused = |status, message| {
        if let Some(Unread(phase)) = &unread {
            phase.unread.store(true, Ordering::Release);
        }
        body_refused(status, message)
    };
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return refused(StatusCode::PAYLOAD_TOO_LARGE, too_large());
    }
    let (parts, body) = request.into_parts();
    let mut chunks = body.into_data_stream();
    let read = async {
        let mut bytes = Vec::new();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                return Ok(None);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok::<_, axum::Error>(Some(bytes))
    };
    let timeout = shared.connections.body_timeout;
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(Some(bytes))) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Ok(Ok(None)) => refused(StatusCode::PAYLOAD_TOO_LARGE, too_large()),
        Ok(Err(e)) => refused(StatusCode::BAD_REQUEST, format!("cannot read the body: {e}")),
        Err(_) => refused(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} (--body-timeout)",
                humantime::format_duration(timeout)
            ),
        ),
    }
}

fn too_large() -> String {
    format!("the body is larger than {} KiB", MAX_BODY_BYTES / 1024)
}

/// `{"error": …}` with `Connection: close`: what is left of the body is
/// never read.
fn body_refused(status: StatusCode, message: String) -> Response {
    let mut response = (status, axum::Json(json!({ "error": message }))).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod connection_tests {
    use super::*;

    #[test]
    fn the_default_cap_is_half_the_descriptors_left_between_16_and_1024() {
        assert_eq!(default_max_connections(Some(1024)), 480);
        assert_eq!(default_max_connections(Some(64)), 16);
        assert_eq!(default_max_connections(Some(1 << 20)), 1024);
        assert_eq!(default_max_connections(Some(u64::MAX)), 1024);
        assert_eq!(default_max_connections(None), 1024);
    }

    #[test]
    fn each_phase_has_its_time_out_and_answering_has_none() {
        let limits = Connections {
            max: 1,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
        };
        let phase = Phase::new();
        let within = |(deadline, _): (Instant, Option<&str>), of: Duration| {
            let left = deadline.saturating_duration_since(Instant::now());
            left <= of && left + Duration::from_secs(5) > of
        };
        assert_eq!(phase.deadline(&limits).1, Some("header"));
        assert!(within(phase.deadline(&limits), limits.header_timeout));
        phase.read_some();
        assert_eq!(phase.deadline(&limits).1, Some("header"));
        phase.enter(BUSY);
        assert_eq!(phase.deadline(&limits).1, None);
        // Bytes while answering (the body) change nothing.
        phase.read_some();
        assert_eq!(phase.deadline(&limits).1, None);
        phase.enter(IDLE);
        assert_eq!(phase.deadline(&limits).1, Some("idle"));
        assert!(within(phase.deadline(&limits), limits.idle_timeout));
        // The next request's first byte: its headers have the header time-out.
        phase.read_some();
        assert_eq!(phase.deadline(&limits).1, Some("header"));
        assert!(within(phase.deadline(&limits), limits.header_timeout));
    }
}
