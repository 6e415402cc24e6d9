//! Where subjects come from: offline JSON (`inspect`) or a registry.

pub mod credentials;
pub mod inspect;
mod platform;
pub mod registry;

use std::io::Read;

use anyhow::{Context, bail};

/// JSON inputs are small; a cap keeps a wrong file from eating memory and
/// keeps every subject well inside the guest's 64 MiB memory limit.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Reads FILE, or stdin for `-`, up to [`MAX_INPUT_BYTES`].
pub fn read_file_or_stdin(path: &str) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let what = if path == "-" {
        "standard input".to_string()
    } else {
        path.to_string()
    };
    let reader: Box<dyn Read> = if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("cannot open {what}"))?)
    };
    reader
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what}"))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        bail!("{what} is larger than {} MiB", MAX_INPUT_BYTES >> 20);
    }
    Ok(bytes)
}
