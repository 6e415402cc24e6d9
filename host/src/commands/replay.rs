//! `provgate replay` (docs/records.md, docs/reference.md §7.5): decide recorded decisions again, with
//! their own `now` and answers and no network, and say which differ.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::{Outcome, Verdicts};
use crate::judge::judge;
use crate::lookup::replay::Replay;
use crate::policy::{Artifact, Policy, PolicyError};
use crate::record::{self, Record};
use crate::text::quote;
use crate::usage::UsageError;
use crate::verdict::{Decided, Verdict};

#[derive(Debug, Args)]
#[command(
    after_help = "Each record is decided again with the artifact it names (found by digest: \
    the built-in one, or one in the local artifact cache, pulled there by --policy oci://REF or \
    policy pull), its own `now` and its recorded answers; nothing goes to Gitea or \
    a registry. With --policy OTHER, every record is decided by OTHER instead: \"what would OTHER \
    have decided?\". One line per record whose decision differs (status, allowed, event or a \
    finding), then a summary on stderr.\n\n\
    Exit codes: 0 every decision agrees, 1 some differ, 2 unreadable records, 3 an artifact cannot \
    be found or fails.\n\n\
    Examples:\n  \
    provgate verify \"$IMAGE\" --record decision.json && provgate replay decision.json\n  \
    provgate audit --pins pins.json --records audit.jsonl … && provgate replay audit.jsonl --policy new.wasm\n  \
    provgate serve … --decision-log - | provgate replay - --format json"
)]
pub struct ReplayArgs {
    /// Decision records: JSON lines (`verify --record`, `audit --records`,
    /// `serve --decision-log`), or `-` for standard input.
    #[arg(value_name = "RECORDS|-")]
    pub records: String,

    /// Decide every record with this artifact instead of its own: a file, or
    /// `oci://REF` (by digest it needs no network once in the artifact cache).
    #[arg(long, value_name = "PATH|oci://REF")]
    pub policy: Option<PathBuf>,

    /// text: one line per differing record. json: one line
    /// `{"id", "recorded": verdict, "replayed": verdict}` per differing record.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReplayFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayFormat {
    Text,
    Json,
}

#[derive(Serialize)]
struct Differs<'a> {
    id: &'a str,
    recorded: &'a Verdict,
    replayed: &'a Verdict,
}

pub fn run(args: &ReplayArgs) -> anyhow::Result<Outcome> {
    let what = if args.records == "-" {
        "standard input".to_string()
    } else {
        args.records.clone()
    };
    let bytes = crate::input::read_file_or_stdin(&args.records).map_err(UsageError::from)?;
    let records = record::read_all(&bytes, &what).map_err(UsageError::from)?;
    drop(bytes);

    let chosen = match &args.policy {
        Some(path) => Some(super::load_policy(Some(path), None, Verdicts::Many)?),
        None => None,
    };
    let mut own: HashMap<String, Policy> = HashMap::new();
    let runtime = super::current_thread()?;
    let mut stdout = std::io::stdout().lock();
    let (mut agree, mut differ) = (0usize, 0usize);
    for (n, record) in records.iter().enumerate() {
        let policy = match &chosen {
            Some(policy) => policy,
            None => recorded_policy(&mut own, record, n)?,
        };
        let replayed = runtime
            .block_on(decide(policy, record))
            .with_context(|| format!("{what}: record {} ({})", n + 1, record.id))?;
        let edited = record.computed_id() != record.id;
        if record.verdict.decided == replayed.decided {
            agree += 1;
            if edited {
                tracing::warn!(record = n + 1, id = %record.id, "the record's content does not hash to its id: it was edited");
            }
            continue;
        }
        differ += 1;
        let written = match args.format {
            ReplayFormat::Json => crate::text::write_json(
                &mut stdout,
                &Differs {
                    id: &record.id,
                    recorded: &record.verdict,
                    replayed: &replayed,
                },
            )
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout)),
            ReplayFormat::Text => writeln!(stdout, "{}", difference(record, &replayed, edited)),
        };
        match written {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            other => other.context("cannot write to standard output")?,
        }
    }
    let _ = stdout.flush();
    let with = match &chosen {
        Some(policy) => format!("policy {}", policy.artifact().digest),
        None => "each record's own policy".to_string(),
    };
    eprintln!(
        "provgate: replayed {} with {with}: {agree} agree, {differ} differ",
        plural(records.len(), "record")
    );
    Ok(if differ == 0 { Outcome::Allowed } else { Outcome::Denied })
}

