//! The sandbox holds: the shipped component can reach nothing but the commit
//! look-up, and hostile components (built here from WAT) are stopped by the time
//! budget, the memory cap, the stack limit and the look-up cap, or refused at load,
//! without leaving the host unusable.

mod support;

use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use provgate::lookup::NoLookup;
use provgate::policy::{Artifact, Limits, Origin, Policy, PolicyError, slot};
use provgate::verdict::{Mode, Status, Verdict};
use support::wat_guest::{component_for, hostile, provgate_wit};
use support::{Scripted, good_subject, now};
use wasmtime::component::{Component, types::ComponentItem};

/// Small budgets: hostile guests should hit them quickly.
const SMALL: Limits = Limits {
    time_budget: Duration::from_millis(100),
    memory_bytes: 16 << 20,
    max_lookups: 4,
};

/// "Terminates" means well inside this; never a performance assertion.
const TERMINATES_WITHIN: Duration = Duration::from_secs(20);

const LOOKUP: &str = "provgate:policy/lookup@0.1.0";
const RULES: &str = "provgate:policy/rules@0.1.0";

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

// ---------------------------------------------------------------------------
// Hostile guests: a core module in WAT, wrapped into a component.
// ---------------------------------------------------------------------------

/// `evaluate` never finishes.
const ENDLESS_LOOP: &str = "(loop $forever (br $forever))";

/// `evaluate` grows memory a MiB (16 pages) at a time until it holds
/// 256 MiB (4096 pages), far past any cap used here, then returns a
/// verdict: it only gets that far if nothing capped it.
const MEMORY_BOMB: &str = r#"
    (block $done
      (loop $more
        (br_if $done (i32.ge_u (memory.size) (i32.const 4096)))
        (br_if $done (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
        (br $more)))"#;

/// `evaluate` recurses without end.
const DEEP_RECURSION: &str = "(drop (call $descend (i32.const 0)))";

/// `evaluate` asks about the same commit a thousand times, then returns a
/// verdict: it only gets that far if nothing capped it.
const LOOKUP_FLOOD: &str = r#"
    (local $asked i32)
    (loop $again
      (call $commit_exists (i32.const 16) (i32.const 11)   ;; owner
                           (i32.const 32) (i32.const 3)    ;; repo
                           (i32.const 48) (i32.const 40)   ;; sha
                           (i32.const 128))                ;; answer area
      (local.set $asked (i32.add (local.get $asked) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $asked) (i32.const 1000))))"#;

/// `evaluate` returns a verdict of a million findings (20 bytes each, all
/// zero: rule "", pass, message ""), laid out from 1 MiB on in memory it
/// grows to 21 MiB: a valid verdict as far as the ABI goes.
const MILLION_FINDINGS: &str = r#"
    (if (i32.eq (memory.grow (i32.const 330)) (i32.const -1)) (then unreachable))
    (i32.store (i32.const 272) (i32.const 1048576))   ;; findings pointer
    (i32.store (i32.const 276) (i32.const 1000000))   ;; findings length"#;

/// `evaluate` returns one finding whose message claims 100 MB, far past
/// the end of the guest's memory.
const HUGE_MESSAGE: &str = r#"
    (i32.store (i32.const 272) (i32.const 512))         ;; findings pointer
    (i32.store (i32.const 276) (i32.const 1))           ;; one finding
    (i32.store (i32.const 524) (i32.const 1048576))     ;; its message pointer
    (i32.store (i32.const 528) (i32.const 100000000))   ;; and length: 100 MB"#;

/// `evaluate` returns one finding with a 2 MiB message that really is in
/// its memory: within the memory cap, past the host's verdict text cap.
const LONG_MESSAGE: &str = r#"
    (if (i32.eq (memory.grow (i32.const 48)) (i32.const -1)) (then unreachable))
    (i32.store (i32.const 272) (i32.const 512))         ;; findings pointer
    (i32.store (i32.const 276) (i32.const 1))           ;; one finding
    (i32.store (i32.const 524) (i32.const 1048576))     ;; its message pointer
    (i32.store (i32.const 528) (i32.const 2097152))     ;; and length: 2 MiB of zero bytes"#;

fn artifact(bytes: Vec<u8>, name: &str) -> Artifact {
    Artifact::from_bytes(Cow::Owned(bytes), Origin::File(PathBuf::from(name)))
}

fn load(bytes: Vec<u8>, name: &str) -> Result<Policy, PolicyError> {
    Policy::load(artifact(bytes, name), SMALL, None)
}

fn load_hostile(evaluate: &str, name: &str) -> Arc<Policy> {
    load_hostile_with(evaluate, name, SMALL)
}

fn load_hostile_with(evaluate: &str, name: &str, limits: Limits) -> Arc<Policy> {
    let policy = Policy::load(artifact(hostile(evaluate, ""), name), limits, None)
        .unwrap_or_else(|e| panic!("{name} should load (its describe is benign): {e}"));
    Arc::new(policy)
}

/// Runs `f` on a thread of its own and fails the test when it has not
/// finished within [`TERMINATES_WITHIN`] (a runaway thread is left behind
/// until the test process exits), so a missing limit fails instead of hanging.
fn within_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(TERMINATES_WITHIN)
        .unwrap_or_else(|e| panic!("{what} did not finish within {TERMINATES_WITHIN:?}: {e}"))
}

