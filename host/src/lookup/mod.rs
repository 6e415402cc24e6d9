//! Commit look-ups: the one question the guest may ask the outside world.
//!
//! The guest calls its `commit-exists` import; the sandbox forwards it to a
//! [`CommitLookup`]. Implementations stack: the Gitea client does the
//! network, [`Memo`] asks each (repo, sha) once per process, and
//! [`replay`] records or replays answers.

pub mod gitea;
pub mod replay;

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// What the forge said, in the host's terms (mirrors the WIT `commit-answer`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", content = "reason", rename_all = "snake_case")]
pub enum Answer {
    Found,
    NotFound(String),
    Unavailable(String),
}

/// Answers "does commit `sha` exist in `owner/repo`?". Implementations never
/// fail: whatever goes wrong becomes [`Answer::Unavailable`] with a reason.
pub trait CommitLookup: Send + Sync {
    fn commit(&self, owner: &str, repo: &str, sha: &str) -> Answer;
}

/// The key of one look-up.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CommitKey {
    pub owner: String,
    pub repo: String,
    pub sha: String,
}

impl CommitKey {
    pub fn new(owner: &str, repo: &str, sha: &str) -> Self {
        CommitKey {
            owner: owner.into(),
            repo: repo.into(),
            sha: sha.into(),
        }
    }
}

/// Asks each (repo, sha) once per process; later callers get the first answer.
pub struct Memo<L> {
    inner: L,
    seen: Mutex<HashMap<CommitKey, Answer>>,
}

impl<L: CommitLookup> Memo<L> {
    pub fn new(inner: L) -> Self {
        Memo {
            inner,
            seen: Mutex::new(HashMap::new()),
        }
    }
}

impl<L: CommitLookup> CommitLookup for Memo<L> {
    fn commit(&self, owner: &str, repo: &str, sha: &str) -> Answer {
        let key = CommitKey::new(owner, repo, sha);
        if let Some(answer) = self.seen.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return answer.clone();
        }
        let answer = self.inner.commit(owner, repo, sha);
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, answer.clone());
        answer
    }
}

/// For policies and subjects that never reach the look-up (and for tests):
/// every question is answered "unavailable" with the given reason.
pub struct NoLookup(pub &'static str);

impl CommitLookup for NoLookup {
    fn commit(&self, _: &str, _: &str, _: &str) -> Answer {
        Answer::Unavailable(self.0.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting(AtomicUsize);

    impl CommitLookup for Counting {
        fn commit(&self, _: &str, _: &str, sha: &str) -> Answer {
            self.0.fetch_add(1, Ordering::SeqCst);
            Answer::NotFound(sha.into())
        }
    }

    #[test]
    fn memo_asks_each_repo_and_sha_once() {
        let memo = Memo::new(Counting(AtomicUsize::new(0)));
        assert_eq!(memo.commit("o", "r", "a"), Answer::NotFound("a".into()));
        assert_eq!(memo.commit("o", "r", "a"), Answer::NotFound("a".into()));
        memo.commit("o", "other", "a");
        memo.commit("o", "r", "b");
        assert_eq!(memo.inner.0.load(Ordering::SeqCst), 3);
    }
}
