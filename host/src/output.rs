//! Rendering a verdict: JSON for machines, text for people, workflow
//! commands for Gitea/GitHub Actions logs, and (with `--format github`)
//! the step outputs and job summary that Actions reads from the files
//! `$GITHUB_OUTPUT` and `$GITHUB_STEP_SUMMARY` name.

use std::io::{self, Write};

use crate::text::{one_line, shown};
use crate::verdict::{Finding, Outcome, Status, Verdict};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people: a headline, then one line per finding, failures first.
    Text,
    /// The verdict as one JSON line.
    Json,
    /// Workflow commands for GitHub/Gitea Actions; also appends to
    /// $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY when they are set.
    Github,
}

pub fn write(out: &mut dyn Write, verdict: &Verdict, format: Format) -> io::Result<()> {
    match format {
        Format::Json => {
            crate::text::write_json(&mut *out, verdict)?;
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
    // A bare OCI config carries no reference, and --reference may be left out.
    let reference = match v.subject.reference.as_str() {
        "" => "(no reference)".to_owned(),
        reference => shown(reference),
    };
    writeln!(out, "{headline}  {reference}  — {decision}")?;
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
    let mut grouped = false;
    for f in by_severity(&v.decided.findings) {
        let level = match f.outcome {
            Outcome::Fail if v.decided.allowed => "warning",
            Outcome::Fail => "error",
            Outcome::Indeterminate => "warning",
            Outcome::Pass | Outcome::Skipped => continue,
        };
        if !grouped {
            writeln!(out, "::group::provgate findings")?;
            grouped = true;
        }
        writeln!(
            out,
            "::{level} title={}::{}",
            escape_property(&format!("provgate {}", f.rule)),
            escape_data(&one_line(&f.message))
        )?;
    }
    if grouped {
        writeln!(out, "::endgroup::")?;
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
            shown(&v.decided.event),
            v.mode.as_str(),
            if v.decided.allowed { "allowed" } else { "denied" },
            shown(&v.policy.digest)
        ))
    )
}

/// The workflow command for a run that ended in an error instead of a
/// verdict: `::error title=provgate <what>::<message>`. `message` is
/// made one line (as on stderr) and escaped.
pub fn github_error(what: &str, message: &str) -> String {
    format!(
        "::error title={}::{}",
        escape_property(&format!("provgate {what}")),
        escape_data(&one_line(message))
    )
}

/// A workflow command of `level` (`notice`, `warning`, `error`) for
/// something a command did besides its verdict (`promote`'s write of a
/// tag and a pin): `::<level> title=provgate <what>::<message>`, escaped
/// like [`github_error`].
pub fn github_command(level: &str, what: &str, message: &str) -> String {
    format!(
        "::{level} title={}::{}",
        escape_property(&format!("provgate {what}")),
        escape_data(&one_line(message))
    )
}

/// `promote`'s step outputs: the verdict's ([`github_outputs`]) and then
/// `promoted=true|false`.
pub fn github_promote_outputs(v: &Verdict, promoted: bool) -> String {
    format!("{}promoted={promoted}\n", github_outputs(v))
}

/// The step outputs, as `name=value` lines for `$GITHUB_OUTPUT`: `digest`,
/// `status`, `allowed`, `event` and `policy_digest`. Every value is a
/// single line ([`shown`] escapes a line break in a value from outside),
/// so the one-line form of the file format is enough.
pub fn github_outputs(v: &Verdict) -> String {
    let outputs = [
        ("digest", shown(&v.subject.digest)),
        ("status", v.decided.status.as_str().to_owned()),
        ("allowed", v.decided.allowed.to_string()),
        ("event", shown(&v.decided.event)),
        ("policy_digest", shown(&v.policy.digest)),
    ];
    let mut text = String::new();
    for (name, value) in outputs {
        // The multi-line form (`name<<DELIMITER`) is never needed: a value
        // with a line break would start an output of its own.
        assert!(
            !value.contains(['\n', '\r']),
            "a step output value is one line: {value:?}"
        );
        text.push_str(&format!("{name}={value}\n"));
    }
    text
}

/// A short Markdown summary of the verdict for `$GITHUB_STEP_SUMMARY`:
/// a headline with status and decision, the subject and policy, and a
/// table of the failing and indeterminate findings.
pub fn github_summary(v: &Verdict) -> String {
    let decision = match (v.decided.allowed, v.mode) {
        (true, crate::verdict::Mode::LogOnly) => "allowed (log-only)",
        (true, _) => "allowed",
        (false, _) => "denied",
    };
    let reference = match v.subject.reference.as_str() {
        "" => "(no reference)".to_owned(),
        reference => cell(&shown(reference)),
    };
    let mut md = format!(
        "### provgate: {} — {decision}\n\n\
         | | |\n|---|---|\n\
         | reference | {reference} |\n\
         | digest | {} |\n\
         | event | {} |\n\
         | mode | {} |\n\
         | policy | {} {} {} |\n\n",
        v.decided.status.as_str(),
        cell(&shown(&v.subject.digest)),
        cell(&shown(&v.decided.event)),
        v.mode.as_str(),
        cell(&shown(&v.policy.name)),
        cell(&shown(&v.policy.version)),
        cell(&shown(&v.policy.digest)),
    );
    let notable: Vec<&Finding> = by_severity(&v.decided.findings)
        .into_iter()
        .filter(|f| matches!(f.outcome, Outcome::Fail | Outcome::Indeterminate))
        .collect();
    if notable.is_empty() {
        md.push_str("No rule failed or was indeterminate.\n\n");
    } else {
        md.push_str("| rule | outcome | message |\n|---|---|---|\n");
        for f in notable {
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                cell(&f.rule),
                f.outcome.as_str(),
                cell(&one_line(&f.message))
            ));
        }
        md.push('\n');
    }
    md
}

/// Text for a Markdown table cell: a `|` cannot end the cell, a backtick
/// cannot open a code span, a line break cannot end the row, and no HTML
/// or link markup gets through as markup.
fn cell(s: &str) -> String {
    crate::text::markdown(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_commands_cannot_be_forged_by_a_message() {
        assert_eq!(escape_data("a\n::error::x%"), "a%0A::error::x%25");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
        assert_eq!(
            github_error("fetch error", "x\n::error::y 100%"),
            "::error title=provgate fetch error::x\\n::error::y 100%25"
        );
    }

    #[test]
    fn a_table_cell_cannot_end_its_cell_or_row_or_open_markup() {
        assert_eq!(cell("a|b`c`\nd"), "a\\|b\\`c\\` d");
        assert_eq!(cell("<img src=x>[l](u)"), "&lt;img src=x&gt;\\[l\\](u)");
        assert_eq!(cell("run_id.format"), "run\\_id.format");
    }
}
