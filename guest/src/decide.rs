//! docs/reference.md §4: from findings to status, allowed and event. Nothing else
//! anywhere decides these. It reads findings by rule id only, so it knows
//! nothing of how the rules work.

use crate::model::{Event, Finding, Mode, Outcome, RuleId, Status, Verdict};
use crate::settings::OnUnavailable;

/// The verdict of a finished set of findings.
pub fn verdict(findings: Vec<Finding>, mode: Mode, on_unavailable: OnUnavailable) -> Verdict {
    let status = status(&findings);
    Verdict {
        status,
        allowed: allowed(status, mode, on_unavailable),
        event: event(&findings),
        findings,
    }
}

pub fn status(findings: &[Finding]) -> Status {
    if findings.iter().any(|f| f.outcome == Outcome::Fail) {
        Status::Rejected
    } else if findings.iter().any(|f| f.outcome == Outcome::Indeterminate) {
        Status::Indeterminate
    } else {
        Status::Verified
    }
}

pub fn allowed(status: Status, mode: Mode, on_unavailable: OnUnavailable) -> bool {
    match (mode, status) {
        (Mode::LogOnly, _) => true,
        (Mode::Enforce, Status::Verified) => true,
        (Mode::Enforce, Status::Indeterminate) => on_unavailable == OnUnavailable::Allow,
        (Mode::Enforce, Status::Rejected) => false,
    }
}

/// The first event that applies, in the order docs/reference.md §4 lists them.
pub fn event(findings: &[Finding]) -> Event {
    let any =
        |rules: &[RuleId], outcome: Outcome| findings.iter().any(|f| f.outcome == outcome && rules.contains(&f.rule));
    if any(&[RuleId::LabelsPresent], Outcome::Fail) {
        Event::Unlabeled
    } else if any(
        &[
            RuleId::RevisionFormat,
            RuleId::DigestFormat,
            RuleId::CreatedFormat,
            RuleId::RunIdFormat,
        ],
        Outcome::Fail,
    ) {
        Event::Malformed
    } else if any(&[RuleId::SourceTrusted], Outcome::Fail) {
        Event::UntrustedSource
    } else if any(&[RuleId::PinConsistent, RuleId::TagConsistent], Outcome::Fail) {
        Event::PinMismatch
    } else if any(&[RuleId::RevisionResolves], Outcome::Fail) {
        Event::Unresolved
    } else if any(&[RuleId::RevisionResolves], Outcome::Indeterminate) {
        Event::Unavailable
    } else {
        Event::Reachable
    }
}
