//! `provgate verify`: input → subject → guest → verdict → output.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, anyhow};

use crate::cli::VerifyArgs;
use crate::exit::{Exit, Failure};
use crate::input::{self, inspect, registry};
use crate::lookup::CommitLookup;
use crate::lookup::cache::{Cache, CachePolicy};
use crate::lookup::gitea::{BlockingGitea, GiteaClient, Token};
use crate::lookup::replay::{Recorder, Replay};
use crate::output;
use crate::subject::{Pin, Subject};

pub fn run(args: &VerifyArgs) -> Result<Exit, Failure> {
    let (subject, platform) = gather(args)?;
    let (replay, now) = super::replay_and_clock(args.replay.as_deref())?;

    let policy = super::load_policy(&args.policy, super::Verdicts::One)?;

    let mut recorder = None;
    let lookup: Arc<dyn CommitLookup> = match &replay {
        Some(recording) => Arc::new(Replay::new(recording)),
        None => {
            let timeout = args.network.gitea_timeout()?;
            let base = &policy.description().settings.gitea_base_url;
            let client = GiteaClient::new(base, Token::from_env(), timeout).map_err(Failure::usage)?;
            let gitea = Cache::new(
                BlockingGitea::new(client).map_err(Failure::usage)?,
                CachePolicy::per_run(),
            );
            let recording = Arc::new(Recorder::new(gitea));
            recorder = Some(recording.clone());
            recording
        }
    };

    let mut verdict = policy.evaluate(&subject, args.mode, now, lookup)?;
    if let Some((platform, digest)) = platform {
        verdict.subject.platform = Some(platform);
        verdict.subject.platform_digest = Some(digest).filter(|d| !d.is_empty());
    }

    if let (Some(path), Some(recorder)) = (&args.record, &recorder) {
        let recording = recorder.recording(Some(humantime::format_rfc3339_seconds(now).to_string()));
        recording.write(path).map_err(Failure::usage)?;
    }

    let mut stdout = std::io::stdout().lock();
    match output::write(&mut stdout, &verdict, args.format).and_then(|()| stdout.flush()) {
        // A reader that stopped early (`| head`) is not an error; the exit
        // code still carries the decision.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(Failure::usage(
                anyhow::Error::new(e).context("cannot write the verdict"),
            ));
        }
        _ => {}
    }
    Ok(if verdict.allowed { Exit::Allowed } else { Exit::Denied })
}

/// The subject and, for a multi-platform image, the platform judged (and
/// its manifest digest, when it came from a registry).
fn gather(args: &VerifyArgs) -> Result<(Subject, Option<(String, String)>), Failure> {
    let (mut subject, platform) = match (&args.inspect, &args.image) {
        (Some(path), _) => {
            let json = input::read_file_or_stdin(path).map_err(Failure::usage)?;
            let opts = inspect::InspectOptions {
                platform: &args.network.platform,
                digest: args.digest.as_deref(),
                reference: args.reference.as_deref(),
            };
            let inspected = inspect::parse(&json, &opts)
                .with_context(|| format!("--inspect {path}"))
                .map_err(Failure::usage)?;
            tracing::info!(shape = %inspected.shape, "read the image's facts");
            (inspected.subject, inspected.platform.map(|p| (p, String::new())))
        }
        (None, Some(image)) => {
            let opts = args.network.registry()?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")
                .map_err(Failure::usage)?;
            let fetched = runtime.block_on(registry::fetch(image, &opts)).map_err(|e| {
                if e.is_input_error() {
                    Failure::usage(e)
                } else {
                    Failure::fetch(e)
                }
            })?;
            if let Some((platform, digest)) = &fetched.platform {
                tracing::info!(%platform, %digest, "judging one platform of the index");
            }
            (fetched.subject, fetched.platform)
        }
        (None, None) => return Err(Failure::usage(anyhow!("give an IMAGE_REF or --inspect FILE"))),
    };
    if let Some(digest) = &args.pin_digest {
        subject.pin = Some(Pin {
            runtime: args.pin_runtime.clone(),
            digest: digest.clone(),
            source_sha: args.pin_source_sha.clone(),
        });
    }
    Ok((subject, platform))
}
