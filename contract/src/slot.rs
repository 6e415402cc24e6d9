//! The settings slot inside a policy artifact.
//!
//! The guest reserves a fixed run of bytes in its data: a 32-byte marker,
//! the settings' length (u32, little-endian), then `CAPACITY` bytes of
//! settings JSON padded with spaces. Writing other
//! settings there changes no offset or length in the component, so the same
//! compiled rules carry new settings without a Rust toolchain, and the one
//! sha256 of the file covers both. The guest reserves the slot with these
//! constants; the host and the artifact build read and write it.

use std::fmt;

/// The marker the slot starts with; exactly one per artifact.
pub const MAGIC: &[u8; 32] = b"provgate:settings-slot:v2\0\0\0\0\0\0\0";
/// Bytes of settings JSON the slot holds.
pub const CAPACITY: usize = 4096;
/// Where the settings' length (u32, little-endian) starts, after the marker.
pub const LEN_AT: usize = MAGIC.len();
/// Where the settings JSON starts, after its length.
pub const JSON_AT: usize = LEN_AT + 4;
/// The whole slot: marker, length, settings.
pub const LEN: usize = JSON_AT + CAPACITY;

#[derive(Debug, PartialEq, Eq)]
pub enum SlotError {
    /// No marker, or more than one: not a provgate policy component.
    Marker(usize),
    TooLarge(usize),
    Json(String),
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotError::Marker(0) => write!(f, "no settings slot found: not a provgate policy component"),
            SlotError::Marker(n) => write!(f, "{n} settings slots found, expected exactly one"),
            SlotError::TooLarge(n) => write!(f, "settings are {n} bytes once compacted; the slot holds {CAPACITY}"),
            SlotError::Json(e) => write!(f, "settings are not valid JSON: {e}"),
        }
    }
}

impl std::error::Error for SlotError {}

/// Compact JSON with sorted keys: the same settings always give the same
/// bytes, so the same artifact digest.
pub fn canonical(json: &[u8]) -> Result<Vec<u8>, SlotError> {
    let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| SlotError::Json(e.to_string()))?;
    serde_json::to_vec(&value).map_err(|e| SlotError::Json(e.to_string()))
}

fn slot_start(component: &[u8]) -> Result<usize, SlotError> {
    let mut found = component
        .windows(MAGIC.len())
        .enumerate()
        .filter(|(_, w)| *w == MAGIC)
        .map(|(i, _)| i + MAGIC.len());
    match (found.next(), found.count()) {
        (Some(start), 0) if component.len() >= start + 4 + CAPACITY => Ok(start),
        (None, _) => Err(SlotError::Marker(0)),
        (Some(_), more) => Err(SlotError::Marker(more + 1)),
    }
}

/// A copy of `component` with `settings` (already canonical) in its slot.
pub fn write(component: &[u8], settings: &[u8]) -> Result<Vec<u8>, SlotError> {
    if settings.len() > CAPACITY {
        return Err(SlotError::TooLarge(settings.len()));
    }
    let start = slot_start(component)?;
    let mut out = component.to_vec();
    let len = u32::try_from(settings.len()).map_err(|_| SlotError::TooLarge(settings.len()))?;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let slot = &mut out[start + 4..start + 4 + CAPACITY];
    slot.fill(b' ');
    slot[..settings.len()].copy_from_slice(settings);
    Ok(out)
}

/// The settings bytes in a component's slot (empty when none were written).
pub fn read(component: &[u8]) -> Result<&[u8], SlotError> {
    let start = slot_start(component)?;
    let len = u32::from_le_bytes([
        component[start],
        component[start + 1],
        component[start + 2],
        component[start + 3],
    ]);
    Ok(&component[start + 4..start + 4 + (len as usize).min(CAPACITY)])
}
