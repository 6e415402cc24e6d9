//! The component glue: WIT types in and out, the one evaluation an
//! instance is in the middle of, and the settings read from the slot that
//! `provgate policy build` fills in.

use std::cell::RefCell;

use crate::model::{self, CommitAnswer, Event, RuleId, Step};
use crate::rules::Evaluation;
use crate::settings::{OnUnavailable, Settings};

wit_bindgen::generate!({
    world: "provgate",
    path: "../wit",
});

use exports::provgate::policy::rules as wit;
use provgate_contract::slot;

/// The settings slot (its layout: `provgate_contract::slot`), which the
/// artifact build rewrites after compilation. The length saves scanning the
/// padding on every evaluation.
static SETTINGS_SLOT: [u8; slot::LEN] = {
    let mut bytes = [b' '; slot::LEN];
    let mut i = 0;
    while i < slot::LEN_AT {
        bytes[i] = slot::MAGIC[i];
        i += 1;
    }
    while i < slot::JSON_AT {
        bytes[i] = 0;
        i += 1;
    }
    bytes
};

/// The settings, read once per instance: they cannot change under it.
fn settings() -> Result<&'static Settings, String> {
    static PARSED: std::sync::OnceLock<Result<Settings, String>> = std::sync::OnceLock::new();
    PARSED
        .get_or_init(|| crate::ALLOCATOR.keep(read_settings))
        .as_ref()
        .map_err(Clone::clone)
}

fn read_settings() -> Result<Settings, String> {
    // black_box: the compiler must read the bytes at run time, since the
    // artifact builder rewrites them after compilation.
    let bytes: &[u8; slot::LEN] = core::hint::black_box(&SETTINGS_SLOT);
    let at = slot::LEN_AT;
    let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
    let json = &bytes[slot::JSON_AT..slot::JSON_AT + len.min(slot::CAPACITY)];
    if json.is_empty() {
        return Err("this artifact has no settings: build one with `provgate policy build`".into());
    }
    Settings::parse(json)
}

/// The evaluation this instance is in the middle of: `evaluate` starts it,
/// `resume` goes on with it. One per instance, and one instance per verdict.
struct Current(RefCell<Option<Evaluation>>);

// SAFETY: a wasm32-unknown-unknown component has one thread.
unsafe impl Sync for Current {}

static CURRENT: Current = Current(RefCell::new(None));

struct Policy;

impl wit::Guest for Policy {
    fn describe() -> Result<wit::Description, String> {
        let s = settings()?;
        Ok(wit::Description {
            name: crate::NAME.into(),
            version: crate::VERSION.into(),
            rules: RuleId::ALL.iter().map(|r| rule_id(*r)).collect(),
            settings: wit::Settings {
                gitea_base_url: s.base.to_string(),
                allowed_owners: s.allowed_owners.clone(),
                created_max_skew_seconds: s.created_max_skew_seconds,
                on_unavailable: match s.on_unavailable {
                    OnUnavailable::Deny => wit::OnUnavailable::Deny,
                    OnUnavailable::Allow => wit::OnUnavailable::Allow,
                },
            },
        })
    }

    fn evaluate(subject: wit::Subject, mode: wit::Mode, answers: Vec<wit::Answered>) -> Result<wit::Step, String> {
        let settings = settings()?;
        let subject = model::Subject {
            reference: subject.reference,
            digest: subject.digest,
            labels: subject.labels,
            pin: subject.pin.map(|p| model::Pin {
                runtime: p.runtime,
                digest: p.digest,
                source_sha: p.source_sha,
            }),
            now: model::Instant {
                seconds: subject.now.seconds,
                nanoseconds: subject.now.nanoseconds,
            },
        };
        let mode = match mode {
            wit::Mode::Enforce => model::Mode::Enforce,
            wit::Mode::LogOnly => model::Mode::LogOnly,
        };
        let (mut evaluation, mut step) = Evaluation::start(&subject, settings, mode);
        drop(subject);
        // Answers given by an earlier instance: used, not asked again.
        let mut supplied: Vec<Option<wit::Answered>> = answers.into_iter().map(Some).collect();
        while let Step::Ask(questions) = &step {
            let mut found = Vec::with_capacity(questions.len());
            for q in questions {
                let known = supplied.iter_mut().find(|a| {
                    a.as_ref().is_some_and(|a| {
                        a.question.owner == q.owner && a.question.repo == q.repo && a.question.sha == q.sha
                    })
                });
                match known.and_then(Option::take) {
                    Some(a) => found.push(answer(a.answer)),
                    None => break,
                }
            }
            if found.len() < questions.len() {
                break;
            }
            step = evaluation.resume(settings, found)?;
        }
        *CURRENT.0.borrow_mut() = Some(evaluation);
        Ok(lower(step))
    }

