//! Platform names (`os/arch[/variant]`) and the choice of one platform's
//! image, for `--inspect` buildx output and for a registry's index alike:
//! both compare names in the normal form containerd gives them, so that
//! `--platform` means the same whichever way the facts are gathered.

use serde_json::{Map, Value};

/// The normal form containerd's `platforms.Normalize` gives, which is how
/// buildx writes its platform keys.
pub(crate) fn normalize(platform: &str) -> String {
    let lower = platform.to_ascii_lowercase();
    let mut parts = lower.split('/');
    let (Some(os), Some(arch), variant, None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return lower;
    };
    let variant = variant.unwrap_or("");
    let (arch, variant) = match (arch, variant) {
        ("amd64" | "x86_64" | "x86-64", "v1") => ("amd64", ""),
        ("amd64" | "x86_64" | "x86-64", v) => ("amd64", v),
        ("arm64" | "aarch64", "8" | "v8" | "v8.0") => ("arm64", ""),
        ("arm64" | "aarch64", v) => ("arm64", v),
        ("armhf", _) => ("arm", "v7"),
        ("armel", _) => ("arm", "v6"),
        ("arm", "" | "7") => ("arm", "v7"),
        ("arm", "5") => ("arm", "v5"),
        ("arm", "6") => ("arm", "v6"),
        ("arm", "8") => ("arm", "v8"),
        ("i386", v) => ("386", v),
        (a, v) => (a, v),
    };
    if variant.is_empty() {
        format!("{os}/{arch}")
    } else {
        format!("{os}/{arch}/{variant}")
    }
}

/// The key of a buildx platform map that names `wanted`: the exact key if
/// there is one, else the first that is equal once normalised.
pub(crate) fn find_key<'a>(map: &'a Map<String, Value>, wanted: &str) -> Option<&'a String> {
    if let Some((key, _)) = map.get_key_value(wanted) {
        return Some(key);
    }
    let normal = normalize(wanted);
    map.keys().find(|k| normalize(k) == normal)
}

/// The entry of an image index (OCI index or Docker manifest list) for
/// `wanted`, compared in normal form: its `(os/arch[/variant], digest)`.
/// Without one, the platforms the index does list, attestations left out,
/// each as [`crate::text::shown`] makes it.
pub(crate) fn choose_in_index(index: &Value, wanted: &str) -> Result<(String, String), Vec<String>> {
    let wanted_normal = normalize(wanted);
    let mut available = Vec::new();
    for entry in index.get("manifests").and_then(Value::as_array).into_iter().flatten() {
        let Some(p) = entry.get("platform") else { continue };
        let field = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default();
        let (os, arch, variant) = (field("os"), field("architecture"), field("variant"));
        if os == "unknown" || arch == "unknown" {
            continue; // attestation manifests
        }
        let name = if variant.is_empty() {
            format!("{os}/{arch}")
        } else {
            format!("{os}/{arch}/{variant}")
        };
        let digest = entry.get("digest").and_then(Value::as_str);
        if let Some(digest) = digest.filter(|_| normalize(&name) == wanted_normal) {
            return Ok((name, digest.to_string()));
        }
        // The names are the registry's: quoted unless plain, for the message.
        available.push(crate::text::shown(&name));
    }
    Err(available)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_compared_in_containerds_normal_form() {
        assert_eq!(normalize("linux/arm"), "linux/arm/v7");
        assert_eq!(normalize("linux/arm/v6"), "linux/arm/v6");
        assert_eq!(normalize("linux/amd64/v3"), "linux/amd64/v3");
    }
}
