//! The caller's mistake, the one error class that belongs to no module of
//! its own: `main` reads it as exit 2 wherever it sits in an error's chain.

use std::fmt;

/// The caller's mistake: a bad flag value, an unreadable or malformed input
/// file, an output file that cannot be created or written. Its message (and
/// its chain) are those of the error it wraps.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct UsageError(#[from] anyhow::Error);

impl UsageError {
    pub fn msg(message: impl fmt::Display + fmt::Debug + Send + Sync + 'static) -> UsageError {
        UsageError(anyhow::Error::msg(message))
    }
}