    fn resume(answers: Vec<wit::Answer>) -> Result<wit::Step, String> {
        let settings = settings()?;
        let mut current = CURRENT.0.borrow_mut();
        let evaluation = current
            .as_mut()
            .ok_or("resume: no evaluation was started in this instance")?;
        let step = evaluation.resume(settings, answers.into_iter().map(answer).collect())?;
        Ok(lower(step))
    }
}

fn answer(a: wit::Answer) -> CommitAnswer {
    match a {
        wit::Answer::Found => CommitAnswer::Found,
        wit::Answer::NotFound(why) => CommitAnswer::NotFound(why),
        wit::Answer::Unavailable(why) => CommitAnswer::Unavailable(why),
        wit::Answer::Moved(to) => CommitAnswer::Moved {
            owner: to.owner,
            repo: to.repo,
        },
    }
}

fn lower(step: Step) -> wit::Step {
    match step {
        Step::Ask(questions) => wit::Step::Ask(
            questions
                .into_iter()
                .map(|q| wit::Question {
                    owner: q.owner,
                    repo: q.repo,
                    sha: q.sha,
                })
                .collect(),
        ),
        Step::Verdict(verdict) => wit::Step::Verdict(wit::Verdict {
            status: match verdict.status {
                model::Status::Verified => wit::Status::Verified,
                model::Status::Rejected => wit::Status::Rejected,
                model::Status::Indeterminate => wit::Status::Indeterminate,
            },
            allowed: verdict.allowed,
            event: match verdict.event {
                Event::Unlabeled => wit::Event::Unlabeled,
                Event::Malformed => wit::Event::Malformed,
                Event::UntrustedSource => wit::Event::UntrustedSource,
                Event::PinMismatch => wit::Event::PinMismatch,
                Event::Unresolved => wit::Event::Unresolved,
                Event::Unavailable => wit::Event::Unavailable,
                Event::Reachable => wit::Event::Reachable,
            },
            findings: verdict
                .findings
                .into_iter()
                .map(|f| wit::Finding {
                    rule: rule_id(f.rule),
                    outcome: match f.outcome {
                        model::Outcome::Pass => wit::Outcome::Pass,
                        model::Outcome::Fail => wit::Outcome::Fail,
                        model::Outcome::Indeterminate => wit::Outcome::Indeterminate,
                        model::Outcome::Skipped => wit::Outcome::Skipped,
                    },
                    message: f.message,
                })
                .collect(),
        }),
    }
}

fn rule_id(rule: RuleId) -> wit::RuleId {
    match rule {
        RuleId::LabelsPresent => wit::RuleId::LabelsPresent,
        RuleId::RevisionFormat => wit::RuleId::RevisionFormat,
        RuleId::DigestFormat => wit::RuleId::DigestFormat,
        RuleId::CreatedFormat => wit::RuleId::CreatedFormat,
        RuleId::RunIdFormat => wit::RuleId::RunIdFormat,
        RuleId::SourceTrusted => wit::RuleId::SourceTrusted,
        RuleId::RevisionResolves => wit::RuleId::RevisionResolves,
        RuleId::PinConsistent => wit::RuleId::PinConsistent,
        RuleId::TagConsistent => wit::RuleId::TagConsistent,
    }
}

export!(Policy);
