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
    read_at_most(path, MAX_INPUT_BYTES)
}

/// Reads FILE, or stdin for `-`, refusing it once it passes `limit` bytes:
/// a device like `/dev/zero` or an endless pipe ends in an error naming
/// it, not in all of the machine's memory.
pub fn read_at_most(path: &str, limit: u64) -> anyhow::Result<Vec<u8>> {
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
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what}"))?;
    if bytes.len() as u64 > limit {
        if limit >= 1 << 20 {
            bail!("{what} is larger than {} MiB", limit >> 20);
        }
        bail!("{what} is larger than {} KiB", limit >> 10);
    }
    Ok(bytes)
}
