//! `provgate serve` (being written).

use clap::Args;

use crate::exit::{Exit, Failure};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
}

pub fn run(_args: &ServeArgs) -> Result<Exit, Failure> {
    Err(Failure::usage(anyhow::anyhow!(
        "provgate serve is not available in this build yet"
    )))
}
