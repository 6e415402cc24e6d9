//! What provgate's host and its policy component must agree on, in one
//! crate both compile: the label keys the rules read, the rule ids and
//! events a verdict names, the settings slot's layout, and how an
//! untrusted value is quoted in a message. Neither side copies these, so
//! none can drift.

pub mod labels;
pub mod slot;
pub mod text;

/// The stable rule ids of the verdict (docs/reference.md), in verdict order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleId {
    LabelsPresent,
    RevisionFormat,
    DigestFormat,
    CreatedFormat,
    RunIdFormat,
    SourceTrusted,
    RevisionResolves,
    PinConsistent,
    TagConsistent,
}

impl RuleId {
    /// Every rule, in verdict order.
    pub const ALL: [RuleId; 9] = [
        RuleId::LabelsPresent,
        RuleId::RevisionFormat,
        RuleId::DigestFormat,
        RuleId::CreatedFormat,
        RuleId::RunIdFormat,
        RuleId::SourceTrusted,
        RuleId::RevisionResolves,
        RuleId::PinConsistent,
        RuleId::TagConsistent,
    ];

    /// The id as the verdict JSON spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::LabelsPresent => "labels.present",
            RuleId::RevisionFormat => "revision.format",
            RuleId::DigestFormat => "digest.format",
            RuleId::CreatedFormat => "created.format",
            RuleId::RunIdFormat => "run_id.format",
            RuleId::SourceTrusted => "source.trusted",
            RuleId::RevisionResolves => "revision.resolves",
            RuleId::PinConsistent => "pin.consistent",
            RuleId::TagConsistent => "tag.consistent",
        }
    }
}

/// The events of the decision, in the order the first that applies is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    Unlabeled,
    Malformed,
    UntrustedSource,
    PinMismatch,
    Unresolved,
    Unavailable,
    Reachable,
}

impl Event {
    pub const ALL: [Event; 7] = [
        Event::Unlabeled,
        Event::Malformed,
        Event::UntrustedSource,
        Event::PinMismatch,
        Event::Unresolved,
        Event::Unavailable,
        Event::Reachable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Unlabeled => "redeploy.verify.unlabeled",
            Event::Malformed => "redeploy.verify.malformed",
            Event::UntrustedSource => "redeploy.verify.untrusted_source",
            Event::PinMismatch => "redeploy.verify.pin_mismatch",
            Event::Unresolved => "redeploy.verify.unresolved",
            Event::Unavailable => "redeploy.verify.unavailable",
            Event::Reachable => "redeploy.verify.reachable",
        }
    }
}
