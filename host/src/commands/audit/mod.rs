//! `provgate audit` (docs/reference.md §7.3, docs/audit.md): every pinned image judged in log-only mode.
//!
//! The pins are read first (a file, `-` or the control plane) and checked
//! before anything is judged. Then each pin becomes the subject
//! `image@digest` with the pin attached, judged by the same policy as
//! `verify` ([`schedule`]):
//!
//! - each distinct `image@digest` is fetched once (async, at most
//!   `--concurrency` fetches at a time), and the pins that share it wait for
//!   that one fetch without holding a slot;
//! - each pin is judged by `crate::judge`, on the runtime's workers (an
//!   instance lives only while the guest computes); the first pin of an
//!   image is judged before the others that share it, so that they find its
//!   commit look-up already answered; identical pins of one image (same
//!   runtime and source_sha) share one evaluation;
//! - every (owner, repo, sha) is asked of Gitea once per run, whatever the
//!   answer (the look-up stack with [`CachePolicy::per_run`]), at most
//!   `--gitea-concurrency` at a time;
//! - rows are written to stdout in input order as they complete, one whole
//!   JSON line each; a pin that cannot be fetched or judged is an `error`
//!   row, never the end of the run.
//!
//! SIGINT or SIGTERM stops the run: the rows already judged are written,
//! then the summary (saying how many pins were not judged), the report and
//! the backfill, and the run ends as interrupted by that signal.

mod args;
mod pins;
mod report;
mod schedule;

pub use args::{AuditArgs, FailOn};

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Outcome, Replayed, Verdicts};
use crate::input;
use crate::lookup::cache::CachePolicy;
use crate::lookup::replay::Replay;
use crate::lookup::{Source, Stack};
use crate::policy::Policy;
use crate::usage::UsageError;

use args::Images;
use pins::Pins;
use report::{RowStatus, RunInfo, Tally};
use schedule::{Ctx, End, Job, Sink};

pub fn run(args: &AuditArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let images = Images::new(args)?;
    let replay = args.replay.as_deref().map(Replayed::read).transpose()?;
    let now = replay.as_ref().and_then(|r| r.now).unwrap_or_else(SystemTime::now);
    let runtime = super::multi_thread("provgate-audit")?;

    // The pins, all checked before anything is judged.
    let (parsed, source) = read_pins(&runtime, &args.pins)?;
    every_runtime_has_an_image(&parsed, &images)?;

    let policy = Arc::new(super::load_policy(
        args.policy.path(),
        args.policy.digest(),
        Verdicts::Many,
    )?);
    let policy_ref = policy.reference().clone();
    // Fail on an unwritable path now, not after the whole fleet was judged.
    let report_file = super::create(&args.report, "--report")?;
    let backfill_file = super::create(&args.backfill, "--backfill")?;
    let mut records_file = super::create(&args.records, "--records")?;
    if let Some(file) = &mut records_file {
        // The inputs are read: records are appended row by row from here.
        file.replace(b"").context("cannot empty --records")?;
    }
    let lookup = Arc::new(lookup_stack(replay.as_ref(), args, &policy)?);

    let concurrency = args.concurrency as usize;
    let ctx = Arc::new(Ctx::new(
        policy,
        lookup.clone(),
        now,
        args.network.registry(),
        records_file.is_some(),
        concurrency,
    ));
    let jobs: Vec<Job> = parsed
        .pins
        .into_iter()
        .map(|pin| {
            let image = images.resolve(&pin).unwrap_or_default();
            Job::new(pin, image)
        })
        .collect();
    let total = jobs.len();

    let bar = progress_bar(total);
    let mut sink = Sink::new(records_file, &policy_ref, bar.clone());
    let window = (concurrency * 256).max(16_384);
    let end = runtime.block_on(schedule::judge_all(ctx.clone(), jobs, window, &mut sink))?;
    bar.finish_and_clear();
    let tally = sink.into_tally();

    // The summary, the report and the backfill, in that order: the summary
    // is on screen even if a file cannot be written.
    let info = RunInfo {
        policy: &policy_ref,
        at: humantime::format_rfc3339_seconds(now).to_string(),
        source,
        total,
        malformed: &parsed.malformed,
        seconds: started.elapsed().as_secs_f64(),
        interrupted: match end {
            End::Finished => None,
            End::Interrupted(signal) => Some(signal.name()),
            End::Closed => Some("a closed standard output"),
        },
        traffic: traffic(args, &ctx, &lookup, total as u64),
        backfill: args.backfill.as_ref().map(|path| {
            format!(
                "backfill: {} written to {} (nothing was sent to the control plane)",
                plural(tally.backfill_rows().len() as u64, "suggested row"),
                path.display()
            )
        }),
    };
    let _ = report::summary(&mut std::io::stderr().lock(), &info, &tally);
    if let (Some(path), Some(mut file)) = (&args.report, report_file) {
        file.replace(report::markdown(&info, &tally).as_bytes())
            .with_context(|| format!("cannot write --report {}", path.display()))?;
    }
    if let (Some(path), Some(mut file)) = (&args.backfill, backfill_file) {
        file.replace(&backfill(&tally)?)
            .with_context(|| format!("cannot write --backfill {}", path.display()))?;
    }

    match end {
        End::Finished => {}
        // Blocking threads may still be waiting on Gitea for pins that will
        // not be reported; everything that was written is flushed, so leave
        // without waiting for them.
        End::Interrupted(signal) => {
            let _ = std::io::stdout().flush();
            runtime.shutdown_background();
            return Ok(Outcome::Interrupted(signal));
        }
        // The reader of stdout stopped reading (`| head`): the run ends
        // quietly, with the code of the rows it wrote (0, or 1 for a
        // --fail-on status among them), as `verify` keeps its code.
        End::Closed => {
            runtime.shutdown_background();
            return Ok(fail_on(args, &tally));
        }
    }
    Ok(fail_on(args, &tally))
}