/// The artifact a record names, by digest: the built-in one, or one
/// pulled before into the local artifact cache (`--policy oci://REF`,
/// `policy pull`), whose bytes are checked against the digest on the way.
fn recorded_policy<'a>(own: &'a mut HashMap<String, Policy>, record: &Record, n: usize) -> anyhow::Result<&'a Policy> {
    let slot = match own.entry(record.policy.digest.clone()) {
        Entry::Occupied(loaded) => return Ok(loaded.into_mut()),
        Entry::Vacant(slot) => slot,
    };
    let builtin = Artifact::builtin();
    let artifact = if builtin.digest == *slot.key() {
        builtin
    } else if let Some(cached) = crate::policy::oci::cached(slot.key()) {
        tracing::info!(policy = %slot.key(), "record {}: its policy from the artifact cache", n + 1);
        cached
    } else {
        return Err(PolicyError::Load(format!(
            "record {} was decided by policy {} ({} {}), which is neither built into this provgate \
             (built in: {}) nor in the local artifact cache; pull it (provgate policy pull \
             oci://REF --out FILE) and give it with --policy FILE",
            n + 1,
            quote(slot.key()),
            quote(&record.policy.name),
            quote(&record.policy.version),
            builtin.digest
        ))
        .into());
    };
    Ok(slot.insert(super::load_artifact(artifact, Verdicts::Many)?))
}

/// A record whose clock does not parse cannot be decided again: a policy
/// error like the others of this step.
async fn decide(policy: &Policy, record: &Record) -> Result<Verdict, PolicyError> {
    let now = record::parse_now(&record.now).map_err(|e| PolicyError::Load(format!("{e:#}")))?;
    let answers = Replay::new(&record.answers);
    let decision = judge(policy, &record.subject.subject(), record.mode, now, &answers).await?;
    Ok(decision.verdict)
}

/// One line: which record, what it said, what it says now, and the rules
/// whose outcome changed.
fn difference(record: &Record, replayed: &Verdict, edited: bool) -> String {
    let say = |d: &Decided| {
        format!(
            "{} ({}, {})",
            d.status.as_str(),
            d.event,
            if d.allowed { "allowed" } else { "denied" }
        )
    };
    let recorded = &record.verdict.decided;
    let changed: Vec<String> = recorded
        .findings
        .iter()
        .filter_map(|before| {
            let after = replayed.decided.findings.iter().find(|f| f.rule == before.rule);
            match after {
                Some(after) if after.outcome != before.outcome => Some(format!(
                    "{} {} → {}",
                    before.rule,
                    before.outcome.as_str(),
                    after.outcome.as_str()
                )),
                Some(after) if after.message != before.message => Some(format!("{} message", before.rule)),
                Some(_) => None,
                None => Some(format!("{} gone", before.rule)),
            }
        })
        .collect();
    let mut line = format!(
        "differs  {}  {}: recorded {}, replayed {}",
        record.id,
        quote(&record.subject.reference),
        say(recorded),
        say(&replayed.decided)
    );
    if !changed.is_empty() {
        line.push_str("; ");
        line.push_str(&changed.join(", "));
    }
    if edited {
        line.push_str(" (the record was edited: its content does not hash to its id)");
    }
    line
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
