//! The subject of a verdict (SPEC §2), as the host gathers it: from offline
//! JSON (`input::inspect`) or, later, a registry. The host only collects
//! facts; it never judges them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The image reference as given.
    pub reference: String,
    /// The manifest digest a pin points to (the index digest for an index).
    pub digest: String,
    /// The image config's `config.Labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<Pin>,
}

/// A control-plane pin row: `{runtime, digest, source_sha}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sha: Option<String>,
}
