//! A real OCI registry for tests (being written).
