//! `provgate verify`: input → subject → guest ↔ answers → verdict → output.

use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Context;
use clap::Args;

use super::args::{NetworkArgs, PolicyArgs, non_blank};
use super::{Outcome, Replayed, Verdicts};
use crate::gather::{Input, gather};
use crate::judge::judge;
use crate::lookup::cache::CachePolicy;
use crate::lookup::replay::Replay;
use crate::lookup::{Source, Stack};
use crate::output::{self, Format};
use crate::record::Record;
use crate::subject::{Pin, Subject};
use crate::usage::UsageError;
use crate::verdict::Mode;

#[derive(Debug, Args)]
#[command(
    group(clap::ArgGroup::new("pin").multiple(true)),
    after_help = "Registry credentials are read like docker does: $DOCKER_CONFIG/config.json \
        or ~/.docker/config.json (auths, credential helpers). The Gitea token comes from GITEA_TOKEN.\n\n\
        Examples:\n  \
        provgate verify registry.example/molecule-ai/app:staging-<sha> --format github\n  \
        provgate verify 127.0.0.1:5000/molecule-ai/app@sha256:… \\\n    \
        --insecure-registry 127.0.0.1:5000\n  \
        provgate verify --inspect docs/examples/verified.json \\\n    \
        --replay docs/examples/verified.record.json\n  \
        docker inspect app:local | provgate verify --inspect - --digest sha256:…\n  \
        provgate verify --inspect img.json --pin-digest sha256:… \\\n    \
        --pin-source-sha <sha> --format github\n  \
        provgate verify \"$IMAGE:staging-$SHA\" --pin-source-sha \"$SHA\" \\\n    \
        --record decision.json"
)]
pub struct VerifyArgs {
    /// Image reference: registry/repo:tag, registry/repo@sha256:…, or both.
    #[arg(
        value_name = "IMAGE_REF",
        required_unless_present_any = ["inspect", "replay"],
        conflicts_with = "inspect"
    )]
    pub image: Option<String>,

    /// Read the image's facts from JSON instead of a registry (`-` for stdin):
    /// `docker buildx imagetools inspect --format '{{json .}}'`, `skopeo inspect`,
    /// `docker inspect`, or a bare OCI image config (needs --digest).
    #[arg(long, value_name = "FILE|-")]
    pub inspect: Option<String>,

    /// The manifest digest, when the JSON does not carry it (or to override it).
    #[arg(long, value_name = "sha256:…", requires = "inspect")]
    pub digest: Option<String>,

    /// The image reference to report and check the tag of, overriding the JSON's.
    #[arg(long, value_name = "REF", requires = "inspect")]
    pub reference: Option<String>,

    /// enforce: deny unless verified. log-only: always allowed, verdict recorded.
    #[arg(long, value_enum, default_value = "enforce")]
    pub mode: Mode,

    /// How to print the verdict: text for people, json (the verdict as one
    /// line), or github (workflow commands for GitHub/Gitea Actions; with
    /// $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY set, also step outputs and a
    /// job summary appended to those files, and an `::error` line for a run
    /// that ends in exit 2, 3, 4 or 70).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,

    /// The digest the caller expects (a control-plane pin's); enables
    /// pin.consistent. May be given alone.
    #[arg(long, value_name = "sha256:…", group = "pin", value_parser = non_blank)]
    pub pin_digest: Option<String>,

    /// The commit the caller expects (a pin's source_sha, or the SHA a CI
    /// job built); enables pin.consistent. May be given alone.
    #[arg(long, value_name = "SHA", group = "pin", value_parser = non_blank)]
    pub pin_source_sha: Option<String>,

    /// The control-plane pin's runtime (reported only).
    #[arg(long, value_name = "RUNTIME", requires = "pin")]
    pub pin_runtime: Option<String>,

    #[command(flatten)]
    pub policy: PolicyArgs,

    #[command(flatten)]
    pub network: NetworkArgs,

    /// Write the decision record of this verdict to FILE: the subject, the
    /// clock and every answer it was decided on (`provgate replay` reads it).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Take the clock and Gitea's answers from a decision record (or a 0.1
    /// recording); no Gitea traffic. Without IMAGE_REF or --inspect, the
    /// record's subject is judged too.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
}

