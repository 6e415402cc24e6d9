//! When a failed request is made again (docs/reference.md §5): only a
//! refused or reset connection, a 5xx or a 429 — never another 4xx, which
//! would only be answered the same — at most [`MAX_ATTEMPTS`] times, with
//! exponential back-off and jitter, `Retry-After` honoured when it fits,
//! and all of it inside the caller's one total time-out. Gitea look-ups,
//! registry GETs and the pins URL share this one schedule.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::time::Instant;

/// Requests one exchange makes at most: the first and three retries.
pub const MAX_ATTEMPTS: u32 = 4;

/// The first back-off; each retry waits up to twice as long as the one
/// before, drawn from the upper half of that (jitter), so that many
/// requests failing together do not come back together.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Whether a failed request is worth making again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    No,
    /// `after`: the server's `Retry-After`, when it sent one that parses.
    Yes {
        after: Option<Duration>,
    },
}

impl Retry {
    /// For an answer: 429 (with its `Retry-After`) and 5xx may pass later.
    pub fn for_status(status: StatusCode, headers: &HeaderMap) -> Retry {
        if status == StatusCode::TOO_MANY_REQUESTS {
            Retry::Yes {
                after: headers.get(RETRY_AFTER).and_then(retry_after),
            }
        } else if status.is_server_error() {
            Retry::Yes { after: None }
        } else {
            Retry::No
        }
    }

    /// For a request that got no answer: a refused connection or one that
    /// broke (reset, aborted, closed mid-answer) may pass when made again;
    /// a time-out has used the time a retry would need, and a TLS failure
    /// (a certificate refused, plain HTTP on the port) would only repeat.
    pub fn for_error(e: &reqwest::Error) -> Retry {
        // A certificate the client refuses is refused again.
        let tls_refused = crate::tls::explain(&crate::http::error_chain(e), "", None).is_some();
        if (e.is_connect() || was_reset(e)) && !tls_refused {
            Retry::Yes { after: None }
        } else {
            Retry::No
        }
    }
}

/// Whom a retried request was for, as `serve`'s metrics count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Gitea,
    Registry,
    Pins,
}

impl Peer {
    pub const ALL: [Peer; 3] = [Peer::Gitea, Peer::Registry, Peer::Pins];

    pub fn as_str(self) -> &'static str {
        match self {
            Peer::Gitea => "gitea",
            Peer::Registry => "registry",
            Peer::Pins => "pins",
        }
    }
}

static RETRIES: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// Requests made again so far in this process, for `peer`.
pub fn retries(peer: Peer) -> u64 {
    RETRIES[peer as usize].load(Ordering::Relaxed)
}

/// The attempts of one exchange, under its deadline.
pub struct Schedule {
    deadline: Instant,
    timeout: Duration,
    attempt: u32,
    peer: Peer,
}

impl Schedule {
    /// An exchange with `peer` that must end within `timeout` from now.
    pub fn new(peer: Peer, timeout: Duration) -> Schedule {
        Schedule {
            deadline: Instant::now() + timeout,
            timeout,
            attempt: 1,
            peer,
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The attempt under way, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// After a failed attempt: how long to wait before the next one, or
    /// why there is none (to add to the failure's reason).
    pub fn next(&mut self, retry: Retry) -> Result<Duration, String> {
        let Retry::Yes { after } = retry else {
            return Err(String::new());
        };
        if self.attempt >= MAX_ATTEMPTS {
            return Err(format!(" (gave up after {} attempts)", self.attempt));
        }
        let wait = after.unwrap_or_else(|| backoff(self.attempt));
        if Instant::now() + wait >= self.deadline {
            return Err(match after {
                Some(after) => format!(
                    " (not retried: its Retry-After of {after:?} does not fit in the {:?} time-out)",
                    self.timeout
                ),
                None => format!(" (not retried: no time is left of the {:?} time-out)", self.timeout),
            });
        }
        self.attempt += 1;
        RETRIES[self.peer as usize].fetch_add(1, Ordering::Relaxed);
        Ok(wait)
    }

    /// " (attempt N)" after the first, for a time-out's reason.
    pub fn which(&self) -> String {
        if self.attempt > 1 {
            format!(" (attempt {})", self.attempt)
        } else {
            String::new()
        }
    }
}

/// `Retry-After` as delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn retry_after(value: &reqwest::header::HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The wait before retry number `attempt` (1 for the first): doubling from
/// [`FIRST_BACKOFF`], each drawn at random from its upper half.
fn backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let ceiling = FIRST_BACKOFF.saturating_mul(1 << (attempt.max(1) - 1).min(10));
    // A fresh RandomState is seeded from the OS: randomness enough for
    // jitter, without a dependency for it.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(attempt);
    let fraction = (hasher.finish() % 1000) as u32;
    ceiling / 2 + (ceiling / 2) * fraction / 1000
}

/// Did the connection break (reset, aborted, closed early) rather than the
/// server answer?
pub fn was_reset(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            )
        {
            return true;
        }
        if let Some(hyper) = err.downcast_ref::<hyper::Error>()
            && hyper.is_incomplete_message()
        {
            return true;
        }
        source = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn only_429_and_5xx_answers_are_retried() {
        let none = HeaderMap::new();
        for code in [500, 502, 503, 504, 429] {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(matches!(Retry::for_status(status, &none), Retry::Yes { .. }), "{code}");
        }
        for code in [200, 301, 400, 401, 403, 404, 409, 422] {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(Retry::for_status(status, &none), Retry::No, "{code}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(
            retry_after(&HeaderValue::from_static("7")),
            Some(Duration::from_secs(7))
        );
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        let wait = retry_after(&HeaderValue::from_str(&soon).unwrap()).unwrap();
        assert!(
            wait <= Duration::from_secs(30) && wait >= Duration::from_secs(25),
            "{wait:?}"
        );
        assert_eq!(
            retry_after(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&HeaderValue::from_static("soon")), None);
    }

    #[test]
    fn backoff_doubles_within_jitter() {
        for attempt in 1..=4 {
            let ceiling = FIRST_BACKOFF * (1 << (attempt - 1));
            let wait = backoff(attempt);
            assert!(wait >= ceiling / 2 && wait <= ceiling, "{attempt}: {wait:?}");
        }
    }

    #[tokio::test]
    async fn a_schedule_stops_at_the_last_attempt_and_at_a_retry_after_that_does_not_fit() {
        let mut schedule = Schedule::new(Peer::Pins, Duration::from_secs(10));
        for _ in 1..MAX_ATTEMPTS {
            assert!(schedule.next(Retry::Yes { after: None }).is_ok());
        }
        let why = schedule.next(Retry::Yes { after: None }).unwrap_err();
        assert!(why.contains(&format!("gave up after {MAX_ATTEMPTS} attempts")), "{why}");

        let mut schedule = Schedule::new(Peer::Pins, Duration::from_secs(2));
        let why = schedule
            .next(Retry::Yes {
                after: Some(Duration::from_secs(60)),
            })
            .unwrap_err();
        assert!(why.contains("does not fit in the 2s time-out"), "{why}");
        assert_eq!(
            Schedule::new(Peer::Pins, Duration::from_secs(2)).next(Retry::No),
            Err(String::new())
        );
    }
}
