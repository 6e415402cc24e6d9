//! `provgate policy inspect` and `provgate policy build`.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;

use super::{Outcome, Verdicts};
use crate::policy::{Artifact, Limits, Origin, Policy, PolicyError, cache::CodeCache};
use crate::usage::UsageError;
use provgate_contract::slot;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print an artifact's name, version, digest, WIT world, rules and settings.
    Inspect {
        /// Artifact to describe [default: the built-in one].
        path: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: InspectFormat,
    },
    /// Write a new artifact: the same compiled rules with other settings inside.
    #[command(after_help = "The settings file has exactly these keys:\n  \
        {\"gitea_base_url\": \"https://git.example.org\", \"allowed_owners\": [\"my-org\"],\n   \
        \"created_max_skew_seconds\": 300, \"on_unavailable\": \"deny\"}")]
    Build {
        /// Settings JSON (see policies/molecule.json).
        #[arg(long, value_name = "FILE")]
        settings: PathBuf,
        /// Where to write the new artifact.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Artifact whose compiled rules to reuse [default: the built-in one].
        #[arg(long, value_name = "PATH")]
        from: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InspectFormat {
    Text,
    Json,
}

pub fn run(cmd: &PolicyCommand) -> anyhow::Result<Outcome> {
    match cmd {
        PolicyCommand::Inspect { path, format } => inspect(path.as_deref(), *format),
        PolicyCommand::Build { settings, out, from } => build(settings, out, from.as_deref()),
    }
}

fn inspect(path: Option<&Path>, format: InspectFormat) -> anyhow::Result<Outcome> {
    let policy = super::load_policy(path, None, Verdicts::One)?;
    let d = policy.description();
    let mut out = std::io::stdout().lock();
    let written = match format {
        InspectFormat::Json => serde_json::to_writer_pretty(&mut out, d)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        InspectFormat::Text => (|| {
            writeln!(out, "name      {}", d.name)?;
            writeln!(out, "version   {}", d.version)?;
            writeln!(out, "digest    {}", d.digest)?;
            writeln!(out, "world     {}", d.world)?;
            writeln!(out, "source    {}", policy.artifact().origin)?;
            writeln!(out, "rules     {}", d.rules.join(", "))?;
            writeln!(out, "settings")?;
            writeln!(out, "  gitea_base_url            {}", d.settings.gitea_base_url)?;
            writeln!(
                out,
                "  allowed_owners            {}",
                d.settings.allowed_owners.join(", ")
            )?;
            writeln!(
                out,
                "  created_max_skew_seconds  {}",
                d.settings.created_max_skew_seconds
            )?;
            writeln!(out, "  on_unavailable            {}", d.settings.on_unavailable)
        })(),
    };
    written.context("cannot write to stdout")?;
    Ok(Outcome::Allowed)
}

/// The largest settings file `policy build` reads.
const MAX_SETTINGS_FILE_BYTES: u64 = 64 << 10;

/// Writes the settings into a copy of the base artifact, then loads the
/// result: the guest itself validates the settings, so an invalid field is
/// refused here, at build time, with the guest's message naming it.
fn build(settings_path: &Path, out: &Path, from: Option<&Path>) -> anyhow::Result<Outcome> {
    let shown = settings_path.display();
    // The slot holds 4 KiB once compacted; a settings file many times that
    // is not one (or is a device that never ends).
    let raw = crate::input::read_at_most(&settings_path.to_string_lossy(), MAX_SETTINGS_FILE_BYTES)
        .with_context(|| format!("cannot read settings {shown}"))
        .map_err(UsageError::from)?;
    let settings = slot::canonical(&raw).map_err(|e| UsageError::msg(format!("settings {shown}: {e}")))?;
    let base = Artifact::load(from)?;
    let bytes = slot::write(&base.bytes, &settings).map_err(|e| match e {
        slot::SlotError::TooLarge(_) => anyhow::Error::from(UsageError::msg(format!("settings {shown}: {e}"))),
        // The base artifact has no settings slot provgate can write.
        _ => PolicyError::Load(format!("{}: {e}", base.origin)).into(),
    })?;
    let artifact = Artifact::from_bytes(Cow::Owned(bytes), Origin::File(out.to_path_buf()));
    let policy = match Policy::load_for_one_verdict(artifact, Limits::default(), CodeCache::from_env().as_ref()) {
        Ok(p) => p,
        Err(PolicyError::Settings { reason, .. }) => {
            return Err(UsageError::msg(format!("settings {shown}: {reason}")).into());
        }
        Err(e) => return Err(e.into()),
    };

    let tmp = out.with_extension("wasm.tmp");
    std::fs::write(&tmp, &policy.artifact().bytes)
        .and_then(|()| std::fs::rename(&tmp, out))
        .with_context(|| format!("cannot write {}", out.display()))
        .map_err(UsageError::from)?;
    let d = policy.description();
    println!("wrote {} ({} bytes)", out.display(), policy.artifact().bytes.len());
    println!("digest  {}", d.digest);
    println!(
        "gitea   {}  owners {}",
        d.settings.gitea_base_url,
        d.settings.allowed_owners.join(", ")
    );
    Ok(Outcome::Allowed)
}
