//! `provgate serve` end to end (being written).
