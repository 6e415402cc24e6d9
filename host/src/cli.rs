//! The command line (SPEC §5).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, Parser, Subcommand};

use crate::exit::Failure;
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
        provgate verify --inspect docs/examples/verified.json --replay docs/examples/lookups.replay.json\n  \
        docker inspect app:local | provgate verify --inspect - --digest sha256:…\n  \
        provgate verify --inspect img.json --pin-digest sha256:… --pin-source-sha <sha> --format github"
    )]
    Verify(Box<VerifyArgs>),
    /// Judge every pinned image in log-only mode: JSON lines, summary, report.
    Audit(Box<crate::commands::audit::AuditArgs>),
    /// Serve verdicts over HTTP for the control plane (POST /v1/verify).
    Serve(Box<crate::commands::serve::ServeArgs>),
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
}

impl NetworkArgs {
    pub fn registry(&self) -> Result<RegistryOptions, Failure> {
        Ok(RegistryOptions {
            platform: self.platform.clone(),
            insecure: self.insecure_registry.clone(),
            timeout: seconds(self.registry_timeout, "--registry-timeout")?,
        })
    }

    pub fn gitea_timeout(&self) -> Result<Duration, Failure> {
        seconds(self.gitea_timeout, "--gitea-timeout")
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
pub struct VerifyArgs {
    /// Image reference: registry/repo:tag, registry/repo@sha256:…, or both.
    #[arg(
        value_name = "IMAGE_REF",
        required_unless_present = "inspect",
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

    /// The control-plane pin's digest; enables pin.consistent.
    #[arg(long, value_name = "sha256:…")]
    pub pin_digest: Option<String>,

    /// The control-plane pin's source_sha.
    #[arg(long, value_name = "SHA", requires = "pin_digest")]
    pub pin_source_sha: Option<String>,

    /// The control-plane pin's runtime (reported only).
    #[arg(long, value_name = "RUNTIME", requires = "pin_digest")]
    pub pin_runtime: Option<String>,

    #[command(flatten)]
    pub policy: PolicyArgs,

    #[command(flatten)]
    pub network: NetworkArgs,

    /// Write the clock and every Gitea answer this run used to FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "replay")]
    pub record: Option<PathBuf>,

    /// Answer Gitea look-ups (and the clock) from a recording; no network.
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
