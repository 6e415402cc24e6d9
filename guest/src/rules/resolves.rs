//! `revision.resolves`: the revision must be a commit of the repository the
//! source label names, on the configured Gitea. The only rule that needs
//! the outside world: it asks the host, which answers from outside the
//! sandbox. It follows at most one rename of the repository, and only to an
//! allowed owner: the host reports a rename, it never follows one.

use crate::model::{CommitAnswer, Finding, Outcome, Question, RuleId};
use crate::rules::source::Repo;
use crate::settings::Settings;
use crate::show::show;
use crate::url::is_plain_name;

/// A question waiting for its answer.
#[derive(Debug)]
pub(super) struct Asking {
    pub(super) question: Question,
    /// The repository the source label names, once the question is about
    /// where it moved to.
    moved_from: Option<(String, String)>,
}

/// The rule before any answer: skipped, and what to ask when
/// `source.trusted` and `revision.format` both pass.
pub(super) fn start(repo: Option<&Repo<'_>>, revision: Outcome, sha: Option<&str>) -> (Finding, Option<Asking>) {
    let asking = match (repo, revision, sha) {
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
    let skipped = Finding::new(
        RuleId::RevisionResolves,
        Outcome::Skipped,
        "not looked up: needs source.trusted and revision.format to pass",
    );
    (skipped, asking)
}

/// What an answer makes of `revision.resolves`.
pub(super) enum Resolved {
    Finding(Finding),
    /// The repository moved to an allowed owner: ask there.
    AskAgain(Asking),
}

pub(super) fn resolve(answer: CommitAnswer, settings: &Settings, asking: &Asking) -> Resolved {
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
            RuleId::RevisionResolves,
            Outcome::Pass,
            ["commit ", sha, " exists in ", owner, "/", name, &moved, " on ", base].concat(),
        ),
        CommitAnswer::NotFound(why) => Finding::new(
            RuleId::RevisionResolves,
            Outcome::Fail,
            format!("commit {sha} was not found in {owner}/{name}{moved} on {base}: {why}"),
        ),
        CommitAnswer::Unavailable(why) => Finding::new(
            RuleId::RevisionResolves,
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
                    RuleId::RevisionResolves,
                    Outcome::Fail,
                    format!("{base} moved {owner}/{name}{moved} again, to {to}; provgate follows one rename only"),
                )
            } else if !is_plain_name(&to_owner) || !is_plain_name(&to_repo) {
                Finding::new(
                    RuleId::RevisionResolves,
                    Outcome::Fail,
                    format!("{base} says {owner}/{name} moved to {to}, which is not a plain owner/repository name"),
                )
            } else if !settings.allowed_owners.contains(&to_owner) {
                Finding::new(
                    RuleId::RevisionResolves,
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