/// Evaluates the good subject, under the deadline.
fn evaluate(policy: &Arc<Policy>, lookup: Arc<Scripted>) -> Result<Verdict, PolicyError> {
    let policy = policy.clone();
    within_deadline("evaluate", move || {
        policy.evaluate(&good_subject(), Mode::Enforce, now(), lookup)
    })
}

/// Evaluates the good subject; returns the trap message, failing on any
/// other outcome.
fn trap_message(policy: &Arc<Policy>, lookup: Arc<Scripted>) -> String {
    match evaluate(policy, lookup) {
        Err(PolicyError::Trap(message)) => message,
        Err(other) => panic!("expected a trap, got another error: {other:?}"),
        Ok(verdict) => panic!("expected a trap, got a verdict: {verdict:?}"),
    }
}

#[test]
fn the_template_without_hostility_loads_and_evaluates() {
    // The control: the harness's ABI is right, so every failure below comes
    // from the hostile body, not from a malformed guest.
    let policy = load(hostile("", ""), "benign.wasm").expect("benign guest loads");
    assert_eq!(policy.description().name, "");
    let lookup = Scripted::found();
    let verdict = policy
        .evaluate(&good_subject(), Mode::Enforce, now(), lookup.clone())
        .expect("benign guest evaluates");
    assert_eq!(verdict.status, Status::Verified);
    assert!(!verdict.allowed);
    assert!(verdict.findings.is_empty());
    assert!(lookup.asked().is_empty());
}

#[test]
fn builtin_component_imports_only_the_commit_lookup() {
    let engine = wasmtime::Engine::default();
    let component = Component::new(&engine, &Artifact::builtin().bytes).expect("built-in artifact compiles");
    let ty = component.component_type();

    let imports: Vec<(&str, ComponentItem)> = ty.imports(&engine).map(|(name, ext)| (name, ext.ty)).collect();
    let names: Vec<&str> = imports.iter().map(|(name, _)| *name).collect();
    assert!(names.iter().all(|n| !n.contains("wasi")), "a WASI import: {names:?}");
    assert_eq!(names, [LOOKUP], "imports");
    let ComponentItem::ComponentInstance(lookup) = &imports[0].1 else {
        panic!("{LOOKUP} is not an instance");
    };
    let functions: Vec<&str> = lookup
        .exports(&engine)
        .filter(|(_, ext)| !matches!(ext.ty, ComponentItem::Type(_) | ComponentItem::Resource(_)))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(functions, ["commit-exists"], "what the look-up instance offers");
    let commit_exists = lookup.exports(&engine).find(|(n, _)| *n == "commit-exists").unwrap().1;
    let ComponentItem::ComponentFunc(_) = commit_exists.ty else {
        panic!("commit-exists is not a function");
    };

    let exports: Vec<&str> = ty.exports(&engine).map(|(name, _)| name).collect();
    assert!(exports.contains(&RULES), "exports: {exports:?}");
}

#[test]
fn endless_loop_is_stopped_by_the_time_budget() {
    let policy = load_hostile(ENDLESS_LOOP, "endless-loop.wasm");
    let message = trap_message(&policy, Scripted::found());
    assert!(message.contains("time budget (100 ms"), "{message}");
}

/// Answers "found", but only after the given delay.
struct SlowFound(Duration);

