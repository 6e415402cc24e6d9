//! `GET /metrics`: Prometheus (OpenMetrics) text from `prometheus-client`.
//!
//! Every label has a small, fixed set of values: events outside the
//! docs/reference.md §4 list are counted as `other`, paths outside the server's routes as
//! `other`; no image, reference, repository or SHA is ever a label.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use provgate_contract::Event;

use super::{Active, Caches};
use crate::latency::BUCKETS;
use crate::retry::Peer;
use crate::verdict::Mode;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    event: &'static str,
    mode: &'static str,
    allowed: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InputLabels {
    input: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    path: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TimeoutLabels {
    timeout: &'static str,
}

pub(super) struct Metrics {
    registry: Registry,
    verdicts: Family<VerdictLabels, Counter>,
    latency: Family<InputLabels, Histogram>,
    requests: Family<HttpLabels, Counter>,
    in_flight: Gauge<i64, AtomicI64>,
    fetches: Family<OutcomeLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    last_reload: Gauge<f64, AtomicU64>,
    connections_open: Gauge<i64, AtomicI64>,
    connections_shed: Counter,
    connection_timeouts: Family<TimeoutLabels, Counter>,
    accept_errors: Counter,
}

/// Decrements the open-connections gauge when a connection ends.
pub(super) struct Open(Gauge<i64, AtomicI64>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Decrements the in-flight gauge when a request ends, however it ends
/// (a client that hangs up drops the request's future).
pub(super) struct InFlight(Gauge<i64, AtomicI64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    pub fn new(active: Arc<RwLock<Arc<Active>>>, caches: Arc<Caches>) -> Metrics {
        let mut registry = Registry::with_prefix("provgate");
        let verdicts = Family::<VerdictLabels, Counter>::default();
        registry.register(
            "verdicts",
            "Verdicts returned, by event, mode and allowed",
            verdicts.clone(),
        );
        let latency = Family::<InputLabels, Histogram>::new_with_constructor(|| Histogram::new(BUCKETS));
        registry.register_with_unit(
            "verify_duration",
            "Time from request to verdict for POST /v1/verify (fetch included for `image` requests)",
            Unit::Seconds,
            latency.clone(),
        );
        registry.register_with_unit(
            "peer_request_duration",
            "Time from sending a request to Gitea, a registry or the pins URL to its answer's headers, per attempt, \
             by peer (a request cut off by its time-out counts at the cut-off)",
            Unit::Seconds,
            crate::latency::answers(),
        );
        let requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        let in_flight = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being answered",
            in_flight.clone(),
        );
        let fetches = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "registry_fetches",
            "Image fetches for `image` requests: ok, failed (502) or refused (registry not allowed, 403)",
            fetches.clone(),
        );
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "policy_reloads",
            "Policy reloads (SIGHUP, and --policy-refresh when the tag moved): ok, refused (old policy kept) \
             or builtin (nothing to reload)",
            reloads.clone(),
        );
        let last_reload = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "policy_last_reload_timestamp",
            "When the policy being served was loaded (start-up or the last successful reload), in Unix time",
            Unit::Seconds,
            last_reload.clone(),
        );
        let connections_open = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "connections_open",
            "Client connections being served (at most --max-connections)",
            connections_open.clone(),
        );
        let connections_shed = Counter::default();
        registry.register(
            "connections_shed",
            "Connections answered 503 and closed at once: --max-connections were open, or no file descriptor was left",
            connections_shed.clone(),
        );
        let connection_timeouts = Family::<TimeoutLabels, Counter>::default();
        registry.register(
            "connection_timeouts",
            "Connections closed by a time-out: header (--header-timeout) or idle (--idle-timeout)",
            connection_timeouts.clone(),
        );
        let accept_errors = Counter::default();
        registry.register(
            "accept_errors",
            "Failed accepts of a new connection (e.g. out of file descriptors); the server backs off and goes on",
            accept_errors.clone(),
        );
        // The usual `build_info` gauge: always 1, the version in its label.
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "The provgate build serving: always 1, by version", build);
        registry.register_collector(Box::new(Live { active, caches }));
        // Made with the policy loaded at start-up.
        last_reload.set(unix_now());
        Metrics {
            registry,
            verdicts,
            latency,
            requests,
            in_flight,
            fetches,
            reloads,
            last_reload,
            connections_open,
            connections_shed,
            connection_timeouts,
            accept_errors,
        }
    }

    pub fn connection_opened(&self) -> Open {
        self.connections_open.inc();
        Open(self.connections_open.clone())
    }

    pub fn shed(&self) {
        self.connections_shed.inc();
    }

    pub fn timed_out(&self, timeout: &'static str) {
        self.connection_timeouts.get_or_create(&TimeoutLabels { timeout }).inc();
    }

    pub fn accept_failed(&self) {
        self.accept_errors.inc();
    }

    pub fn enter(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    pub fn responded(&self, path: &'static str, status: u16) {
        self.requests.get_or_create(&HttpLabels { path, status }).inc();
    }

    pub fn judged(&self, event: &str, mode: Mode, allowed: bool, input: &'static str, latency: Duration) {
        // The events the contract names; anything else an artifact says is `other`.
        let event = Event::ALL
            .iter()
            .map(|e| e.as_str())
            .find(|e| *e == event)
            .unwrap_or("other");
        let labels = VerdictLabels {
            event,
            mode: mode.as_str(),
            allowed,
        };
        self.verdicts.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&InputLabels { input })
            .observe(latency.as_secs_f64());
    }

    pub fn fetched(&self, outcome: &'static str) {
        self.fetches.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn reloaded(&self, result: &'static str) {
        self.reloads.get_or_create(&ResultLabels { result }).inc();
        if result == "ok" {
            self.loaded_now();
        }
    }

    /// The policy being served was loaded now.
    fn loaded_now(&self) {
        self.last_reload.set(unix_now());
    }

    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// What is read at scrape time: the look-up caches' counters and the policy
/// being served.
struct Live {
    active: Arc<RwLock<Arc<Active>>>,
    caches: Arc<Caches>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (mut found, mut not_found, mut unavailable, mut moved, mut hits) = (0u64, 0u64, 0u64, 0u64, 0u64);
        for stack in self.caches.lock().unwrap_or_else(|e| e.into_inner()).values() {
            let stats = stack.stats();
            found += stats.found.load(Ordering::Relaxed);
            not_found += stats.not_found.load(Ordering::Relaxed);
            unavailable += stats.unavailable.load(Ordering::Relaxed);
            moved += stats.moved.load(Ordering::Relaxed);
            hits += stats.hits.load(Ordering::Relaxed);
        }

        let counter = ConstCounter::new(0u64);
        let mut lookups = encoder.encode_descriptor(
            "gitea_lookups",
            "Commit look-ups sent to Gitea (cache misses), by answer.",
            None,
            counter.metric_type(),
        )?;
        for (outcome, n) in [
            ("found", found),
            ("not_found", not_found),
            ("unavailable", unavailable),
            ("moved", moved),
        ] {
            ConstCounter::new(n).encode(lookups.encode_family(&OutcomeLabels { outcome })?)?;
        }
        ConstCounter::new(hits).encode(encoder.encode_descriptor(
            "gitea_cache_hits",
            "Commit look-ups answered from the shared cache (or by waiting for the same look-up in flight).",
            None,
            counter.metric_type(),
        )?)?;

        let mut retries = encoder.encode_descriptor(
            "retries",
            "Requests made again after a refused or reset connection, a 5xx or a 429, by peer.",
            None,
            counter.metric_type(),
        )?;
        for peer in Peer::ALL {
            ConstCounter::new(crate::retry::retries(peer))
                .encode(retries.encode_family(&PeerLabels { peer: peer.as_str() })?)?;
        }

        let active = self.active.read().unwrap_or_else(|e| e.into_inner()).clone();
        let description = active.policy.description();
        let info = Info::new([
            ("name", description.name.clone()),
            ("version", description.version.clone()),
            ("digest", description.digest.clone()),
        ]);
        info.encode(encoder.encode_descriptor(
            "policy",
            "The policy artifact being served.",
            None,
            info.metric_type(),
        )?)
    }
}
