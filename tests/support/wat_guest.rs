//! Guests written in WAT: a core module implementing the `provgate`
//! world's canonical ABI by hand, wrapped into a component. The hostile
//! guests of tests/sandbox.rs fill in its bodies; the bench uses it as is,
//! a guest that does no work, to show what the sandbox itself costs.

/// The core module every hostile guest is made from. It implements the
/// `provgate` world's core ABI (canonical ABI, 32-bit memory):
///
/// - `describe: func() -> result<description, string>` flattens to
///   `() -> i32`: the result has more than one flat value, so the guest
///   returns a pointer to a return area. The area is a `result` (tag byte at
///   0, payload at 4) holding a `description` of 48 bytes: four `(ptr, len)`
///   pairs for name, version, rules and gitea-base-url, one for
///   allowed-owners, a u32 skew and an enum byte. All zeroes lift as
///   `Ok(description)` with empty strings and lists, skew 0 and `deny`.
/// - `evaluate: func(subject, mode) -> result<verdict, string>` has more than
///   16 flat parameters, so the host copies them into guest memory (through
///   `cabi_realloc`) and passes one pointer: `(i32) -> i32`. Its result is a
///   24-byte area (tag at 0; status byte at 4, allowed at 5, event at 8,
///   findings at 16); all zeroes lift as `Ok(verdict)`: verified, not
///   allowed, no event, no findings.
/// - The import `commit-exists(owner, repo, sha) -> commit-answer` lowers to
///   three `(ptr, len)` pairs plus a pointer to a 12-byte area where the host
///   writes the answer (tag byte at 0, reason string at 4 and 8).
///
/// Memory map: 16.. owner "molecule-ai", 32.. repo "app", 48.. the sha
/// (40 bytes), 128..140 the look-up answer area, 256..320 an area that stays
/// zero (both exports return it), the bump heap from 1024.
///
/// `{imports}` adds imports, `{describe}` and `{evaluate}` are inserted at
/// the start of the two exports (they may declare locals first); when a body
/// falls through, the export returns the zero area.
pub const TEMPLATE: &str = r#"
(module
  (import "provgate:policy/lookup@0.1.0" "commit-exists"
    (func $commit_exists (param i32 i32 i32 i32 i32 i32 i32)))
  {imports}
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (data (i32.const 16) "molecule-ai")
  (data (i32.const 32) "app")
  (data (i32.const 48) "36b68ae653f75d2ed731081e35541b6f6a0e7c0b")

  ;; A bump allocator. The host only asks for fresh blocks (old = 0), so
  ;; the old block is never copied; memory grows when a block needs it.
  (func (export "cabi_realloc")
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
    (local.get $ptr))

  ;; Calls itself until the stack runs out; the add keeps it from being a
  ;; tail call.
  (func $descend (param $depth i32) (result i32)
    (i32.add (call $descend (i32.add (local.get $depth) (i32.const 1))) (i32.const 1)))

  (func (export "provgate:policy/rules@0.1.0#describe") (result i32)
    {describe}
    (i32.const 256))

  (func (export "provgate:policy/rules@0.1.0#evaluate") (param $args i32) (result i32)
    {evaluate}
    (i32.const 256))
)
"#;

/// The WIT of this repository, with the `provgate` world selected.
pub fn provgate_wit() -> (wit_parser::Resolve, wit_parser::WorldId) {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve
        .push_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit"))
        .expect("the WIT package parses");
    let world = resolve.select_world(&[pkg], Some("provgate")).expect("world provgate");
    (resolve, world)
}

/// Fills the template, embeds the world's metadata and encodes a component.
pub fn component_for(
    resolve: &wit_parser::Resolve,
    world: wit_parser::WorldId,
    imports: &str,
    describe: &str,
    evaluate: &str,
) -> Vec<u8> {
    let wat = TEMPLATE
        .replace("{imports}", imports)
        .replace("{describe}", describe)
        .replace("{evaluate}", evaluate);
    let mut module = wat::parse_str(&wat).unwrap_or_else(|e| panic!("WAT does not parse: {e}\n{wat}"));
    wit_component::embed_component_metadata(&mut module, resolve, world, wit_component::StringEncoding::UTF8)
        .expect("component metadata embeds");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|e| panic!("component does not encode: {e:#}"))
}

/// A component of the `provgate` world with these bodies.
pub fn hostile(evaluate: &str, describe: &str) -> Vec<u8> {
    let (resolve, world) = provgate_wit();
    component_for(&resolve, world, "", describe, evaluate)
}
