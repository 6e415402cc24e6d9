//! One module per subcommand, and what several of them share: loading the
//! policy and reading what a past decision was told.

pub mod audit;
pub mod policy;
pub mod replay;
pub mod serve;
pub mod verify;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, anyhow};

use crate::cli::PolicyArgs;
use crate::exit::Failure;
use crate::lookup::Answered;
use crate::lookup::replay::Recording01;
use crate::policy::{Artifact, Limits, Policy, cache::CodeCache};
use crate::record::{self, Record};

/// What `--replay FILE` holds: a decision record (0.2) or a 0.1 recording.
pub struct Replayed {
    /// The clock the recorded run used, when it says.
    pub now: Option<SystemTime>,
    pub answers: Vec<Answered>,
    /// The decision record, when it is one.
    pub record: Option<Record>,
}

impl Replayed {
    pub fn read(path: &Path) -> Result<Replayed, Failure> {
        let what = format!("replay file {}", path.display());
        let bytes = path
            .to_str()
            .ok_or_else(|| anyhow!("{what}: the path is not UTF-8"))
            .and_then(crate::input::read_file_or_stdin)
            .with_context(|| format!("cannot read {what}"))
            .map_err(Failure::usage)?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{what} is not JSON"))
            .map_err(Failure::usage)?;
        if value.get("lookups").is_some() {
            let old: Recording01 = serde_json::from_value(value)
                .with_context(|| format!("{what} is not a provgate recording"))
                .map_err(Failure::usage)?;
            let now = old
                .now
                .as_deref()
                .map(record::parse_now)
                .transpose()
                .with_context(|| what.clone())
                .map_err(Failure::usage)?;
            return Ok(Replayed {
                now,
                answers: old.lookups,
                record: None,
            });
        }
        let record = record::from_value(value)
            .with_context(|| format!("{what} is not a decision record or a 0.1 recording"))
            .map_err(Failure::usage)?;
        Ok(Replayed {
            now: Some(record::parse_now(&record.now).map_err(Failure::usage)?),
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

/// Loads the artifact `--policy`/`--policy-digest` select, compiled and described.
pub fn load_policy(args: &PolicyArgs, verdicts: Verdicts) -> Result<Policy, Failure> {
    load(args.policy.as_deref(), args.policy_digest.as_deref(), verdicts)
}

/// Loads the built-in artifact or the one at `path`, refusing any other
/// digest than `digest` when given.
pub fn load(path: Option<&Path>, digest: Option<&str>, verdicts: Verdicts) -> Result<Policy, Failure> {
    let artifact = Artifact::load(path)?;
    if let Some(expected) = digest {
        artifact.require_digest(expected)?;
    }
    load_artifact(artifact, verdicts)
}

pub fn load_artifact(artifact: Artifact, verdicts: Verdicts) -> Result<Policy, Failure> {
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
pub fn create(path: &Option<PathBuf>, flag: &str) -> Result<Option<Output>, Failure> {
    path.as_ref()
        .map(|p| {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(p)
                .map(Output)
                .with_context(|| format!("cannot create {flag} {}", p.display()))
                .map_err(Failure::usage)
        })
        .transpose()
}

/// An output file opened by [`create`].
pub struct Output(std::fs::File);

impl Output {
    /// Replaces the file's content with `bytes`.
    pub fn replace(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::{Seek, Write};
        self.0.set_len(0)?;
        self.0.rewind()?;
        self.0.write_all(bytes)?;
        self.0.flush()
    }

    /// Appends to what this run has written so far (the first write of a
    /// run goes through [`Output::replace`]).
    pub fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        std::io::Write::write_all(&mut self.0, bytes)
    }
}

/// A runtime for a command that does its work on one thread.
pub fn current_thread() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(anyhow!("cannot start the async runtime: {e}")))
}
