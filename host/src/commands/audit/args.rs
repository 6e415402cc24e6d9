//! `provgate audit`'s arguments, and the one thing derived from them that
//! needs checking: where each pin's image lives.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;

use super::pins::PinRow;
use super::report::RowStatus;
use crate::commands::args::{NetworkArgs, PolicyArgs};
use crate::text::quote;
use crate::usage::UsageError;

#[derive(Debug, Args)]
#[command(
    after_help = "Each pin is judged as IMAGE@DIGEST with the pin attached, always in log-only mode. \
    stdout gets one JSON line per pin (the verdict plus `index`, `runtime` and `pin`; `status: \"error\"` and \
    `error` when the image could not be fetched), in input order; stderr gets the summary.\n\n\
    Exit codes: 0 whatever the verdicts, 1 when a --fail-on status occurred, 2 unusable input \
    (no pin in it, a control plane answer other than 2xx, no image for a runtime), 3 policy artifact \
    problem, 130/143 interrupted by SIGINT/SIGTERM (the rows written are whole). A reader that \
    closes stdout early (`| head`) ends the run quietly with the code of the rows written.\n\n\
    Examples:\n  \
    provgate audit --pins pins.json \\\n    \
    --image-template 'reg.example/molecule-ai/workspace-template-{runtime}'\n  \
    CP_ADMIN_API_TOKEN=… provgate audit \\\n    \
    --pins https://cp.example/cp/admin/runtime-image-pins \\\n    \
    --image-template 'reg.example/molecule-ai/workspace-template-{runtime}' \\\n    \
    --image platform=reg.example/molecule-ai/platform \\\n    \
    --report audit.md --backfill backfill.jsonl"
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
    pub(super) fn status(self) -> RowStatus {
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
pub(super) struct Images {
    template: Option<String>,
    overrides: HashMap<String, String>,
}

impl Images {
    pub(super) fn new(args: &AuditArgs) -> Result<Images, UsageError> {
        if let Some(template) = &args.image_template
            && !template.contains("{runtime}")
        {
            return Err(UsageError::msg(format!(
                "--image-template {} has no {{runtime}}: every runtime would be looked for in \
                 the same repository (use --image RUNTIME=REPO for one runtime)",
                quote(template)
            )));
        }
        Ok(Images {
            template: args.image_template.clone(),
            overrides: args.images.iter().cloned().collect(),
        })
    }

    pub(super) fn resolve(&self, pin: &PinRow) -> Option<String> {
        pin.image
            .clone()
            .or_else(|| self.overrides.get(&pin.runtime).cloned())
            .or_else(|| self.template.as_ref().map(|t| t.replace("{runtime}", &pin.runtime)))
    }
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
