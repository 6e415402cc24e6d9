//! The nine rules of SPEC §3, in the order they appear in every verdict.

pub mod consistency;
pub mod formats;
pub mod labels;
pub mod source;
pub mod time;

use crate::model::{CommitAnswer, Finding, Outcome, Provenance, Subject};
use crate::settings::Settings;

pub const SOURCE: &str = "org.opencontainers.image.source";
pub const REVISION: &str = "org.opencontainers.image.revision";
pub const CREATED: &str = "org.opencontainers.image.created";
pub const RUN_ID: &str = "molecule.workflow.run_id";

pub const ID_LABELS_PRESENT: &str = "labels.present";
pub const ID_REVISION_FORMAT: &str = "revision.format";
pub const ID_DIGEST_FORMAT: &str = "digest.format";
pub const ID_CREATED_FORMAT: &str = "created.format";
pub const ID_RUN_ID_FORMAT: &str = "run_id.format";
pub const ID_SOURCE_TRUSTED: &str = "source.trusted";
pub const ID_REVISION_RESOLVES: &str = "revision.resolves";
pub const ID_PIN_CONSISTENT: &str = "pin.consistent";
pub const ID_TAG_CONSISTENT: &str = "tag.consistent";

/// Every rule id, in verdict order.
pub const RULE_IDS: [&str; 9] = [
    ID_LABELS_PRESENT,
    ID_REVISION_FORMAT,
    ID_DIGEST_FORMAT,
    ID_CREATED_FORMAT,
    ID_RUN_ID_FORMAT,
    ID_SOURCE_TRUSTED,
    ID_REVISION_RESOLVES,
    ID_PIN_CONSISTENT,
    ID_TAG_CONSISTENT,
];

/// Runs every rule. `lookup` is asked at most once, and only when the
/// source is trusted and the revision well-formed.
pub fn run(
    subject: &Subject,
    settings: &Settings,
    lookup: &mut dyn FnMut(&str, &str, &str) -> CommitAnswer,
) -> Vec<Finding> {
    let labels = Provenance {
        source: subject.label(SOURCE),
        revision: subject.label(REVISION),
        created: subject.label(CREATED),
        run_id: subject.label(RUN_ID),
    };
    let revision = formats::revision(&labels);
    let (trusted, repo) = source::check(&labels, settings);
    let resolves = match (&repo, revision.outcome, labels.revision) {
        (Some(repo), Outcome::Pass, Some(sha)) => {
            resolve(lookup(repo.owner, repo.name, sha), settings.base.as_str(), repo, sha)
        }
        _ => Finding::new(
            ID_REVISION_RESOLVES,
            Outcome::Skipped,
            "not looked up: needs source.trusted and revision.format to pass",
        ),
    };
    vec![
        labels::present(&labels),
        revision,
        formats::digest(subject),
        formats::created(&labels, subject.now, settings),
        formats::run_id(&labels),
        trusted,
        resolves,
        consistency::pin(subject, &labels),
        consistency::tag(subject, &labels),
    ]
}

fn resolve(answer: CommitAnswer, base: &str, repo: &source::Repo<'_>, sha: &str) -> Finding {
    let (owner, name) = (repo.owner, repo.name);
    match answer {
        // Joined, not formatted: see `source::check`.
        CommitAnswer::Found => Finding::new(
            ID_REVISION_RESOLVES,
            Outcome::Pass,
            ["commit ", sha, " exists in ", owner, "/", name, " on ", base].concat(),
        ),
        CommitAnswer::NotFound(why) => Finding::new(
            ID_REVISION_RESOLVES,
            Outcome::Fail,
            format!("commit {sha} was not found in {owner}/{name} on {base}: {why}"),
        ),
        CommitAnswer::Unavailable(why) => Finding::new(
            ID_REVISION_RESOLVES,
            Outcome::Indeterminate,
            format!("could not ask {base} about commit {sha} in {owner}/{name}: {why}"),
        ),
    }
}