pub fn run(args: &VerifyArgs) -> anyhow::Result<Outcome> {
    decide(args)
}

fn decide(args: &VerifyArgs) -> anyhow::Result<Outcome> {
    let replayed = args.replay.as_deref().map(Replayed::read).transpose()?;
    let policy = super::load_policy(args.policy.path(), args.policy.digest(), Verdicts::One)?;
    let record_file = super::create(&args.record, "--record")?;
    let runtime = super::current_thread()?;

    let (decision, subject) = runtime.block_on(async {
        let mut subject = subject(args, replayed.as_ref()).await?;
        if args.pin_digest.is_some() || args.pin_source_sha.is_some() {
            subject.pin = Some(Pin {
                runtime: args.pin_runtime.clone(),
                digest: args.pin_digest.clone(),
                source_sha: args.pin_source_sha.clone(),
            });
        }
        let (source, now) = match &replayed {
            Some(r) => (
                Source::Replay(Replay::new(&r.answers)),
                r.now.unwrap_or_else(SystemTime::now),
            ),
            None => (args.network.gitea(), SystemTime::now()),
        };
        let base = &policy.description().settings.gitea_base_url;
        let stack = Stack::build(source, base, CachePolicy::per_run()).map_err(UsageError::from)?;
        let decision = judge(&policy, &subject, args.mode, now, &*stack.answers()).await?;
        anyhow::Ok((decision, subject))
    })?;

    if let (Some(path), Some(mut file)) = (&args.record, record_file) {
        file.replace(&Record::new(&decision, &subject).line())
            .with_context(|| format!("cannot write --record {}", path.display()))?;
    }

    let mut stdout = std::io::stdout().lock();
    match output::write(&mut stdout, &decision.verdict, args.format).and_then(|()| stdout.flush()) {
        // A reader that stopped early (`| head`) is not an error; the exit
        // code still carries the decision.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(anyhow::Error::new(e).context("cannot write the verdict"));
        }
        _ => {}
    }
    if args.format == Format::Github {
        append_to_env_file("GITHUB_OUTPUT", &output::github_outputs(&decision.verdict))?;
        append_to_env_file("GITHUB_STEP_SUMMARY", &output::github_summary(&decision.verdict))?;
    }
    Ok(if decision.verdict.decided.allowed {
        Outcome::Allowed
    } else {
        Outcome::Denied
    })
}

/// Appends `text` to the file the environment variable `name` names, when
/// it is set and not empty (the runner creates these files; they are
/// appended to, never truncated, since every step of a job shares them).
fn append_to_env_file(name: &str, text: &str) -> anyhow::Result<()> {
    let Some(path) = std::env::var_os(name).filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let path = PathBuf::from(path);
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .with_context(|| format!("cannot append to ${name} ({})", path.display()))
}

/// The subject: from `--inspect`, a registry, or the replayed record.
async fn subject(args: &VerifyArgs, replayed: Option<&Replayed>) -> anyhow::Result<Subject> {
    let input = match (&args.inspect, &args.image) {
        (Some(path), _) => Input::Inspect {
            path,
            platform: &args.network.platform,
            digest: args.digest.as_deref(),
            reference: args.reference.as_deref(),
        },
        (None, Some(image)) => {
            let options = args.network.registry();
            return gather(Input::Registry {
                reference: image,
                options: &options,
            })
            .await;
        }
        (None, None) => {
            return match replayed.and_then(|r| r.record.as_ref()) {
                Some(record) => Ok(record.subject.subject()),
                None => {
                    Err(UsageError::msg("give an IMAGE_REF, --inspect FILE, or a decision record to --replay").into())
                }
            };
        }
    };
    gather(input).await
}
