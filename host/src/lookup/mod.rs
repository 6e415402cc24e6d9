//! Commit look-ups: the one question the guest may ask the outside world.
//!
//! The guest calls its `commit-exists` import; the sandbox forwards it to a
//! [`CommitLookup`]. Implementations stack: the Gitea client does the
//! network, [`cache`] asks each (repo, sha) once at a time and keeps the
//! answers, and [`replay`] records or replays them.

pub mod cache;
pub mod gitea;
pub mod replay;

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

/// A shared look-up is a look-up (so a [`cache::Cache`] can wrap whichever
/// source a run chose: Gitea or a replay).
impl<T: CommitLookup + ?Sized> CommitLookup for std::sync::Arc<T> {
    fn commit(&self, owner: &str, repo: &str, sha: &str) -> Answer {
        (**self).commit(owner, repo, sha)
    }
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

/// For policies and subjects that never reach the look-up (and for tests):
/// every question is answered "unavailable" with the given reason.
pub struct NoLookup(pub &'static str);

impl CommitLookup for NoLookup {
    fn commit(&self, _: &str, _: &str, _: &str) -> Answer {
        Answer::Unavailable(self.0.into())
    }
}
