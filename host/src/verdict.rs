//! The verdict JSON of docs/reference.md §4. The decision fields come from the guest
//! unchanged; the host adds the subject and the policy it loaded.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Enforce,
    LogOnly,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::LogOnly => "log-only",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Verified,
    Rejected,
    Indeterminate,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Verified => "verified",
            Status::Rejected => "rejected",
            Status::Indeterminate => "indeterminate",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Indeterminate,
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Indeterminate => "indeterminate",
            Outcome::Skipped => "skipped",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Borrowed from the host's table of rule ids for a fresh verdict;
    /// owned when read back from a record.
    pub rule: Cow<'static, str>,
    pub outcome: Outcome,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictSubject {
    pub reference: String,
    pub digest: String,
    /// For a multi-platform image: the platform whose labels were judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// That platform's own manifest digest, when the registry told us.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_digest: Option<String>,
}

impl VerdictSubject {
    pub fn of(subject: &crate::subject::Subject) -> VerdictSubject {
        VerdictSubject {
            reference: subject.reference.clone(),
            digest: subject.digest.clone(),
            platform: subject.platform.as_ref().map(|p| p.name.clone()),
            platform_digest: subject.platform.as_ref().and_then(|p| p.digest.clone()),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    pub name: String,
    pub version: String,
    pub digest: String,
}

/// The decision, exactly as the guest returned it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decided {
    pub status: Status,
    pub allowed: bool,
    pub event: Cow<'static, str>,
    pub findings: Vec<Finding>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub subject: VerdictSubject,
    /// Shared by every verdict of one loaded policy: three strings fewer to
    /// copy and free per verdict.
    pub policy: Arc<PolicyRef>,
    pub mode: Mode,
    #[serde(flatten)]
    pub decided: Decided,
}
