//! The subject of a verdict (docs/reference.md §2), as the host gathers it: from offline
//! JSON (`input::inspect`) or a registry (`input::registry`), platform
//! included. The host only collects
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
    /// For a multi-platform image: the platform whose labels these are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Subject {
    /// A subject as an input shape reads it: no pin (the caller adds its
    /// own) and no platform (an index reader names one).
    pub fn new(reference: String, digest: String, labels: BTreeMap<String, String>) -> Subject {
        Subject {
            reference,
            digest,
            labels,
            pin: None,
            platform: None,
        }
    }
}

/// A control-plane pin row `{runtime, digest, source_sha}`, or what a
/// caller expects: `digest` and `source_sha` may each be absent, not both.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sha: Option<String>,
}

impl Pin {
    /// A pin that names something to compare, or why it doesn't.
    pub fn new(
        runtime: Option<String>,
        digest: Option<String>,
        source_sha: Option<String>,
    ) -> Result<Pin, &'static str> {
        if digest.is_none() && source_sha.is_none() {
            return Err("a pin needs a digest, a source_sha or both");
        }
        Ok(Pin {
            runtime,
            digest,
            source_sha,
        })
    }
}

/// The platform of an index whose image was judged, as `os/arch[/variant]`,
/// and that image's own manifest digest when a registry told us.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}
