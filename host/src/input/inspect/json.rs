//! Reading typed values out of the input, each failure naming the JSON
//! path it happened at (`image["linux/amd64"].config.Labels`).
//!
//! Keys in a path are JSON string literals, not [`crate::text::quote`]d:
//! a path is something to paste into `jq`, and JSON's own escapes are the
//! ones that read back.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::InspectError;

/// `container.Labels` (the container at `path`): missing or `null` is no labels.
pub(super) fn labels_in(
    container: Option<Map<String, Value>>,
    path: &str,
) -> Result<BTreeMap<String, String>, InspectError> {
    let Some(mut container) = container else {
        return Ok(BTreeMap::new());
    };
    let Some(labels) = take_object(&mut container, "Labels", path)? else {
        return Ok(BTreeMap::new());
    };
    let labels_path = field_path(path, "Labels");
    labels
        .into_iter()
        .map(|(key, value)| match value {
            Value::String(value) => Ok((key, value)),
            other => Err(wrong(field_path(&labels_path, &key), "a string label value", &other)),
        })
        .collect()
}

/// `obj[key]`, with `null` read as missing.
pub(super) fn take(obj: &mut Map<String, Value>, key: &str) -> Option<Value> {
    obj.remove(key).filter(|value| !value.is_null())
}

pub(super) fn take_object(
    obj: &mut Map<String, Value>,
    key: &str,
    parent: &str,
) -> Result<Option<Map<String, Value>>, InspectError> {
    match take(obj, key) {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(wrong(field_path(parent, key), "an object", &other)),
    }
}

pub(super) fn take_string(
    obj: &mut Map<String, Value>,
    key: &str,
    parent: &str,
) -> Result<Option<String>, InspectError> {
    match take(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong(field_path(parent, key), "a string", &other)),
    }
}

/// An array of strings; missing or `null` is empty.
pub(super) fn take_strings(obj: &mut Map<String, Value>, key: &str, parent: &str) -> Result<Vec<String>, InspectError> {
    let path = field_path(parent, key);
    match take(obj, key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s),
                other => Err(wrong(format!("{path}[{i}]"), "a string", &other)),
            })
            .collect(),
        Some(other) => Err(wrong(path, "an array of strings", &other)),
    }
}

pub(super) fn wrong(path: String, expected: &'static str, found: &Value) -> InspectError {
    InspectError::WrongType {
        path,
        expected,
        found: kind(found),
    }
}

pub(super) fn missing(path: String, expected: &'static str) -> InspectError {
    InspectError::Missing { path, expected }
}

pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `parent.key` for a plain key, `parent["key"]` for any other (label keys
/// have dots); a bare key at the top level.
pub(super) fn field_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .enumerate()
            .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
    match (plain, parent.is_empty()) {
        (true, true) => key.to_owned(),
        (true, false) => format!("{parent}.{key}"),
        (false, _) => format!("{parent}[{}]", key_literal(key)),
    }
}

/// `key` as a JSON string, cut after 80 characters so a message stays short.
/// JSON escapes only U+0000-U+001F; DEL and the C1 controls (U+0080-U+009F,
/// U+009B is a terminal's CSI) are escaped too, so a key never reaches a
/// terminal raw.
pub(super) fn key_literal(key: &str) -> String {
    const MAX_CHARS: usize = 80;
    let (kept, cut) = match key.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => (&key[..cut], "…"),
        None => (key, ""),
    };
    let json = Value::String(kept.to_owned()).to_string();
    let mut out = String::with_capacity(json.len() + cut.len());
    for c in json.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out.push_str(cut);
    out
}

/// At most `max` keys, as in a path, then how many more.
pub(super) fn list<'a>(keys: impl ExactSizeIterator<Item = &'a str>, max: usize) -> String {
    let total = keys.len();
    let mut out = keys.take(max).map(key_literal).collect::<Vec<_>>().join(", ");
    if total > max {
        out.push_str(&format!(" and {} more", total - max));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::InspectOptions;
    use super::super::test_support::err;

    #[test]
    fn non_string_label_value_error_names_the_label() {
        let json = br#"[{"Id": "sha256:c", "RepoTags": ["a:1"], "RepoDigests": ["a@sha256:1"],
                         "Config": {"Labels": {"ok": "yes", "foo": 42}}}]"#;
        assert_eq!(
            err(json, &InspectOptions::default()),
            "[0].Config.Labels.foo: expected a string label value, found a number"
        );

        let json = br#"{"Name": "r/a", "Digest": "sha256:1", "Labels": {"org.opencontainers.image.revision": null}}"#;
        assert_eq!(
            err(json, &InspectOptions::default()),
            r#"Labels["org.opencontainers.image.revision"]: expected a string label value, found null"#
        );

        let json = br#"{"name": "r/a:1", "manifest": {"digest": "sha256:1"},
                        "image": {"linux/amd64": {"os": "linux", "config": {"Labels": {"molecule.workflow.run_id": 4242}}}}}"#;
        assert_eq!(
            err(json, &InspectOptions::default()),
            r#"image["linux/amd64"].config.Labels["molecule.workflow.run_id"]: expected a string label value, found a number"#
        );
    }

    #[test]
    fn control_characters_in_a_key_are_escaped_in_messages() {
        let json = "{\"Name\": \"r/a\", \"Digest\": \"sha256:1\", \"Labels\": {\"a\u{7f}\u{9b}2J\\u001b\": 1}}";
        let e = err(json.as_bytes(), &InspectOptions::default());
        assert_eq!(
            e,
            r#"Labels["a\u007f\u009b2J\u001b"]: expected a string label value, found a number"#
        );
    }

    #[test]
    fn long_label_key_is_cut_short_in_messages() {
        let key = "k.".repeat(5000);
        let json = format!(r#"{{"Name": "r/a", "Digest": "sha256:1", "Labels": {{"{key}": 1}}}}"#);
        let e = err(json.as_bytes(), &InspectOptions::default());
        assert!(e.len() < 300, "{} bytes: {e:.300}", e.len());
        assert!(e.starts_with(r#"Labels["k.k."#), "{e:.300}");
        assert!(e.contains("…"), "{e:.300}");
    }
}
