//! The command line (SPEC §5).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, Parser, Subcommand};

use crate::exit::Failure;
use crate::input::credentials::AuthSources;
use crate::input::registry::RegistryOptions;
use crate::output::Format;
use crate::verdict::Mode;

#[derive(Debug, Parser)]
#[command(
    name = "provgate",
    version,
    about = "Verify that a container image carries trustworthy build provenance",
    long_about = "Verify that a container image carries trustworthy build provenance.\n\n\
        One sandboxed WebAssembly policy decides; every caller (control plane, CI gate, \
        provisioner, audit) runs the same artifact and reports its sha256 in each verdict.",
    after_help = "Exit codes: 0 allowed, 1 denied (enforce), 2 bad usage or input, \
        3 policy artifact problem, 4 image could not be fetched.\n\n\
        Examples:\n  \
        provgate verify --inspect image.json --format json\n  \
        skopeo inspect docker://reg/app:tag | provgate verify --inspect - --mode log-only\n  \
        provgate verify reg/app:tag --record decision.json && provgate replay decision.json\n  \
        provgate policy inspect"
)]
pub struct Cli {
    /// Log what provgate does to stderr (-v info, -vv debug; `serve` logs at
    /// info by default). RUST_LOG also works.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Judge one image: from a registry, or from `--inspect` JSON.
    #[command(
        after_help = "Registry credentials are read like docker does: $DOCKER_CONFIG/config.json \
        or ~/.docker/config.json (auths, credential helpers). The Gitea token comes from GITEA_TOKEN.\n\n\
        Examples:\n  \
        provgate verify registry.example/molecule-ai/app:staging-<sha> --format github\n  \
        provgate verify 127.0.0.1:5000/molecule-ai/app@sha256:… --insecure-registry 127.0.0.1:5000\n  \
        provgate verify --inspect docs/examples/verified.json --replay docs/examples/verified.record.json\n  \
        docker inspect app:local | provgate verify --inspect - --digest sha256:…\n  \
        provgate verify --inspect img.json --pin-digest sha256:… --pin-source-sha <sha> --format github\n  \
        provgate verify \"$IMAGE:staging-$SHA\" --pin-source-sha \"$SHA\" --record decision.json"
    )]
    Verify(Box<VerifyArgs>),
    /// Judge every pinned image in log-only mode: JSON lines, summary, report.
    Audit(Box<crate::commands::audit::AuditArgs>),
    /// Serve verdicts over HTTP for the control plane (POST /v1/verify).
    Serve(Box<crate::commands::serve::ServeArgs>),
    /// Decide recorded decisions again, offline, and report any that differ.
    Replay(Box<crate::commands::replay::ReplayArgs>),
    /// Inspect or build policy artifacts.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Policy artifact to run [default: the one built into this binary].
    #[arg(long, value_name = "PATH")]
    pub policy: Option<PathBuf>,

    /// Refuse to run any artifact whose sha256 is not this.
    #[arg(long, value_name = "sha256:…")]
    pub policy_digest: Option<String>,
}

/// How images are fetched and commits looked up: the same flags, defaults
/// and checks for `verify`, `audit` and `serve`.
#[derive(Debug, Args)]
pub struct NetworkArgs {
    /// Platform whose labels are judged in a multi-platform image.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", default_value = "linux/amd64")]
    pub platform: String,

    /// Allow plain HTTP to this registry (HOST:PORT); repeatable. HTTPS otherwise.
    #[arg(long, value_name = "HOST:PORT")]
    pub insecure_registry: Vec<String>,

    /// Total time allowed for fetching one image from its registry.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub registry_timeout: f64,

    /// Total time allowed for one Gitea look-up.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub gitea_timeout: f64,

    /// Gitea look-ups in flight at once; the rest wait their turn, holding
    /// no thread.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_GITEA_CONCURRENCY,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub gitea_concurrency: u32,

    /// Registry credentials file (docker's config.json or containers'
    /// auth.json format) [default: $REGISTRY_AUTH_FILE, else
    /// $DOCKER_CONFIG/config.json, else ~/.docker/config.json].
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
}

/// Enough to keep a Gitea busy without queueing a CI run or an audit
/// behind it; a server with many distinct commits in flight may want more.
pub const DEFAULT_GITEA_CONCURRENCY: u32 = 64;

impl NetworkArgs {
    pub fn registry(&self) -> Result<RegistryOptions, Failure> {
        Ok(RegistryOptions {
            auth: AuthSources::from_env(self.authfile.clone()),
            platform: self.platform.clone(),
            insecure: self.insecure_registry.clone(),
            timeout: seconds(self.registry_timeout, "--registry-timeout")?,
        })
    }

    /// Where this run's answers come from when nothing is replayed: Gitea,
    /// with the token from `GITEA_TOKEN`.
    pub fn gitea(&self) -> Result<crate::lookup::Source, Failure> {
        Ok(crate::lookup::Source::Gitea {
            token: crate::lookup::gitea::Token::from_env(),
            timeout: seconds(self.gitea_timeout, "--gitea-timeout")?,
            concurrency: self.gitea_concurrency as usize,
        })
    }
}

/// A flag's value in seconds: positive and finite, or a usage error naming the flag.
pub fn seconds(value: f64, flag: &str) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| Failure::usage(anyhow!("{flag} must be a positive number of seconds")))
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("pin").multiple(true)))]
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

    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,

    /// The digest the caller expects (a control-plane pin's); enables
    /// pin.consistent. May be given alone.
    #[arg(long, value_name = "sha256:…", group = "pin")]
    pub pin_digest: Option<String>,

    /// The commit the caller expects (a pin's source_sha, or the SHA a CI
    /// job built); enables pin.consistent. May be given alone.
    #[arg(long, value_name = "SHA", group = "pin")]
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