impl provgate::lookup::CommitLookup for SlowFound {
    fn commit(&self, _: &str, _: &str, _: &str) -> provgate::lookup::Answer {
        std::thread::sleep(self.0);
        provgate::lookup::Answer::Found
    }
}

#[test]
fn a_slow_lookup_does_not_count_against_the_time_budget() {
    // A Gitea answering in 300 ms is bounded by its own time-out; the
    // guest's 100 ms are for its own work.
    let policy = Policy::load(Artifact::builtin(), SMALL, None).expect("built-in policy loads");
    let slow = Arc::new(SlowFound(Duration::from_millis(300)));
    let verdict = policy
        .evaluate(&good_subject(), Mode::Enforce, now(), slow)
        .expect("a verdict, not a trap");
    assert_eq!(verdict.status, Status::Verified, "{verdict:#?}");
}

#[test]
fn unbounded_memory_growth_is_stopped_by_the_memory_cap() {
    let policy = load_hostile(MEMORY_BOMB, "memory-bomb.wasm");
    let message = trap_message(&policy, Scripted::found());
    assert!(message.contains("memory"), "{message}");
    assert!(
        !message.contains("time budget"),
        "stopped by the time budget, not by the cap: {message}"
    );
}

#[test]
fn deep_recursion_is_stopped_as_stack_overflow() {
    let policy = load_hostile(DEEP_RECURSION, "deep-recursion.wasm");
    let message = trap_message(&policy, Scripted::found());
    assert!(message.contains("stack"), "{message}");
}

#[test]
fn lookup_flood_is_capped_per_evaluation() {
    let policy = load_hostile(LOOKUP_FLOOD, "lookup-flood.wasm");
    let max = SMALL.max_lookups as usize;

    let lookup = Scripted::found();
    let message = trap_message(&policy, lookup.clone());
    assert!(message.contains("look-ups"), "{message}");
    let first = lookup.asked().len();
    assert!((1..=max).contains(&first), "asked {first} times, cap {max}");
    assert!(
        lookup
            .asked()
            .iter()
            .all(|(o, r, s)| (o.as_str(), r.as_str(), s.as_str()) == ("molecule-ai", "app", support::SHA)),
        "the guest's strings reach the host intact: {:?}",
        lookup.asked()
    );

    // The cap counts per evaluation: the next one starts from zero again
    // (it reaches the look-up) and is capped again.
    let message = trap_message(&policy, lookup.clone());
    assert!(message.contains("look-ups"), "{message}");
    let second = lookup.asked().len() - first;
    assert!((1..=max).contains(&second), "asked {second} times, cap {max}");
}

#[test]
fn a_verdict_with_a_million_findings_is_refused() {
    let policy = load_hostile_with(MILLION_FINDINGS, "million-findings.wasm", Limits::default());
    let message = trap_message(&policy, Scripted::found());
    assert!(message.contains("1000000 findings"), "{message}");
}

#[test]
fn a_message_claiming_100_mb_is_refused() {
    let policy = load_hostile(HUGE_MESSAGE, "huge-message.wasm");
    let message = trap_message(&policy, Scripted::found());
    assert!(message.contains("out of bounds"), "{message}");
}

#[test]
fn a_message_past_the_verdict_text_cap_is_refused() {
    let policy = load_hostile(LONG_MESSAGE, "long-message.wasm");
    let message = trap_message(&policy, Scripted::found());
    assert!(message.contains("bytes of text"), "{message}");
}

#[test]
fn host_stays_usable_after_a_trap() {
    let endless = load_hostile(ENDLESS_LOOP, "endless-loop.wasm");
    let bomb = load_hostile(MEMORY_BOMB, "memory-bomb.wasm");
    assert!(trap_message(&endless, Scripted::found()).contains("time budget"));
    assert!(trap_message(&bomb, Scripted::found()).contains("memory"));

    let builtin = Policy::load(Artifact::builtin(), Limits::default(), None).expect("built-in policy loads");
    let lookup = Scripted::found();
    let verdict = builtin
        .evaluate(&good_subject(), Mode::Enforce, now(), lookup.clone())
        .expect("built-in policy evaluates after a trap");
    assert_eq!(verdict.status, Status::Verified, "{verdict:#?}");
    assert!(verdict.allowed);
    assert_eq!(lookup.asked().len(), 1);

    // No poisoned state: the same hostile policies trap the same way again.
    assert!(trap_message(&endless, Scripted::found()).contains("time budget"));
    assert!(trap_message(&bomb, Scripted::found()).contains("memory"));
}

