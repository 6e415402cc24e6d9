//! `labels.present`.

use crate::model::{Finding, Outcome, Provenance, RuleId};
use provgate_contract::labels::{CREATED, REVISION, RUN_ID, SOURCE};

pub fn present(labels: &Provenance<'_>) -> Finding {
    let missing: Vec<&str> = [
        (SOURCE, labels.source),
        (REVISION, labels.revision),
        (CREATED, labels.created),
        (RUN_ID, labels.run_id),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.is_none().then_some(key))
    .collect();
    if missing.is_empty() {
        Finding::new(
            RuleId::LabelsPresent,
            Outcome::Pass,
            "all 4 provenance labels are present",
        )
    } else {
        Finding::new(
            RuleId::LabelsPresent,
            Outcome::Fail,
            format!(
                "missing or blank: {} (the build must set them with --label)",
                missing.join(", ")
            ),
        )
    }
}
