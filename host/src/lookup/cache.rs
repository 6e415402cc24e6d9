//! The look-up cache every caller shares: a CLI run, an audit, a server.
//!
//! At most one look-up per (repo, sha) is in flight at a time; callers that
//! want the same answer wait for it instead of asking again. In a server,
//! "found" is kept long (commits rarely vanish), "not found" briefly (it may
//! be pushed any moment), "unavailable" never (the next caller should try
//! again); within one run (CLI, audit) every answer is kept, so a down Gitea
//! costs one time-out per commit, not one per pin. The table is bounded in
//! entries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::lookup::{Answer, CommitKey, CommitLookup};

#[derive(Clone, Copy, Debug)]
pub struct CachePolicy {
    pub found_ttl: Duration,
    pub not_found_ttl: Duration,
    /// `Duration::ZERO`: never kept.
    pub unavailable_ttl: Duration,
    pub max_entries: usize,
}

impl CachePolicy {
    /// One run (CLI, audit): every (repo, sha) is asked once, whatever the answer.
    pub const fn per_run() -> CachePolicy {
        CachePolicy {
            found_ttl: Duration::MAX,
            not_found_ttl: Duration::MAX,
            unavailable_ttl: Duration::MAX,
            max_entries: usize::MAX,
        }
    }

    /// A long-running server.
    pub const fn server() -> CachePolicy {
        CachePolicy {
            found_ttl: Duration::from_secs(24 * 3600),
            not_found_ttl: Duration::from_secs(60),
            unavailable_ttl: Duration::ZERO,
            max_entries: 100_000,
        }
    }
}

enum Slot {
    InFlight,
    Done { answer: Answer, expires: Option<Instant> },
}

/// Counters for metrics and summaries.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub found: AtomicU64,
    pub not_found: AtomicU64,
    pub unavailable: AtomicU64,
    pub hits: AtomicU64,
}

pub struct Cache<L> {
    inner: L,
    policy: CachePolicy,
    slots: Mutex<HashMap<CommitKey, Slot>>,
    settled: Condvar,
    pub stats: CacheStats,
}

impl<L> std::fmt::Debug for Cache<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.slots.lock().map(|s| s.len()).unwrap_or(0);
        f.debug_struct("Cache")
            .field("policy", &self.policy)
            .field("entries", &entries)
            .field("stats", &self.stats)
            .finish()
    }
}

impl<L: CommitLookup> Cache<L> {
    pub fn new(inner: L, policy: CachePolicy) -> Self {
        Cache {
            inner,
            policy,
            slots: Mutex::new(HashMap::new()),
            settled: Condvar::new(),
            stats: CacheStats::default(),
        }
    }

    pub fn inner(&self) -> &L {
        &self.inner
    }

    fn store(&self, slots: &mut HashMap<CommitKey, Slot>, key: CommitKey, answer: &Answer) {
        let ttl = match answer {
            Answer::Found => self.policy.found_ttl,
            Answer::NotFound(_) => self.policy.not_found_ttl,
            Answer::Unavailable(_) => self.policy.unavailable_ttl,
        };
        if ttl.is_zero() {
            slots.remove(&key);
            return;
        }
        if slots.len() >= self.policy.max_entries {
            let now = Instant::now();
            slots.retain(|_, s| match s {
                Slot::InFlight => true,
                Slot::Done { expires, .. } => expires.is_none_or(|e| e > now),
            });
            if slots.len() >= self.policy.max_entries {
                // Still full of live answers: forget finished ones, keep waiters' slots.
                slots.retain(|_, s| matches!(s, Slot::InFlight));
            }
        }
        let expires = Instant::now().checked_add(ttl);
        slots.insert(
            key,
            Slot::Done {
                answer: answer.clone(),
                expires,
            },
        );
    }
}

