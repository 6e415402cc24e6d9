//! `provgate verify IMAGE_REF` against a real registry (being written).
mod support;
