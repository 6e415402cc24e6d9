//! Answers from a past decision, with no network: a decision record's
//! `answers` (`crate::record`), or a 0.1 recording (`{"now", "lookups"}`,
//! still read by `verify --replay`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::lookup::{Answer, Answered, Answering, Answers, Question};

/// The 0.1 recording format.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recording01 {
    /// The `now` the recorded run handed to the policy (RFC 3339, UTC).
    #[serde(default)]
    pub now: Option<String>,
    pub lookups: Vec<Answered>,
}

/// Answers from a recording; a question it has no answer for is unavailable.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    answers: BTreeMap<Question, Answer>,
}

impl Replay {
    pub fn new<'a>(answered: impl IntoIterator<Item = &'a Answered>) -> Replay {
        Replay {
            answers: answered
                .into_iter()
                .map(|a| (a.question.clone(), a.answer.clone()))
                .collect(),
        }
    }

    fn lookup(&self, q: &Question) -> Answer {
        self.answers.get(q).cloned().unwrap_or_else(|| {
            Answer::unavailable(format!(
                "the record has no answer for commit {} in {}/{} (no network during a replay)",
                q.sha, q.owner, q.repo
            ))
        })
    }
}

impl Answers for Replay {
    fn at_hand(&self, question: &Question) -> Option<Answer> {
        Some(self.lookup(question))
    }

    fn answer<'a>(&'a self, question: &'a Question) -> Answering<'a> {
        Box::pin(std::future::ready(self.lookup(question)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_answers_what_it_recorded_and_nothing_else() {
        let recorded: Recording01 = serde_json::from_str(
            r#"{"now": "2026-11-20T00:00:00Z", "lookups": [
                {"owner": "o", "repo": "r", "sha": "abc", "answer": "not_found", "reason": "404"},
                {"owner": "o", "repo": "r", "sha": "def", "answer": "found"}]}"#,
        )
        .expect("a 0.1 recording parses");
        let replay = Replay::new(&recorded.lookups);
        assert_eq!(
            replay.at_hand(&Question::new("o", "r", "abc")),
            Some(Answer::not_found("404"))
        );
        assert_eq!(replay.at_hand(&Question::new("o", "r", "def")), Some(Answer::Found));
        assert!(matches!(
            replay.at_hand(&Question::new("o", "x", "def")),
            Some(Answer::Unavailable { reason }) if reason.contains("no answer")
        ));
    }
}
