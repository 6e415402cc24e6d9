//! One module per subcommand, each with its own arguments, and what several
//! of them share: argument groups ([`args`]), loading the policy, reading
//! what a past decision was told, output files and the async runtime.
//!
//! A command returns how it came out ([`Outcome`]) or an error whose chain
//! holds a typed error (`UsageError`, `PolicyError`, `FetchError`); `main`
//! alone turns either into an exit code.

pub mod args;
pub mod audit;
pub mod policy;
pub mod replay;
pub mod serve;
pub mod verify;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, anyhow};

use crate::lookup::Answered;
use crate::lookup::replay::Recording01;
use crate::policy::{Artifact, Limits, Policy, cache::CodeCache};
use crate::record::{self, Record};
use crate::usage::UsageError;

/// How a command that ran to its end came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed, or a command that found nothing to object to.
    Allowed,
    /// Denied in enforce mode; for `replay`, some decision differs; for
    /// `audit`, a `--fail-on` status occurred.
    Denied,
    /// Stopped by a signal after writing what it had (`audit`).
    Interrupted(Signal),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// What `--replay FILE` holds: a decision record (0.2) or a 0.1 recording.
pub struct Replayed {
    /// The clock the recorded run used, when it says.
    pub now: Option<SystemTime>,
    pub answers: Vec<Answered>,
    /// The decision record, when it is one.
    pub record: Option<Record>,
}

impl Replayed {
    /// Every failure here is the caller's: the file is theirs.
    pub fn read(path: &Path) -> anyhow::Result<Replayed> {
        Replayed::parse(path).map_err(|e| UsageError::from(e).into())
    }

    fn parse(path: &Path) -> anyhow::Result<Replayed> {
        let what = format!("replay file {}", path.display());
        let bytes = path
            .to_str()
            .ok_or_else(|| anyhow!("{what}: the path is not UTF-8"))
            .and_then(crate::input::read_file_or_stdin)
            .with_context(|| format!("cannot read {what}"))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).with_context(|| format!("{what} is not JSON"))?;
        if value.get("lookups").is_some() {
            let old: Recording01 =
                serde_json::from_value(value).with_context(|| format!("{what} is not a provgate recording"))?;
            let now = old
                .now
                .as_deref()
                .map(record::parse_now)
                .transpose()
                .with_context(|| what.clone())?;
            return Ok(Replayed {
                now,
                answers: old.lookups,
                record: None,
            });
        }
        let record =
            record::from_value(value).with_context(|| format!("{what} is not a decision record or a 0.1 recording"))?;
        Ok(Replayed {
            now: Some(record::parse_now(&record.now)?),
            answers: record.answers.clone(),
            record: Some(record),
        })
    }
}

/// How many verdicts the loaded policy will give: the sandbox is sized for it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Verdicts {
    One,
    Many,
}

/// Loads the built-in artifact or the one at `path`, refusing any other
/// digest than `digest` when given, compiled and described.
pub fn load_policy(path: Option<&Path>, digest: Option<&str>, verdicts: Verdicts) -> anyhow::Result<Policy> {
    let artifact = Artifact::load(path)?;
    if let Some(expected) = digest {
        artifact.require_digest(expected)?;
    }
    load_artifact(artifact, verdicts)
}

pub fn load_artifact(artifact: Artifact, verdicts: Verdicts) -> anyhow::Result<Policy> {
    tracing::info!(policy = %artifact.origin, digest = %artifact.digest, "loading policy");
    let cache = CodeCache::from_env();
    Ok(match verdicts {
        Verdicts::One => Policy::load_for_one_verdict(artifact, Limits::default(), cache.as_ref())?,
        Verdicts::Many => Policy::load(artifact, Limits::default(), cache.as_ref())?,
    })
}

/// A file for writing a run's output, opened now so that an unwritable
/// path fails before any work is done, and emptied only when the output is
/// ready ([`Output::replace`]): a path that is also an input (`--inspect
/// x.json --record x.json`) is read before it is overwritten.
pub fn create(path: &Option<PathBuf>, flag: &str) -> anyhow::Result<Option<Output>> {
    path.as_ref()
        .map(|p| {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(p)
                .map(Output)
                .with_context(|| format!("cannot create {flag} {}", p.display()))
                .map_err(|e| UsageError::from(e).into())
        })
        .transpose()
}

/// An output file opened by [`create`]. A write that fails is the caller's
/// to mend (a full disk, a device named as the file), like a path that
/// cannot be created.
pub struct Output(std::fs::File);

impl Output {
    /// Replaces the file's content with `bytes`.
    pub fn replace(&mut self, bytes: &[u8]) -> Result<(), UsageError> {
        use std::io::{Seek, Write};
        let mut write = || {
            self.0.set_len(0)?;
            self.0.rewind()?;
            self.0.write_all(bytes)?;
            self.0.flush()
        };
        write().map_err(|e| UsageError::from(anyhow::Error::new(e)))
    }

    /// Appends to what this run has written so far (the first write of a
    /// run goes through [`Output::replace`]).
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), UsageError> {
        std::io::Write::write_all(&mut self.0, bytes).map_err(|e| UsageError::from(anyhow::Error::new(e)))
    }
}

/// A runtime for a command that does its work on one thread.
pub fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow!("cannot start the async runtime: {e}"))
}

/// A runtime whose workers are named after the command (`provgate-audit`).
pub fn multi_thread(name: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(name)
        .build()
        .context("cannot start the async runtime")
}
