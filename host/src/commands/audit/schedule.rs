//! The audit's scheduler: every job judged with bounded concurrency, each
//! distinct image fetched once, identical pins evaluated once, rows written
//! in input order, until done or interrupted.

use provgate_contract::labels;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context;
use indicatif::ProgressBar;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;

use super::pins::PinRow;
use super::report::{Judged, Row, Tally};
use crate::commands::{Output, Signal};
use crate::input::registry;
use crate::judge::judge;
use crate::lookup::Stack;
use crate::policy::Policy;
use crate::record::Record;
use crate::subject::{Pin, Subject};
use crate::text::quote;
use crate::verdict::{Mode, PolicyRef};

/// One pin to judge, with the repository it is looked for in.
pub(super) struct Job {
    pin: PinRow,
    image: String,
    /// `image@digest`, or why there is none.
    reference: Result<String, String>,
}

impl Job {
    pub(super) fn new(pin: PinRow, image: String) -> Job {
        let reference = if image.contains('@') {
            Err(format!(
                "the image {} already names a digest; a pin's image must be a repository \
                 (optionally with a tag), to which the pin's digest is added",
                quote(&image)
            ))
        } else {
            Ok(format!("{image}@{}", pin.digest))
        };
        Job { pin, image, reference }
    }
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
pub(super) struct Ctx {
    policy: Arc<Policy>,
    lookup: Arc<Stack>,
    now: SystemTime,
    registry: registry::RegistryOptions,
    /// Whether each verdict's decision record is kept (`--records`).
    keep_records: bool,
    fetch_slots: Semaphore,
    images: Mutex<HashMap<String, Arc<ImageCell>>>,
    pub(super) fetches: AtomicU64,
    pub(super) fetch_failures: AtomicU64,
    pub(super) evaluations: AtomicU64,
}

impl Ctx {
    pub(super) fn new(
        policy: Arc<Policy>,
        lookup: Arc<Stack>,
        now: SystemTime,
        registry: registry::RegistryOptions,
        keep_records: bool,
        concurrency: usize,
    ) -> Ctx {
        Ctx {
            policy,
            lookup,
            now,
            registry,
            keep_records,
            fetch_slots: Semaphore::new(concurrency),
            images: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
            fetch_failures: AtomicU64::new(0),
            evaluations: AtomicU64::new(0),
        }
    }

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
                revision: image.subject.labels.get(labels::REVISION).cloned(),
            },
            Err(e) => Judged::Error(format!("the policy could not judge it: {e}")),
        }
    }
}

/// How the judging ended.
#[derive(Clone, Copy, Debug)]
pub(super) enum End {
    Finished,
    Interrupted(Signal),
    /// The reader of stdout went away (`audit | head`): no row can be
    /// written, so the run stops as if interrupted, without a signal.
    Closed,
}

/// Where finished rows go, in order.
pub(super) struct Sink<'a> {
    out: std::io::Stdout,
    /// `--records`.
    records: Option<Output>,
    policy: &'a PolicyRef,
    tally: Tally,
    bar: ProgressBar,
    /// stdout was closed by its reader: rows from here on are dropped.
    closed: bool,
}

impl<'a> Sink<'a> {
    pub(super) fn new(records: Option<Output>, policy: &'a PolicyRef, bar: ProgressBar) -> Sink<'a> {
        Sink {
            out: std::io::stdout(),
            records,
            policy,
            tally: Tally::default(),
            bar,
            closed: false,
        }
    }

    pub(super) fn into_tally(self) -> Tally {
        self.tally
    }

    /// One whole line per row: the line is built first and written with a
    /// single call on the (line-buffered) stdout. A reader that closed
    /// stdout (`| head`) is no error: the row is dropped, the sink marked
    /// closed, and the run stops.
    fn write(&mut self, row: Row) -> anyhow::Result<()> {
        if self.closed {
            return Ok(());
        }
        let mut line = row.json(self.policy).context("cannot serialise a row")?;
        line.push(b'\n');
        let mut out = self.out.lock();
        match out.write_all(&line).and_then(|()| out.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                return Ok(());
            }
            written => written.context("cannot write to standard output")?,
        }
        if let (
            Some(file),
            Judged::Verdict {
                record: Some(record), ..
            },
        ) = (&mut self.records, &row.judged)
        {
            file.append(&record.line()).context("cannot write --records")?;
        }
        self.tally.add(&row);
        self.bar.inc(1);
        Ok(())
    }
}

/// Judges every job with bounded concurrency, writing rows in input order,
/// until done or interrupted.
pub(super) async fn judge_all(
    ctx: Arc<Ctx>,
    jobs: Vec<Job>,
    window: usize,
    sink: &mut Sink<'_>,
) -> anyhow::Result<End> {
    let mut sigint = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;

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
            _ = sigint.recv() => break End::Interrupted(Signal::Interrupt),
            _ = sigterm.recv() => break End::Interrupted(Signal::Terminate),
            done = rx.recv() => match done {
                Some((slot, row, permit)) => {
                    pending.insert(slot, (row, permit));
                    while let Some((row, _permit)) = pending.remove(&next) {
                        sink.write(row)?;
                        next += 1;
                    }
                    if sink.closed {
                        break End::Closed;
                    }
                }
                None => break End::Finished,
            },
        }
    };
    if let End::Closed = end {
        dispatcher.abort();
        return Ok(end);
    }
    if let End::Interrupted(signal) = end {
        let name = signal.name();
        // A closed stderr is no reason to panic: `say` ignores it.
        sink.bar
            .suspend(|| crate::logging::say(&format!("provgate: {name}: stopping; pins in progress are not judged")));
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
