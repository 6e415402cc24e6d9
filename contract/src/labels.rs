//! The OCI labels a build writes and the rules read.

/// The repository URL the image was built from.
pub const SOURCE: &str = "org.opencontainers.image.source";
/// The 40-hex commit SHA it was built at.
pub const REVISION: &str = "org.opencontainers.image.revision";
/// When it was built, RFC 3339.
pub const CREATED: &str = "org.opencontainers.image.created";
/// The CI workflow run that built it.
pub const RUN_ID: &str = "molecule.workflow.run_id";

/// Every provenance label, in the order the rules read them.
pub const ALL: [&str; 4] = [SOURCE, REVISION, CREATED, RUN_ID];
