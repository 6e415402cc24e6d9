//! What provgate's host and its policy component must agree on, in one
//! place both compile: the settings slot's layout. Neither side copies
//! these facts or checks them with "must match" comments.

pub mod slot;