/// The pins and how their source may be shown (a URL without its secrets).
fn read_pins(runtime: &tokio::runtime::Runtime, given: &str) -> Result<(Pins, String), UsageError> {
    let (bytes, source) = if pins::is_url(given) {
        let bytes = runtime.block_on(pins::fetch_url(given, pins::URL_TIMEOUT))?;
        let shown = reqwest::Url::parse(given)
            .map(|u| pins::shown_url(&u))
            .unwrap_or_default();
        (bytes, shown)
    } else {
        let shown = if given == "-" {
            "standard input".to_string()
        } else {
            given.to_string()
        };
        (input::read_file_or_stdin(given)?, shown)
    };
    let parsed = pins::parse(&bytes).with_context(|| format!("--pins {source}"))?;
    tracing::info!(shape = ?parsed.shape, pins = parsed.pins.len(), malformed = parsed.malformed.len(), "read the pins");
    for m in &parsed.malformed {
        // `say`, not eprintln!: a closed stderr (`2>&1 >/dev/null | head`)
        // must not panic the run.
        crate::logging::say(&format!(
            "provgate: --pins {source} {}: not a pin, skipped: {}",
            m.place, m.reason
        ));
    }
    Ok((parsed, source))
}

fn every_runtime_has_an_image(parsed: &Pins, images: &Images) -> Result<(), UsageError> {
    let unmapped: BTreeSet<&str> = parsed
        .pins
        .iter()
        .filter(|p| images.resolve(p).is_none())
        .map(|p| p.runtime.as_str())
        .collect();
    if unmapped.is_empty() {
        return Ok(());
    }
    Err(UsageError::msg(format!(
        "no image repository for the pins of runtime {}: their rows have no \"image\"; give \
         --image-template 'registry.example/molecule-ai/workspace-template-{{runtime}}' or --image RUNTIME=REPO",
        unmapped.into_iter().collect::<Vec<_>>().join(", ")
    )))
}

/// Gitea's answers, or the replay's, through the run's one cache.
fn lookup_stack(replay: Option<&Replayed>, args: &AuditArgs, policy: &Policy) -> Result<Stack, UsageError> {
    let answers = match replay {
        Some(replayed) => Source::Replay(Replay::new(&replayed.answers)),
        None => args.network.gitea(),
    };
    let base = &policy.description().settings.gitea_base_url;
    Ok(Stack::build(answers, base, CachePolicy::per_run())?)
}

fn progress_bar(total: usize) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len} pins, ETA {eta}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    bar
}

/// The summary's lines about Gitea, the registry and the policy.
fn traffic(args: &AuditArgs, ctx: &Ctx, lookup: &Stack, total: u64) -> Vec<String> {
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let stats = lookup.stats();
    let asked = stats.asked();
    let gitea = match &args.replay {
        None => format!(
            "Gitea: {} looked up (found {}, not found {}, unavailable {}); {} reused within the run",
            plural(asked, "commit"),
            n(&stats.found),
            n(&stats.not_found),
            n(&stats.unavailable),
            plural(n(&stats.hits), "answer")
        ),
        Some(path) => format!(
            "Gitea: not asked; {} answered from the replay {}",
            plural(asked, "commit"),
            path.display()
        ),
    };
    vec![
        gitea,
        format!(
            "registry: {} fetched for {} ({} could not be fetched)",
            plural(n(&ctx.fetches), "distinct image"),
            plural(total, "pin"),
            n(&ctx.fetch_failures)
        ),
        format!(
            "policy: {} for {} (identical pins of an image share one)",
            plural(n(&ctx.evaluations), "evaluation"),
            plural(total, "pin"),
        ),
    ]
}

/// `--backfill`'s JSON lines.
fn backfill(tally: &Tally) -> anyhow::Result<Vec<u8>> {
    let mut text = Vec::new();
    for row in tally.backfill_rows() {
        crate::text::write_json(&mut text, row).context("cannot serialise a backfill row")?;
        text.push(b'\n');
    }
    Ok(text)
}

/// Denied when a `--fail-on` status occurred, saying which.
fn fail_on(args: &AuditArgs, tally: &Tally) -> Outcome {
    let failed: Vec<&str> = args
        .fail_on
        .iter()
        .map(|f| f.status())
        .filter(|s| tally.count(*s) > 0)
        .map(RowStatus::as_str)
        .collect();
    if failed.is_empty() {
        return Outcome::Allowed;
    }
    crate::logging::say(&format!(
        "provgate: --fail-on: pins with status {} (exit 1)",
        failed.join(", ")
    ));
    Outcome::Denied
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
