//! What the shapes' unit tests share: the files in tests/data/inspect and
//! the labels they carry.

use provgate_contract::labels;
use std::collections::BTreeMap;

use super::{InspectOptions, Inspected, parse};

/// A file of tests/data/inspect, built into the test binary.
macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/inspect/", $name)).as_slice()
    };
}
pub(super) use fixture;

pub(super) const REV_AMD64: &str = "36b68ae653f75d2ed731081e35541b6f6a0e7c0b";
pub(super) const REV_ARM64: &str = "5d9ee30983e84f6012f39a955c89feab135942df";
pub(super) const REV_LOCAL: &str = "d59ef4645ec16653e575fc13ebf5d364f53f841a";
const SOURCE: &str = "https://git.moleculesai.app/molecule-ai/app";

/// The labels every fixture's image carries, with its revision.
pub(super) fn labels(revision: &str) -> BTreeMap<String, String> {
    [
        (labels::SOURCE, SOURCE),
        (labels::REVISION, revision),
        (labels::CREATED, "2026-11-01T10:00:00Z"),
        (labels::RUN_ID, "4242"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub(super) fn ok(json: &[u8], opts: &InspectOptions<'_>) -> Inspected {
    parse(json, opts).unwrap_or_else(|e| panic!("expected a subject, got: {e}"))
}

pub(super) fn err(json: &[u8], opts: &InspectOptions<'_>) -> String {
    match parse(json, opts) {
        Ok(inspected) => panic!("expected an error, got {inspected:?}"),
        Err(e) => e.to_string(),
    }
}

pub(super) fn with_platform(platform: &str) -> InspectOptions<'_> {
    InspectOptions {
        platform,
        ..InspectOptions::default()
    }
}

pub(super) fn with_reference(reference: &str) -> InspectOptions<'_> {
    InspectOptions {
        reference: Some(reference),
        ..InspectOptions::default()
    }
}
