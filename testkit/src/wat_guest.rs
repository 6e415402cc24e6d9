//! Guests written in WAT: a core module implementing the `provgate` world's
//! canonical ABI by hand, wrapped into a component. The hostile guests of
//! tests/sandbox.rs fill in its bodies; the bench uses it as is, a guest that
//! does no work, to show what the sandbox itself costs. A copy of the 0.1
//! world (WIT and module) stays here for the test that an old artifact is
//! refused.

/// A bump allocator, the `cabi_realloc` of both templates. The host only
/// asks for fresh blocks (old = 0), so the old block is never copied;
/// memory grows when a block needs it.
const BUMP_REALLOC: &str = r#"(func (export "cabi_realloc")
    (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $ptr i32) (local $end i32) (local $top i32)
    (local.set $ptr
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
               (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $ptr) (local.get $size)))
    (local.set $top (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $top))
      (then
        (if (i32.eq (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $top))
                                                     (i32.const 65535))
                                            (i32.const 16)))
                    (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $ptr))"#;

/// The core module every hostile guest is made from. It implements the
/// `provgate:policy/provgate@0.2.0` world's core ABI (canonical ABI, 32-bit
/// memory, UTF-8 strings). The world has no imports; it exports
/// `provgate:policy/rules@0.2.0`.
///
/// # Signatures
///
/// Parameters flatten to at most 16 core values, else the caller stores them
/// in guest memory (through `cabi_realloc`) and passes one pointer; a result
/// of more than one flat value is returned as a pointer to a return area.
///
/// - `describe: func() -> result<description, string>` is `() -> i32`.
/// - `evaluate: func(subject, mode, answers: list<answered>) -> result<step,
///   string>` is `(param $args i32) (result i32)`: the parameters flatten to
///   21 values (subject 18: reference 2, digest 2, labels 2, `option<pin>`
///   1 + 3 × 3, instant `i64 i32` 2; mode 1; answers 2), more than 16.
/// - `resume: func(answers: list<answer>) -> result<step, string>` is
///   `(param $answers i32) (param $count i32) (result i32)`.
///
/// `result<step, string>` flattens to 7 values and `result<description,
/// string>` to 13, so both come back through a return area.
///
/// # Layouts (offsets in bytes; a variant's tag is a `u8`, its payload at
/// the payload's alignment; enums and bools are one byte)
///
/// - string, `list<T>`: `ptr` at 0, `len` (elements) at 4; size 8, align 4.
/// - `result<step, string>`: size 20, align 4. Tag at 0 (0 ok, 1 err);
///   payload at 4: the `step` (16 bytes) or the error string (`ptr` 4,
///   `len` 8).
/// - `step`: size 16, align 4. Tag at 0 (0 `verdict`, 1 `ask`); payload at 4:
///   a `verdict` (12 bytes) or a `list<question>` (`ptr` 4, `len` 8).
/// - `verdict`: size 12, align 4. `status` at 0, `allowed` at 1, `event` at
///   2, `findings: list<finding>` at 4 (`ptr` 4, `len` 8).
/// - `finding`: size 12, align 4. `rule` at 0, `outcome` at 1, `message` at 4.
/// - `question`: size 24, align 4. `owner` at 0, `repo` at 8, `sha` at 16.
///
///   So, within a `result<step, string>` area: result tag 0, step tag 4;
///   verdict status 8, allowed 9, event 10, findings `ptr` 12 and `len` 16;
///   or the questions' `ptr` 8 and `len` 12.
/// - `result<description, string>`: size 52, align 4. Tag at 0, payload at 4.
/// - `description`: size 48, align 4. `name` at 0, `version` at 8, `rules:
///   list<rule-id>` (one byte an element) at 16, `settings` at 24 (size 24:
///   `gitea-base-url` at 0, `allowed-owners` at 8, `created-max-skew-seconds`
///   at 16, `on-unavailable` at 20). In the result area: name 4, version 12,
///   rules 20, gitea-base-url 28, allowed-owners 36, skew 44, on-unavailable
///   48.
///
/// What the host passes in:
///
/// - `$args` of `evaluate`: size 96, align 8. `subject` at 0 (size 80, align
///   8: `reference` 0, `digest` 8, `labels` 16 (elements of 16 bytes: two
///   strings), `pin` 24 (tag 24, `pin` at 28: three `option<string>` of 12
///   bytes, tag then string at 4: `runtime` 28, `digest` 40, `source-sha`
///   52), `now` 64 (`seconds: s64` 64, `nanoseconds` 72)), `mode` at 80,
///   `answers` at 84 (`ptr` 84, `len` 88).
/// - `answered`: size 44, align 4. `question` at 0, `answer` at 24.
/// - `answer` (the elements of `resume`'s list): size 20, align 4. Tag at 0
///   (0 `found`, 1 `not-found`, 2 `unavailable`, 3 `moved`), payload at 4: a
///   string, or `moved-to` (`owner` 4, `repo` 12).
///
/// # Memory map
///
/// | at        | what                                                          |
/// |-----------|---------------------------------------------------------------|
/// | 16..27    | [`OWNER`] `"molecule-ai"`                                     |
/// | 32..35    | [`REPO`] `"app"`                                              |
/// | 48..88    | [`SHA`], 40 hex digits                                        |
/// | 96..118   | [`MESSAGE`] `"written by hand in WAT"`                        |
/// | 256..320  | [`ZERO`]: all zero, what every export returns by default      |
/// | 320..340  | [`ASK_ONE`]: `Ok(step::ask(QUESTIONS[..1]))`                  |
/// | 352..372  | [`ASK_FIVE`]: `Ok(step::ask(QUESTIONS[..5]))`                 |
/// | 384..504  | [`QUESTIONS`]: five identical questions about OWNER/REPO@SHA  |
/// | 512..532  | [`GARBAGE`]: `Ok`, then step tag 7: does not lift             |
/// | 544..564  | [`ONE_FINDING`]: `Ok(step::verdict(..))` with one finding     |
/// | 576..588  | [`FINDINGS`]: that finding                                    |
/// | 608..620  | [`FAILED`]: `Err(MESSAGE)`                                    |
/// | 640..1024 | [`SCRATCH`]: zero, for bodies that build an area of their own |
/// | 1024..    | the bump heap of `cabi_realloc`                               |
///
/// [`ZERO`] lifts as `Ok(description)` from `describe` (empty strings and
/// lists, skew 0, `deny`) and as `Ok(step::verdict(..))` from `evaluate` and
/// `resume` (`verified`, not allowed, `unlabeled`, no findings). A body that
/// writes into an area changes it for later calls on the same instance;
/// [`SCRATCH`] is there for areas of its own, e.g. a verdict with a million
/// findings: `(i32.store (i32.const {SCRATCH + 12}) ptr)
/// (i32.store (i32.const {SCRATCH + 16}) count) (return (i32.const
/// {SCRATCH}))`.
///
/// # Placeholders
///
/// `{describe}`, `{evaluate}` and `{resume}` are inserted at the start of the
/// three exports (they may declare locals first); when a body falls through,
/// the export returns [`ZERO`]. A body returns another area with
/// [`returning`], e.g. `returning(ASK_ONE)`. `$descend` recurses without end
/// (`(drop (call $descend (i32.const 0)))`).
const TEMPLATE: &str = r#"
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))

  ;; Strings.
  (data (i32.const 16) "molecule-ai")
  (data (i32.const 32) "app")
  (data (i32.const 48) "36b68ae653f75d2ed731081e35541b6f6a0e7c0b")
  (data (i32.const 96) "written by hand in WAT")

  ;; 256..320 stays zero: ZERO.

  ;; ASK_ONE: result<step, string> = Ok(step::ask(QUESTIONS[..1])).
  (data (i32.const 320)
    (i8 0 0 0 0)            ;; 0: result tag ok (+ padding)
    (i8 1 0 0 0)            ;; 4: step tag ask (+ padding)
    (i32 384 1))            ;; 8: questions ptr, 12: len

  ;; ASK_FIVE: Ok(step::ask(QUESTIONS[..5])).
  (data (i32.const 352)
    (i8 0 0 0 0)
    (i8 1 0 0 0)
    (i32 384 5))

  ;; QUESTIONS: five question records of 24 bytes, each
  ;; owner (ptr, len), repo (ptr, len), sha (ptr, len).
  (data (i32.const 384)
    (i32 16 11 32 3 48 40)
    (i32 16 11 32 3 48 40)
    (i32 16 11 32 3 48 40)
    (i32 16 11 32 3 48 40)
    (i32 16 11 32 3 48 40))

  ;; GARBAGE: Ok, then a step tag that names no case.
  (data (i32.const 512)
    (i8 0 0 0 0)
    (i8 7 0 0 0)
    (i32 0 0 0))

  ;; ONE_FINDING: Ok(step::verdict(rejected, not allowed, malformed,
  ;; [FINDINGS[0]])).
  (data (i32.const 544)
    (i8 0 0 0 0)            ;; 0: result tag ok
    (i8 0 0 0 0)            ;; 4: step tag verdict
    (i8 1 0 1 0)            ;; 8: status rejected, 9: allowed false, 10: event malformed
    (i32 576 1))            ;; 12: findings ptr, 16: len

  ;; FINDINGS: one finding: revision-format, fail, MESSAGE.
  (data (i32.const 576)
    (i8 1 1 0 0)            ;; 0: rule revision-format, 1: outcome fail
    (i32 96 22))            ;; 4: message ptr, 8: len

  ;; FAILED: Err(MESSAGE).
  (data (i32.const 608)
    (i8 1 0 0 0)            ;; 0: result tag err
    (i32 96 22))            ;; 4: message ptr, 8: len

  ;; 640..1024 stays zero: SCRATCH.

  {realloc}

  ;; Calls itself until the stack runs out; the add keeps it from being a
  ;; tail call.
  (func $descend (param $depth i32) (result i32)
    (i32.add (call $descend (i32.add (local.get $depth) (i32.const 1))) (i32.const 1)))

  (func (export "provgate:policy/rules@0.2.0#describe") (result i32)
    {describe}
    (i32.const 256))

  (func (export "provgate:policy/rules@0.2.0#evaluate") (param $args i32) (result i32)
    {evaluate}
    (i32.const 256))

  (func (export "provgate:policy/rules@0.2.0#resume") (param $answers i32) (param $count i32) (result i32)
    {resume}
    (i32.const 256))
)
"#;

