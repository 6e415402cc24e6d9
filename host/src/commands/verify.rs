//! `provgate verify`: input → subject → guest ↔ answers → verdict → output.

use std::io::Write;
use std::time::SystemTime;

use anyhow::{Context, anyhow};

use crate::cli::VerifyArgs;
use crate::exit::{Exit, Failure};
use crate::gather::{Input, gather};
use crate::judge::judge;
use crate::lookup::cache::CachePolicy;
use crate::lookup::replay::Replay;
use crate::lookup::{Source, Stack};
use crate::output;
use crate::record::Record;
use crate::subject::{Pin, Subject};

pub fn run(args: &VerifyArgs) -> Result<Exit, Failure> {
    let replayed = args.replay.as_deref().map(super::Replayed::read).transpose()?;
    let policy = super::load_policy(&args.policy, super::Verdicts::One)?;
    let record_file = super::create(&args.record, "--record")?;
    let runtime = super::current_thread()?;

    let decision = runtime.block_on(async {
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
            None => (args.network.gitea()?, SystemTime::now()),
        };
        let base = &policy.description().settings.gitea_base_url;
        let stack = Stack::build(source, base, CachePolicy::per_run()).map_err(Failure::usage)?;
        let decision = judge(&policy, &subject, args.mode, now, &*stack.answers()).await?;
        Ok::<_, Failure>((decision, subject))
    })?;
    let (decision, subject) = decision;

    if let (Some(path), Some(mut file)) = (&args.record, record_file) {
        file.replace(&Record::new(&decision, &subject).line())
            .with_context(|| format!("cannot write --record {}", path.display()))
            .map_err(Failure::usage)?;
    }

    let mut stdout = std::io::stdout().lock();
    match output::write(&mut stdout, &decision.verdict, args.format).and_then(|()| stdout.flush()) {
        // A reader that stopped early (`| head`) is not an error; the exit
        // code still carries the decision.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(Failure::usage(
                anyhow::Error::new(e).context("cannot write the verdict"),
            ));
        }
        _ => {}
    }
    Ok(if decision.verdict.decided.allowed {
        Exit::Allowed
    } else {
        Exit::Denied
    })
}

/// The subject: from `--inspect`, a registry, or the replayed record.
async fn subject(args: &VerifyArgs, replayed: Option<&super::Replayed>) -> Result<Subject, Failure> {
    let input = match (&args.inspect, &args.image) {
        (Some(path), _) => Input::Inspect {
            path,
            platform: &args.network.platform,
            digest: args.digest.as_deref(),
            reference: args.reference.as_deref(),
        },
        (None, Some(image)) => {
            let options = args.network.registry()?;
            return gather(Input::Registry {
                reference: image,
                options: &options,
            })
            .await;
        }
        (None, None) => {
            return match replayed.and_then(|r| r.record.as_ref()) {
                Some(record) => Ok(record.subject.subject()),
                None => Err(Failure::usage(anyhow!(
                    "give an IMAGE_REF, --inspect FILE, or a decision record to --replay"
                ))),
            };
        }
    };
    gather(input).await
}
