//! How long peers take to answer, for `serve`'s histograms: each request
//! to Gitea, a registry or the pins URL, from sending it to its response's
//! headers. Kept process-wide, like the retry counts, because the requests
//! are made deep below the server by code that knows nothing of metrics.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use tokio::time::Instant;

use crate::retry::Peer;

/// Latency buckets, in seconds: 0.5 ms to 30 s (the longest time-out a
/// caller is likely to set).
pub const BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabel {
    peer: &'static str,
}

type Histograms = Family<PeerLabel, Histogram, fn() -> Histogram>;

static ANSWERS: LazyLock<Histograms> = LazyLock::new(|| {
    let family: Histograms = Family::new_with_constructor(|| Histogram::new(BUCKETS));
    // Every peer has a series from the start, so that a dashboard can tell
    // "no requests" from "no such metric".
    for peer in Peer::ALL {
        drop(family.get_or_create(&PeerLabel { peer: peer.as_str() }));
    }
    family
});

/// The histograms, by peer, to register with a metrics registry.
pub fn answers() -> Histograms {
    ANSWERS.clone()
}

/// `request`, its time counted when it ends: at the answer's headers, or
/// when a time-out drops it, so that a peer that hangs shows in the
/// histogram at the time-out rather than not at all.
pub async fn timed<F: Future>(peer: Peer, request: F) -> F::Output {
    let _timer = Timer {
        peer,
        since: Instant::now(),
    };
    request.await
}

struct Timer {
    peer: Peer,
    since: Instant,
}

impl Drop for Timer {
    fn drop(&mut self) {
        ANSWERS
            .get_or_create(&PeerLabel {
                peer: self.peer.as_str(),
            })
            .observe(self.since.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;

    #[tokio::test]
    async fn a_request_is_counted_when_its_timer_drops_even_if_it_was_cut_off() {
        let count = || {
            let mut registry = Registry::default();
            registry.register("answers", "", answers());
            let mut text = String::new();
            encode(&mut text, &registry).unwrap();
            let line = text
                .lines()
                .find(|l| l.starts_with("answers_count{peer=\"pins\"}"))
                .unwrap_or_else(|| panic!("{text}"))
                .to_string();
            line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
        };
        let before = count();
        let cut_off = tokio::time::timeout(
            std::time::Duration::from_millis(10),
            timed(Peer::Pins, std::future::pending::<()>()),
        )
        .await;
        assert!(cut_off.is_err());
        assert!(count() > before, "a request dropped by its time-out is still counted");
    }
}
