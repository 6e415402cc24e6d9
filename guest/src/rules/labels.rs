//! `labels.present`.

use crate::model::{Finding, Outcome, Subject};
use crate::rules::{ID_LABELS_PRESENT, REQUIRED_LABELS};

pub fn present(subject: &Subject) -> Finding {
    let missing: Vec<&str> = REQUIRED_LABELS
        .iter()
        .copied()
        .filter(|key| subject.label(key).is_none())
        .collect();
    if missing.is_empty() {
        Finding::new(ID_LABELS_PRESENT, Outcome::Pass, "all 4 provenance labels are present")
    } else {
        Finding::new(
            ID_LABELS_PRESENT,
            Outcome::Fail,
            format!(
                "missing or blank: {} (the build must set them with --label)",
                missing.join(", ")
            ),
        )
    }
}
