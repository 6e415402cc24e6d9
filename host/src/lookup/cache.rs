//! The answer cache every caller shares: a CLI run, an audit, a server.
//!
//! At most one look-up per question is in flight at a time; callers that
//! want the same answer await it instead of asking again, holding no
//! thread. In a server, "found" is kept long (commits rarely vanish), "not
//! found" and "moved" briefly (either may change any moment), "unavailable"
//! never (the next caller should try again); within one run (CLI, audit)
//! every answer is kept, so a down Gitea costs one time-out per commit, not
//! one per pin. The table is bounded in entries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use crate::lookup::{Answer, Answering, Answers, Question};

#[derive(Clone, Copy, Debug)]
pub struct CachePolicy {
    pub found_ttl: Duration,
    /// Also for "moved": a rename can be undone.
    pub not_found_ttl: Duration,
    /// `Duration::ZERO`: never kept.
    pub unavailable_ttl: Duration,
    pub max_entries: usize,
}

impl CachePolicy {
    /// One run (CLI, audit): every question is asked once, whatever the answer.
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

    fn ttl(&self, answer: &Answer) -> Duration {
        match answer {
            Answer::Found => self.found_ttl,
            Answer::NotFound { .. } | Answer::Moved { .. } => self.not_found_ttl,
            Answer::Unavailable { .. } => self.unavailable_ttl,
        }
    }
}

/// One question's place in the table: its answer once it is known, and
/// until when it may be reused.
struct Slot {
    cell: OnceCell<(Answer, Option<Instant>)>,
}

impl Slot {
    /// The answer, when known and not expired.
    fn fresh(&self) -> Option<&Answer> {
        let (answer, expires) = self.cell.get()?;
        expires.is_none_or(|e| e > Instant::now()).then_some(answer)
    }

    fn settled(&self) -> bool {
        self.cell.initialized()
    }
}

/// Counters for metrics and summaries.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub found: AtomicU64,
    pub not_found: AtomicU64,
    pub unavailable: AtomicU64,
    pub moved: AtomicU64,
    pub hits: AtomicU64,
}