#[test]
fn memory_bomb_and_lookup_flood_finish_when_their_limit_is_lifted() {
    // The other half of the two tests above: these guests really do grow
    // and ask without end, so only the caps stop them there.
    let lifted = Limits {
        memory_bytes: 1 << 30,
        max_lookups: 10_000,
        ..SMALL
    };
    let bomb = load_hostile_with(MEMORY_BOMB, "memory-bomb.wasm", lifted);
    let verdict = evaluate(&bomb, Scripted::found()).expect("with no memory cap the bomb runs to its end");
    assert_eq!(verdict.status, Status::Verified);

    let flood = load_hostile_with(LOOKUP_FLOOD, "lookup-flood.wasm", lifted);
    let lookup = Scripted::found();
    evaluate(&flood, lookup.clone()).expect("with no look-up cap the flood runs to its end");
    assert_eq!(lookup.asked().len(), 1000);
}

#[test]
fn describe_that_loops_fails_to_load() {
    let bytes = hostile("", ENDLESS_LOOP);
    match within_deadline("load", move || load(bytes, "describe-loops.wasm")) {
        Err(PolicyError::Trap(message)) => assert!(message.contains("time budget"), "{message}"),
        Err(other) => panic!("expected a trap, got {other:?}"),
        Ok(_) => panic!("a policy whose describe never returns loaded"),
    }
}

/// Loads a component that imports more than the look-up; its describe
/// would call the extra import and then trap, so an `Invalid` (not a
/// `Trap`) shows none of it ran.
fn assert_refused(bytes: Vec<u8>, name: &str, import: &str) {
    match load(bytes, name) {
        Err(PolicyError::Invalid { reason, .. }) => assert!(reason.contains(import), "{reason}"),
        Err(other) => panic!("expected the component to be refused at link time, got {other:?}"),
        Ok(_) => panic!("a component importing {import} loaded"),
    }
}

#[test]
fn component_with_a_wasi_import_is_refused() {
    let (mut resolve, _) = provgate_wit();
    resolve
        .push_str(
            "wasi-cli.wit",
            "package wasi:cli@0.2.0;
             interface environment {
                 get-environment: func() -> list<tuple<string, string>>;
             }",
        )
        .expect("wasi:cli parses");
    let pkg = resolve
        .push_str(
            "sneaky.wit",
            "package hostile:guest;
             world sneaky {
                 include provgate:policy/provgate@0.1.0;
                 import wasi:cli/environment@0.2.0;
             }",
        )
        .expect("the sneaky world parses");
    let world = resolve.select_world(&[pkg], Some("sneaky")).expect("world sneaky");
    let bytes = component_for(
        &resolve,
        world,
        // A list result lowers to a pointer to an (address, count) area.
        r#"(import "wasi:cli/environment@0.2.0" "get-environment" (func $get_environment (param i32)))"#,
        "(call $get_environment (i32.const 128)) unreachable",
        "",
    );
    assert_refused(bytes, "wasi-import.wasm", "wasi:cli/environment");
}

#[test]
fn lookup_interface_with_an_extra_function_is_refused() {
    // Same import name as the real one, one more capability inside it.
    let wit = std::fs::read_to_string(repo_path("wit/provgate.wit")).expect("read the WIT");
    let commit_exists = "commit-exists: func(owner: string, repo: string, sha: string) -> commit-answer;";
    assert!(
        wit.contains(commit_exists),
        "the WIT's look-up changed; update this test"
    );
    let wit = wit.replace(
        commit_exists,
        &format!("{commit_exists}\n    fetch: func(url: string) -> list<u8>;"),
    );
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve
        .push_str("provgate-plus.wit", &wit)
        .expect("the widened WIT parses");
    let world = resolve.select_world(&[pkg], Some("provgate")).expect("world provgate");
    let bytes = component_for(
        &resolve,
        world,
        r#"(import "provgate:policy/lookup@0.1.0" "fetch" (func $fetch (param i32 i32 i32)))"#,
        "(call $fetch (i32.const 16) (i32.const 11) (i32.const 128)) unreachable",
        "",
    );
    assert_refused(bytes, "extra-lookup-function.wasm", "fetch");
}

