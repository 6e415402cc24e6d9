//! Recording and replaying look-ups, so a past decision can be reproduced
//! exactly and the quick start runs with no network.
//!
//! A recording holds the clock the run used and every answer it got; a
//! replay answers from it and never touches the network.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::lookup::{Answer, CommitKey, CommitLookup};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recording {
    /// The `now` the recorded run handed to the policy (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<String>,
    pub lookups: Vec<Recorded>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub owner: String,
    pub repo: String,
    pub sha: String,
    #[serde(flatten)]
    pub answer: Answer,
}

impl Recording {
    pub fn read(path: &Path) -> anyhow::Result<Recording> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read replay file {}", path.display()))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("replay file {} is not a provgate recording", path.display()))
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        std::fs::write(path, json).with_context(|| format!("cannot write recording {}", path.display()))
    }
}

/// Answers from a recording; anything not in it is unavailable.
pub struct Replay {
    answers: BTreeMap<CommitKey, Answer>,
}

impl Replay {
    pub fn new(recording: &Recording) -> Replay {
        let answers = recording
            .lookups
            .iter()
            .map(|r| (CommitKey::new(&r.owner, &r.repo, &r.sha), r.answer.clone()))
            .collect();
        Replay { answers }
    }
}

impl CommitLookup for Replay {
    fn commit(&self, owner: &str, repo: &str, sha: &str) -> Answer {
        self.answers
            .get(&CommitKey::new(owner, repo, sha))
            .cloned()
            .unwrap_or_else(|| Answer::Unavailable(format!("replay has no answer for {owner}/{repo}@{sha}")))
    }
}

/// Passes look-ups through and keeps every answer for [`Recorder::recording`].
pub struct Recorder<L> {
    inner: L,
    log: Mutex<BTreeMap<CommitKey, Answer>>,
}

impl<L: CommitLookup> Recorder<L> {
    pub fn new(inner: L) -> Self {
        Recorder {
            inner,
            log: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn recording(&self, now: Option<String>) -> Recording {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let lookups = log
            .iter()
            .map(|(k, a)| Recorded {
                owner: k.owner.clone(),
                repo: k.repo.clone(),
                sha: k.sha.clone(),
                answer: a.clone(),
            })
            .collect();
        Recording { now, lookups }
    }
}

impl<L: CommitLookup> CommitLookup for Recorder<L> {
    fn commit(&self, owner: &str, repo: &str, sha: &str) -> Answer {
        let answer = self.inner.commit(owner, repo, sha);
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(CommitKey::new(owner, repo, sha), answer.clone());
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_answers_recorded_lookups_and_nothing_else() {
        let recorder = Recorder::new(crate::lookup::NoLookup("offline"));
        recorder.commit("o", "r", "abc");
        let recording = recorder.recording(Some("2026-11-20T00:00:00Z".into()));
        let json = serde_json::to_string(&recording).unwrap();
        assert!(json.contains(r#""answer":"unavailable","reason":"offline""#), "{json}");
        let back: Recording = serde_json::from_str(&json).unwrap();
        let replay = Replay::new(&back);
        assert_eq!(replay.commit("o", "r", "abc"), Answer::Unavailable("offline".into()));
        assert!(
            matches!(replay.commit("o", "r", "def"), Answer::Unavailable(why) if why.contains("replay has no answer"))
        );
    }
}
