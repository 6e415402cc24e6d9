//! Decision records (docs/records.md): one self-contained JSON line per verdict,
//! holding everything it was decided on, so that `provgate replay` can
//! decide it again with no network and compare.
//!
//! The `id` is the sha256 of the record's decision input written as
//! compact JSON, keys in this order: `{"policy": <artifact digest>,
//! "mode", "subject", "now", "answers"}`, with `subject` as the record
//! spells it (labels sorted by key) — see [`DecisionInput`]. Anyone can
//! recompute it; two records with the same id were decided on the same
//! facts.

use std::collections::BTreeMap;
use std::time::SystemTime;

use anyhow::{Context, anyhow};
use serde::{Deserialize, Serialize};

use crate::digest::sha256_digest;
use crate::judge::Decision;
use crate::lookup::Answered;
use crate::subject::{Pin, Platform, Subject};
use crate::verdict::{Mode, PolicyRef, Verdict};

/// The value of every record's `record` field.
pub const FORMAT: &str = "provgate.decision/1";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub record: String,
    pub id: String,
    /// When the record was written (RFC 3339, UTC, nanoseconds).
    pub at: String,
    pub policy: PolicyRef,
    pub mode: Mode,
    pub subject: RecordedSubject,
    /// The `now` the guest saw, at full precision.
    pub now: String,
    /// The answers the guest was given, in the order it asked.
    pub answers: Vec<Answered>,
    pub verdict: Verdict,
}

/// The subject as a record holds it: all of its facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedSubject {
    pub reference: String,
    pub digest: String,
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<Pin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_digest: Option<String>,
}

impl RecordedSubject {
    pub fn of(subject: &Subject) -> RecordedSubject {
        RecordedSubject {
            reference: subject.reference.clone(),
            digest: subject.digest.clone(),
            labels: subject.labels.clone(),
            pin: subject.pin.clone(),
            platform: subject.platform.as_ref().map(|p| p.name.clone()),
            platform_digest: subject.platform.as_ref().and_then(|p| p.digest.clone()),
        }
    }

    pub fn subject(&self) -> Subject {
        Subject {
            reference: self.reference.clone(),
            digest: self.digest.clone(),
            labels: self.labels.clone(),
            pin: self.pin.clone(),
            platform: self.platform.as_ref().map(|name| Platform {
                name: name.clone(),
                digest: self.platform_digest.clone(),
            }),
        }
    }
}

/// What the `id` is the hash of, in its key order.
#[derive(Serialize)]
struct DecisionInput<'a> {
    policy: &'a str,
    mode: Mode,
    subject: &'a RecordedSubject,
    now: &'a str,
    answers: &'a [Answered],
}

/// `now` as records write it: RFC 3339, UTC, nine fractional digits.
pub fn format_now(now: SystemTime) -> String {
    humantime::format_rfc3339_nanos(now).to_string()
}

/// A record's `now`, at the precision it was written with.
pub fn parse_now(now: &str) -> anyhow::Result<SystemTime> {
    humantime::parse_rfc3339(now)
        .map_err(|e| anyhow!("\"now\" {} is not an RFC 3339 UTC time: {e}", crate::text::quote(now)))
}

impl Record {
    pub fn new(decision: &Decision, subject: &Subject) -> Record {
        let subject = RecordedSubject::of(subject);
        let now = format_now(decision.now);
        let id = id_of(
            &decision.verdict.policy.digest,
            decision.mode,
            &subject,
            &now,
            &decision.answers,
        );
        Record {
            record: FORMAT.into(),
            id,
            at: format_now(SystemTime::now()),
            policy: (*decision.verdict.policy).clone(),
            mode: decision.mode,
            subject,
            now,
            answers: decision.answers.clone(),
            verdict: decision.verdict.clone(),
        }
    }

    /// The id this record's content gives; differs from `id` when the record
    /// was edited.
    pub fn computed_id(&self) -> String {
        id_of(&self.policy.digest, self.mode, &self.subject, &self.now, &self.answers)
    }