// ---------------------------------------------------------------------------
// Damaged artifacts.
// ---------------------------------------------------------------------------

fn leb_u32(bytes: &[u8], pos: &mut usize) -> u32 {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let byte = bytes[*pos];
        *pos += 1;
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
    }
    panic!("LEB128 too long at {pos}");
}

/// `(id, content)` of each section between `range.start` (just past an
/// 8-byte preamble) and `range.end`.
fn sections(bytes: &[u8], range: Range<usize>) -> Vec<(u8, Range<usize>)> {
    let mut out = Vec::new();
    let mut pos = range.start + 8;
    while pos < range.end {
        let id = bytes[pos];
        pos += 1;
        let size = leb_u32(bytes, &mut pos) as usize;
        out.push((id, pos..pos + size));
        pos += size;
    }
    out
}

/// The middle function body in the code section of the component's largest
/// core module (the rules): the position of its size field and its bytes.
fn middle_function_body(component: &[u8]) -> (usize, Range<usize>) {
    const CORE_MODULE: u8 = 1;
    const CODE: u8 = 10;
    let module = sections(component, 0..component.len())
        .into_iter()
        .filter(|(id, _)| *id == CORE_MODULE)
        .max_by_key(|(_, range)| range.len())
        .expect("a core module")
        .1;
    let code = sections(component, module)
        .into_iter()
        .find(|(id, _)| *id == CODE)
        .expect("a code section")
        .1;
    let mut pos = code.start;
    let count = leb_u32(component, &mut pos);
    let mut bodies = Vec::new();
    for _ in 0..count {
        let size_field = pos;
        let size = leb_u32(component, &mut pos) as usize;
        bodies.push((size_field, pos..pos + size));
        pos += size;
    }
    assert_eq!(pos, code.end, "the code section parses");
    bodies.swap_remove(bodies.len() / 2)
}

#[test]
fn truncated_and_bit_flipped_artifacts_are_refused() {
    let builtin = Artifact::builtin().bytes.into_owned();

    let truncated = builtin[..builtin.len() / 2].to_vec();
    let preamble_only = builtin[..8].to_vec();
    // Flipping the low bit of a function body's size moves its end by one
    // byte: the body no longer ends at its `end`, so it cannot validate.
    let (size_field, body) = middle_function_body(&builtin);
    let mut size_flipped = builtin.clone();
    size_flipped[size_field] ^= 1;
    // Flipping every bit of the body's final `end` (0x0b) leaves the module
    // well formed but the function unterminated.
    let mut end_flipped = builtin.clone();
    assert_eq!(end_flipped[body.end - 1], 0x0b, "a function body ends with `end`");
    end_flipped[body.end - 1] ^= 0xff;
    // Not wasm at all, and garbage behind a valid component preamble.
    let json = std::fs::read(repo_path("tests/data/inspect/buildx-single.json")).expect("fixture");
    let mut garbage = builtin[..8].to_vec();
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    garbage.extend((0..4096).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));

    for (name, bytes) in [
        ("truncated to half", truncated),
        ("only the preamble", preamble_only),
        ("a body size flipped in the middle of the code", size_flipped),
        ("the `end` of a body in the middle of the code flipped", end_flipped),
        ("a JSON file", json),
        ("random bytes behind a component preamble", garbage),
        ("an empty file", Vec::new()),
    ] {
        match load(bytes, name) {
            Err(PolicyError::Invalid { .. }) => {}
            Err(other) => panic!("{name}: refused, but not as an invalid component: {other:?}"),
            Ok(policy) => {
                let verdict = policy.evaluate(&good_subject(), Mode::Enforce, now(), Arc::new(NoLookup("test")));
                panic!("{name}: loaded, and evaluated to {verdict:?}");
            }
        }
    }
}

