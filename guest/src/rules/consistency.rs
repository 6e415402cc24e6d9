//! `pin.consistent` and `tag.consistent`: the facts the caller holds must
//! agree with the labels. Nothing to compare means skipped.

use crate::model::{Finding, Outcome, Provenance, RuleId, Subject};
use crate::rules::formats::is_lower_hex;
use crate::show::show;

pub fn pin(subject: &Subject, labels: &Provenance<'_>) -> Finding {
    let Some(pin) = &subject.pin else {
        return Finding::new(RuleId::PinConsistent, Outcome::Skipped, "no pin given");
    };
    let mut problems = Vec::new();
    if let Some(digest) = pin.digest.as_deref()
        && digest != subject.digest
    {
        problems.push(format!(
            "pin digest {} differs from the image digest {}",
            show(digest),
            show(&subject.digest)
        ));
    }
    let pin_sha = pin.source_sha.as_deref().filter(|s| !s.trim().is_empty());
    let revision = labels.revision;
    let mut notes = "";
    match (pin_sha, revision) {
        (Some(sha), Some(rev)) if sha != rev => {
            problems.push(format!(
                "pin source_sha {} differs from the revision label {}",
                show(sha),
                show(rev)
            ));
        }
        (Some(_), Some(_)) => {}
        (None, _) => notes = "; the pin has no source_sha to compare (backfill it)",
        (Some(_), None) => notes = "; the image has no revision label to compare with source_sha",
    }
    if problems.is_empty() {
        Finding::new(
            RuleId::PinConsistent,
            Outcome::Pass,
            ["pin agrees with the image", notes].concat(),
        )
    } else {
        Finding::new(RuleId::PinConsistent, Outcome::Fail, problems.join("; "))
    }
}

/// The tag of a reference: after the last ':' of the last path component,
/// once any `@digest` is cut off.
pub fn tag_of(reference: &str) -> Option<&str> {
    let name = reference.split_once('@').map_or(reference, |(name, _)| name);
    // One backward scan: a '/' met before any ':' means the last path
    // component has no tag (the ':' of a registry port comes earlier).
    let i = name.bytes().rposition(|b| b == b':' || b == b'/')?;
    (name.as_bytes()[i] == b':').then(|| &name[i + 1..])
}

/// The commit SHA (full or short) a tag embeds: `staging-<hex>` or `sha-<hex>`.
fn embedded_sha(tag: &str) -> Option<&str> {
    let hex = tag.strip_prefix("staging-").or_else(|| tag.strip_prefix("sha-"))?;
    ((7..=40).contains(&hex.len()) && is_lower_hex(hex, hex.len())).then_some(hex)
}

pub fn tag(subject: &Subject, labels: &Provenance<'_>) -> Finding {
    let Some(tag) = tag_of(&subject.reference) else {
        return Finding::new(RuleId::TagConsistent, Outcome::Skipped, "the reference has no tag");
    };
    let Some(sha) = embedded_sha(tag) else {
        return Finding::new(
            RuleId::TagConsistent,
            Outcome::Skipped,
            format!("tag {} embeds no commit SHA", show(tag)),
        );
    };
    let Some(rev) = labels.revision.filter(|r| is_lower_hex(r, 40)) else {
        return Finding::new(
            RuleId::TagConsistent,
            Outcome::Skipped,
            "no well-formed revision label to compare the tag with",
        );
    };
    if rev.starts_with(sha) {
        Finding::new(
            RuleId::TagConsistent,
            Outcome::Pass,
            // `embedded_sha` proved the tag is a prefix and lower-case hex,
            // so it is shown as `show` would, without its scan.
            ["tag \"", tag, "\" agrees with the revision"].concat(),
        )
    } else {
        Finding::new(
            RuleId::TagConsistent,
            Outcome::Fail,
            format!("tag {} names commit {sha}, but the revision label is {rev}", show(tag)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::tag_of;

    #[test]
    fn the_tag_is_after_the_last_colon_of_the_last_path_component() {
        for (reference, tag) in [
            ("git.example.org/o/app:staging-36b68ae", Some("staging-36b68ae")),
            ("localhost:5000/o/app:v1", Some("v1")),
            ("localhost:5000/o/app", None),
            ("localhost:5000/o/app@sha256:abc", None),
            ("localhost:5000/o/app:v1@sha256:abc", Some("v1")),
            ("app:", Some("")),
            ("app", None),
            ("a:b:c", Some("c")),
            ("a:b/c", None),
            ("", None),
        ] {
            assert_eq!(tag_of(reference), tag, "{reference:?}");
        }
    }
}
