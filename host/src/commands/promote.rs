//! `provgate promote SOURCE_REF --to TAG`: the CI gate and the promotion in
//! one step (docs/reference.md §5). `SOURCE_REF` is resolved once, to one
//! manifest's bytes and digest; that digest is judged in enforce mode
//! exactly as `verify` judges an image (`repo:tag@sha256:…`, so the tag is
//! still checked by `tag.consistent`), and only when it is allowed are the
//! same bytes written under `TAG` in the same repository. The tag is never
//! read twice, so what is promoted is what was judged: a tag moved between
//! a `verify` and a `crane copy` cannot slip another image through.
//!
//! With `--pin URL` the pin is then written to the control plane. Both
//! writes are idempotent (the same bytes under the same tag, the same pin),
//! so a run that failed half way is simply run again.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::Args;
use provgate_contract::labels;
use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};

use super::Outcome;
use super::Verdicts;
use super::args::{NetworkArgs, PolicyArgs, non_blank, seconds};
use crate::gather::{Input, gather};
use crate::input::registry::push::{self, StoredManifest};
use crate::input::registry::{FetchError, parse_reference};
use crate::judge::judge;
use crate::lookup::Stack;
use crate::lookup::cache::CachePolicy;
use crate::output::{self, Format};
use crate::text::{quote, shown};
use crate::usage::UsageError;
use crate::verdict::{Mode, Verdict};

/// The environment variable whose value is sent as `Authorization: Bearer …`
/// with the pin (the same one `audit --pins URL` reads).
pub use super::control_plane::TOKEN_ENV;

#[derive(Debug, Args)]
#[command(after_help = "Always enforce mode. Registry credentials are read like docker does \
        (they need push access to the repository); the Gitea token comes from GITEA_TOKEN, \
        the control plane's from CP_ADMIN_API_TOKEN.\n\n\
        Exit codes: 0 promoted (and pinned), 1 denied (nothing written), 2 bad usage, \
        3 policy artifact problem, 4 the image could not be fetched or the tag not written, \
        5 promoted but the pin was not written (run it again: both writes are idempotent).\n\n\
        Examples:\n  \
        provgate promote \"$IMAGE:staging-$SHA\" --to latest --format github\n  \
        CP_ADMIN_API_TOKEN=… provgate promote \"$IMAGE:staging-$SHA\" --to latest \\\n    \
        --pin https://cp.example/cp/admin/runtime-image-pins --runtime python\n  \
        provgate promote \"$IMAGE:staging-$SHA\" --to latest \\\n    \
        --pin https://cp.example/cp/admin/runtime-image/promote --runtime python --pin-shape promote")]
pub struct PromoteArgs {
    /// The image to judge and promote: registry/repo:tag, registry/repo@sha256:…, or both.
    #[arg(value_name = "SOURCE_REF")]
    pub source: String,

    /// The tag to write the same manifest under, in the same repository.
    #[arg(long, value_name = "TAG", value_parser = tag_name)]
    pub to: String,

    /// How to print the verdict and what was written: text, json (the
    /// verdict as one line, with `promoted` and `pinned`), or github
    /// (workflow commands; with $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY set,
    /// also verify's step outputs plus `promoted`, and a job summary).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,

    /// After promoting, POST the pin to this control-plane URL with
    /// `Authorization: Bearer $CP_ADMIN_API_TOKEN`.
    #[arg(long, value_name = "URL", requires = "runtime", value_parser = non_blank)]
    pub pin: Option<String>,

    /// The runtime (or template) name the pin is written for.
    #[arg(long, value_name = "NAME", requires = "pin", value_parser = non_blank)]
    pub runtime: Option<String>,

    /// The body of the pin: runtime `{runtime, digest, source_sha}` (the
    /// pins endpoint) or promote `{template_name, image_digest, git_sha}`
    /// [default: runtime].
    #[arg(long, value_enum, value_name = "SHAPE", requires = "pin")]
    pub pin_shape: Option<PinShape>,

