//! Parse the command line, run one command, and choose the exit code: the
//! only place a code is chosen (docs/reference.md §5).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use provgate::cli::{Cli, Command};
use provgate::commands;
use provgate::exit::{Exit, exit_code, outcome_code};

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
