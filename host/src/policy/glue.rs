//! The WIT world the policy component implements, and the conversions
//! between the host's types and the bindings': lowered from the host's own
//! strings on the way in, lifted (and bounded) on the way out.

use provgate_contract::{Event, RuleId};
use std::time::SystemTime;

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::lookup::{Answer, Answered, Question};
use crate::policy::{Description, PolicyError, SettingsView, Step, TrapKind};
use crate::subject::Subject;
use crate::verdict::{Decided, Finding, Mode, Outcome, Status};

wasmtime::component::bindgen!({
    world: "provgate",
    path: "../wit",
    // The subject is lowered straight from the host's own strings.
    ownership: Borrowing { duplicate_if_necessary: true },
});

pub(super) use exports::provgate::policy::rules as wit;

/// The WIT world every artifact must implement.
pub const WORLD: &str = "provgate:policy/provgate@0.2.0";

/// The interface every artifact exports.
pub(super) const RULES: &str = "provgate:policy/rules@0.2.0";

/// The interfaces of worlds this host no longer runs, and what to say.
const OLD_WORLDS: [(&str, &str); 2] = [
    ("provgate:policy/rules@0.1.0", "provgate:policy/provgate@0.1.0"),
    ("provgate:policy/lookup@0.1.0", "provgate:policy/provgate@0.1.0"),
];

/// Findings one verdict may carry: the rules give one each.
pub const MAX_FINDINGS: usize = 1024;
/// Text one verdict may carry (event, rule ids and messages together):
/// messages quote values cut to a few dozen characters.
pub const MAX_VERDICT_TEXT: usize = 1 << 20;

/// `evaluate`'s parameters, lowered from the host's own strings.
pub(super) type EvaluateParams<'a> = (wit::Subject<'a>, wit::Mode, &'a [wit::Answered<'a>]);
/// What `evaluate` and `resume` return.
pub(super) type StepResults = (Result<wit::Step, String>,);

/// The world of an artifact built for an older provgate, named by the
/// interfaces it imports or exports.
pub(super) fn old_world(engine: &Engine, component: &Component) -> Option<&'static str> {
    let ty = component.component_type();
    let names: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .chain(ty.exports(engine).map(|(name, _)| name.to_string()))
        .collect();
    OLD_WORLDS
        .iter()
        .find(|(interface, _)| names.iter().any(|n| n == interface))
        .map(|(_, world)| *world)
}

/// `describe`'s answer about the artifact whose digest is `digest`.
pub(super) fn lift_description(d: wit::Description, digest: String) -> Description {
    Description {
        name: d.name,
        version: d.version,
        digest,
        world: WORLD.into(),
        rules: d.rules.into_iter().map(rule_name).collect(),
        settings: SettingsView {
            gitea_base_url: d.settings.gitea_base_url,
            allowed_owners: d.settings.allowed_owners,
            created_max_skew_seconds: d.settings.created_max_skew_seconds,
            on_unavailable: match d.settings.on_unavailable {
                wit::OnUnavailable::Deny => "deny",
                wit::OnUnavailable::Allow => "allow",
            },
        },
    }
}

/// The subject's labels as the bindings borrow them.
pub(super) fn label_pairs(subject: &Subject) -> Vec<(&str, &str)> {
    subject.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The subject, borrowing its strings and `labels` (from [`label_pairs`]).
pub(super) fn lower_subject<'a>(
    subject: &'a Subject,
    labels: &'a [(&'a str, &'a str)],
    now: SystemTime,
) -> wit::Subject<'a> {
    let since_epoch = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    wit::Subject {
        reference: &subject.reference,
        digest: &subject.digest,
        labels,
        pin: subject.pin.as_ref().map(|p| wit::Pin {
            runtime: p.runtime.as_deref(),
            digest: p.digest.as_deref(),
            source_sha: p.source_sha.as_deref(),
        }),
        now: wit::Instant {
            seconds: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
            nanoseconds: since_epoch.subsec_nanos(),
        },
    }
}

pub(super) fn lower_mode(mode: Mode) -> wit::Mode {
    match mode {
        Mode::Enforce => wit::Mode::Enforce,
        Mode::LogOnly => wit::Mode::LogOnly,
    }
}

pub(super) fn lower_answered(answered: &[Answered]) -> Vec<wit::Answered<'_>> {
    answered
        .iter()
        .map(|a| wit::Answered {
            question: wit::QuestionParam {
                owner: &a.question.owner,
                repo: &a.question.repo,
                sha: &a.question.sha,
            },
            answer: lower_answer(&a.answer),
        })
        .collect()
}