/// The shipped guest runs on a 16 KiB stack (host/build/guest.rs), about
/// 45 levels of serde_json's recursion: settings nested deeper than the
/// guest's own cap of 8 levels, up to and past serde_json's 128, must end
/// in a settings error, not in a stack overflow.
#[test]
fn deeply_nested_settings_are_refused_by_name_within_the_guests_16_kib_stack() {
    for depth in [2, 7, 8, 9, 100, 127, 128, 500] {
        let owners = format!("{}\"a\"{}", "[".repeat(depth), "]".repeat(depth));
        let settings = format!(r#"{{"allowed_owners":{owners},"gitea_base_url":"https://g"}}"#);
        let bytes = slot::write(&Artifact::builtin().bytes, settings.as_bytes()).expect("fits the slot");
        let name = format!("settings nested {depth} deep");
        match load(bytes, &name) {
            Err(PolicyError::Settings { reason, .. }) => {
                assert!(reason.starts_with("settings"), "{name}: {reason}");
            }
            Err(other) => panic!("{name}: refused, but not for its settings: {other}"),
            Ok(_) => panic!("{name}: loaded"),
        }
    }
}

// ---------------------------------------------------------------------------
// The real binary with a hostile artifact.
// ---------------------------------------------------------------------------

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs `provgate` with a fresh code cache; kills it if it outlives a minute.
fn provgate(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let stderr_path = dir.path().join("stderr");
    let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
    let stdout_path = dir.path().join("stdout");
    let stdout = std::fs::File::create(&stdout_path).expect("stdout file");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_provgate"))
        .args(args)
        .env("PROVGATE_CACHE_DIR", dir.path().join("cache"))
        .env_remove("GITEA_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("provgate starts");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for provgate") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().expect("kill provgate");
            child.wait().expect("reap provgate");
            panic!("provgate {args:?} still ran after a minute");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = started.elapsed();
    let stderr = std::fs::read_to_string(&stderr_path).expect("read stderr");
    let stdout = std::fs::read_to_string(&stdout_path).expect("read stdout");
    Run {
        status,
        stdout,
        stderr,
        took,
    }
}

fn fixture() -> String {
    repo_path("tests/data/inspect/buildx-single.json").display().to_string()
}

fn replay() -> String {
    repo_path("docs/examples/lookups.replay.json").display().to_string()
}

/// `provgate verify` of the good fixture under a hostile policy file.
fn verify_with_policy(bytes: Vec<u8>) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hostile.wasm");
    std::fs::write(&path, bytes).expect("write the hostile artifact");
    let path = path.display().to_string();
    provgate(&[
        "verify",
        "--inspect",
        &fixture(),
        "--policy",
        &path,
        "--replay",
        &replay(),
    ])
}

#[test]
fn cli_exits_3_when_the_policy_loops_forever() {
    let run = verify_with_policy(hostile(ENDLESS_LOOP, ""));
    eprintln!("endless loop under the default budget: provgate ran {:?}", run.took);
    assert_eq!(run.status.code(), Some(3), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("time budget"), "{}", run.stderr);
    assert!(run.took < TERMINATES_WITHIN, "took {:?}", run.took);
}

#[test]
fn cli_exits_3_when_the_policy_grows_memory_past_the_cap() {
    let run = verify_with_policy(hostile(MEMORY_BOMB, ""));
    assert_eq!(run.status.code(), Some(3), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("memory"), "{}", run.stderr);
    assert!(run.took < TERMINATES_WITHIN, "took {:?}", run.took);
}

#[test]
fn cli_exits_3_naming_the_limit_for_every_other_hostile_policy() {
    for (body, what) in [
        (DEEP_RECURSION, "stack"),
        (LOOKUP_FLOOD, "look-ups"),
        (MILLION_FINDINGS, "1000000 findings"),
        (HUGE_MESSAGE, "out of bounds"),
    ] {
        let run = verify_with_policy(hostile(body, ""));
        assert_eq!(run.status.code(), Some(3), "stderr: {}", run.stderr);
        assert!(run.stderr.contains(what), "{}", run.stderr);
        assert!(run.stdout.is_empty(), "a verdict was printed: {}", run.stdout);
        assert!(run.took < TERMINATES_WITHIN, "took {:?}", run.took);
    }
}

#[test]
fn policy_digest_mismatch_exits_3() {
    let zeros = format!("sha256:{}", "0".repeat(64));
    let run = provgate(&[
        "verify",
        "--inspect",
        &fixture(),
        "--replay",
        &replay(),
        "--policy-digest",
        &zeros,
    ]);
    assert_eq!(run.status.code(), Some(3), "stderr: {}", run.stderr);
    assert!(run.stderr.contains(&zeros), "{}", run.stderr);
    assert!(run.stderr.contains(&Artifact::builtin().digest), "{}", run.stderr);
}