    /// Total time allowed for writing the pin.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    pub pin_timeout: Duration,

    #[command(flatten)]
    pub policy: PolicyArgs,

    #[command(flatten)]
    pub network: NetworkArgs,
}

/// The two bodies the control plane takes a pin in (docs/reference.md §6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PinShape {
    /// `{"runtime", "digest", "source_sha"}`
    #[default]
    Runtime,
    /// `{"template_name", "image_digest", "git_sha"}`
    Promote,
}

/// The image was promoted, but the pin could not be written: exit 5. The
/// message names the tag and digest written and why the pin was not.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PinFailed(pub String);

/// A tag as the distribution spec allows one: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn tag_name(value: &str) -> Result<String, String> {
    let mut bytes = value.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if value.is_empty() {
        Err("is empty (an unset variable?): give a tag such as latest".into())
    } else if value.contains([':', '/', '@']) {
        Err("give the tag alone (latest), not a reference: it is written in SOURCE_REF's repository".into())
    } else if first_ok && rest_ok && value.len() <= 128 {
        Ok(value.to_string())
    } else {
        Err("a tag is 1 to 128 of A-Z a-z 0-9 _ . - and does not start with . or -".into())
    }
}

/// Where and how the pin goes, checked before anything is read or written.
struct PinPlan {
    url: Url,
    token: String,
    body: fn(&str, &str, &str) -> Value,
    runtime: String,
}

/// What the run did, for the output.
struct Done {
    verdict: Verdict,
    /// `registry/repo:TAG` and the digest now under it.
    promoted: Option<(String, String)>,
    /// `None`: no `--pin`; `Some(Err)`: why it was not written.
    pinned: Option<Result<(), String>>,
}

pub fn run(args: &PromoteArgs) -> anyhow::Result<Outcome> {
    let pin = pin_plan(args)?;
    let source = parse_reference(&args.source)?;
    let target = oci_client::Reference::with_tag(
        source.registry().to_string(),
        source.repository().to_string(),
        args.to.clone(),
    )
    .whole();
    let policy = super::load_policy(args.policy.path(), args.policy.digest(), Verdicts::One)?;
    let runtime = super::current_thread()?;
    let options = args.network.registry();

    let done = runtime.block_on(async {
        // The one read of SOURCE_REF: everything after it is by digest.
        let stored = push::read_manifest(&args.source, &options).await?;
        let judged = match source.digest() {
            Some(_) => args.source.clone(),
            None => format!("{}@{}", args.source, stored.digest),
        };
        tracing::info!(reference = %judged, media_type = %stored.media_type, "resolved once");
        let subject = gather(Input::Registry {
            reference: &judged,
            options: &options,
        })
        .await?;
        anyhow::ensure!(
            subject.digest == stored.digest,
            "the judged digest {} is not the resolved {}",
            subject.digest,
            stored.digest
        );
        let base = &policy.description().settings.gitea_base_url;
        let stack = Stack::build(args.network.gitea(), base, CachePolicy::per_run()).map_err(UsageError::from)?;
        let decision = judge(&policy, &subject, Mode::Enforce, SystemTime::now(), &*stack.answers()).await?;
        let mut done = Done {
            verdict: decision.verdict,
            promoted: None,
            pinned: None,
        };
        if !done.verdict.decided.allowed {
            return anyhow::Ok(done);
        }
        let written = write_tag(&target, &options, &stored).await?;
        done.promoted = Some((target.clone(), written));
        if let Some(pin) = &pin {
            let revision = subject
                .labels
                .get(labels::REVISION)
                .map(String::as_str)
                .unwrap_or_default();
            let body = (pin.body)(&pin.runtime, &stored.digest, revision);
            done.pinned = Some(write_pin(&pin.url, &pin.token, &body, args.pin_timeout).await);
        }
        anyhow::Ok(done)
    })?;

    report(args, &done)?;
    match (&done.promoted, &done.pinned) {
        (None, _) => Ok(Outcome::Denied),
        (Some((target, digest)), Some(Err(reason))) => Err(PinFailed(format!(
            "promoted {target} ({digest}), but the pin was not written: {reason}; \
             run it again (both writes are idempotent)"
        ))
        .into()),
        (Some(_), _) => Ok(Outcome::Allowed),
    }
}

