//! What an audit tells people: one JSON line per pin, the running tally,
//! the summary table on stderr, the Markdown report and the backfill rows.
//! Every decision shown here is the guest's; the tally only counts them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::Arc;

use serde::Serialize;

use provgate_contract::RuleId;

use super::pins::{Malformed, PinRow};
use crate::verdict::{Mode, Outcome, PolicyRef, Status, Verdict};

/// One judged pin.
pub struct Row {
    pub pin: PinRow,
    /// The repository the pin was looked for in.
    pub image: String,
    /// `image@digest`.
    pub reference: String,
    pub judged: Judged,
}

#[derive(Clone)]
pub enum Judged {
    /// The guest's verdict, and the image's revision label as fetched.
    Verdict {
        verdict: Arc<Verdict>,
        revision: Option<String>,
        /// Its decision record, when the audit keeps them (`--records`).
        record: Option<Arc<crate::record::Record>>,
    },
    /// The pin could not be judged: its image could not be fetched, say.
    Error(String),
}

/// How a row ended, for counting; `Error` is not a verdict status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RowStatus {
    Verified,
    Rejected,
    Indeterminate,
    Error,
}

impl RowStatus {
    pub const ALL: [RowStatus; 4] = [
        RowStatus::Verified,
        RowStatus::Rejected,
        RowStatus::Indeterminate,
        RowStatus::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RowStatus::Verified => "verified",
            RowStatus::Rejected => "rejected",
            RowStatus::Indeterminate => "indeterminate",
            RowStatus::Error => "error",
        }
    }
}

impl Row {
    pub fn status(&self) -> RowStatus {
        match &self.judged {
            Judged::Verdict { verdict, .. } => match verdict.decided.status {
                Status::Verified => RowStatus::Verified,
                Status::Rejected => RowStatus::Rejected,
                Status::Indeterminate => RowStatus::Indeterminate,
            },
            Judged::Error(_) => RowStatus::Error,
        }
    }

    /// The row's JSON line (without the newline): the verdict of docs/reference.md §4 plus
    /// `index`, `line`, `runtime` and `pin`; or, for an error, the subject,
    /// policy, `status: "error"` and the reason.
    pub fn json(&self, policy: &PolicyRef) -> serde_json::Result<Vec<u8>> {
        let body = match &self.judged {
            Judged::Verdict { verdict, .. } => Body::Verdict(verdict.as_ref()),
            Judged::Error(reason) => Body::Error(ErrorBody {
                subject: ErrorSubject {
                    reference: &self.reference,
                    digest: &self.pin.digest,
                },
                policy,
                mode: Mode::LogOnly,
                status: "error",
                error: reason,
            }),
        };
        crate::text::to_json(&Line {
            index: self.pin.index,
            line: self.pin.line,
            runtime: &self.pin.runtime,
            pin: PinOut {
                runtime: &self.pin.runtime,
                image: &self.image,
                digest: &self.pin.digest,
                source_sha: self.pin.source_sha.as_deref(),
            },
            body,
        })
    }

    /// A `{runtime, digest, source_sha}` suggestion, when the pin has no
    /// `source_sha` and the guest found the image's revision well-formed and
    /// present on Gitea.
    pub fn backfill(&self) -> Option<Backfill> {
        let Judged::Verdict { verdict, revision, .. } = &self.judged else {
            return None;
        };
        let passed = |rule: &str| {
            verdict
                .decided
                .findings
                .iter()
                .any(|f| f.rule == rule && f.outcome == Outcome::Pass)
        };
        if self.pin.source_sha.is_some()
            || !passed(RuleId::RevisionFormat.as_str())
            || !passed(RuleId::RevisionResolves.as_str())
        {
            return None;
        }
        Some(Backfill {
            runtime: self.pin.runtime.clone(),
            digest: self.pin.digest.clone(),
            source_sha: revision.clone()?,
        })
    }
}

#[derive(Serialize)]
struct Line<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    runtime: &'a str,
    pin: PinOut<'a>,
    #[serde(flatten)]
    body: Body<'a>,
}

