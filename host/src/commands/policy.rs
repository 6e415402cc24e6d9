//! `provgate policy inspect` and `provgate policy build`.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, anyhow};

use crate::cli::{InspectFormat, PolicyCommand};
use crate::exit::{Exit, Failure};
use crate::policy::{Artifact, Limits, Origin, Policy, PolicyError, cache::CodeCache, slot};

pub fn run(cmd: &PolicyCommand) -> Result<Exit, Failure> {
    match cmd {
        PolicyCommand::Inspect { path, format } => inspect(path.as_deref(), *format),
        PolicyCommand::Build { settings, out, from } => build(settings, out, from.as_deref()),
    }
}

fn inspect(path: Option<&Path>, format: InspectFormat) -> Result<Exit, Failure> {
    let policy = super::load(path, None, super::Verdicts::One)?;
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
    written.context("cannot write to stdout").map_err(Failure::usage)?;
    Ok(Exit::Allowed)
}

/// Writes the settings into a copy of the base artifact, then loads the
/// result: the guest itself validates the settings, so an invalid field is
/// refused here, at build time, with the guest's message naming it.
fn build(settings_path: &Path, out: &Path, from: Option<&Path>) -> Result<Exit, Failure> {
    let raw = std::fs::read(settings_path)
        .with_context(|| format!("cannot read settings {}", settings_path.display()))
        .map_err(Failure::usage)?;
    let settings =
        slot::canonical(&raw).map_err(|e| Failure::usage(anyhow!("settings {}: {e}", settings_path.display())))?;
    let base = Artifact::load(from)?;
    let bytes = slot::write(&base.bytes, &settings).map_err(|e| match e {
        slot::SlotError::TooLarge(_) => Failure::usage(anyhow!("settings {}: {e}", settings_path.display())),
        _ => Failure::policy(anyhow!("{}: {e}", base.origin)),
    })?;
    let artifact = Artifact::from_bytes(Cow::Owned(bytes), Origin::File(out.to_path_buf()));
    let policy = match Policy::load_for_one_verdict(artifact, Limits::default(), CodeCache::from_env().as_ref()) {
        Ok(p) => p,
        Err(PolicyError::Settings { reason, .. }) => {
            return Err(Failure::usage(anyhow!(
                "settings {}: {reason}",
                settings_path.display()
            )));
        }
        Err(e) => return Err(e.into()),
    };

    let tmp = out.with_extension("wasm.tmp");
    std::fs::write(&tmp, &policy.artifact().bytes)
        .and_then(|()| std::fs::rename(&tmp, out))
        .with_context(|| format!("cannot write {}", out.display()))
        .map_err(Failure::usage)?;
    let d = policy.description();
    println!("wrote {} ({} bytes)", out.display(), policy.artifact().bytes.len());
    println!("digest  {}", d.digest);
    println!(
        "gitea   {}  owners {}",
        d.settings.gitea_base_url,
        d.settings.allowed_owners.join(", ")
    );
    Ok(Exit::Allowed)
}