/// `--pin`'s URL, token and body, or bad usage now, before any write.
fn pin_plan(args: &PromoteArgs) -> anyhow::Result<Option<PinPlan>> {
    let (Some(url), Some(runtime)) = (&args.pin, &args.runtime) else {
        return Ok(None);
    };
    let url = Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| UsageError::msg(format!("--pin {}: give an http:// or https:// URL", quote(url))))?;
    let token = super::control_plane::token_from_env()
        .ok_or_else(|| UsageError::msg(format!("--pin needs ${TOKEN_ENV}: the pin is written with it")))?;
    let body: fn(&str, &str, &str) -> Value = match args.pin_shape.unwrap_or_default() {
        PinShape::Runtime => |runtime, digest, sha| json!({"runtime": runtime, "digest": digest, "source_sha": sha}),
        PinShape::Promote => {
            |runtime, digest, sha| json!({"template_name": runtime, "image_digest": digest, "git_sha": sha})
        }
    };
    Ok(Some(PinPlan {
        url,
        token,
        body,
        runtime: runtime.clone(),
    }))
}

/// Writes the judged bytes under `target`; the digest stored, which must
/// be theirs.
async fn write_tag(
    target: &str,
    options: &crate::input::registry::RegistryOptions,
    stored: &StoredManifest,
) -> Result<String, FetchError> {
    let written = push::put_manifest(target, options, stored).await?;
    if written != stored.digest {
        return Err(FetchError::DigestMismatch {
            what: format!("the manifest written under {target}"),
            expected: stored.digest.clone(),
            actual: written,
        });
    }
    tracing::info!(%target, digest = %written, "promoted");
    Ok(written)
}

