//! The compiled-code cache: compiling the component costs tens of
//! milliseconds, loading precompiled code a fraction of one.
//!
//! Loading precompiled code is `unsafe` in wasmtime (it is machine code), so
//! the cache only ever reads files it wrote itself, from its own directory,
//! keyed by the artifact digest and the engine's compatibility hash, and
//! checks each file's sha256 (kept in a small `.sum` file beside it) before
//! loading it. A file that fails any check is ignored and rewritten, never
//! executed.
//!
//! The code file is wasmtime's own format, so wasmtime maps it straight
//! from the page cache instead of copying it into fresh memory: that, and
//! hashing through a small reused buffer, halved the load of a one-shot
//! `verify` (docs/benchmarks.md).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::policy::Artifact;

/// The `.sum` file: this tag, then the code file's sha256.
const SUM_TAG: &[u8; 8] = b"PGCWASM2";

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

    /// The code file; its checksum lives at the same path with `.sum`.
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
        let sum = std::fs::read(path.with_extension("sum")).ok()?;
        let intact = match (sum.strip_prefix(SUM_TAG.as_slice()), file_sha256(path)) {
            (Some(expected), Ok(actual)) => expected == actual.as_slice(),
            (_, Err(_)) => return None,
            (None, Ok(_)) => false,
        };
        if !intact {
            tracing::warn!(path = %path.display(), "ignoring a corrupt or tampered compiled-code cache entry");
            return None;
        }
        // SAFETY: the file is in our cache directory, under a name derived
        // from this artifact's digest and this engine's configuration, and
        // its checksum matches what we wrote; wasmtime additionally checks
        // that it was produced by this version and configuration. Entries
        // are replaced by rename, never rewritten in place, so the mapping
        // wasmtime makes cannot change under it.
        match unsafe { Component::deserialize_file(engine, path) } {
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
        let mut sum = SUM_TAG.to_vec();
        sum.extend_from_slice(&Sha256::digest(&payload));
        // Code first, then its sum: a reader racing the two renames sees a
        // mismatch and recompiles, never unchecked code.
        self.write_atomically(path, &payload)?;
        self.write_atomically(&path.with_extension("sum"), &sum)
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        let tmp = self
            .dir
            .join(format!(".tmp-{}-{:x}", std::process::id(), rand_suffix()));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        Ok(())
    }
}

/// sha256 of a file, read through one small buffer (reading it whole into a
/// fresh allocation cost more in page faults than the hashing itself).
fn file_sha256(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match std::io::Read::read(&mut file, &mut buf) {
            Ok(0) => return Ok(hasher.finalize().into()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
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
    use super::file_sha256;
    use sha2::{Digest, Sha256};

    #[test]
    fn the_streamed_file_hash_equals_the_hash_of_the_whole_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("code");
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        let whole: [u8; 32] = Sha256::digest(&bytes).into();
        assert_eq!(file_sha256(&path).expect("hash"), whole);
        assert_ne!(
            file_sha256(&path).expect("hash"),
            <[u8; 32]>::from(Sha256::digest(&bytes[1..]))
        );
    }
}
