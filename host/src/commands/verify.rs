//! `provgate verify`: input → subject → guest → verdict → output.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};

use crate::cli::VerifyArgs;
use crate::exit::{Exit, Failure};
use crate::input::{self, inspect};
use crate::lookup::gitea::{BlockingGitea, GiteaClient, Token};
use crate::lookup::replay::{Recorder, Recording, Replay};
use crate::lookup::{CommitLookup, Memo};
use crate::output;
use crate::subject::{Pin, Subject};

pub fn run(args: &VerifyArgs) -> Result<Exit, Failure> {
    let (subject, platform) = gather(args)?;
    let replay = match &args.replay {
        Some(path) => Some(Recording::read(path).map_err(Failure::usage)?),
        None => None,
    };
    let now = match replay.as_ref().and_then(|r| r.now.as_deref()) {
        Some(now) => humantime::parse_rfc3339(now)
            .map_err(|e| Failure::usage(anyhow!("replay file: \"now\" {now:?} is not an RFC 3339 time: {e}")))?,
        None => SystemTime::now(),
    };

    let policy = super::load_policy(&args.policy)?;

    let mut recorder = None;
    let lookup: Arc<dyn CommitLookup> = match &replay {
        Some(recording) => Arc::new(Replay::new(recording)),
        None => {
            let timeout = Duration::try_from_secs_f64(args.gitea_timeout)
                .ok()
                .filter(|t| !t.is_zero())
                .ok_or_else(|| Failure::usage(anyhow!("--gitea-timeout must be a positive number of seconds")))?;
            let base = &policy.description().settings.gitea_base_url;
            let client = GiteaClient::new(base, Token::from_env(), timeout).map_err(Failure::usage)?;
            let gitea = Memo::new(BlockingGitea::new(client).map_err(Failure::usage)?);
            let recording = Arc::new(Recorder::new(gitea));
            recorder = Some(recording.clone());
            recording
        }
    };

    let mut verdict = policy.evaluate(&subject, args.mode, now, lookup)?;
    verdict.subject.platform = platform;

    if let (Some(path), Some(recorder)) = (&args.record, &recorder) {
        let recording = recorder.recording(Some(humantime::format_rfc3339_seconds(now).to_string()));
        recording.write(path).map_err(Failure::usage)?;
    }

    let mut stdout = std::io::stdout().lock();
    output::write(&mut stdout, &verdict, args.format)
        .and_then(|()| stdout.flush())
        .context("cannot write the verdict")
        .map_err(Failure::usage)?;
    Ok(if verdict.allowed { Exit::Allowed } else { Exit::Denied })
}

/// The subject and, for a multi-platform image, the platform judged.
fn gather(args: &VerifyArgs) -> Result<(Subject, Option<String>), Failure> {
    let (mut subject, platform) = match (&args.inspect, &args.image) {
        (Some(path), _) => {
            let json = input::read_file_or_stdin(path).map_err(Failure::usage)?;
            let opts = inspect::InspectOptions {
                platform: &args.platform,
                digest: args.digest.as_deref(),
                reference: args.reference.as_deref(),
            };
            let inspected = inspect::parse(&json, &opts)
                .with_context(|| format!("--inspect {path}"))
                .map_err(Failure::usage)?;
            tracing::info!(shape = %inspected.shape, "read the image's facts");
            (inspected.subject, inspected.platform)
        }
        (None, Some(image)) => {
            return Err(Failure::usage(anyhow!(
                "fetching {image} from a registry is not available in this build yet; use --inspect"
            )));
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
