//! `provgate audit` end to end (being written).
