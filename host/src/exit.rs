//! How a run ends (SPEC §5): the exit codes, and the one error class that
//! belongs to no module of its own, the caller's mistake. Only `main`
//! chooses a code, from the typed error it finds in an error's chain.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Allowed (or any successful command).
    Allowed = 0,
    /// Denied in enforce mode.
    Denied = 1,
    /// Bad usage or bad input: unreadable file, malformed JSON, unknown format.
    Usage = 2,
    /// The policy artifact: digest mismatch, load failure, trap or limit hit.
    Policy = 3,
    /// The subject could not be fetched from its registry.
    Fetch = 4,
    /// provgate itself could not run: the async runtime, writing the output.
    Internal = 70,
    /// Stopped by SIGINT (128 + 2).
    Interrupted = 130,
    /// Stopped by SIGTERM (128 + 15).
    Terminated = 143,
}

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
