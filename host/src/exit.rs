//! Exit codes (SPEC §5), and the error type that carries one.

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
}

/// An error on its way to `main`, with the exit code it ends in.
pub struct Failure {
    pub exit: Exit,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn usage(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            exit: Exit::Usage,
            error: error.into(),
        }
    }

    pub fn policy(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            exit: Exit::Policy,
            error: error.into(),
        }
    }

    pub fn fetch(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            exit: Exit::Fetch,
            error: error.into(),
        }
    }
}

impl From<crate::policy::PolicyError> for Failure {
    fn from(e: crate::policy::PolicyError) -> Failure {
        Failure::policy(e)
    }
}

/// A subject that could not be fetched: the caller's input (a bad
/// reference, unusable credentials) is exit 2, the registry's failure 4.
impl From<crate::input::registry::FetchError> for Failure {
    fn from(e: crate::input::registry::FetchError) -> Failure {
        if e.is_input_error() {
            Failure::usage(e)
        } else {
            Failure::fetch(e)
        }
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit {}: {:#}", self.exit as i32, self.error)
    }
}
