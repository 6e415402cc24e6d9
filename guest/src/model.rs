//! The policy's own types. The component glue converts the WIT types into
//! these, so the rules can also be compiled natively (differential tests,
//! the native-limit bench) without wit-bindgen.

/// Wall-clock time handed in by the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instant {
    pub seconds: i64,
    pub nanoseconds: u32,
}

impl Instant {
    pub(crate) fn as_nanos(self) -> i128 {
        i128::from(self.seconds) * 1_000_000_000 + i128::from(self.nanoseconds)
    }
}

/// A control-plane pin row, or what a caller expects: at least one of
/// `digest` and `source_sha` is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    pub runtime: Option<String>,
    pub digest: Option<String>,
    pub source_sha: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub reference: String,
    pub digest: String,
    pub labels: Vec<(String, String)>,
    pub pin: Option<Pin>,
    pub now: Instant,
}

impl Subject {
    /// A label's value when it exists and is not blank: a blank label counts
    /// as missing everywhere, so no rule can pass on white space.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }
}

/// The four provenance labels, looked up once per verdict (a label may be
/// a megabyte of white space: don't scan it once per rule).
#[derive(Clone, Copy, Debug)]
pub struct Provenance<'a> {
    pub source: Option<&'a str>,
    pub revision: Option<&'a str>,
    pub created: Option<&'a str>,
    pub run_id: Option<&'a str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    LogOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Indeterminate,
    Skipped,
}

pub use provgate_contract::{Event, RuleId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule: RuleId,
    pub outcome: Outcome,
    pub message: String,
}

impl Finding {
    pub(crate) fn new(rule: RuleId, outcome: Outcome, message: impl Into<String>) -> Self {
        Finding {
            rule,
            outcome,
            message: message.into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Verified,
    Rejected,
    Indeterminate,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub allowed: bool,
    pub event: Event,
    pub findings: Vec<Finding>,
}

/// "Does commit `sha` exist in `owner/repo`?": the one question the
/// guest asks the outside world.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Question {
    pub owner: String,
    pub repo: String,
    pub sha: String,
}

/// What the forge said about a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitAnswer {
    Found,
    NotFound(String),
    Unavailable(String),
    /// The repository was renamed or transferred to `owner/repo` (Gitea's
    /// same-host redirect). Only the guest decides whether to ask there.
    Moved {
        owner: String,
        repo: String,
    },
}

/// Where an evaluation stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Verdict(Verdict),
    /// Answer these, in this order.
    Ask(Vec<Question>),
}