#[derive(Serialize)]
struct PinOut<'a> {
    runtime: &'a str,
    image: &'a str,
    digest: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_sha: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Body<'a> {
    Verdict(&'a Verdict),
    Error(ErrorBody<'a>),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    subject: ErrorSubject<'a>,
    policy: &'a PolicyRef,
    mode: Mode,
    status: &'static str,
    error: &'a str,
}

#[derive(Serialize)]
struct ErrorSubject<'a> {
    reference: &'a str,
    digest: &'a str,
}

/// A row for `POST /cp/admin/runtime-image-pins`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Backfill {
    pub runtime: String,
    pub digest: String,
    pub source_sha: String,
}

/// A pin that is not `reachable`, kept for the report.
struct Notable {
    place: String,
    runtime: String,
    reference: String,
    source_sha: Option<String>,
    status: RowStatus,
    event: Option<String>,
    /// Failing and indeterminate findings: (rule, outcome, message).
    problems: Vec<(String, &'static str, String)>,
    error: Option<String>,
}

/// Counts and notes over the rows written so far.
#[derive(Default)]
pub struct Tally {
    pub written: usize,
    by_status: BTreeMap<RowStatus, usize>,
    by_event: BTreeMap<String, usize>,
    by_runtime: BTreeMap<String, BTreeMap<RowStatus, usize>>,
    notable: Vec<Notable>,
    backfill: Vec<Backfill>,
    backfilled: BTreeSet<(String, String)>,
}

impl Tally {
    pub fn add(&mut self, row: &Row) {
        let status = row.status();
        self.written += 1;
        *self.by_status.entry(status).or_default() += 1;
        *self
            .by_runtime
            .entry(row.pin.runtime.clone())
            .or_default()
            .entry(status)
            .or_default() += 1;
        let event = match &row.judged {
            Judged::Verdict { verdict, .. } => verdict.decided.event.to_string(),
            Judged::Error(_) => "error (not judged by the policy)".to_string(),
        };
        *self.by_event.entry(event).or_default() += 1;
        if let Some(b) = row.backfill()
            && self.backfilled.insert((b.runtime.clone(), b.digest.clone()))
        {
            self.backfill.push(b);
        }
        let notable = match &row.judged {
            Judged::Verdict { verdict, .. } if verdict.decided.status == Status::Verified => return,
            Judged::Verdict { verdict, .. } => Notable {
                place: place(&row.pin),
                runtime: row.pin.runtime.clone(),
                reference: row.reference.clone(),
                source_sha: row.pin.source_sha.clone(),
                status,
                event: Some(verdict.decided.event.to_string()),
                problems: verdict
                    .decided
                    .findings
                    .iter()
                    .filter(|f| matches!(f.outcome, Outcome::Fail | Outcome::Indeterminate))
                    .map(|f| (f.rule.to_string(), f.outcome.as_str(), f.message.clone()))
                    .collect(),
                error: None,
            },
            Judged::Error(reason) => Notable {
                place: place(&row.pin),
                runtime: row.pin.runtime.clone(),
                reference: row.reference.clone(),
                source_sha: row.pin.source_sha.clone(),
                status,
                event: None,
                problems: Vec::new(),
                error: Some(reason.clone()),
            },
        };
        self.notable.push(notable);
    }

    pub fn count(&self, status: RowStatus) -> usize {
        self.by_status.get(&status).copied().unwrap_or(0)
    }

    pub fn backfill_rows(&self) -> &[Backfill] {
        &self.backfill
    }
}

fn place(pin: &PinRow) -> String {
    match pin.line {
        Some(line) => format!("line {line}"),
        None => format!("array index {}", pin.index),
    }
}

/// The facts around the tally that the summary and report show.
pub struct RunInfo<'a> {
    pub policy: &'a PolicyRef,
    /// RFC 3339, the `now` every verdict was given.
    pub at: String,
    /// `--pins` as it may be shown.
    pub source: String,
    pub total: usize,
    pub malformed: &'a [Malformed],
    pub seconds: f64,
    /// Why the run stopped early, if it did.
    pub interrupted: Option<&'static str>,
    /// Lines describing look-ups and fetches.
    pub traffic: Vec<String>,
    pub backfill: Option<String>,
}