    /// One JSON line, newline included.
    pub fn line(&self) -> Vec<u8> {
        // A record is strings, maps and enums: it always serialises.
        let mut line = crate::text::to_json(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

fn id_of(policy: &str, mode: Mode, subject: &RecordedSubject, now: &str, answers: &[Answered]) -> String {
    let input = DecisionInput {
        policy,
        mode,
        subject,
        now,
        answers,
    };
    sha256_digest(&serde_json::to_vec(&input).unwrap_or_default())
}

/// Every record in `bytes`: JSON lines, or JSON values one after another
/// (a pretty-printed record too). `what` names the input in errors.
pub fn read_all(bytes: &[u8], what: &str) -> anyhow::Result<Vec<Record>> {
    let mut records = Vec::new();
    for (n, value) in serde_json::Deserializer::from_slice(bytes)
        .into_iter::<serde_json::Value>()
        .enumerate()
    {
        let value = value.with_context(|| format!("{what}: record {} is not JSON", n + 1))?;
        records.push(from_value(value).with_context(|| format!("{what}: record {}", n + 1))?);
    }
    if records.is_empty() {
        anyhow::bail!("{what} holds no decision record");
    }
    Ok(records)
}

/// One record, checked to be of this format.
pub fn from_value(value: serde_json::Value) -> anyhow::Result<Record> {
    match value.get("record").and_then(serde_json::Value::as_str) {
        Some(FORMAT) => {}
        Some(other) => anyhow::bail!(
            "is a {} record; this provgate reads {FORMAT}",
            crate::text::quote(other)
        ),
        None => anyhow::bail!("is not a decision record (no \"record\": \"{FORMAT}\")"),
    }
    let record: Record = serde_json::from_value(value).context("is not a well-formed decision record")?;
    parse_now(&record.now)?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lookup::{Answer, Question};
    use crate::verdict::{Decided, Status, VerdictSubject};
    use std::sync::Arc;
    use std::time::Duration;

    fn decision() -> (Decision, Subject) {
        let subject = Subject {
            reference: "r.example/o/app:v1".into(),
            digest: "sha256:00".into(),
            labels: BTreeMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
            pin: None,
            platform: None,
        };
        let verdict = Verdict {
            subject: VerdictSubject::of(&subject),
            policy: Arc::new(PolicyRef {
                name: "p".into(),
                version: "0".into(),
                digest: "sha256:11".into(),
            }),
            mode: Mode::Enforce,
            decided: Decided {
                status: Status::Verified,
                allowed: true,
                event: "redeploy.verify.reachable".into(),
                findings: Vec::new(),
            },
        };
        let decision = Decision {
            verdict,
            mode: Mode::Enforce,
            now: SystemTime::UNIX_EPOCH + Duration::new(1_795_428_000, 123_456_789),
            answers: vec![Answered {
                question: Question::new("o", "app", "abc"),
                answer: Answer::Found,
            }],
            instances: 1,
        };
        (decision, subject)
    }

    #[test]
    fn a_record_round_trips_with_now_at_full_precision_and_its_id_recomputes() {
        let (decision, subject) = decision();
        let record = Record::new(&decision, &subject);
        assert_eq!(record.now, "2026-11-23T10:00:00.123456789Z");
        assert_eq!(parse_now(&record.now).unwrap(), decision.now);
        let back = read_all(&record.line(), "test").unwrap();
        assert_eq!(back, vec![record.clone()]);
        assert_eq!(back[0].computed_id(), record.id);
        assert_eq!(back[0].subject.subject(), subject);
    }

    #[test]
    fn an_edited_answer_changes_the_computed_id() {
        let (decision, subject) = decision();
        let mut record = Record::new(&decision, &subject);
        record.answers[0].answer = Answer::not_found("404");
        assert_ne!(record.computed_id(), record.id);
    }

    #[test]
    fn something_else_than_a_record_is_refused_by_name() {
        let err = read_all(br#"{"now": "x", "lookups": []}"#, "f.json").unwrap_err();
        assert!(format!("{err:#}").contains("not a decision record"), "{err:#}");
        let err = read_all(b"", "f.json").unwrap_err();
        assert!(format!("{err:#}").contains("no decision record"), "{err:#}");
    }
}