/// The owner every prepared question asks about (at 16).
pub const OWNER: &str = "molecule-ai";
/// The repository every prepared question asks about (at 32).
pub const REPO: &str = "app";
/// The commit every prepared question asks about (at 48).
pub const SHA: &str = "36b68ae653f75d2ed731081e35541b6f6a0e7c0b";
/// The message of the finding in [`ONE_FINDING`] and the error of [`FAILED`].
pub const MESSAGE: &str = "written by hand in WAT";

/// An all-zero area: `Ok(description)` or `Ok(step::verdict(..))`.
pub const ZERO: i32 = 256;
/// `result<step, string>`: `Ok(step::ask([question]))` about OWNER/REPO@SHA.
pub const ASK_ONE: i32 = 320;
/// `result<step, string>`: `Ok(step::ask(..))` with five such questions.
pub const ASK_FIVE: i32 = 352;
/// Five `question` records of 24 bytes, all about OWNER/REPO@SHA.
pub const QUESTIONS: i32 = 384;
/// `result<step, string>` with result tag `Ok` and step tag 7: lifting fails.
pub const GARBAGE: i32 = 512;
/// `result<step, string>`: `Ok(step::verdict(..))`, rejected, not allowed,
/// event `malformed`, one finding (`revision-format`, `fail`, MESSAGE).
pub const ONE_FINDING: i32 = 544;
/// The one `finding` record of [`ONE_FINDING`] (12 bytes).
pub const FINDINGS: i32 = 576;
/// `result<step, string>` (or `result<description, string>`): `Err(MESSAGE)`.
pub const FAILED: i32 = 608;
/// 384 zero bytes (640..1024) no prepared area uses.
pub const SCRATCH: i32 = 640;

