//! `provgate audit` (SPEC §5): every pinned image judged in log-only mode.
//!
//! The pins are read first (a file, `-` or the control plane) and checked
//! before anything is judged. Then each pin becomes the subject
//! `image@digest` with the pin attached, judged by the same policy as
//! `verify`:
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
//! the backfill, and the process exits 130 (SIGINT) or 143 (SIGTERM).

mod pins;
mod report;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use anyhow::{Context, anyhow};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::cli::{NetworkArgs, PolicyArgs};
use crate::exit::{Exit, Failure};
use crate::input::{self, registry};
use crate::judge::judge;
use crate::lookup::cache::CachePolicy;
use crate::lookup::replay::Replay;
use crate::lookup::{Source, Stack};
use crate::policy::Policy;
use crate::record::Record;
use crate::subject::{Pin, Subject};
use crate::verdict::{Mode, PolicyRef};

use pins::PinRow;
use report::{Judged, Row, RowStatus, RunInfo, Tally};

#[derive(Debug, Args)]
#[command(
    after_help = "Each pin is judged as IMAGE@DIGEST with the pin attached, always in log-only mode. \
    stdout gets one JSON line per pin (the verdict plus `index`, `runtime` and `pin`; `status: \"error\"` and \
    `error` when the image could not be fetched), in input order; stderr gets the summary.\n\n\
    Exit codes: 0 whatever the verdicts, 1 when a --fail-on status occurred, 2 unusable input \
    (no pin in it, a control plane answer other than 2xx, no image for a runtime), 3 policy artifact \
    problem, 130/143 interrupted by SIGINT/SIGTERM (the rows written are whole).\n\n\
    Examples:\n  \
    provgate audit --pins pins.json --image-template 'registry.example/molecule-ai/workspace-template-{runtime}'\n  \
    CP_ADMIN_API_TOKEN=… provgate audit --pins https://cp.example/cp/admin/runtime-image-pins \\\n      \
    --image-template 'registry.example/molecule-ai/workspace-template-{runtime}' \\\n      \
    --image platform=registry.example/molecule-ai/platform --report audit.md --backfill backfill.jsonl"
)]
pub struct AuditArgs {
    /// Pins to judge: a JSON array or JSON lines file, `-` for stdin, or an
    /// http(s) URL read with `Authorization: Bearer $CP_ADMIN_API_TOKEN`.
    #[arg(long, value_name = "FILE|-|URL")]
    pub pins: String,

    /// Repository of a pin whose row has no `image`; `{runtime}` is replaced
    /// by the pin's runtime.
    #[arg(long, value_name = "REPO-TEMPLATE")]
    pub image_template: Option<String>,

    /// Repository for one runtime, ahead of --image-template; repeatable.
    #[arg(long = "image", value_name = "RUNTIME=REPO", value_parser = parse_image_override)]
    pub images: Vec<(String, String)>,

    /// Fetches, and evaluations, in flight at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,

    /// Write a Markdown report: policy, time, summary, every pin not reachable.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write the decision record of every verdict to FILE, one JSON line
    /// each (`provgate replay FILE` decides them again).
    #[arg(long, value_name = "FILE")]
    pub records: Option<PathBuf>,

    /// Write suggested `{runtime, digest, source_sha}` rows (JSON lines) for
    /// pins without a source_sha whose image revision passes revision.format
    /// and revision.resolves. Nothing is sent to the control plane.
    #[arg(long, value_name = "FILE")]
    pub backfill: Option<PathBuf>,

    /// Exit 1 when any pin has this status; repeatable.
    #[arg(long, value_enum, value_name = "STATUS")]
    pub fail_on: Vec<FailOn>,

    #[command(flatten)]
    pub policy: PolicyArgs,

    #[command(flatten)]
    pub network: NetworkArgs,

    /// Answer Gitea look-ups (and the clock) from a decision record or a 0.1
    /// recording; no Gitea traffic.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Rejected,
    Indeterminate,
    Error,
}

impl FailOn {
    fn status(self) -> RowStatus {
        match self {
            FailOn::Rejected => RowStatus::Rejected,
            FailOn::Indeterminate => RowStatus::Indeterminate,
            FailOn::Error => RowStatus::Error,
        }
    }
}

fn parse_image_override(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((runtime, repo)) if !runtime.trim().is_empty() && !repo.trim().is_empty() => {
            Ok((runtime.trim().to_string(), repo.trim().to_string()))
        }
        _ => Err("expected RUNTIME=REPO, e.g. platform=registry.example/molecule-ai/platform".into()),
    }
}

