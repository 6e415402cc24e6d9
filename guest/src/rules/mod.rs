//! The evaluation: the nine rules of docs/reference.md §3, run in the order they appear
//! in every verdict, and handed to `decide` once `revision.resolves` has
//! its answer. Each rule, or family of rules, lives in its own file.

pub mod consistency;
pub mod formats;
pub mod labels;
mod resolves;
pub mod source;

use crate::model::{CommitAnswer, Finding, Mode, Provenance, Question, RuleId, Step, Subject};
use crate::settings::Settings;
use provgate_contract::labels::{CREATED, REVISION, RUN_ID, SOURCE};
use resolves::{Asking, Resolved};

/// Every rule id, in verdict order.
pub const RULE_IDS: [RuleId; 9] = RuleId::ALL;

/// Where `revision.resolves` sits in the findings.
const RESOLVES: usize = 6;

/// One verdict in the making. Every rule but `revision.resolves` is decided
/// when it starts; that one may need Gitea's answer, which the evaluation
/// asks for and then waits for.
#[derive(Debug)]
pub struct Evaluation {
    findings: Vec<Finding>,
    mode: Mode,
    /// What is being asked, when something is.
    asking: Option<Asking>,
}

impl Evaluation {
    /// Runs every rule it can without asking anything, and asks what
    /// `revision.resolves` needs.
    pub fn start(subject: &Subject, settings: &Settings, mode: Mode) -> (Evaluation, Step) {
        let labels = Provenance {
            source: subject.label(SOURCE),
            revision: subject.label(REVISION),
            created: subject.label(CREATED),
            run_id: subject.label(RUN_ID),
        };
        let revision = formats::revision(&labels);
        let (trusted, repo) = source::check(&labels, settings);
        let (resolves, asking) = resolves::start(repo.as_ref(), revision.outcome, labels.revision);
        let findings = vec![
            labels::present(&labels),
            revision,
            formats::digest(subject),
            formats::created(&labels, subject.now, settings),
            formats::run_id(&labels),
            trusted,
            resolves,
            consistency::pin(subject, &labels),
            consistency::tag(subject, &labels),
        ];
        let mut evaluation = Evaluation { findings, mode, asking };
        let step = evaluation.step(settings);
        (evaluation, step)
    }

    /// The question waiting for an answer, if any.
    pub fn asking(&self) -> Option<&Question> {
        self.asking.as_ref().map(|a| &a.question)
    }

    /// Goes on with the answers to the questions the last step asked, in
    /// the order asked.
    pub fn resume(&mut self, settings: &Settings, answers: Vec<CommitAnswer>) -> Result<Step, String> {
        let Some(asking) = self.asking.take() else {
            return Err("resume: this evaluation asked nothing".into());
        };
        let mut answers = answers.into_iter();
        let (Some(answer), None) = (answers.next(), answers.next()) else {
            self.asking = Some(asking);
            return Err("resume: expected exactly one answer, to the one question asked".into());
        };
        self.findings[RESOLVES] = match resolves::resolve(answer, settings, &asking) {
            Resolved::Finding(finding) => finding,
            Resolved::AskAgain(next) => {
                self.asking = Some(next);
                return Ok(self.step(settings));
            }
        };
        Ok(self.step(settings))
    }

    fn step(&mut self, settings: &Settings) -> Step {
        if let Some(asking) = &self.asking {
            return Step::Ask(vec![asking.question.clone()]);
        }
        let findings = std::mem::take(&mut self.findings);
        Step::Verdict(crate::decide::verdict(findings, self.mode, settings.on_unavailable))
    }
}