/// One POST of the pin, within `timeout`; any answer but 2xx is a failure
/// that names the status (and never the token). Not retried here: the
/// run's exit 5 says to run it again.
async fn write_pin(url: &Url, token: &str, body: &Value, timeout: Duration) -> Result<(), String> {
    let shown_url = {
        let mut s = url.origin().ascii_serialization();
        s.push_str(url.path());
        s
    };
    super::control_plane::warn_if_plain(url, &shown_url);
    let http = crate::http::client_builder()
        .connect_timeout(timeout)
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
    let authorization = super::control_plane::authorization(token)?;
    let request = http
        .post(url.clone())
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, "application/json")
        .header(AUTHORIZATION, authorization)
        .body(body.to_string());
    let attempt = async {
        let mut response = request.send().await.map_err(|e| {
            let chain = crate::http::error_chain(&e.without_url());
            let hint = url
                .host_str()
                .and_then(|host| crate::tls::explain(&chain, host, None))
                .map(|hint| format!("{hint}; "))
                .unwrap_or_default();
            format!("cannot POST the pin to {shown_url}: {hint}{chain}")
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let excerpt = crate::http::read_prefix(&mut response, 4096).await;
        let excerpt = String::from_utf8_lossy(&excerpt);
        let hint = if matches!(status.as_u16(), 401 | 403) {
            format!(" (check {TOKEN_ENV}: the control plane refused it)")
        } else if status.is_redirection() {
            " (provgate does not follow redirects; give the final URL)".into()
        } else {
            String::new()
        };
        let said = match excerpt.trim() {
            "" => String::new(),
            excerpt => format!(": {}", quote(excerpt)),
        };
        Err(format!(
            "the control plane answered HTTP {status} for {shown_url}{hint}{said}"
        ))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => {
            if result.is_ok() {
                tracing::info!(url = %shown_url, "pin written");
            }
            result
        }
        Err(_) => Err(format!("{shown_url} did not answer within {timeout:?}")),
    }
}

/// The verdict and what was written, in `args.format`; for github, the step
/// outputs and summary too.
fn report(args: &PromoteArgs, done: &Done) -> anyhow::Result<()> {
    let mut out = Vec::new();
    match args.format {
        Format::Json => {
            let mut value = serde_json::to_value(&done.verdict).context("cannot render the verdict")?;
            if let Value::Object(map) = &mut value {
                map.insert(
                    "promoted".into(),
                    match &done.promoted {
                        Some((reference, digest)) => {
                            json!({"tag": args.to, "reference": reference, "digest": digest})
                        }
                        None => Value::Null,
                    },
                );
                map.insert(
                    "pinned".into(),
                    done.pinned.as_ref().map_or(Value::Null, |p| Value::Bool(p.is_ok())),
                );
            }
            crate::text::write_json(&mut out, &value).context("cannot render the verdict")?;
            out.push(b'\n');
        }
        Format::Text => {
            output::write(&mut out, &done.verdict, Format::Text)?;
            writeln!(out)?;
            match &done.promoted {
                Some((reference, digest)) => writeln!(out, "  promoted  {} → {}", shown(reference), shown(digest))?,
                None => writeln!(out, "  not promoted: denied, nothing was written")?,
            }
            match &done.pinned {
                Some(Ok(())) => writeln!(
                    out,
                    "  pinned    {}",
                    shown(args.runtime.as_deref().unwrap_or_default())
                )?,
                Some(Err(_)) => writeln!(out, "  pin NOT written (see the error below)")?,
                None => {}
            }
        }
        Format::Github => {
            output::write(&mut out, &done.verdict, Format::Github)?;
            match &done.promoted {
                Some((reference, digest)) => writeln!(
                    out,
                    "{}",
                    output::github_command("notice", "promoted", &format!("{reference} → {digest}"))
                )?,
                None => writeln!(
                    out,
                    "{}",
                    output::github_command("error", "not promoted", "denied: nothing was written")
                )?,
            }
            if let Some(Ok(())) = &done.pinned {
                let runtime = args.runtime.as_deref().unwrap_or_default();
                writeln!(out, "{}", output::github_command("notice", "pinned", runtime))?;
            }
        }
    }
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&out).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(anyhow::Error::new(e).context("cannot write the verdict"));
        }
        _ => {}
    }
    if args.format == Format::Github {
        let promoted = done.promoted.is_some();
        append_to_env_file(
            "GITHUB_OUTPUT",
            &output::github_promote_outputs(&done.verdict, promoted),
        )?;
        let mut summary = output::github_summary(&done.verdict);
        match &done.promoted {
            Some((reference, digest)) => summary.push_str(&format!("Promoted `{reference}` → `{digest}`.\n\n")),
            None => summary.push_str("Not promoted: nothing was written.\n\n"),
        }
        append_to_env_file("GITHUB_STEP_SUMMARY", &summary)?;
    }
    Ok(())
}

/// Appends `text` to the file the environment variable `name` names, when
/// it is set and not empty (as `verify --format github` does).
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

#[cfg(test)]
mod tests {
    use super::tag_name;

    #[test]
    fn a_tag_is_a_distribution_spec_tag_and_not_a_reference() {
        for good in ["latest", "v1.2.3", "staging-abc_1", "_x", &"a".repeat(128)] {
            assert_eq!(tag_name(good).as_deref(), Ok(good));
        }
        assert!(tag_name("reg/app:latest").unwrap_err().contains("tag alone"));
        for bad in ["", ".x", "-x", "a b", &"a".repeat(129), "läst"] {
            assert!(tag_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
