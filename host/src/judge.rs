//! The verdict pipeline every command runs: subject → guest ↔ answers →
//! verdict.
//!
//! A fresh instance starts judging; when it asks questions, answers that
//! are at hand (cached, replayed) go straight back into the same instance.
//! When an answer has to be waited for, the instance is dropped first — a
//! pending look-up holds no instance and no thread — and once the answers
//! are in, a fresh instance starts again with them supplied. The guest is
//! deterministic, so both paths give the same verdict; the answers it was
//! given, in the order it asked, come back with the verdict so that the
//! decision can be recorded and replayed (`crate::record`).

use std::time::SystemTime;

use crate::lookup::{Answer, Answered, Answers, Question};
use crate::policy::{LimitKind, Policy, PolicyError, Run, Step};
use crate::subject::Subject;
use crate::verdict::{Mode, Verdict, VerdictSubject};

/// A verdict and everything it was decided on besides the subject.
#[derive(Clone, Debug)]
pub struct Decision {
    pub verdict: Verdict,
    pub mode: Mode,
    pub now: SystemTime,
    /// The answers the guest was given, in the order it asked.
    pub answers: Vec<Answered>,
    /// Instances the verdict took: 1 when every answer was at hand.
    pub instances: u32,
}

/// Judges `subject` with `policy`, asking `answers` what the guest wants to
/// know.
pub async fn judge(
    policy: &Policy,
    subject: &Subject,
    mode: Mode,
    now: SystemTime,
    answers: &dyn Answers,
) -> Result<Decision, PolicyError> {
    let limits = policy.limits();
    let mut given: Vec<Answered> = Vec::new();
    let mut rounds = 0;
    let mut instances = 1;
    let mut run = Some(policy.start(subject, mode, now, &given)?);
    loop {
        let current: &mut Run<'_> = match run.as_mut() {
            Some(run) => run,
            None => {
                instances += 1;
                run.insert(policy.start(subject, mode, now, &given)?)
            }
        };
        let step = current
            .take_step()
            .ok_or_else(|| PolicyError::Protocol("the instance has no step".into()))?;
        let questions = match step {
            Step::Verdict(decided) => {
                return Ok(Decision {
                    verdict: Verdict {
                        subject: VerdictSubject::of(subject),
                        policy: policy.reference().clone(),
                        mode,
                        decided,
                    },
                    mode,
                    now,
                    answers: given,
                    instances,
                });
            }
            Step::Ask(questions) => questions,
        };
        rounds += 1;
        check_questions(&questions, &given, rounds, limits.max_rounds, limits.max_questions)?;
        let at_hand: Option<Vec<Answer>> = questions.iter().map(|q| answers.at_hand(q)).collect();
        match at_hand {
            Some(found) => {
                given.extend(questions.into_iter().zip(found.iter().cloned()).map(answered));
                current.resume(&found)?;
            }
            None => {
                // Free the instance before waiting.
                run = None;
                let found = futures_util::future::join_all(questions.iter().map(|q| answers.answer(q))).await;
                given.extend(questions.into_iter().zip(found).map(answered));
            }
        }
    }
}

fn answered((question, answer): (Question, Answer)) -> Answered {
    Answered { question, answer }
}

/// At most `max_questions` in all, in at most `max_rounds` rounds (the
/// reference, §3); each round asks something, nothing twice, and nothing
/// already answered.
fn check_questions(
    questions: &[Question],
    given: &[Answered],
    round: usize,
    max_rounds: usize,
    max_questions: usize,
) -> Result<(), PolicyError> {
    if round > max_rounds {
        return Err(PolicyError::Limit {
            kind: LimitKind::Rounds,
            message: format!("it asked a round of questions more than the {max_rounds} a verdict may ask"),
        });
    }
    if given.len() + questions.len() > max_questions {
        return Err(PolicyError::Limit {
            kind: LimitKind::Questions,
            message: format!(
                "it asked {} questions; a verdict may ask at most {max_questions}",
                given.len() + questions.len()
            ),
        });
    }
    if questions.is_empty() {
        return Err(PolicyError::Protocol("it asked an empty round of questions".into()));
    }
    if let Some((_, q)) = questions.iter().enumerate().find(|(i, q)| questions[..*i].contains(q)) {
        return Err(PolicyError::Protocol(format!(
            "it asked about commit {} in {}/{} twice in one round",
            crate::text::quote(&q.sha),
            crate::text::quote(&q.owner),
            crate::text::quote(&q.repo)
        )));
    }
    if let Some(q) = questions.iter().find(|q| given.iter().any(|a| a.question == **q)) {
        return Err(PolicyError::Protocol(format!(
            "it asked again about commit {} in {}/{}, which it had been answered",
            crate::text::quote(&q.sha),
            crate::text::quote(&q.owner),
            crate::text::quote(&q.repo)
        )));
    }
    Ok(())
}
