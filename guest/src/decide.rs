//! SPEC §4: from findings to status, allowed and event. Nothing else
//! anywhere decides these.

use crate::model::{Finding, Mode, Outcome, Status};
use crate::rules::*;
use crate::settings::OnUnavailable;

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
pub fn event(findings: &[Finding]) -> &'static str {
    let any =
        |rules: &[&str], outcome: Outcome| findings.iter().any(|f| f.outcome == outcome && rules.contains(&f.rule));
    if any(&[ID_LABELS_PRESENT], Outcome::Fail) {
        "redeploy.verify.unlabeled"
    } else if any(
        &[
            ID_REVISION_FORMAT,
            ID_DIGEST_FORMAT,
            ID_CREATED_FORMAT,
            ID_RUN_ID_FORMAT,
        ],
        Outcome::Fail,
    ) {
        "redeploy.verify.malformed"
    } else if any(&[ID_SOURCE_TRUSTED], Outcome::Fail) {
        "redeploy.verify.untrusted_source"
    } else if any(&[ID_PIN_CONSISTENT, ID_TAG_CONSISTENT], Outcome::Fail) {
        "redeploy.verify.pin_mismatch"
    } else if any(&[ID_REVISION_RESOLVES], Outcome::Fail) {
        "redeploy.verify.unresolved"
    } else if any(&[ID_REVISION_RESOLVES], Outcome::Indeterminate) {
        "redeploy.verify.unavailable"
    } else {
        "redeploy.verify.reachable"
    }
}
