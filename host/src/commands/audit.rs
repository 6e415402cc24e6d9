//! `provgate audit` (being written).

use clap::Args;

use crate::exit::{Exit, Failure};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Pins to judge: a JSON array or JSON lines file, `-`, or an http(s) URL.
    #[arg(long, value_name = "FILE|-|URL")]
    pub pins: String,
}

pub fn run(_args: &AuditArgs) -> Result<Exit, Failure> {
    Err(Failure::usage(anyhow::anyhow!(
        "provgate audit is not available in this build yet"
    )))
}
