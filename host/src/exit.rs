//! How a run ends (docs/reference.md §5): the exit codes, and the one
//! conversion from a command's outcome or error to its code. Only `main`
//! calls it; the commands below return typed errors and know no codes.

use crate::commands::promote::PinFailed;
use crate::commands::{Outcome, Signal};
use crate::input::registry::{Fault, FetchError};
use crate::policy::PolicyError;
use crate::usage::UsageError;

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
    /// The subject could not be fetched from its registry (for `promote`,
    /// or the tag not written).
    Fetch = 4,
    /// `promote` only: promoted, but the pin was not written.
    PinFailed = 5,
    /// provgate itself could not run: the async runtime, writing the output.
    Internal = 70,
    /// Stopped by SIGINT (128 + 2).
    Interrupted = 130,
    /// Stopped by SIGTERM (128 + 15).
    Terminated = 143,
}

/// The code of a command that ran to its end.
pub fn outcome_code(outcome: Outcome) -> Exit {
    match outcome {
        Outcome::Allowed => Exit::Allowed,
        Outcome::Denied => Exit::Denied,
        Outcome::Interrupted(Signal::Interrupt) => Exit::Interrupted,
        Outcome::Interrupted(Signal::Terminate) => Exit::Terminated,
    }
}

/// The first typed error along the chain decides, the outermost first: a
/// command that calls a registry failure the caller's (`UsageError`) is
/// believed. An error of no known type is provgate's own.
pub fn exit_code(error: &anyhow::Error) -> Exit {
    for cause in error.chain() {
        if cause.is::<PinFailed>() {
            return Exit::PinFailed;
        }
        if cause.is::<UsageError>() {
            return Exit::Usage;
        }
        if cause.is::<PolicyError>() {
            return Exit::Policy;
        }
        if let Some(e) = cause.downcast_ref::<FetchError>() {
            return match e.fault() {
                Fault::Caller | Fault::Configuration => Exit::Usage,
                Fault::Registry => Exit::Fetch,
            };
        }
    }
    Exit::Internal
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::{Context, anyhow};

    fn fetch_error(reference: bool) -> FetchError {
        if reference {
            FetchError::Reference {
                reference: "Bad/Ref".into(),
                reason: "upper case".into(),
            }
        } else {
            FetchError::Unreachable {
                registry: "r.example".into(),
                reason: "connection refused".into(),
            }
        }
    }

    #[test]
    fn each_error_type_has_its_exit_code_wherever_it_is_in_the_chain() {
        let usage: anyhow::Error = UsageError::msg("bad flag").into();
        assert_eq!(exit_code(&usage), Exit::Usage);
        assert_eq!(exit_code(&usage.context("while starting")), Exit::Usage);

        let policy: anyhow::Error = PolicyError::Limit {
            kind: crate::policy::LimitKind::Questions,
            message: "too many questions".into(),
        }
        .into();
        assert_eq!(exit_code(&policy.context("record 3")), Exit::Policy);

        assert_eq!(exit_code(&fetch_error(true).into()), Exit::Usage);
        assert_eq!(exit_code(&anyhow::Error::from(fetch_error(false))), Exit::Fetch);
        let wrapped = Err::<(), _>(fetch_error(false))
            .context("fetching the subject")
            .unwrap_err();
        assert_eq!(exit_code(&wrapped), Exit::Fetch);

        let pin: anyhow::Error = PinFailed("the control plane answered HTTP 500".into()).into();
        assert_eq!(exit_code(&pin.context("promote")) as u8, 5);
    }

    #[test]
    fn the_outermost_typed_error_decides() {
        let inner: anyhow::Error = fetch_error(false).into();
        let usage: anyhow::Error = UsageError::from(inner.context("--pins")).into();
        assert_eq!(exit_code(&usage), Exit::Usage);
    }

    #[test]
    fn an_error_of_no_known_type_is_internal_not_bad_usage() {
        assert_eq!(exit_code(&anyhow!("cannot start the async runtime")), Exit::Internal);
        let io = std::io::Error::other("disk full");
        assert_eq!(
            exit_code(&anyhow::Error::new(io).context("cannot write the verdict")),
            Exit::Internal
        );
        assert_eq!(Exit::Internal as u8, 70);
    }

    #[test]
    fn a_usage_error_prints_the_chain_it_wraps_once() {
        let inner = anyhow!("no such file").context("cannot read replay file x.json");
        let usage: anyhow::Error = UsageError::from(inner).into();
        assert_eq!(format!("{usage:#}"), "cannot read replay file x.json: no such file");
    }

    #[test]
    fn outcomes_keep_their_codes() {
        assert_eq!(outcome_code(Outcome::Allowed) as u8, 0);
        assert_eq!(outcome_code(Outcome::Denied) as u8, 1);
        assert_eq!(outcome_code(Outcome::Interrupted(Signal::Interrupt)) as u8, 130);
        assert_eq!(outcome_code(Outcome::Interrupted(Signal::Terminate)) as u8, 143);
    }
}