/// A body that returns the area at `area` right away.
pub fn returning(area: i32) -> String {
    format!("(return (i32.const {area}))")
}

/// A body that builds, in [`SCRATCH`], a `result<step, string>` of `Ok` with
/// step tag `tag` (0 and 1 are cases, anything else fails to lift) and an
/// all-zero payload, and returns it.
pub fn step_tag(tag: u8) -> String {
    format!(
        "(i32.store8 (i32.const {SCRATCH}) (i32.const 0))
         (i32.store8 (i32.const {}) (i32.const {tag}))
         (return (i32.const {SCRATCH}))",
        SCRATCH + 4
    )
}

/// The WIT of this repository, with the `provgate` world selected.
pub fn provgate_wit() -> (wit_parser::Resolve, wit_parser::WorldId) {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve
        .push_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit"))
        .expect("the WIT package parses");
    let world = resolve.select_world(&[pkg], Some("provgate")).expect("world provgate");
    (resolve, world)
}

/// Parses a whole WAT module, embeds the world's metadata and encodes a
/// component (for modules that are not the template filled in, e.g. one with
/// an import the world does not have).
pub fn encode(resolve: &wit_parser::Resolve, world: wit_parser::WorldId, wat: &str) -> Vec<u8> {
    let mut module = wat::parse_str(wat).unwrap_or_else(|e| panic!("WAT does not parse: {e}\n{wat}"));
    wit_component::embed_component_metadata(&mut module, resolve, world, wit_component::StringEncoding::UTF8)
        .expect("component metadata embeds");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|e| panic!("component does not encode: {e:#}"))
}