pub(super) fn lower_answer(answer: &Answer) -> wit::Answer<'_> {
    match answer {
        Answer::Found => wit::Answer::Found,
        Answer::NotFound { reason } => wit::Answer::NotFound(reason),
        Answer::Unavailable { reason } => wit::Answer::Unavailable(reason),
        Answer::Moved { moved_to } => wit::Answer::Moved(wit::MovedTo {
            owner: &moved_to.owner,
            repo: &moved_to.repo,
        }),
    }
}

/// The guest's step in the host's types; a verdict too big to be a
/// decision is refused.
pub(super) fn lift_step(step: wit::Step) -> Result<Step, PolicyError> {
    Ok(match step {
        // The limits on questions are checked in one place, `crate::judge`.
        wit::Step::Ask(questions) => Step::Ask(
            questions
                .into_iter()
                .map(|q| Question {
                    owner: q.owner,
                    repo: q.repo,
                    sha: q.sha,
                })
                .collect(),
        ),
        wit::Step::Verdict(out) => {
            check_size(&out)?;
            Step::Verdict(Decided {
                status: match out.status {
                    wit::Status::Verified => Status::Verified,
                    wit::Status::Rejected => Status::Rejected,
                    wit::Status::Indeterminate => Status::Indeterminate,
                },
                allowed: out.allowed,
                event: event_name(out.event).into(),
                findings: out
                    .findings
                    .into_iter()
                    .map(|f| Finding {
                        rule: rule_name(f.rule).into(),
                        outcome: match f.outcome {
                            wit::Outcome::Pass => Outcome::Pass,
                            wit::Outcome::Fail => Outcome::Fail,
                            wit::Outcome::Indeterminate => Outcome::Indeterminate,
                            wit::Outcome::Skipped => Outcome::Skipped,
                        },
                        message: f.message,
                    })
                    .collect(),
            })
        }
    })
}

/// A verdict that big is a broken or hostile policy, not a decision: refuse
/// it as a trap rather than print or serve it. (Lifting it was already
/// bounded by the guest's memory cap.)
fn check_size(out: &wit::Verdict) -> Result<(), PolicyError> {
    let oversized = |message: String| PolicyError::Trap {
        kind: TrapKind::OversizedVerdict,
        message,
    };
    if out.findings.len() > MAX_FINDINGS {
        return Err(oversized(format!(
            "it returned a verdict with {} findings (at most {MAX_FINDINGS})",
            out.findings.len()
        )));
    }
    let text = out.findings.iter().map(|f| f.message.len()).sum::<usize>();
    if text > MAX_VERDICT_TEXT {
        return Err(oversized(format!(
            "it returned a verdict with {text} bytes of text (at most {MAX_VERDICT_TEXT})"
        )));
    }
    Ok(())
}

/// The rule id the WIT enum stands for; its spelling lives in the contract.
fn rule_name(rule: wit::RuleId) -> &'static str {
    let id = match rule {
        wit::RuleId::LabelsPresent => RuleId::LabelsPresent,
        wit::RuleId::RevisionFormat => RuleId::RevisionFormat,
        wit::RuleId::DigestFormat => RuleId::DigestFormat,
        wit::RuleId::CreatedFormat => RuleId::CreatedFormat,
        wit::RuleId::RunIdFormat => RuleId::RunIdFormat,
        wit::RuleId::SourceTrusted => RuleId::SourceTrusted,
        wit::RuleId::RevisionResolves => RuleId::RevisionResolves,
        wit::RuleId::PinConsistent => RuleId::PinConsistent,
        wit::RuleId::TagConsistent => RuleId::TagConsistent,
    };
    id.as_str()
}

/// The event the WIT enum stands for; its spelling lives in the contract.
fn event_name(event: wit::Event) -> &'static str {
    let event = match event {
        wit::Event::Unlabeled => Event::Unlabeled,
        wit::Event::Malformed => Event::Malformed,
        wit::Event::UntrustedSource => Event::UntrustedSource,
        wit::Event::PinMismatch => Event::PinMismatch,
        wit::Event::Unresolved => Event::Unresolved,
        wit::Event::Unavailable => Event::Unavailable,
        wit::Event::Reachable => Event::Reachable,
    };
    event.as_str()
}