impl<L: CommitLookup> CommitLookup for Cache<L> {
    fn commit(&self, owner: &str, repo: &str, sha: &str) -> Answer {
        let key = CommitKey::new(owner, repo, sha);
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match slots.get(&key) {
                Some(Slot::Done { answer, expires }) if expires.is_none_or(|e| e > Instant::now()) => {
                    self.stats.hits.fetch_add(1, Ordering::Relaxed);
                    return answer.clone();
                }
                Some(Slot::InFlight) => slots = self.settled.wait(slots).unwrap_or_else(|e| e.into_inner()),
                _ => break,
            }
        }
        slots.insert(key.clone(), Slot::InFlight);
        drop(slots);

        let answer = self.inner.commit(owner, repo, sha);
        let counter = match &answer {
            Answer::Found => &self.stats.found,
            Answer::NotFound(_) => &self.stats.not_found,
            Answer::Unavailable(_) => &self.stats.unavailable,
        };
        counter.fetch_add(1, Ordering::Relaxed);

        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        self.store(&mut slots, key, &answer);
        drop(slots);
        self.settled.notify_all();
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    /// Answers after a pause, counting calls; the sha picks the answer.
    struct Slow(AtomicUsize);

    impl CommitLookup for Slow {
        fn commit(&self, _: &str, _: &str, sha: &str) -> Answer {
            self.0.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(50));
            match sha {
                "found" => Answer::Found,
                "missing" => Answer::NotFound("404".into()),
                _ => Answer::Unavailable("503".into()),
            }
        }
    }

    fn calls<L>(cache: &Cache<L>) -> usize
    where
        L: CommitLookup + AsRef<AtomicUsize>,
    {
        cache.inner.as_ref().load(Ordering::SeqCst)
    }

    impl AsRef<AtomicUsize> for Slow {
        fn as_ref(&self) -> &AtomicUsize {
            &self.0
        }
    }

    #[test]
    fn concurrent_callers_share_one_lookup_per_key() {
        let cache = Arc::new(Cache::new(Slow(AtomicUsize::new(0)), CachePolicy::per_run()));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let cache = cache.clone();
                std::thread::spawn(move || cache.commit("o", "r", "found"))
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), Answer::Found);
        }
        assert_eq!(calls(&cache), 1);
        assert_eq!(cache.stats.hits.load(Ordering::SeqCst), 7);
    }

    #[test]
    fn unavailable_is_never_kept_and_not_found_expires() {
        let policy = CachePolicy {
            not_found_ttl: Duration::ZERO,
            max_entries: 10,
            ..CachePolicy::server()
        };
        let cache = Cache::new(Slow(AtomicUsize::new(0)), policy);
        cache.commit("o", "r", "down");
        cache.commit("o", "r", "down");
        assert_eq!(calls(&cache), 2, "an unavailable answer was reused");
        cache.commit("o", "r", "missing");
        cache.commit("o", "r", "missing");
        assert_eq!(calls(&cache), 4, "an expired not-found answer was reused");
        cache.commit("o", "r", "found");
        cache.commit("o", "r", "found");
        assert_eq!(calls(&cache), 5);
    }

    #[test]
    fn within_one_run_an_unavailable_gitea_is_asked_once_per_commit() {
        let cache = Arc::new(Cache::new(Slow(AtomicUsize::new(0)), CachePolicy::per_run()));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let cache = cache.clone();
                std::thread::spawn(move || cache.commit("o", "r", "down"))
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), Answer::Unavailable("503".into()));
        }
        assert_eq!(cache.commit("o", "r", "down"), Answer::Unavailable("503".into()));
        assert_eq!(calls(&cache), 1);
        assert_eq!(cache.stats.hits.load(Ordering::SeqCst), 6);
    }

    #[test]
    fn the_table_stays_within_its_bound() {
        let policy = CachePolicy {
            max_entries: 3,
            ..CachePolicy::per_run()
        };
        let cache = Cache::new(Slow(AtomicUsize::new(0)), policy);
        for repo in ["a", "b", "c", "d", "e"] {
            cache.commit("o", repo, "found");
        }
        assert!(cache.slots.lock().unwrap().len() <= 3);
    }
}
