//! What installing provgate needs besides the binary: shell completions
//! (`provgate completions SHELL`) and man pages (`provgate man`), both
//! generated from the very parser that reads the command line, so they
//! cannot drift from it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Outcome;
use crate::usage::UsageError;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    provgate completions bash > /etc/bash_completion.d/provgate\n  \
    provgate completions zsh > \"${fpath[1]}/_provgate\"\n  \
    provgate completions fish > ~/.config/fish/completions/provgate.fish")]
pub struct CompletionsArgs {
    /// The shell to write a completion script for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    provgate man | man -l -\n  \
    provgate man --out /usr/local/share/man/man1")]
pub struct ManArgs {
    /// Write provgate.1 and one page per subcommand (provgate-verify.1, …)
    /// into DIR, created if missing, instead of printing provgate(1) to
    /// stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` on stdout. `command` is
/// the whole command line's parser (`Cli::command()`; this module is
/// below `cli`, which names its arguments, so it is handed in).
pub fn completions(args: &CompletionsArgs, mut command: clap::Command) -> anyhow::Result<Outcome> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "provgate", &mut script);
    to_stdout(&script)
}

/// Prints provgate(1) on stdout, or writes every page into `--out DIR`;
/// `command` as for [`completions`].
pub fn man(args: &ManArgs, command: clap::Command) -> anyhow::Result<Outcome> {
    let mut command = command.disable_help_subcommand(true);
    command.build();
    let Some(dir) = &args.out else {
        return to_stdout(&page(&command)?);
    };
    std::fs::create_dir_all(dir)
        .map_err(anyhow::Error::from)
        .and_then(|()| write_pages(&command, dir))
        .with_context(|| format!("cannot write the man pages into --out {}", dir.display()))
        .map_err(UsageError::from)?;
    Ok(Outcome::Allowed)
}

/// `command`'s page and, below it, one per subcommand (`provgate-policy-inspect.1`).
fn write_pages(command: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir)?;
    }
    let name = clap_mangen::Man::new(command.clone()).get_filename();
    std::fs::write(dir.join(name), page(command)?)?;
    Ok(())
}

/// One page in roff, its footer naming the version of every page alike
/// (the parser gives only the top-level command one). clap_mangen opens it with the string definitions its
/// text uses (`.ie \n(.g .ds Aq …`); the `.TH` line is put first, where
/// `man`, `mandb` and `whatis` look for it (the definitions still come
/// before any text that uses them).
fn page(command: &clap::Command) -> anyhow::Result<Vec<u8>> {
    let mut roff = Vec::new();
    clap_mangen::Man::new(command.clone())
        .source(concat!("provgate ", env!("CARGO_PKG_VERSION")))
        .render(&mut roff)
        .context("cannot render the man page")?;
    let text = String::from_utf8(roff).context("the man page is not UTF-8")?;
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    if let Some(at) = lines.iter().position(|line| line.starts_with(".TH ")) {
        let title = lines.remove(at);
        lines.insert(0, title);
    }
    Ok(lines.concat().into_bytes())
}

fn to_stdout(bytes: &[u8]) -> anyhow::Result<Outcome> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")?;
    Ok(Outcome::Allowed)
}
