//! The nine rules of SPEC §3, in the order they appear in every verdict.

pub mod consistency;
pub mod formats;
pub mod labels;
pub mod source;
pub mod time;

use crate::model::{CommitAnswer, Finding, Mode, Outcome, Provenance, Question, RuleId, Step, Subject};
use crate::settings::Settings;
use crate::show::show;

pub const SOURCE: &str = "org.opencontainers.image.source";
pub const REVISION: &str = "org.opencontainers.image.revision";
pub const CREATED: &str = "org.opencontainers.image.created";
pub const RUN_ID: &str = "molecule.workflow.run_id";

pub const ID_LABELS_PRESENT: RuleId = RuleId::LabelsPresent;
pub const ID_REVISION_FORMAT: RuleId = RuleId::RevisionFormat;
pub const ID_DIGEST_FORMAT: RuleId = RuleId::DigestFormat;
pub const ID_CREATED_FORMAT: RuleId = RuleId::CreatedFormat;
pub const ID_RUN_ID_FORMAT: RuleId = RuleId::RunIdFormat;
pub const ID_SOURCE_TRUSTED: RuleId = RuleId::SourceTrusted;
pub const ID_REVISION_RESOLVES: RuleId = RuleId::RevisionResolves;
pub const ID_PIN_CONSISTENT: RuleId = RuleId::PinConsistent;
pub const ID_TAG_CONSISTENT: RuleId = RuleId::TagConsistent;

/// Every rule id, in verdict order.
pub const RULE_IDS: [RuleId; 9] = RuleId::ALL;

/// Where `revision.resolves` sits in the findings.
const RESOLVES: usize = 6;

/// One verdict in the making. Every rule but `revision.resolves` is decided
/// when it starts; that one may need Gitea's answer, which the evaluation
/// asks for and then waits for. It also follows at most one rename of the
/// repository, and only to an allowed owner: the host reports a rename, it
/// never follows one.
#[derive(Debug)]
pub struct Evaluation {
    findings: Vec<Finding>,
    mode: Mode,
    /// What is being asked, when something is.
    asking: Option<Asking>,
}

#[derive(Debug)]
struct Asking {
    question: Question,
    /// The repository the source label names, once the question is about
    /// where it moved to.
    moved_from: Option<(String, String)>,
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
        let asking = match (&repo, revision.outcome, labels.revision) {
            (Some(repo), Outcome::Pass, Some(sha)) => Some(Asking {
                question: Question {
                    owner: repo.owner.to_owned(),
                    repo: repo.name.to_owned(),
                    sha: sha.to_owned(),
                },
                moved_from: None,
            }),
            _ => None,
        };
        let resolves = Finding::new(
            ID_REVISION_RESOLVES,
            Outcome::Skipped,
            "not looked up: needs source.trusted and revision.format to pass",
        );
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
        self.findings[RESOLVES] = match resolve(answer, settings, &asking) {
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

/// What an answer makes of `revision.resolves`.
enum Resolved {
    Finding(Finding),
    /// The repository moved to an allowed owner: ask there.
    AskAgain(Asking),
}

fn resolve(answer: CommitAnswer, settings: &Settings, asking: &Asking) -> Resolved {
    let base = settings.base.as_str();
    let Question { owner, repo, sha } = &asking.question;
    let (owner, name, sha) = (owner.as_str(), repo.as_str(), sha.as_str());
    let moved = match &asking.moved_from {
        Some((from_owner, from_repo)) => [" (moved from ", from_owner, "/", from_repo, ")"].concat(),
        None => String::new(),
    };
    Resolved::Finding(match answer {
        // Joined, not formatted: see `source::check`.
        CommitAnswer::Found => Finding::new(
            ID_REVISION_RESOLVES,
            Outcome::Pass,
            ["commit ", sha, " exists in ", owner, "/", name, &moved, " on ", base].concat(),
        ),
        CommitAnswer::NotFound(why) => Finding::new(
            ID_REVISION_RESOLVES,
            Outcome::Fail,
            format!("commit {sha} was not found in {owner}/{name}{moved} on {base}: {why}"),
        ),
        CommitAnswer::Unavailable(why) => Finding::new(
            ID_REVISION_RESOLVES,
            Outcome::Indeterminate,
            format!("could not ask {base} about commit {sha} in {owner}/{name}{moved}: {why}"),
        ),
        CommitAnswer::Moved {
            owner: to_owner,
            repo: to_repo,
        } => {
            let to = format!("{}/{}", show(&to_owner), show(&to_repo));
            if asking.moved_from.is_some() {
                // Gitea redirects straight to a repository's current name:
                // a second move within one verdict is not a rename.
                Finding::new(
                    ID_REVISION_RESOLVES,
                    Outcome::Fail,
                    format!("{base} moved {owner}/{name}{moved} again, to {to}; provgate follows one rename only"),
                )
            } else if !source::is_plain_name(&to_owner) || !source::is_plain_name(&to_repo) {
                Finding::new(
                    ID_REVISION_RESOLVES,
                    Outcome::Fail,
                    format!("{base} says {owner}/{name} moved to {to}, which is not a plain owner/repository name"),
                )
            } else if !settings.allowed_owners.contains(&to_owner) {
                Finding::new(
                    ID_REVISION_RESOLVES,
                    Outcome::Fail,
                    format!(
                        "{owner}/{name} moved to {to} on {base}, and owner {} is not an allowed owner ({}); \
                         provgate did not look there",
                        show(&to_owner),
                        settings.allowed_owners.join(", ")
                    ),
                )
            } else {
                return Resolved::AskAgain(Asking {
                    question: Question {
                        owner: to_owner,
                        repo: to_repo,
                        sha: sha.to_owned(),
                    },
                    moved_from: Some((owner.to_owned(), name.to_owned())),
                });
            }
        }
    })
}
