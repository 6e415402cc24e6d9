//! Rendering a verdict: JSON for machines, text for people, workflow
//! commands for Gitea/GitHub Actions logs.

use std::io::{self, Write};

use crate::text::{one_line, shown};
use crate::verdict::{Finding, Outcome, Status, Verdict};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Github,
}

pub fn write(out: &mut dyn Write, verdict: &Verdict, format: Format) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer(&mut *out, verdict)?;
            writeln!(out)
        }
        Format::Text => text(out, verdict),
        Format::Github => github(out, verdict),
    }
}

/// Failing findings first, then indeterminate, passing, skipped; the rule
/// order of the verdict within each group.
fn by_severity(findings: &[Finding]) -> Vec<&Finding> {
    let rank = |o: Outcome| match o {
        Outcome::Fail => 0,
        Outcome::Indeterminate => 1,
        Outcome::Pass => 2,
        Outcome::Skipped => 3,
    };
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| rank(f.outcome));
    sorted
}

fn text(out: &mut dyn Write, v: &Verdict) -> io::Result<()> {
    let decision = match (v.decided.allowed, v.mode) {
        (true, crate::verdict::Mode::LogOnly) => "allowed (log-only)",
        (true, _) => "allowed",
        (false, _) => "DENIED",
    };
    let headline = match v.decided.status {
        Status::Verified => "VERIFIED",
        Status::Rejected => "REJECTED",
        Status::Indeterminate => "INDETERMINATE",
    };
    // The subject's fields came from outside (an --inspect file, a
    // registry): each is shown bare only when it is plain.
    writeln!(out, "{headline}  {}  — {decision}", shown(&v.subject.reference))?;
    writeln!(out, "  event     {}", shown(&v.decided.event))?;
    writeln!(out, "  digest    {}", shown(&v.subject.digest))?;
    match (&v.subject.platform, &v.subject.platform_digest) {
        (Some(platform), Some(digest)) => {
            writeln!(out, "  platform  {} (manifest {})", shown(platform), shown(digest))?
        }
        (Some(platform), None) => writeln!(out, "  platform  {}", shown(platform))?,
        _ => {}
    }
    writeln!(
        out,
        "  policy    {} {} {}",
        shown(&v.policy.name),
        shown(&v.policy.version),
        shown(&v.policy.digest)
    )?;
    writeln!(out)?;
    let width = v.decided.findings.iter().map(|f| f.rule.len()).max().unwrap_or(0);
    for f in by_severity(&v.decided.findings) {
        let mark = match f.outcome {
            Outcome::Fail => "✗ FAIL",
            Outcome::Indeterminate => "? INDT",
            Outcome::Pass => "✓ pass",
            Outcome::Skipped => "- skip",
        };
        // The guest quoted every value inside its message; one_line is the
        // net under a policy artifact that did not.
        writeln!(out, "  {mark}  {:width$}  {}", f.rule, one_line(&f.message))?;
    }
    Ok(())
}

/// Workflow-command escaping for a message (`%`, CR, LF).
fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Workflow-command escaping for a property value (also `:` and `,`).
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn github(out: &mut dyn Write, v: &Verdict) -> io::Result<()> {
    for f in by_severity(&v.decided.findings) {
        let level = match f.outcome {
            Outcome::Fail if v.decided.allowed => "warning",
            Outcome::Fail => "error",
            Outcome::Indeterminate => "warning",
            Outcome::Pass | Outcome::Skipped => continue,
        };
        writeln!(
            out,
            "::{level} title={}::{}",
            escape_property(&format!("provgate {}", f.rule)),
            escape_data(&one_line(&f.message))
        )?;
    }
    let level = if v.decided.allowed { "notice" } else { "error" };
    writeln!(
        out,
        "::{level} title={}::{}",
        escape_property(&format!("provgate {}", v.decided.status.as_str())),
        escape_data(&format!(
            "{} {} ({}, {}) — {} — policy {}",
            shown(&v.subject.reference),
            v.decided.status.as_str(),
            v.decided.event,
            v.mode.as_str(),
            if v.decided.allowed { "allowed" } else { "denied" },
            v.policy.digest
        ))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_commands_cannot_be_forged_by_a_message() {
        assert_eq!(escape_data("a\n::error::x%"), "a%0A::error::x%25");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }
}
