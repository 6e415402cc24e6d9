//! The compiled-code cache: compiling the component costs tens of
//! milliseconds, loading precompiled code a fraction of one.
//!
//! Loading precompiled code is `unsafe` in wasmtime (it is machine code), so
//! the cache only ever reads files it wrote itself, from its own directory,
//! keyed by the artifact digest and the engine's compatibility hash, and
//! checks each file's sha256 before loading it. A file that fails any check
//! is ignored and rewritten, never executed.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::policy::Artifact;

const HEADER: &[u8; 8] = b"PGCWASM1";

pub struct CodeCache {
    dir: PathBuf,
}

impl CodeCache {
    pub fn new(dir: PathBuf) -> CodeCache {
        CodeCache { dir }
    }

    /// `$PROVGATE_CACHE_DIR`, else `$XDG_CACHE_HOME/provgate`, else
    /// `~/.cache/provgate`; `PROVGATE_CACHE_DIR=off` disables the cache.
    pub fn from_env() -> Option<CodeCache> {
        let dir = match std::env::var_os("PROVGATE_CACHE_DIR") {
            Some(d) if d == "off" => return None,
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => match std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
                Some(d) => PathBuf::from(d).join("provgate"),
                None => PathBuf::from(std::env::var_os("HOME")?).join(".cache").join("provgate"),
            },
        };
        Some(CodeCache::new(dir))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_for(&self, engine: &Engine, artifact: &Artifact) -> PathBuf {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let hex = artifact.digest.trim_start_matches("sha256:");
        self.dir.join(format!("{hex}-{:016x}.cwasm", h.finish()))
    }

    /// Cached code when a valid entry exists, else compile and store it.
    /// Cache trouble is logged and never fatal: compiling always works.
    pub fn load_or_compile(&self, engine: &Engine, artifact: &Artifact) -> Result<Component, String> {
        let path = self.path_for(engine, artifact);
        if let Some(component) = self.load(engine, &path) {
            return Ok(component);
        }
        let component = Component::new(engine, &artifact.bytes).map_err(|e| format!("{e:#}"))?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), "could not write the compiled-code cache: {e:#}");
        }
        Ok(component)
    }

    fn load(&self, engine: &Engine, path: &Path) -> Option<Component> {
        let bytes = std::fs::read(path).ok()?;
        let Some(payload) = verified_payload(&bytes) else {
            tracing::warn!(path = %path.display(), "ignoring a corrupt or tampered compiled-code cache entry");
            return None;
        };
        // SAFETY: the file is in our cache directory, under a name derived
        // from this artifact's digest and this engine's configuration, and
        // its checksum matches what we wrote; wasmtime additionally checks
        // that it was produced by this version and configuration.
        match unsafe { Component::deserialize(engine, payload) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring an unusable compiled-code cache entry: {e:#}");
                None
            }
        }
    }

    fn store(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        let payload = component.serialize().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        create_private_dir(&self.dir)?;
        let tmp = self
            .dir
            .join(format!(".tmp-{}-{:x}", std::process::id(), rand_suffix()));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(HEADER)?;
        file.write_all(&Sha256::digest(&payload))?;
        file.write_all(&payload)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        Ok(())
    }
}

/// The payload of a cache file whose header and checksum are intact.
fn verified_payload(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes.strip_prefix(HEADER.as_slice())?;
    let (sum, payload) = rest.split_at_checked(32)?;
    (Sha256::digest(payload).as_slice() == sum).then_some(payload)
}

fn rand_suffix() -> u64 {
    let mut h = DefaultHasher::new();
    std::time::SystemTime::now().hash(&mut h);
    std::thread::current().id().hash(&mut h);
    h.finish()
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::verified_payload;
    use sha2::{Digest, Sha256};

    #[test]
    fn a_flipped_bit_makes_the_entry_unloadable() {
        let payload = b"machine code".to_vec();
        let mut file = super::HEADER.to_vec();
        file.extend_from_slice(&Sha256::digest(&payload));
        file.extend_from_slice(&payload);
        assert_eq!(verified_payload(&file), Some(payload.as_slice()));
        let last = file.len() - 1;
        file[last] ^= 1;
        assert_eq!(verified_payload(&file), None);
        assert_eq!(verified_payload(b"PGCWASM1short"), None);
    }
}