impl RunInfo<'_> {
    fn not_judged(&self, tally: &Tally) -> usize {
        self.total.saturating_sub(tally.written)
    }
}

/// `5 of 6 pins judged (1 error)`: an error row (an image that could not
/// be fetched, say) is written but was not judged by the policy.
fn judged(info: &RunInfo<'_>, tally: &Tally) -> String {
    let errors = tally.count(RowStatus::Error);
    let judged = tally.written - errors;
    match errors {
        0 => format!("{judged} of {} pins judged", info.total),
        1 => format!("{judged} of {} pins judged (1 error)", info.total),
        n => format!("{judged} of {} pins judged ({n} errors)", info.total),
    }
}

/// The summary table, for stderr.
pub fn summary(out: &mut dyn Write, info: &RunInfo<'_>, tally: &Tally) -> io::Result<()> {
    let not_judged = info.not_judged(tally);
    writeln!(out)?;
    writeln!(
        out,
        "provgate audit: {} in {:.1} s (log-only), policy {} {} {}",
        judged(info, tally),
        info.seconds,
        info.policy.name,
        info.policy.version,
        info.policy.digest
    )?;
    if let Some(why) = info.interrupted {
        writeln!(
            out,
            "INTERRUPTED by {why}: {not_judged} of {} pins were not judged",
            info.total
        )?;
    } else if not_judged > 0 {
        writeln!(out, "{not_judged} of {} pins were not judged", info.total)?;
    }
    if !info.malformed.is_empty() {
        writeln!(out, "{} malformed rows skipped", info.malformed.len())?;
    }

    let mut events: Vec<(String, usize)> = tally.by_event.iter().map(|(e, n)| (e.clone(), *n)).collect();
    if not_judged > 0 {
        events.push(("not judged".into(), not_judged));
    }
    let width = events
        .iter()
        .map(|(e, _)| e.len())
        .max()
        .unwrap_or(0)
        .max("event".len());
    writeln!(out)?;
    writeln!(out, "  {:width$}  {:>6}", "event", "pins")?;
    for (event, n) in &events {
        writeln!(out, "  {event:width$}  {n:>6}")?;
    }

    // Runtimes come from the control plane: shown bare only when plain.
    let runtimes: Vec<(String, &BTreeMap<RowStatus, usize>)> = tally
        .by_runtime
        .iter()
        .map(|(runtime, counts)| (crate::text::shown(runtime), counts))
        .collect();
    let width = runtimes
        .iter()
        .map(|(runtime, _)| runtime.chars().count())
        .max()
        .unwrap_or(0)
        .max("runtime".len());
    writeln!(out)?;
    write!(out, "  {:width$}  {:>6}", "runtime", "pins")?;
    for s in RowStatus::ALL {
        write!(out, "  {:>13}", s.as_str())?;
    }
    writeln!(out)?;
    for (runtime, counts) in &runtimes {
        write!(out, "  {runtime:width$}  {:>6}", counts.values().sum::<usize>())?;
        for s in RowStatus::ALL {
            write!(out, "  {:>13}", counts.get(&s).copied().unwrap_or(0))?;
        }
        writeln!(out)?;
    }
    write!(out, "  {:width$}  {:>6}", "total", tally.written)?;
    for s in RowStatus::ALL {
        write!(out, "  {:>13}", tally.count(s))?;
    }
    writeln!(out)?;
    if !info.traffic.is_empty() || info.backfill.is_some() {
        writeln!(out)?;
    }
    for line in info.traffic.iter().chain(info.backfill.iter()) {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

/// The Markdown report: readable on a Gitea page.
pub fn markdown(info: &RunInfo<'_>, tally: &Tally) -> String {
    let mut md = String::new();
    let not_judged = info.not_judged(tally);
    let _ = writeln!(md, "# provgate audit\n");
    if let Some(why) = info.interrupted {
        let _ = writeln!(
            md,
            "> **Interrupted** by {why}: {not_judged} of {} pins were not judged.\n",
            info.total
        );
    }
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(
        md,
        "| policy | {} {} |",
        text(&format!("{} {}", info.policy.name, info.policy.version)),
        code(&info.policy.digest)
    );
    let _ = writeln!(md, "| run at | {} |", code(&info.at));
    let _ = writeln!(md, "| pins | {} from {} |", info.total, code(&info.source));
    let errors = tally.count(RowStatus::Error);
    let _ = writeln!(
        md,
        "| judged | {}{} (log-only, in {:.1} s) |",
        tally.written - errors,
        match errors {
            0 => String::new(),
            1 => ", and 1 error".to_string(),
            n => format!(", and {n} errors"),
        },
        info.seconds
    );
    if not_judged > 0 {
        let _ = writeln!(md, "| not judged | {not_judged} |");
    }
    if !info.malformed.is_empty() {
        let _ = writeln!(md, "| malformed rows skipped | {} |", info.malformed.len());
    }

    let _ = writeln!(md, "\n## Summary\n\n| event | pins |\n|---|---:|");
    for (event, n) in &tally.by_event {
        let _ = writeln!(md, "| {} | {n} |", code(event));
    }
    if not_judged > 0 {
        let _ = writeln!(md, "| not judged | {not_judged} |");
    }
    let _ = writeln!(
        md,
        "\n| runtime | pins | verified | rejected | indeterminate | error |\n|---|---:|---:|---:|---:|---:|"
    );
    for (runtime, counts) in &tally.by_runtime {
        let _ = write!(md, "| {} | {} |", code(runtime), counts.values().sum::<usize>());
        for s in RowStatus::ALL {
            let _ = write!(md, " {} |", counts.get(&s).copied().unwrap_or(0));
        }
        let _ = writeln!(md);
    }
    let _ = write!(md, "| **total** | {} |", tally.written);
    for s in RowStatus::ALL {
        let _ = write!(md, " {} |", tally.count(s));
    }
    let _ = writeln!(md);
    for line in info.traffic.iter().chain(info.backfill.iter()) {
        let _ = writeln!(md, "\n{}", text(line));
    }

    let _ = writeln!(md, "\n## Pins that are not reachable ({})", tally.notable.len());
    if tally.notable.is_empty() {
        let _ = writeln!(md, "\nEvery judged pin is reachable.");
    }
    for (n, p) in tally.notable.iter().enumerate() {
        let _ = writeln!(md, "\n### {}. {} — {}\n", n + 1, code(&p.runtime), code(&p.reference));
        let mut facts = vec![format!("**{}**", p.status.as_str())];
        if let Some(event) = &p.event {
            facts.push(code(event));
        }
        facts.push(format!("input {}", p.place));
        facts.push(match &p.source_sha {
            Some(sha) => format!("pin source_sha {}", code(sha)),
            None => "pin has no source_sha".to_string(),
        });
        let _ = writeln!(md, "{}", facts.join(" · "));
        if let Some(error) = &p.error {
            let _ = writeln!(md, "\nNot judged by the policy: {}", text(error));
        }
        if !p.problems.is_empty() {
            let _ = writeln!(md, "\n| rule | outcome | message |\n|---|---|---|");
            for (rule, outcome, message) in &p.problems {
                let _ = writeln!(md, "| {} | {outcome} | {} |", code(rule), text(message));
            }
        }
    }

    if !info.malformed.is_empty() {
        let _ = writeln!(md, "\n## Malformed rows (skipped)\n");
        for m in info.malformed {
            let _ = writeln!(md, "- {}: {}", m.place, text(&m.reason));
        }
    }
    md
}

/// Plain text for a Markdown paragraph or table cell: one line, no markup,
/// no HTML, no table-breaking `|`.
pub fn text(s: &str) -> String {
    crate::text::markdown(s)
}

/// A code span for a Markdown paragraph or table cell.
pub fn code(s: &str) -> String {
    crate::text::markdown_code(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_text_cannot_inject_markup() {
        assert_eq!(
            text("a|b <script>[x](y)\n*z*"),
            "a\\|b &lt;script&gt;\\[x\\](y) \\*z\\*"
        );
        assert_eq!(code("a`b|c"), "`a'b\\|c`");
    }
}
