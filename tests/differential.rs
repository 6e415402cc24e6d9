//! The wasm guest and the native build of the same rules never disagree.
