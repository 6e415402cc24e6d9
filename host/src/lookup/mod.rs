//! Answering the policy's questions, outside the sandbox.
//!
//! The guest imports nothing: when `revision.resolves` needs Gitea, its
//! evaluation returns the question "does commit X exist in owner/repo?" and
//! the host answers it through an [`Answers`]. Implementations stack, and
//! [`Stack::build`] is the one place that stacks them: the source
//! ([`gitea`] over the network, or [`replay`] from a decision record), then
//! [`cache`] (one look-up per question at a time, answers kept by policy).
//! What each verdict was told is kept by the pipeline (`crate::judge`),
//! not by a layer here, so every decision carries its own answers.

pub mod cache;
pub mod gitea;
pub mod replay;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::lookup::cache::{Cache, CachePolicy};
use crate::lookup::gitea::{Gitea, GiteaClient, Token};
use crate::lookup::replay::Replay;

/// "Does commit `sha` exist in `owner/repo`?"
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Question {
    pub owner: String,
    pub repo: String,
    pub sha: String,
}

impl Question {
    pub fn new(owner: &str, repo: &str, sha: &str) -> Question {
        Question {
            owner: owner.into(),
            repo: repo.into(),
            sha: sha.into(),
        }
    }
}

/// Where a renamed or transferred repository now lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedTo {
    pub owner: String,
    pub repo: String,
}

/// What the forge said (the WIT `answer`). In JSON: `"answer": "found"`,
/// `"not_found"` or `"unavailable"` with a `"reason"`, or `"moved"` with
/// `"moved_to": {"owner", "repo"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    Found,
    NotFound { reason: String },
    Unavailable { reason: String },
    Moved { moved_to: MovedTo },
}

impl Answer {
    pub fn not_found(reason: impl Into<String>) -> Answer {
        Answer::NotFound { reason: reason.into() }
    }

    pub fn unavailable(reason: impl Into<String>) -> Answer {
        Answer::Unavailable { reason: reason.into() }
    }

    pub fn moved(owner: &str, repo: &str) -> Answer {
        Answer::Moved {
            moved_to: MovedTo {
                owner: owner.into(),
                repo: repo.into(),
            },
        }
    }

    /// The answer's kind, for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Answer::Found => "found",
            Answer::NotFound { .. } => "not_found",
            Answer::Unavailable { .. } => "unavailable",
            Answer::Moved { .. } => "moved",
        }
    }
}

/// A question and the answer the guest was given, as a decision record
/// lists them: `{"owner", "repo", "sha", "answer", …}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answered {
    #[serde(flatten)]
    pub question: Question,
    #[serde(flatten)]
    pub answer: Answer,
}

/// A boxed future: the trait stays object-safe so one stack can be shared.
pub type Answering<'a> = Pin<Box<dyn Future<Output = Answer> + Send + 'a>>;

/// Answers the policy's questions. Implementations never fail: whatever
/// goes wrong becomes [`Answer::Unavailable`] with a reason.
pub trait Answers: Send + Sync {
    /// The answer, if it can be given at once without waiting (a cache hit,
    /// a replay). The pipeline then goes on in the same instance.
    fn at_hand(&self, question: &Question) -> Option<Answer>;

    /// The answer, however long it takes. A pending answer holds no thread.
    fn answer<'a>(&'a self, question: &'a Question) -> Answering<'a>;
}

impl<T: Answers + ?Sized> Answers for Box<T> {
    fn at_hand(&self, question: &Question) -> Option<Answer> {
        (**self).at_hand(question)
    }

    fn answer<'a>(&'a self, question: &'a Question) -> Answering<'a> {
        (**self).answer(question)
    }
}

impl<T: Answers + ?Sized> Answers for Arc<T> {
    fn at_hand(&self, question: &Question) -> Option<Answer> {
        (**self).at_hand(question)
    }

    fn answer<'a>(&'a self, question: &'a Question) -> Answering<'a> {
        (**self).answer(question)
    }
}

/// For policies and subjects that never reach a question (and for tests):
/// every question is answered "unavailable" with the given reason.
pub struct NoAnswers(pub &'static str);

impl Answers for NoAnswers {
    fn at_hand(&self, _: &Question) -> Option<Answer> {
        Some(Answer::unavailable(self.0))
    }

    fn answer<'a>(&'a self, _: &'a Question) -> Answering<'a> {
        Box::pin(std::future::ready(Answer::unavailable(self.0)))
    }
}

/// Where answers come from.
pub enum Source {
    /// Gitea at the policy's `gitea_base_url`.
    Gitea {
        token: Option<Token>,
        timeout: Duration,
        /// Look-ups in flight to Gitea at once; the rest queue, holding no thread.
        concurrency: usize,
    },
    /// Recorded answers: no network at all.
    Replay(Replay),
}

/// The look-up stack every command builds the same way: the source, then
/// the shared cache with the command's policy.
pub struct Stack {
    cache: Arc<Cache<Box<dyn Answers>>>,
}

impl Stack {
    pub fn build(source: Source, gitea_base_url: &str, policy: CachePolicy) -> anyhow::Result<Stack> {
        let inner: Box<dyn Answers> = match source {
            Source::Gitea {
                token,
                timeout,
                concurrency,
            } => Box::new(Gitea::new(
                GiteaClient::new(gitea_base_url, token, timeout)?,
                concurrency,
            )),
            Source::Replay(replay) => Box::new(replay),
        };
        Ok(Stack {
            cache: Arc::new(Cache::new(inner, policy)),
        })
    }

    /// The stack as the pipeline asks it.
    pub fn answers(&self) -> Arc<dyn Answers> {
        self.cache.clone()
    }

    pub fn stats(&self) -> &cache::CacheStats {
        &self.cache.stats
    }
}
