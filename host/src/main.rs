//! Parse the command line, run one command, and choose the exit code: the
//! only place a code is chosen (SPEC §5).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use provgate::cli::{Cli, Command};
use provgate::commands::{self, Outcome, Signal};
use provgate::exit::{Exit, UsageError};
use provgate::input::registry::{Fault, FetchError};
use provgate::policy::PolicyError;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { Exit::Usage as u8 } else { 0 });
        }
    };
    init_logging(&cli);

    let result = match &cli.command {
        Command::Verify(args) => commands::verify::run(args),
        Command::Audit(args) => commands::audit::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Replay(args) => commands::replay::run(args),
        Command::Policy(cmd) => commands::policy::run(cmd),
    };
    let exit = match result {
        Ok(outcome) => outcome_code(outcome),
        Err(error) => {
            eprintln!("provgate: error: {error:#}");
            exit_code(&error)
        }
    };
    ExitCode::from(exit as u8)
}

fn init_logging(cli: &Cli) {
    // A server's request lines are its output: `serve` logs at info unless
    // told otherwise; one-shot commands only warn.
    let quiet = if matches!(cli.command, Command::Serve(_)) { 1 } else { 0 };
    let default = match cli.verbose.max(quiet) {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Escape codes only for a person at a terminal, never in log files.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn outcome_code(outcome: Outcome) -> Exit {
    match outcome {
        Outcome::Allowed => Exit::Allowed,
        Outcome::Denied => Exit::Denied,
        Outcome::Interrupted(Signal::Interrupt) => Exit::Interrupted,
        Outcome::Interrupted(Signal::Terminate) => Exit::Terminated,
    }
}

/// The first typed error along the chain decides, the outermost first: a
/// command that calls a registry failure the caller's (`UsageError`) is
/// believed. An error of no known type is provgate's own.
fn exit_code(error: &anyhow::Error) -> Exit {
    for cause in error.chain() {
        if cause.is::<UsageError>() {
            return Exit::Usage;
        }
        if cause.is::<PolicyError>() {
            return Exit::Policy;
        }
        if let Some(e) = cause.downcast_ref::<FetchError>() {
            return match e.fault() {
                Fault::Caller | Fault::Configuration => Exit::Usage,
                Fault::Registry => Exit::Fetch,
            };
        }
    }
    Exit::Internal
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::{Context, anyhow};

    fn fetch_error(reference: bool) -> FetchError {
        if reference {
            FetchError::Reference {
                reference: "Bad/Ref".into(),
                reason: "upper case".into(),
            }
        } else {
            FetchError::Unreachable {
                registry: "r.example".into(),
                reason: "connection refused".into(),
            }
        }
    }

    #[test]
    fn each_error_type_has_its_exit_code_wherever_it_is_in_the_chain() {
        let usage: anyhow::Error = UsageError::msg("bad flag").into();
        assert_eq!(exit_code(&usage), Exit::Usage);
        assert_eq!(exit_code(&usage.context("while starting")), Exit::Usage);

        let policy: anyhow::Error = PolicyError::Limit("too many questions".into()).into();
        assert_eq!(exit_code(&policy.context("record 3")), Exit::Policy);

        assert_eq!(exit_code(&fetch_error(true).into()), Exit::Usage);
        assert_eq!(exit_code(&anyhow::Error::from(fetch_error(false))), Exit::Fetch);
        let wrapped = Err::<(), _>(fetch_error(false))
            .context("fetching the subject")
            .unwrap_err();
        assert_eq!(exit_code(&wrapped), Exit::Fetch);
    }

    #[test]
    fn the_outermost_typed_error_decides() {
        let inner: anyhow::Error = fetch_error(false).into();
        let usage: anyhow::Error = UsageError::from(inner.context("--pins")).into();
        assert_eq!(exit_code(&usage), Exit::Usage);
    }

    #[test]
    fn an_error_of_no_known_type_is_internal_not_bad_usage() {
        assert_eq!(exit_code(&anyhow!("cannot start the async runtime")), Exit::Internal);
        let io = std::io::Error::other("disk full");
        assert_eq!(
            exit_code(&anyhow::Error::new(io).context("cannot write the verdict")),
            Exit::Internal
        );
        assert_eq!(Exit::Internal as u8, 70);
    }

    #[test]
    fn a_usage_error_prints_the_chain_it_wraps_once() {
        let inner = anyhow!("no such file").context("cannot read replay file x.json");
        let usage: anyhow::Error = UsageError::from(inner).into();
        assert_eq!(format!("{usage:#}"), "cannot read replay file x.json: no such file");
    }

    #[test]
    fn outcomes_keep_their_codes() {
        assert_eq!(outcome_code(Outcome::Allowed) as u8, 0);
        assert_eq!(outcome_code(Outcome::Denied) as u8, 1);
        assert_eq!(outcome_code(Outcome::Interrupted(Signal::Interrupt)) as u8, 130);
        assert_eq!(outcome_code(Outcome::Interrupted(Signal::Terminate)) as u8, 143);
    }
}
