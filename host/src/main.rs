//! Parse the command line, run one command, and choose the exit code: the
//! only place a code is chosen (docs/reference.md §5).

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use provgate::cli::{Cli, Command};
use provgate::commands;
use provgate::exit::{Exit, exit_code, outcome_code};

/// The static (musl) build only: musl's allocator is slow under serve's
/// many small allocations across threads (docs/container.md).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { Exit::Usage as u8 } else { 0 });
        }
    };
    init_logging(&cli);

    // Whom HTTPS trusts is settled before any client is built.
    let trusted = match cli.command.network() {
        Some(network) => provgate::tls::add_ca_files(&network.ca_files).map_err(anyhow::Error::from),
        None => Ok(()),
    };
    let result = trusted.and_then(|()| match &cli.command {
        Command::Verify(args) => commands::verify::run(args),
        Command::Promote(args) => commands::promote::run(args),
        Command::Audit(args) => commands::audit::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Replay(args) => commands::replay::run(args),
        Command::Policy(cmd) => commands::policy::run(cmd),
        Command::Completions(args) => commands::ship::completions(args, Cli::command()),
        Command::Man(args) => commands::ship::man(args, Cli::command()),
    });
    let exit = match result {
        Ok(outcome) => outcome_code(outcome),
        Err(error) => {
            let message = format!("{error:#}");
            provgate::logging::say(&format!("provgate: error: {message}"));
            let exit = exit_code(&error);
            annotate(&cli.command, exit, &message);
            exit
        }
    };
    ExitCode::from(exit as u8)
}

/// `verify` or `promote --format github` that ends without a verdict (or,
/// for `promote`, without its pin): where the verdict would have been, a
/// failed step names its reason in the run's annotations too (stderr still
/// gets the error line).
fn annotate(command: &Command, exit: Exit, message: &str) {
    let format = match command {
        Command::Verify(args) => args.format,
        Command::Promote(args) => args.format,
        _ => return,
    };
    if format != provgate::output::Format::Github {
        return;
    }
    let what = match exit {
        Exit::PinFailed => "pin error",
        Exit::Usage => "usage error",
        Exit::Policy => "policy error",
        Exit::Fetch => "fetch error",
        _ => "error",
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", provgate::output::github_error(what, message));
    let _ = stdout.flush();
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
    provgate::logging::init(default, cli.log_format);
}
