//! provgate's host: gathers the facts about an image, hands them to the one
//! policy component, and reports the verdict the component returns.
//!
//! The path of one verdict: `input` (or a registry) → `subject` →
//! `policy::sandbox` (the guest decides, asking `lookup` about commits) →
//! `verdict` → `output`.

pub mod cli;
pub mod commands;
pub mod exit;
pub mod input;
pub mod lookup;
pub mod output;
pub mod policy;
pub mod subject;
pub mod tls;
pub mod verdict;
