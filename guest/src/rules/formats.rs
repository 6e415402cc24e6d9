//! The format rules: `revision.format`, `digest.format`, `created.format`,
//! `run_id.format`. A missing label skips its rule (labels.present reports it).

use crate::model::{Finding, Instant, Outcome, Provenance, RuleId, Subject};
use crate::rfc3339::{format_utc, parse_rfc3339};
use crate::settings::Settings;
use crate::show::show;
use provgate_contract::labels::{CREATED, REVISION, RUN_ID};

/// True when `s` is exactly `len` characters of `0-9a-f`.
pub fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// True for `sha256:` followed by 64 lower-case hex characters.
pub fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| is_lower_hex(hex, 64))
}

fn skipped(rule: RuleId, label: &str) -> Finding {
    Finding::new(rule, Outcome::Skipped, format!("no {label} label (see labels.present)"))
}

pub fn revision(labels: &Provenance<'_>) -> Finding {
    let Some(rev) = labels.revision else {
        return skipped(RuleId::RevisionFormat, REVISION);
    };
    if is_lower_hex(rev, 40) {
        Finding::new(
            RuleId::RevisionFormat,
            Outcome::Pass,
            "revision is a full 40-character commit SHA",
        )
    } else {
        Finding::new(
            RuleId::RevisionFormat,
            Outcome::Fail,
            format!(
                "revision {} is not a full commit SHA: need exactly 40 characters of 0-9a-f, got {} characters",
                show(rev),
                rev.chars().count()
            ),
        )
    }
}

pub fn digest(subject: &Subject) -> Finding {
    let mut bad = Vec::new();
    if !is_sha256_digest(&subject.digest) {
        bad.push(format!("subject digest {}", show(&subject.digest)));
    }
    let pin_digest = subject.pin.as_ref().and_then(|p| p.digest.as_deref());
    if let Some(digest) = pin_digest.filter(|d| !is_sha256_digest(d)) {
        bad.push(format!("pin digest {}", show(digest)));
    }
    if bad.is_empty() {
        let message = if pin_digest.is_some() {
            "subject and pin digests are sha256:<64 hex>"
        } else {
            "subject digest is sha256:<64 hex>"
        };
        Finding::new(RuleId::DigestFormat, Outcome::Pass, message)
    } else {
        Finding::new(
            RuleId::DigestFormat,
            Outcome::Fail,
            format!("{} not sha256: followed by 64 characters of 0-9a-f", bad.join(" and ")),
        )
    }
}

pub fn created(labels: &Provenance<'_>, now: Instant, settings: &Settings) -> Finding {
    let Some(created) = labels.created else {
        return skipped(RuleId::CreatedFormat, CREATED);
    };
    let at = match parse_rfc3339(created) {
        Ok(at) => at,
        Err(why) => {
            return Finding::new(
                RuleId::CreatedFormat,
                Outcome::Fail,
                format!("created {} is not an RFC 3339 date-time: it {why}", show(created)),
            );
        }
    };
    let skew = i128::from(settings.created_max_skew_seconds);
    let ahead_ns = at - now.as_nanos();
    if ahead_ns > skew * 1_000_000_000 {
        let ahead = (ahead_ns + 999_999_999) / 1_000_000_000;
        Finding::new(
            RuleId::CreatedFormat,
            Outcome::Fail,
            format!(
                "created {} is {ahead} s after the host's clock ({}), more than the allowed skew of {skew} s",
                show(created),
                format_utc(now.seconds)
            ),
        )
    } else {
        Finding::new(
            RuleId::CreatedFormat,
            Outcome::Pass,
            "created is an RFC 3339 date-time, not in the future",
        )
    }
}

pub fn run_id(labels: &Provenance<'_>) -> Finding {
    let Some(id) = labels.run_id else {
        return skipped(RuleId::RunIdFormat, RUN_ID);
    };
    let digits_only = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
    let why = if !digits_only {
        Some("is not made of ASCII digits only")
    } else if id.starts_with('0') {
        Some("is zero or has a leading zero")
    } else if id.parse::<i64>().is_err() {
        Some("is larger than a run id can be")
    } else {
        None
    };
    match why {
        None => Finding::new(RuleId::RunIdFormat, Outcome::Pass, "run id is a positive integer"),
        Some(why) => Finding::new(
            RuleId::RunIdFormat,
            Outcome::Fail,
            format!("run id {} {why}: need a positive decimal integer", show(id)),
        ),
    }
}
