//! SPEC §4: from findings to status, allowed and event. Nothing else
//! anywhere decides these.

use crate::model::{Event, Finding, Mode, Outcome, RuleId, Status, Verdict};
use crate::rules::*;
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

/// The first event that applies, in the order SPEC §4 lists them.
pub fn event(findings: &[Finding]) -> Event {
    let any =
        |rules: &[RuleId], outcome: Outcome| findings.iter().any(|f| f.outcome == outcome && rules.contains(&f.rule));
    if any(&[ID_LABELS_PRESENT], Outcome::Fail) {
        Event::Unlabeled
    } else if any(
        &[
            ID_REVISION_FORMAT,
            ID_DIGEST_FORMAT,
            ID_CREATED_FORMAT,
            ID_RUN_ID_FORMAT,
        ],
        Outcome::Fail,
    ) {
        Event::Malformed
    } else if any(&[ID_SOURCE_TRUSTED], Outcome::Fail) {
        Event::UntrustedSource
    } else if any(&[ID_PIN_CONSISTENT, ID_TAG_CONSISTENT], Outcome::Fail) {
        Event::PinMismatch
    } else if any(&[ID_REVISION_RESOLVES], Outcome::Fail) {
        Event::Unresolved
    } else if any(&[ID_REVISION_RESOLVES], Outcome::Indeterminate) {
        Event::Unavailable
    } else {
        Event::Reachable
    }
}
