//! The policy artifact as a file: its bytes, where they came from, and the
//! sha256 that names it in every verdict.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::digest::sha256_digest;
use crate::policy::PolicyError;

/// The artifact `host/build.rs` built from `guest/` and `policies/molecule.json`.
static BUILTIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/provgate-policy.wasm"));
/// Its `sha256:` digest, computed by the build script.
static BUILTIN_DIGEST: &str = include_str!(concat!(env!("OUT_DIR"), "/provgate-policy.digest"));

/// Policy artifacts are small (tens of KiB); refuse to read anything huge.
pub(crate) const MAX_ARTIFACT_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    BuiltIn,
    File(PathBuf),
    /// Pulled from a registry (or its cache): `oci://registry/repo@sha256:…`.
    Registry(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built-in policy"),
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Registry(reference) => f.write_str(reference),
        }
    }
}

#[derive(Clone)]
pub struct Artifact {
    pub bytes: Cow<'static, [u8]>,
    pub origin: Origin,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
}

impl fmt::Debug for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Artifact")
            .field("origin", &self.origin)
            .field("digest", &self.digest)
            .finish()
    }
}

impl Artifact {
    pub fn builtin() -> Artifact {
        Artifact {
            bytes: Cow::Borrowed(BUILTIN),
            origin: Origin::BuiltIn,
            digest: BUILTIN_DIGEST.to_string(),
        }
    }

    pub fn from_bytes(bytes: Cow<'static, [u8]>, origin: Origin) -> Artifact {
        let digest = sha256_digest(&bytes);
        Artifact { bytes, origin, digest }
    }

    pub fn from_file(path: &Path) -> Result<Artifact, PolicyError> {
        let read = || -> std::io::Result<Vec<u8>> {
            let file = std::fs::File::open(path)?;
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_ARTIFACT_BYTES + 1), &mut bytes)?;
            Ok(bytes)
        };
        let bytes = read().map_err(|e| PolicyError::Load(format!("cannot read policy {}: {e}", path.display())))?;
        if bytes.len() as u64 > MAX_ARTIFACT_BYTES {
            return Err(PolicyError::Load(format!(
                "policy {} is larger than {} MiB: not a provgate policy artifact",
                path.display(),
                MAX_ARTIFACT_BYTES / 1024 / 1024
            )));
        }
        Ok(Artifact::from_bytes(
            Cow::Owned(bytes),
            Origin::File(path.to_path_buf()),
        ))
    }

    /// The built-in artifact, or the file at `path`.
    pub fn load(path: Option<&Path>) -> Result<Artifact, PolicyError> {
        match path {
            None => Ok(Artifact::builtin()),
            Some(p) => Artifact::from_file(p),
        }
    }

    /// `--policy-digest`: refuse to run any other artifact.
    pub fn require_digest(&self, expected: &str) -> Result<(), PolicyError> {
        if self.digest == expected.trim() {
            Ok(())
        } else {
            Err(PolicyError::DigestMismatch {
                origin: self.origin.to_string(),
                expected: expected.trim().to_string(),
                actual: self.digest.clone(),
            })
        }
    }
}

/// What `provgate --version` says after the program's name: the version
/// and the digest of the artifact built in, `0.2.0 (policy sha256:…)`, so
/// that a deployed binary names the policy it runs without `--policy`
/// (clap prints `provgate 0.2.0 (policy sha256:…)`).
pub fn version_line() -> &'static str {
    static LINE: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("{} (policy {})", env!("CARGO_PKG_VERSION"), BUILTIN_DIGEST.trim()));
    &LINE
}

#[cfg(test)]
mod tests {
    use super::{Artifact, BUILTIN};

    #[test]
    fn the_version_line_names_the_builtin_digest() {
        let line = super::version_line();
        assert_eq!(
            line,
            format!("{} (policy {})", env!("CARGO_PKG_VERSION"), Artifact::builtin().digest)
        );
    }
    use crate::digest::sha256_digest;

    #[test]
    fn the_build_time_digest_of_the_builtin_artifact_is_its_sha256() {
        assert_eq!(Artifact::builtin().digest, sha256_digest(BUILTIN));
    }
}