impl CacheStats {
    /// Questions that went to the source (each answered once).
    pub fn asked(&self) -> u64 {
        [&self.found, &self.not_found, &self.unavailable, &self.moved]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

pub struct Cache<A> {
    inner: A,
    policy: CachePolicy,
    slots: Mutex<HashMap<Question, Arc<Slot>>>,
    pub stats: CacheStats,
}

impl<A: Answers> Cache<A> {
    pub fn new(inner: A, policy: CachePolicy) -> Self {
        Cache {
            inner,
            policy,
            slots: Mutex::new(HashMap::new()),
            stats: CacheStats::default(),
        }
    }

    pub fn inner(&self) -> &A {
        &self.inner
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<Question, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The slot for `question`: the live one, or a new one in its place.
    fn slot(&self, question: &Question) -> Arc<Slot> {
        let mut slots = self.slots();
        if let Some(slot) = slots.get(question)
            && (!slot.settled() || slot.fresh().is_some())
        {
            return slot.clone();
        }
        if slots.len() >= self.policy.max_entries {
            // Forget what expired, then (still full of live answers) what is
            // settled; a slot still being answered is kept for its waiters.
            slots.retain(|_, s| !s.settled() || s.fresh().is_some());
            if slots.len() >= self.policy.max_entries {
                slots.retain(|_, s| !s.settled());
            }
        }
        let slot = Arc::new(Slot { cell: OnceCell::new() });
        slots.insert(question.clone(), slot.clone());
        slot
    }

    async fn answer_of(&self, question: &Question) -> Answer {
        let slot = self.slot(question);
        if let Some(answer) = slot.fresh() {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
            return answer.clone();
        }
        let mut asked = false;
        let (answer, _) = slot
            .cell
            .get_or_init(|| async {
                asked = true;
                let answer = self.inner.answer(question).await;
                let counter = match &answer {
                    Answer::Found => &self.stats.found,
                    Answer::NotFound { .. } => &self.stats.not_found,
                    Answer::Unavailable { .. } => &self.stats.unavailable,
                    Answer::Moved { .. } => &self.stats.moved,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                let expires = Instant::now().checked_add(self.policy.ttl(&answer));
                (answer, expires)
            })
            .await;
        let answer = answer.clone();
        if asked {
            if self.policy.ttl(&answer).is_zero() {
                // Answered the callers who waited for it; nobody later.
                let mut slots = self.slots();
                if slots.get(question).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                    slots.remove(question);
                }
            }
        } else {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
        }
        answer
    }
}

impl<A: Answers> Answers for Cache<A> {
    fn at_hand(&self, question: &Question) -> Option<Answer> {
        let known = self.slots().get(question).and_then(|s| s.fresh().cloned());
        match known {
            Some(answer) => {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                Some(answer)
            }
            // A source that answers at once (a replay) is asked through the
            // cache, so that its answers are counted like any other.
            None if self.inner.at_hand(question).is_some() => {
                futures_util::FutureExt::now_or_never(self.answer_of(question))
            }
            None => None,
        }
    }

    fn answer<'a>(&'a self, question: &'a Question) -> Answering<'a> {
        Box::pin(self.answer_of(question))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Answers after a pause, counting calls; the sha picks the answer.
    struct Slow(AtomicUsize);

    impl Answers for Slow {
        fn at_hand(&self, _: &Question) -> Option<Answer> {
            None
        }

        fn answer<'a>(&'a self, question: &'a Question) -> Answering<'a> {
            Box::pin(async move {
                self.0.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                match question.sha.as_str() {
                    "found" => Answer::Found,
                    "missing" => Answer::not_found("404"),
                    _ => Answer::unavailable("503"),
                }
            })
        }
    }

    fn calls(cache: &Cache<Slow>) -> usize {
        cache.inner.0.load(Ordering::SeqCst)
    }

    fn q(sha: &str) -> Question {
        Question::new("o", "r", sha)
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_lookup_per_question() {
        let cache = Arc::new(Cache::new(Slow(AtomicUsize::new(0)), CachePolicy::server()));
        let question = q("found");
        let answers = futures_util::future::join_all((0..8).map(|_| cache.answer(&question))).await;
        assert!(answers.iter().all(|a| *a == Answer::Found));
        assert_eq!(calls(&cache), 1);
        assert_eq!(cache.stats.hits.load(Ordering::SeqCst), 7);
        assert_eq!(cache.at_hand(&question), Some(Answer::Found));
    }

    #[tokio::test]
    async fn in_a_server_unavailable_is_never_kept_and_not_found_expires() {
        let policy = CachePolicy {
            not_found_ttl: Duration::ZERO,
            max_entries: 10,
            ..CachePolicy::server()
        };
        let cache = Cache::new(Slow(AtomicUsize::new(0)), policy);
        cache.answer(&q("down")).await;
        assert_eq!(cache.at_hand(&q("down")), None, "an unavailable answer is at hand");
        cache.answer(&q("down")).await;
        assert_eq!(calls(&cache), 2, "an unavailable answer was reused");
        cache.answer(&q("missing")).await;
        cache.answer(&q("missing")).await;
        assert_eq!(calls(&cache), 4, "an expired not-found answer was reused");
        cache.answer(&q("found")).await;
        cache.answer(&q("found")).await;
        assert_eq!(calls(&cache), 5);
    }

    #[tokio::test]
    async fn within_one_run_an_unavailable_gitea_is_asked_once_per_commit() {
        let cache = Cache::new(Slow(AtomicUsize::new(0)), CachePolicy::per_run());
        let question = q("down");
        let answers = futures_util::future::join_all((0..6).map(|_| cache.answer(&question))).await;
        assert!(answers.iter().all(|a| *a == Answer::unavailable("503")));
        assert_eq!(cache.at_hand(&question), Some(Answer::unavailable("503")));
        assert_eq!(calls(&cache), 1);
    }

    #[tokio::test]
    async fn the_table_stays_within_its_bound() {
        let policy = CachePolicy {
            max_entries: 3,
            ..CachePolicy::per_run()
        };
        let cache = Cache::new(Slow(AtomicUsize::new(0)), policy);
        for repo in ["a", "b", "c", "d", "e"] {
            cache.answer(&Question::new("o", repo, "found")).await;
        }
        assert!(cache.slots().len() <= 3);
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_leaves_the_question_to_the_next_one() {
        let cache = Cache::new(Slow(AtomicUsize::new(0)), CachePolicy::per_run());
        let question = q("found");
        let gave_up = tokio::time::timeout(Duration::from_millis(1), cache.answer(&question)).await;
        assert!(gave_up.is_err());
        assert_eq!(cache.answer(&question).await, Answer::Found);
        assert_eq!(calls(&cache), 2);
    }
}
