//! `GET /openapi.json`: docs/openapi.json as served, standing alone. In the
//! repository the document refers to the verdict's JSON Schema by file
//! (docs/schemas/verdict.schema.json, shared with the decision record's
//! schema); the server puts that schema in place of the reference, its own
//! `#/…` references moved under `#/components/schemas/Verdict/`.

use std::sync::LazyLock;

use serde_json::Value;

const DOCUMENT: &str = include_str!("../../../../docs/openapi.json");
const VERDICT: &str = include_str!("../../../../docs/schemas/verdict.schema.json");

/// Where the verdict's schema goes in the served document.
const VERDICT_AT: &str = "#/components/schemas/Verdict/";

static SERVED: LazyLock<String> =
    LazyLock::new(|| bundle(DOCUMENT, VERDICT).expect("docs/openapi.json bundles (unit-tested below)"));

/// The document, the same bytes for every request.
pub(super) fn document() -> &'static str {
    &SERVED
}

fn bundle(document: &str, verdict: &str) -> Result<String, String> {
    let mut document: Value = serde_json::from_str(document).map_err(|e| format!("docs/openapi.json: {e}"))?;
    let mut verdict: Value =
        serde_json::from_str(verdict).map_err(|e| format!("docs/schemas/verdict.schema.json: {e}"))?;
    if let Some(schema) = verdict.as_object_mut() {
        // The document's `jsonSchemaDialect` says the same.
        schema.remove("$schema");
    }
    rebase(&mut verdict);
    document["info"]["version"] = Value::from(env!("CARGO_PKG_VERSION"));
    let slot = document
        .pointer_mut("/components/schemas/Verdict")
        .ok_or("docs/openapi.json has no components.schemas.Verdict")?;
    *slot = verdict;
    serde_json::to_string_pretty(&document).map_err(|e| e.to_string())
}

/// `#/$defs/x` → `#/components/schemas/Verdict/$defs/x`, at every depth.
fn rebase(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, value) in object.iter_mut() {
                match value {
                    Value::String(target) if key == "$ref" => {
                        if let Some(inner) = target.strip_prefix("#/") {
                            *target = format!("{VERDICT_AT}{inner}");
                        }
                    }
                    other => rebase(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rebase),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_document_has_the_verdict_schema_in_place_with_its_references_resolving_inside_it() {
        let served: Value = serde_json::from_str(document()).unwrap();
        let verdict = &served["components"]["schemas"]["Verdict"];
        assert_eq!(verdict["title"], "provgate verdict", "{verdict}");
        assert!(verdict.get("$schema").is_none());
        let text = verdict.to_string();
        assert!(!text.contains("verdict.schema.json"), "{text}");
        let mut refs = 0;
        for (at, _) in text.match_indices("\"$ref\":\"") {
            let target = &text[at + 8..];
            let target = &target[..target.find('"').unwrap()];
            let pointer = target.strip_prefix('#').expect("an in-document reference");
            assert!(
                served.pointer(pointer).is_some(),
                "{target} resolves in the served document"
            );
            refs += 1;
        }
        assert!(refs >= 2, "the verdict schema's own references were checked: {refs}");
        assert_eq!(served["info"]["version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn the_repository_document_names_this_version() {
        let document: Value = serde_json::from_str(DOCUMENT).unwrap();
        assert_eq!(
            document["info"]["version"],
            env!("CARGO_PKG_VERSION"),
            "docs/openapi.json's info.version"
        );
    }
}
