//! provgate's integration tests, in one binary: each test binary links
//! wasmtime, cranelift, reqwest and axum, so one binary instead of one per
//! file saves most of the suite's build. What they share lives in
//! `testkit/`. Run one module with a filter: `cargo test --test integration
//! -- differential::`. The modules, from the rules outwards (blank lines
//! keep rustfmt from sorting them):

/// Two independent builds of the guest give the same artifact. First in
/// the list and first in name order: libtest starts tests by name, and this
/// one (a whole second build) runs while the others share the other core.
mod artifact;

/// Every rule and the decision, judged by the shipped component.
mod rules;

/// The shipped component and the natively compiled guest never disagree,
/// on generated near-miss subjects (proptest).
mod differential;

/// The sandbox's limits against hostile components built from WAT.
mod sandbox;

/// The Gitea client against the stand-in's real API paths and failure modes.
mod gitea;

/// The `provgate` binary on every input shape, format and exit code.
mod cli;

/// `verify IMAGE_REF` against a real `docker-registry`.
mod registry;

/// The policy artifact in a real registry: push, pull, digest, `--policy
/// oci://REF` through the artifact cache, cosign signatures.
mod policy_oci;

/// `verify` through a lying proxy in front of the real registry.
mod registry_lies;

/// `promote` end to end: judged once by digest, the same bytes under the
/// new tag, the control-plane pin.
mod promote;

/// `audit` end to end: registry, Gitea stand-in, control-plane stand-in.
mod audit;

/// `serve` as a process: signals, start-up, reloads, concurrency.
mod serve;

/// `serve`'s connections: time-outs, the connection cap, descriptors, 413.
mod serve_hygiene;

/// `serve` against registries whose token realms and redirects point at
/// internal hosts (SSRF): refused, never contacted, unless allowed.
mod serve_ssrf;

/// The OpenAPI document and the JSON Schemas against real answers,
/// verdicts and records.
mod schemas;

/// Hostile values cannot forge a line, a workflow command, an escape or a
/// log entry, nor show any part of a secret they echo.
mod injection;

/// Gitea look-ups retried only where it is safe and may help.
mod retries;

/// HTTPS for real: the TLS registry, Gitea and control plane, `--ca-file`.
mod tls;

/// The fuzzers' seeds and findings, replayed.
mod fuzz_regressions;

/// The source tree itself: modules import one way.
mod layers;
