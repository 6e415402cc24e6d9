//! The first step of every verdict: the subject's facts, from offline JSON
//! or from a registry. A failure keeps its type — a [`UsageError`] for
//! input that cannot be read, a `FetchError` from the registry — for
//! `main` (and serve) to class.

use anyhow::Context;

use crate::input::{self, inspect, registry};
use crate::subject::Subject;
use crate::usage::UsageError;

/// Where a subject's facts come from.
pub enum Input<'a> {
    /// `--inspect FILE|-`.
    Inspect {
        path: &'a str,
        platform: &'a str,
        digest: Option<&'a str>,
        reference: Option<&'a str>,
    },
    /// An image reference, fetched from its registry.
    Registry {
        reference: &'a str,
        options: &'a registry::RegistryOptions,
    },
}

/// The subject, without a pin (the caller adds its own).
pub async fn gather(input: Input<'_>) -> anyhow::Result<Subject> {
    match input {
        Input::Inspect {
            path,
            platform,
            digest,
            reference,
        } => {
            let json = input::read_file_or_stdin(path).map_err(UsageError::from)?;
            let opts = inspect::InspectOptions {
                platform,
                digest,
                reference,
            };
            let inspected = inspect::parse(&json, &opts)
                .with_context(|| format!("--inspect {}", crate::text::quote(path)))
                .map_err(UsageError::from)?;
            tracing::info!(shape = %inspected.shape, "read the image's facts");
            Ok(inspected.subject)
        }
        Input::Registry { reference, options } => {
            let fetched = registry::fetch(reference, options).await?;
            if let Some((platform, digest)) = &fetched.platform {
                tracing::info!(%platform, %digest, "judging one platform of the index");
            }
            Ok(fetched.subject)
        }
    }
}
