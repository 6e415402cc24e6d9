//! The command line (docs/reference.md §7): the top-level flags and one subcommand per
//! command, each with the arguments its command defines.

use clap::{Parser, Subcommand};

use crate::commands::audit::AuditArgs;
use crate::commands::policy::PolicyCommand;
use crate::commands::promote::PromoteArgs;
use crate::commands::replay::ReplayArgs;
use crate::commands::serve::ServeArgs;
use crate::commands::ship::{CompletionsArgs, ManArgs};
use crate::commands::verify::VerifyArgs;

#[derive(Debug, Parser)]
#[command(
    name = "provgate",
    version = crate::policy::artifact::version_line(),
    about = "Verify that a container image carries trustworthy build provenance",
    long_about = "Verify that a container image carries trustworthy build provenance.\n\n\
        One sandboxed WebAssembly policy decides; every caller (control plane, CI gate, \
        provisioner, audit) runs the same artifact and reports its sha256 in each verdict.",
    after_help = "Exit codes: 0 allowed, 1 denied (enforce), 2 bad usage or input, \
        3 policy artifact problem, 4 image could not be fetched, \
        5 (promote only) promoted but the pin was not written.\n\n\
        Examples:\n  \
        provgate verify --inspect image.json --format json\n  \
        skopeo inspect docker://reg/app:tag | \\\n    \
        provgate verify --inspect - --mode log-only\n  \
        provgate verify reg/app:tag --record decision.json && \\\n    \
        provgate replay decision.json\n  \
        provgate promote reg/app:staging-<sha> --to latest --format github\n  \
        provgate policy inspect\n  \
        provgate completions bash > /etc/bash_completion.d/provgate"
)]
pub struct Cli {
    /// Log what provgate does to stderr (-v info, -vv debug; `serve` logs at
    /// info by default). RUST_LOG also works.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// How log lines on stderr are written: text, or json (one JSON object
    /// per line, for a log pipeline). Results on stdout are not affected.
    #[arg(long, global = true, value_enum, value_name = "FORMAT", default_value = "text")]
    pub log_format: crate::logging::LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Judge one image: from a registry, or from `--inspect` JSON.
    Verify(Box<VerifyArgs>),
    /// Judge one image in a registry and, only when it is allowed, write the
    /// same manifest under another tag (and the control-plane pin).
    Promote(Box<PromoteArgs>),
    /// Judge every pinned image in log-only mode: JSON lines, summary, report.
    Audit(Box<AuditArgs>),
    /// Serve verdicts over HTTP for the control plane (POST /v1/verify).
    Serve(Box<ServeArgs>),
    /// Decide recorded decisions again, offline, and report any that differ.
    Replay(Box<ReplayArgs>),
    /// Inspect or build policy artifacts.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Print the man page, or write one per command into a directory.
    Man(ManArgs),
}

impl Command {
    /// The network flags of a command that talks to servers.
    pub fn network(&self) -> Option<&crate::commands::args::NetworkArgs> {
        match self {
            Command::Verify(args) => Some(&args.network),
            Command::Promote(args) => Some(&args.network),
            Command::Audit(args) => Some(&args.network),
            Command::Serve(args) => Some(&args.network),
            Command::Replay(_) => None,
            Command::Policy(cmd) => cmd.network(),
            Command::Completions(_) | Command::Man(_) => None,
        }
    }
}
