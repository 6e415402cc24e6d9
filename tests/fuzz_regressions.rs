//! Inputs the fuzzers found (or seeded), replayed on every test run.
