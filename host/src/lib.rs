//! provgate's host: gathers the facts about an image, hands them to the one
//! policy component, answers the questions it asks, and reports the verdict
//! the component returns.
//!
//! The path of one verdict: `gather` (offline JSON in `input::inspect`, or
//! `input::registry`) → `subject` → `judge` (a fresh instance from
//! `policy::sandbox` decides; its questions are answered by `lookup`) →
//! `verdict` → `output`, and `record` when the decision is kept.

pub mod cli;
pub mod commands;
pub mod digest;
pub mod exit;
pub mod gather;
pub mod http;
pub mod input;
pub mod judge;
pub mod latency;
pub mod logging;
pub mod lookup;
pub mod output;
pub mod policy;
pub mod record;
pub mod retry;
pub mod secrets;
pub mod subject;
pub mod text;
pub mod tls;
pub mod usage;
pub mod verdict;