/// Where a pin's image lives: the row's `image`, else `--image`, else the template.
struct Images {
    template: Option<String>,
    overrides: HashMap<String, String>,
}

impl Images {
    fn new(args: &AuditArgs) -> Result<Images, Failure> {
        if let Some(template) = &args.image_template
            && !template.contains("{runtime}")
        {
            return Err(Failure::usage(anyhow!(
                "--image-template {template:?} has no {{runtime}}: every runtime would be looked for in \
                 the same repository (use --image RUNTIME=REPO for one runtime)"
            )));
        }
        Ok(Images {
            template: args.image_template.clone(),
            overrides: args.images.iter().cloned().collect(),
        })
    }

    fn resolve(&self, pin: &PinRow) -> Option<String> {
        pin.image
            .clone()
            .or_else(|| self.overrides.get(&pin.runtime).cloned())
            .or_else(|| self.template.as_ref().map(|t| t.replace("{runtime}", &pin.runtime)))
    }
}

pub fn run(args: &AuditArgs) -> Result<Exit, Failure> {
    let started = Instant::now();
    let registry = args.network.registry()?;
    let images = Images::new(args)?;
    let replay = args.replay.as_deref().map(super::Replayed::read).transpose()?;
    let now = replay.as_ref().and_then(|r| r.now).unwrap_or_else(SystemTime::now);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("provgate-audit")
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::usage)?;

    // The pins, all checked before anything is judged.
    let (bytes, source) = if pins::is_url(&args.pins) {
        let bytes = runtime
            .block_on(pins::fetch_url(&args.pins, pins::URL_TIMEOUT))
            .map_err(Failure::usage)?;
        let shown = reqwest::Url::parse(&args.pins)
            .map(|u| pins::shown_url(&u))
            .unwrap_or_default();
        (bytes, shown)
    } else {
        let shown = if args.pins == "-" {
            "standard input".to_string()
        } else {
            args.pins.clone()
        };
        (input::read_file_or_stdin(&args.pins).map_err(Failure::usage)?, shown)
    };
    let parsed = pins::parse(&bytes)
        .with_context(|| format!("--pins {source}"))
        .map_err(Failure::usage)?;
    drop(bytes);
    tracing::info!(shape = ?parsed.shape, pins = parsed.pins.len(), malformed = parsed.malformed.len(), "read the pins");
    for m in &parsed.malformed {
        eprintln!(
            "provgate: --pins {source} {}: not a pin, skipped: {}",
            m.place, m.reason
        );
    }
    let unmapped: BTreeSet<&str> = parsed
        .pins
        .iter()
        .filter(|p| images.resolve(p).is_none())
        .map(|p| p.runtime.as_str())
        .collect();
    if !unmapped.is_empty() {
        return Err(Failure::usage(anyhow!(
            "no image repository for the pins of runtime {}: their rows have no \"image\"; give \
             --image-template 'registry.example/molecule-ai/workspace-template-{{runtime}}' or --image RUNTIME=REPO",
            unmapped.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }

    let policy = Arc::new(super::load_policy(&args.policy, super::Verdicts::Many)?);
    let policy_ref = policy.reference().clone();
    // Fail on an unwritable path now, not after the whole fleet was judged.
    let report_file = super::create(&args.report, "--report")?;
    let backfill_file = super::create(&args.backfill, "--backfill")?;
    let mut records_file = super::create(&args.records, "--records")?;
    if let Some(file) = &mut records_file {
        // The inputs are read: records are appended row by row from here.
        file.replace(b"")
            .context("cannot empty --records")
            .map_err(Failure::usage)?;
    }

    let answers = match &replay {
        Some(replayed) => Source::Replay(Replay::new(&replayed.answers)),
        None => args.network.gitea()?,
    };
    let base = &policy.description().settings.gitea_base_url;
    let lookup = Arc::new(Stack::build(answers, base, CachePolicy::per_run()).map_err(Failure::usage)?);

    let concurrency = args.concurrency as usize;
    let ctx = Arc::new(Ctx {
        policy,
        lookup: lookup.clone(),
        now,
        registry,
        keep_records: records_file.is_some(),
        fetch_slots: Semaphore::new(concurrency),
        images: Mutex::new(HashMap::new()),
        fetches: AtomicU64::new(0),
        fetch_failures: AtomicU64::new(0),
        evaluations: AtomicU64::new(0),
    });
    let jobs: Vec<Job> = parsed
        .pins
        .into_iter()
        .map(|pin| {
            let image = images.resolve(&pin).unwrap_or_default();
            let reference = if image.contains('@') {
                Err(format!(
                    "the image {image:?} already names a digest; a pin's image must be a repository \
                     (optionally with a tag), to which the pin's digest is added"
                ))
            } else {
                Ok(format!("{image}@{}", pin.digest))
            };
            Job { pin, image, reference }
        })
        .collect();
    let total = jobs.len();

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
    let mut sink = Sink {
        out: std::io::stdout(),
        records: records_file,
        policy: &policy_ref,
        tally: Tally::default(),
        bar: bar.clone(),
    };
    let window = (concurrency * 256).max(16_384);
    let end = runtime.block_on(judge_all(ctx.clone(), jobs, window, &mut sink))?;
    bar.finish_and_clear();
    let tally = sink.tally;

    // The summary, the report and the backfill, in that order: the summary
    // is on screen even if a file cannot be written.
    let mut traffic = Vec::new();
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let stats = lookup.stats();
    let asked = stats.asked();
    match &args.replay {
        None => traffic.push(format!(
            "Gitea: {} looked up (found {}, not found {}, unavailable {}); {} reused within the run",
            plural(asked, "commit"),
            n(&stats.found),
            n(&stats.not_found),
            n(&stats.unavailable),
            plural(n(&stats.hits), "answer")
        )),
        Some(path) => traffic.push(format!(
            "Gitea: not asked; {} answered from the replay {}",
            plural(asked, "commit"),
            path.display()
        )),
    }
    traffic.push(format!(
        "registry: {} fetched for {} ({} could not be fetched)",
        plural(ctx.fetches.load(Ordering::Relaxed), "distinct image"),
        plural(total as u64, "pin"),
        ctx.fetch_failures.load(Ordering::Relaxed)
    ));
    traffic.push(format!(
        "policy: {} for {} (identical pins of an image share one)",
        plural(ctx.evaluations.load(Ordering::Relaxed), "evaluation"),
        plural(total as u64, "pin"),
    ));
    let backfill_note = args.backfill.as_ref().map(|path| {
        format!(
            "backfill: {} written to {} (nothing was sent to the control plane)",
            plural(tally.backfill_rows().len() as u64, "suggested row"),
            path.display()
        )
    });
    let info = RunInfo {
        policy: &policy_ref,
        at: humantime::format_rfc3339_seconds(now).to_string(),
        source,
        total,
        malformed: &parsed.malformed,
        seconds: started.elapsed().as_secs_f64(),
        interrupted: match end {
            End::Finished => None,
            End::Interrupted { signal, .. } => Some(signal),
        },
        traffic,
        backfill: backfill_note,
    };
    let _ = report::summary(&mut std::io::stderr().lock(), &info, &tally);

    if let (Some(path), Some(mut file)) = (&args.report, report_file) {
        file.replace(report::markdown(&info, &tally).as_bytes())
            .with_context(|| format!("cannot write --report {}", path.display()))
            .map_err(Failure::usage)?;
    }
    if let (Some(path), Some(mut file)) = (&args.backfill, backfill_file) {
        let mut text = Vec::new();
        for row in tally.backfill_rows() {
            serde_json::to_writer(&mut text, row).expect("a backfill row serialises");
            text.push(b'\n');
        }
        file.replace(&text)
            .with_context(|| format!("cannot write --backfill {}", path.display()))
            .map_err(Failure::usage)?;
    }

    if let End::Interrupted { exit_code, .. } = end {
        // Blocking threads may still be waiting on Gitea for pins that will
        // not be reported; everything that was written is flushed, so leave
        // without waiting for them.
        let _ = std::io::stdout().flush();
        std::process::exit(exit_code);
    }
    let failed: Vec<&str> = args
        .fail_on
        .iter()
        .map(|f| f.status())
        .filter(|s| tally.count(*s) > 0)
        .map(RowStatus::as_str)
        .collect();
    if failed.is_empty() {
        Ok(Exit::Allowed)
    } else {
        eprintln!("provgate: --fail-on: pins with status {} (exit 1)", failed.join(", "));
        Ok(Exit::Denied)
    }
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// One pin to judge, with the repository it is looked for in.
struct Job {
    pin: PinRow,
    image: String,
    /// `image@digest`, or why there is none.
    reference: Result<String, String>,
}

/// A fetched image: the subject without a pin.
struct Image {
    subject: Subject,
}

/// The shared state of one distinct `image@digest`.
#[derive(Default)]
struct ImageCell {
    fetched: OnceCell<Result<Arc<Image>, String>>,
    /// Set once the first pin of this image has been evaluated.
    warm: OnceCell<()>,
    /// The verdict for each distinct pin of this image, by (runtime,
    /// source_sha): the guest is deterministic, and within a run it gets the
    /// same clock and the same look-up answers, so the same question is asked
    /// of it once.
    verdicts: Mutex<HashMap<PinKey, Arc<OnceCell<Judged>>>>,
}

/// A pin of one image: (runtime, source_sha).
type PinKey = (String, Option<String>);

impl ImageCell {
    fn verdict(&self, pin: &PinRow) -> Arc<OnceCell<Judged>> {
        self.verdicts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((pin.runtime.clone(), pin.source_sha.clone()))
            .or_default()
            .clone()
    }
}

/// What every judging task shares.
struct Ctx {
    policy: Arc<Policy>,
    lookup: Arc<Stack>,
    now: SystemTime,
    registry: registry::RegistryOptions,
    /// Whether each verdict's decision record is kept (`--records`).
    keep_records: bool,
    fetch_slots: Semaphore,
    images: Mutex<HashMap<String, Arc<ImageCell>>>,
    fetches: AtomicU64,
    fetch_failures: AtomicU64,
    evaluations: AtomicU64,
}

impl Ctx {
    async fn judge(&self, job: Job) -> Row {
        let judged = match &job.reference {
            Err(reason) => Judged::Error(reason.clone()),
            Ok(reference) => self.judge_reference(reference, &job.pin).await,
        };
        Row {
            reference: job.reference.clone().unwrap_or_else(|_| job.image.clone()),
            pin: job.pin,
            image: job.image,
            judged,
        }
    }

    async fn judge_reference(&self, reference: &str, pin: &PinRow) -> Judged {
        let cell = self
            .images
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reference.to_string())
            .or_default()
            .clone();
        let image = match cell.fetched.get_or_init(|| self.fetch(reference)).await {
            Ok(image) => image.clone(),
            Err(reason) => return Judged::Error(reason.clone()),
        };
        let verdict = cell.verdict(pin);
        if let Some(judged) = verdict.get() {
            return judged.clone();
        }
        // The first pin of an image is evaluated before the others, which
        // then find its commit look-up answered.
        cell.warm
            .get_or_init(|| async {
                verdict.get_or_init(|| self.evaluate(&image, pin)).await;
            })
            .await;
        verdict.get_or_init(|| self.evaluate(&image, pin)).await.clone()
    }

    async fn fetch(&self, reference: &str) -> Result<Arc<Image>, String> {
        let _slot = self.fetch_slots.acquire().await.expect("the semaphore is never closed");
        self.fetches.fetch_add(1, Ordering::Relaxed);
        tracing::info!(reference, "fetching");
        match registry::fetch(reference, &self.registry).await {
            Ok(fetched) => Ok(Arc::new(Image {
                subject: fetched.subject,
            })),
            Err(e) => {
                self.fetch_failures.fetch_add(1, Ordering::Relaxed);
                tracing::info!(reference, error = %e, "could not fetch");
                Err(e.to_string())
            }
        }
    }

    async fn evaluate(&self, image: &Arc<Image>, pin: &PinRow) -> Judged {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        let mut subject = image.subject.clone();
        subject.pin = Some(Pin {
            runtime: Some(pin.runtime.clone()),
            digest: Some(pin.digest.clone()),
            source_sha: pin.source_sha.clone(),
        });
        let answers = self.lookup.answers();
        match judge(&self.policy, &subject, Mode::LogOnly, self.now, &*answers).await {
            Ok(decision) => Judged::Verdict {
                record: self.keep_records.then(|| Arc::new(Record::new(&decision, &subject))),
                verdict: Arc::new(decision.verdict),
                revision: image.subject.labels.get(report::REVISION).cloned(),
            },
            Err(e) => Judged::Error(format!("the policy could not judge it: {e}")),
        }
    }
}

/// How the judging ended.
#[derive(Clone, Copy, Debug)]
enum End {
    Finished,
    Interrupted { signal: &'static str, exit_code: i32 },
}

/// Where finished rows go, in order.
struct Sink<'a> {
    out: std::io::Stdout,
    /// `--records`.
    records: Option<super::Output>,
    policy: &'a PolicyRef,
    tally: Tally,
    bar: ProgressBar,
}

impl Sink<'_> {
    /// One whole line per row: the line is built first and written with a
    /// single call on the (line-buffered) stdout.
    fn write(&mut self, row: Row) -> Result<(), Failure> {
        let mut line = row
            .json(self.policy)
            .context("cannot serialise a row")
            .map_err(Failure::usage)?;
        line.push(b'\n');
        let mut out = self.out.lock();
        out.write_all(&line)
            .and_then(|()| out.flush())
            .context("cannot write to standard output")
            .map_err(Failure::usage)?;
        if let (
            Some(file),
            report::Judged::Verdict {
                record: Some(record), ..
            },
        ) = (&mut self.records, &row.judged)
        {
            file.append(&record.line())
                .context("cannot write --records")
                .map_err(Failure::usage)?;
        }
        self.tally.add(&row);
        self.bar.inc(1);
        Ok(())
    }
}

/// Judges every job with bounded concurrency, writing rows in input order,
/// until done or interrupted.
async fn judge_all(ctx: Arc<Ctx>, jobs: Vec<Job>, window: usize, sink: &mut Sink<'_>) -> Result<End, Failure> {
    let mut sigint = signal(SignalKind::interrupt())
        .context("cannot listen for SIGINT")
        .map_err(Failure::usage)?;
    let mut sigterm = signal(SignalKind::terminate())
        .context("cannot listen for SIGTERM")
        .map_err(Failure::usage)?;

    type Done = (usize, Row, OwnedSemaphorePermit);
    let (tx, mut rx) = mpsc::unbounded_channel::<Done>();
    // Pins whose row is not written yet: bounds the rows held for ordering
    // when one slow pin holds up the ones after it.
    let window = Arc::new(Semaphore::new(window));
    let dispatcher = tokio::spawn(async move {
        let mut tasks = JoinSet::new();
        for (slot, job) in jobs.into_iter().enumerate() {
            let permit = window.clone().acquire_owned().await.expect("never closed");
            let (ctx, tx) = (ctx.clone(), tx.clone());
            tasks.spawn(async move {
                let row = ctx.judge(job).await;
                let _ = tx.send((slot, row, permit));
            });
            while tasks.try_join_next().is_some() {}
        }
        drop(tx);
        while tasks.join_next().await.is_some() {}
    });

    // A row holds its window permit until it is written.
    let mut pending: BTreeMap<usize, (Row, OwnedSemaphorePermit)> = BTreeMap::new();
    let mut next = 0;
    let end = loop {
        tokio::select! {
            _ = sigint.recv() => break End::Interrupted { signal: "SIGINT", exit_code: 130 },
            _ = sigterm.recv() => break End::Interrupted { signal: "SIGTERM", exit_code: 143 },
            done = rx.recv() => match done {
                Some((slot, row, permit)) => {
                    pending.insert(slot, (row, permit));
                    while let Some((row, _permit)) = pending.remove(&next) {
                        sink.write(row)?;
                        next += 1;
                    }
                }
                None => break End::Finished,
            },
        }
    };
    if let End::Interrupted { signal, .. } = end {
        sink.bar
            .suspend(|| eprintln!("provgate: {signal}: stopping; pins in progress are not judged"));
        dispatcher.abort();
        while let Ok((slot, row, permit)) = rx.try_recv() {
            pending.insert(slot, (row, permit));
        }
    }
    // What is left: rows judged after a gap (a pin in progress when the run
    // was interrupted). Written in order; the gaps are the pins not judged.
    for (_, (row, _permit)) in std::mem::take(&mut pending) {
        sink.write(row)?;
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_come_from_the_row_then_overrides_then_the_template() {
        let images = Images {
            template: Some("r.example/t-{runtime}".into()),
            overrides: HashMap::from([("platform".to_string(), "r.example/platform".to_string())]),
        };
        let pin = |runtime: &str, image: Option<&str>| PinRow {
            index: 0,
            line: None,
            runtime: runtime.into(),
            digest: "sha256:x".into(),
            source_sha: None,
            image: image.map(str::to_string),
        };
        assert_eq!(
            images.resolve(&pin("python", None)).as_deref(),
            Some("r.example/t-python")
        );
        assert_eq!(
            images.resolve(&pin("platform", None)).as_deref(),
            Some("r.example/platform")
        );
        assert_eq!(images.resolve(&pin("platform", Some("o/x"))).as_deref(), Some("o/x"));
        assert_eq!(
            parse_image_override("a=b/c").unwrap(),
            ("a".to_string(), "b/c".to_string())
        );
        assert!(parse_image_override("a").is_err() && parse_image_override("=b").is_err());
    }
}