/// The template's text with its allocator in place, its `{describe}`,
/// `{evaluate}` and `{resume}` bodies still to fill.
pub fn template() -> String {
    TEMPLATE.replace("{realloc}", BUMP_REALLOC)
}

/// Fills the template, embeds the world's metadata and encodes a component.
pub fn component_for(
    resolve: &wit_parser::Resolve,
    world: wit_parser::WorldId,
    describe: &str,
    evaluate: &str,
    resume: &str,
) -> Vec<u8> {
    let wat = template()
        .replace("{describe}", describe)
        .replace("{evaluate}", evaluate)
        .replace("{resume}", resume);
    encode(resolve, world, &wat)
}

/// A component of the `provgate` world with these bodies.
pub fn hostile(evaluate: &str, resume: &str, describe: &str) -> Vec<u8> {
    let (resolve, world) = provgate_wit();
    component_for(&resolve, world, describe, evaluate, resume)
}

/// The guest that does no work: every export returns [`ZERO`].
pub fn template_component() -> Vec<u8> {
    hostile("", "", "")
}

/// The 0.1 world, as it was before the look-up became a question: one
/// import, `lookup.commit-exists`, and `evaluate` returning a verdict.
pub const OLD_WIT: &str = r#"
package provgate:policy@0.1.0;

interface lookup {
    variant commit-answer {
        found,
        not-found(string),
        unavailable(string),
    }

    commit-exists: func(owner: string, repo: string, sha: string) -> commit-answer;
}

interface rules {
    record pin {
        runtime: option<string>,
        digest: string,
        source-sha: option<string>,
    }

    record instant {
        seconds: s64,
        nanoseconds: u32,
    }

    record subject {
        reference: string,
        digest: string,
        labels: list<tuple<string, string>>,
        pin: option<pin>,
        now: instant,
    }

    enum mode { enforce, log-only }

    enum outcome { pass, fail, indeterminate, skipped }

    record finding {
        rule: string,
        outcome: outcome,
        message: string,
    }

    enum status { verified, rejected, indeterminate }

    record verdict {
        status: status,
        allowed: bool,
        event: string,
        findings: list<finding>,
    }

    enum on-unavailable { deny, allow }

    record settings {
        gitea-base-url: string,
        allowed-owners: list<string>,
        created-max-skew-seconds: u32,
        on-unavailable: on-unavailable,
    }

    record description {
        name: string,
        version: string,
        rules: list<string>,
        settings: settings,
    }

    describe: func() -> result<description, string>;

    evaluate: func(subject: subject, mode: mode) -> result<verdict, string>;
}

world provgate {
    import lookup;
    export rules;
}
"#;

/// A module of the 0.1 world that does no work: `describe` returns
/// `Ok(description)` (a 52-byte all-zero area at 256), `evaluate` `Ok(verdict)`
/// (24 bytes: tag 0; status 4, allowed 5, event string 8, findings 16). It
/// imports `commit-exists` (three `(ptr, len)` pairs and a pointer to the
/// 12-byte answer area) and never calls it.
const OLD_TEMPLATE: &str = r#"
(module
  (import "provgate:policy/lookup@0.1.0" "commit-exists"
    (func $commit_exists (param i32 i32 i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))

  {realloc}

  (func (export "provgate:policy/rules@0.1.0#describe") (result i32)
    (i32.const 256))

  (func (export "provgate:policy/rules@0.1.0#evaluate") (param $args i32) (result i32)
    (i32.const 256))
)
"#;

/// A valid component of the 0.1 world (`provgate:policy/provgate@0.1.0`),
/// for the test that an artifact built for the old world is refused.
pub fn old_world_component() -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve
        .push_str("provgate-0.1.0.wit", OLD_WIT)
        .expect("the 0.1 WIT parses");
    let world = resolve.select_world(&[pkg], Some("provgate")).expect("world provgate");
    encode(&resolve, world, &OLD_TEMPLATE.replace("{realloc}", BUMP_REALLOC))
}
