//! The compiled-code cache: compiling the component costs tens of
//! milliseconds, loading precompiled code a fraction of one.
//!
//! Loading precompiled code is `unsafe` in wasmtime (it is machine code), so
//! an entry is only ever loaded when it is provably this user's own output
//! for this very artifact:
//!
//! - **The directory** must be owned by this user and writable by nobody
//!   else (no group or other write bit). Any other directory is refused with
//!   one warning naming it, and not used at all: nothing is read from it or
//!   written into it, and the policy is compiled.
//! - **The key.** Each entry's `.sum` file holds an HMAC-SHA256, under a
//!   per-user secret key, of (the artifact's sha256 digest, the engine's
//!   compatibility hash, the code file's sha256). The key lives *outside*
//!   the cache directory, at `$XDG_STATE_HOME/provgate/cache-key` (else
//!   `~/.local/state/provgate/cache-key`): 32 random bytes from the OS,
//!   created once with mode 0600 (written to a fresh `O_EXCL` file, then
//!   linked into place, so no reader ever sees half a key). A key file not
//!   owned by this user, readable or writable by group or others, in a
//!   directory others may write, or inside the cache directory itself, is
//!   refused. Without a usable key (no home, a read-only state directory)
//!   the cache is off, with a warning; never an error.
//!
//!   So whoever can write the cache directory but not read the key (a CI
//!   cache restored from another branch, another user's files) cannot make
//!   an entry pass: copying artifact A's entry over artifact B's names fails
//!   B's HMAC, and the entry is recompiled and rewritten. On a runner whose
//!   state directory does not survive the job, restored entries never pass
//!   and are recompiled once per job: the price of not trusting them.
//! - **The file.** The code file is opened once, checked to be a regular
//!   file owned by this user and writable by nobody else, hashed through
//!   that open file, and (on Linux) handed to wasmtime as
//!   `/proc/self/fd/N`: the very file hashed, even if its name is replaced
//!   in between. wasmtime additionally checks that it was produced by this
//!   version and configuration.
//!
//! A file that fails any check is ignored and rewritten, never executed.
//! Entries are written to a fresh temporary file (mode 0600) and renamed
//! into place, code first and its `.sum` last.
//!
//! The code file is wasmtime's own format, so wasmtime maps it straight
//! from the page cache instead of copying it into fresh memory: that, and
//! hashing through a small reused buffer, halved the load of a one-shot
//! `verify` (docs/benchmarks.md). The checks above add a few `stat`s and a
//! 32-byte read.

use std::fs::{File, Metadata, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::policy::Artifact;

/// The `.sum` file: this tag, then the entry's HMAC-SHA256.
const SUM_TAG: &[u8; 8] = b"PGCWASM3";
/// What the HMAC's message starts with, so the key signs nothing else.
const MAC_DOMAIN: &[u8] = b"provgate compiled-code cache entry v3\0";
const KEY_BYTES: usize = 32;

pub struct CodeCache {
    dir: PathBuf,
    /// Where the per-user key lives; `None` when no place for it is known
    /// (no `$XDG_STATE_HOME`, no `$HOME`): then the cache is off.
    key_file: Option<PathBuf>,
}

/// The per-user secret the `.sum` files are keyed with.
struct Key([u8; KEY_BYTES]);

/// What an entry is bound to: the artifact it was compiled from and the
/// engine configuration it was compiled for.
struct Binding<'a> {
    artifact_digest: &'a str,
    engine: u64,
}

impl CodeCache {
    /// A cache in `dir`, keyed by the per-user key at its default place.
    pub fn new(dir: PathBuf) -> CodeCache {
        CodeCache {
            dir,
            key_file: default_key_file(),
        }
    }

    /// A cache in `dir` keyed by the key at `key_file` (created if missing).
    pub fn with_key_file(dir: PathBuf, key_file: PathBuf) -> CodeCache {
        CodeCache {
            dir,
            key_file: Some(key_file),
        }
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

    /// The code file; its HMAC lives at the same path with `.sum`.
    fn path_for(&self, binding: &Binding<'_>) -> PathBuf {
        let hex = binding.artifact_digest.trim_start_matches("sha256:");
        self.dir.join(format!("{hex}-{:016x}.cwasm", binding.engine))
    }

    /// Cached code when a valid entry exists, else compile and store it.
    /// Cache trouble is logged and never fatal: compiling always works.
    pub fn load_or_compile(&self, engine: &Engine, artifact: &Artifact) -> Result<Component, String> {
        let compile = || Component::new(engine, &artifact.bytes).map_err(|e| format!("{e:#}"));
        let key = match self.prepare() {
            Ok(key) => key,
            Err(reason) => {
                tracing::warn!("not using the compiled-code cache: {reason}");
                return compile();
            }
        };
        let binding = Binding {
            artifact_digest: &artifact.digest,
            engine: engine_hash(engine),
        };
        let path = self.path_for(&binding);
        if let Some(component) = self.load(engine, &path, &key, &binding) {
            return Ok(component);
        }
        let component = compile()?;
        if let Err(e) = self.store(&path, &component, &key, &binding) {
            tracing::warn!("could not write the compiled-code cache entry {}: {e:#}", quoted(&path));
        }
        Ok(component)
    }

    /// Creates the directory if it is missing, refuses one this user does
    /// not own alone, and reads (or creates) the key. Every refusal is one
    /// sentence naming the path.
    fn prepare(&self) -> Result<Key, String> {
        let shown = quoted(&self.dir);
        create_private_dir(&self.dir).map_err(|e| format!("cannot create its directory {shown}: {e}"))?;
        let meta = std::fs::metadata(&self.dir).map_err(|e| format!("cannot read its directory {shown}: {e}"))?;
        if !meta.is_dir() {
            return Err(format!("{shown} is not a directory"));
        }
        private_to(meta.uid(), meta.mode(), current_uid(), 0o022)
            .map_err(|why| format!("the directory {shown} {why}; fix it (chmod go-w) or set PROVGATE_CACHE_DIR"))?;
        let key_file = self
            .key_file
            .as_deref()
            .ok_or_else(|| "there is nowhere to keep its key: neither $XDG_STATE_HOME nor $HOME is set".to_string())?;
        if inside(key_file, &self.dir) {
            return Err(format!(
                "its key {} would be inside the cache directory {shown}, where whoever writes entries could \
                 read or replace it",
                quoted(key_file)
            ));
        }
        Key::load_or_create(key_file)
    }

    fn load(&self, engine: &Engine, path: &Path, key: &Key, binding: &Binding<'_>) -> Option<Component> {
        let sum = read_small(&path.with_extension("sum"))?;
        let code = OpenOptions::new()
            .read(true)
            .custom_flags(NO_SURPRISES)
            .open(path)
            .ok()?;
        let shown = || quoted(path);
        let meta = code.metadata().ok()?;
        if let Err(why) = regular_and_private(&meta, 0o022) {
            tracing::warn!("ignoring the compiled-code cache entry {}: it {why}", shown());
            return None;
        }
        if meta.len() > MAX_CODE_BYTES {
            tracing::warn!(
                "ignoring the compiled-code cache entry {}: it is larger than {} MiB; recompiling",
                shown(),
                MAX_CODE_BYTES >> 20
            );
            return None;
        }
        if sum.starts_with(b"PGCWASM") && !sum.starts_with(SUM_TAG) {
            tracing::debug!(
                "a compiled-code cache entry {} from an older provgate; recompiling",
                shown()
            );
            return None;
        }
        let code_sha = hash_open_file(&code).ok()?;
        let expected = key.mac(binding, &code_sha);
        let intact = match sum.strip_prefix(SUM_TAG.as_slice()) {
            Some(mac) => bool::from(mac.ct_eq(&expected)),
            None => false,
        };
        if !intact {
            tracing::warn!(
                "ignoring a corrupt or tampered compiled-code cache entry {} (its .sum does not vouch for this \
                 artifact, engine and code); recompiling",
                shown()
            );
            return None;
        }
        // The very file just hashed, not whatever the name points at now.
        let fd_path = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&code)));
        let load_path = if std::fs::metadata(&fd_path).is_ok() {
            fd_path.as_path()
        } else {
            path
        };
        // SAFETY: the file was written by this user into a directory only
        // this user may write, it is open and hashed above, and its HMAC
        // under this user's key binds that hash to this artifact's digest
        // and this engine's configuration; wasmtime additionally checks
        // that it was produced by this version and configuration. Where
        // `/proc/self/fd` exists, wasmtime maps the same open file that was
        // hashed. Entries are replaced by rename, never rewritten in place
        // (and no one else may write them), so the mapping cannot change
        // under it.
        let loaded = unsafe { Component::deserialize_file(engine, load_path) };
        drop(code);
        match loaded {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("ignoring an unusable compiled-code cache entry {}: {e:#}", shown());
                None
            }
        }
    }

    fn store(&self, path: &Path, component: &Component, key: &Key, binding: &Binding<'_>) -> anyhow::Result<()> {
        let payload = component.serialize().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let mut sum = SUM_TAG.to_vec();
        sum.extend_from_slice(&key.mac(binding, &Sha256::digest(&payload).into()));
        // Code first, then its sum: a reader racing the two renames sees a
        // mismatch and recompiles, never unchecked code.
        self.write_atomically(path, &payload)?;
        self.write_atomically(&path.with_extension("sum"), &sum)
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        let (tmp, mut file) = create_temp(&self.dir)?;
        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        drop(file);
        written.and_then(|()| std::fs::rename(&tmp, path)).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        Ok(())
    }
}

impl Key {
    /// Reads the key at `path`, creating it (and its directory, mode 0700)
    /// when there is none.
    fn load_or_create(path: &Path) -> Result<Key, String> {
        let shown = quoted(path);
        match Key::read(path) {
            Ok(Some(key)) => return Ok(key),
            Ok(None) => {}
            Err(why) => return Err(format!("its key {shown} {why}")),
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        create_private_dir(dir).map_err(|e| format!("cannot create its key {shown}: {e}"))?;
        let mut key = [0u8; KEY_BYTES];
        os_random(&mut key).map_err(|e| format!("cannot create its key {shown}: no randomness: {e}"))?;
        // Written whole into a fresh file, then linked into place: a
        // concurrent first run either wins the link or reads the winner's
        // whole key, never half of one.
        let create = || -> std::io::Result<()> {
            let (tmp, mut file) = create_temp(dir)?;
            let written = file
                .write_all(&key)
                .and_then(|()| file.sync_all())
                .and_then(|()| std::fs::hard_link(&tmp, path));
            let _ = std::fs::remove_file(&tmp);
            match written {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                other => other,
            }
        };
        create().map_err(|e| format!("cannot create its key {shown}: {e}"))?;
        match Key::read(path) {
            Ok(Some(key)) => Ok(key),
            Ok(None) => Err(format!("its key {shown} vanished as it was created")),
            Err(why) => Err(format!("its key {shown} {why}")),
        }
    }

    /// The key at `path`; `None` when there is no file. An error says what
    /// is wrong with the file (or its directory) in a phrase.
    fn read(path: &Path) -> Result<Option<Key>, String> {
        let mut file = match OpenOptions::new().read(true).custom_flags(NO_SURPRISES).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot be read (a symbolic link is refused): {e}")),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let meta = std::fs::metadata(dir).map_err(|e| format!("is in a directory that cannot be read: {e}"))?;
            private_to(meta.uid(), meta.mode(), current_uid(), 0o022)
                .map_err(|why| format!("is in a directory that {why}"))?;
        }
        let meta = file.metadata().map_err(|e| format!("cannot be read: {e}"))?;
        regular_and_private(&meta, 0o077)?;
        let mut key = [0u8; KEY_BYTES];
        let mut extra = [0u8; 1];
        file.read_exact(&mut key)
            .map_err(|_| format!("is not {KEY_BYTES} bytes long; remove it to make a new one"))?;
        if file.read(&mut extra).map_err(|e| format!("cannot be read: {e}"))? != 0 {
            return Err(format!("is not {KEY_BYTES} bytes long; remove it to make a new one"));
        }
        Ok(Some(Key(key)))
    }

    /// HMAC-SHA256 of what an entry is bound to, under this key.
    fn mac(&self, binding: &Binding<'_>, code_sha: &[u8; 32]) -> [u8; 32] {
        let digest = binding.artifact_digest.as_bytes();
        hmac_sha256(
            &self.0,
            &[
                MAC_DOMAIN,
                &(digest.len() as u64).to_le_bytes(),
                digest,
                &binding.engine.to_le_bytes(),
                code_sha,
            ],
        )
    }
}

/// A path in a message: quoted and escaped (`provgate_contract::text`), and
/// whole — a warning that names a directory must name all of it.
fn quoted(path: &Path) -> String {
    provgate_contract::text::quote(&path.display().to_string(), 4096)
}

/// `$XDG_STATE_HOME/provgate/cache-key`, else
/// `~/.local/state/provgate/cache-key`.
fn default_key_file() -> Option<PathBuf> {
    let state = match std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").filter(|d| !d.is_empty())?)
            .join(".local")
            .join("state"),
    };
    Some(state.join("provgate").join("cache-key"))
}

/// The engine's compatibility hash, as a number for the file name.
fn engine_hash(engine: &Engine) -> u64 {
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    h.finish()
}

/// HMAC-SHA256 (RFC 2104) of the concatenated `parts` under `key`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let mut inner = Sha256::new();
    inner.update(pad(0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether a file or directory with this owner and mode is `me`'s alone:
/// owned by `me`, none of the `forbidden` permission bits set. The phrase
/// says what is wrong ("is owned by uid 0, not by this user (uid 1000)").
fn private_to(owner: u32, mode: u32, me: u32, forbidden: u32) -> Result<(), String> {
    if owner != me {
        return Err(format!("is owned by uid {owner}, not by this user (uid {me})"));
    }
    let loose = mode & forbidden;
    if loose != 0 {
        let whom = match (loose & 0o070 != 0, loose & 0o007 != 0) {
            (true, true) => "group and others",
            (true, false) => "its group",
            _ => "others",
        };
        let what = if forbidden & 0o044 != 0 {
            "readable or writable"
        } else {
            "writable"
        };
        return Err(format!("is {what} by {whom} (mode {:03o})", mode & 0o777));
    }
    Ok(())
}

fn regular_and_private(meta: &Metadata, forbidden: u32) -> Result<(), String> {
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    private_to(meta.uid(), meta.mode(), current_uid(), forbidden)
}

/// Whether `path` is in `dir` (or below it), comparing real paths; parts
/// of `path` that do not exist yet are taken as written.
fn inside(path: &Path, dir: &Path) -> bool {
    fn real(path: &Path) -> PathBuf {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        for existing in absolute.ancestors() {
            if let Ok(base) = std::fs::canonicalize(existing) {
                let rest = absolute.strip_prefix(existing).unwrap_or(Path::new(""));
                return base.join(rest);
            }
        }
        absolute
    }
    real(path).starts_with(real(dir))
}

/// How every cache file is opened: never through a symbolic link, and
/// without blocking, so a FIFO or a device put in the cache's place (a
/// restored CI cache keeps FIFOs) cannot hold the open; each caller then
/// refuses what is not a regular file before reading a byte.
const NO_SURPRISES: i32 = libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;

/// A compiled entry larger than this is not one provgate wrote (the
/// artifact itself is at most 16 MiB) and is not hashed: recompiled.
const MAX_CODE_BYTES: u64 = 256 << 20;

/// A small regular file whole (a `.sum`), or `None`: missing, unreadable,
/// not a regular file or not small.
fn read_small(path: &Path) -> Option<Vec<u8>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(NO_SURPRISES)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::with_capacity(64);
    file.take(256).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// sha256 of an open file, read through one small buffer (reading it whole
/// into a fresh allocation cost more in page faults than the hashing itself).
fn hash_open_file(mut file: &File) -> std::io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(hasher.finalize().into()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A new file in `dir` that did not exist before (`O_EXCL`), mode 0600.
fn create_temp(dir: &Path) -> std::io::Result<(PathBuf, File)> {
    let mut attempts = 0;
    loop {
        let mut suffix = [0u8; 8];
        os_random(&mut suffix)?;
        let tmp = dir.join(format!(
            ".tmp-{}-{:016x}",
            std::process::id(),
            u64::from_le_bytes(suffix)
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 8 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Fills `buf` from the operating system's random source.
fn os_random(buf: &mut [u8]) -> std::io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut filled = 0;
        while filled < buf.len() {
            let rest = &mut buf[filled..];
            // SAFETY: the pointer and length describe `rest`, which is writable.
            let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            filled += n as usize;
        }
        Ok(())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        File::open("/dev/urandom")?.read_exact(buf)
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_streamed_file_hash_equals_the_hash_of_the_whole_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("code");
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        let whole: [u8; 32] = Sha256::digest(&bytes).into();
        let hash = |p: &Path| hash_open_file(&File::open(p).expect("open")).expect("hash");
        assert_eq!(hash(&path), whole);
        assert_ne!(hash(&path), <[u8; 32]>::from(Sha256::digest(&bytes[1..])));
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // Test cases 1, 2 and 6 (a key longer than the block).
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], &[b"Hi ", b"There"])),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", &[b"what do ya want for nothing?"])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn the_mac_binds_the_artifact_the_engine_and_the_code() {
        let key = Key([7; KEY_BYTES]);
        let a = Binding {
            artifact_digest: "sha256:aa",
            engine: 1,
        };
        let mac = key.mac(&a, &[1; 32]);
        let b = Binding {
            artifact_digest: "sha256:bb",
            engine: 1,
        };
        assert_ne!(mac, key.mac(&b, &[1; 32]), "another artifact");
        let other_engine = Binding {
            artifact_digest: "sha256:aa",
            engine: 2,
        };
        assert_ne!(mac, key.mac(&other_engine, &[1; 32]), "another engine");
        assert_ne!(mac, key.mac(&a, &[2; 32]), "other code");
        assert_ne!(mac, Key([8; KEY_BYTES]).mac(&a, &[1; 32]), "another key");
    }

    #[test]
    fn only_a_directory_of_ones_own_that_no_one_else_may_write_is_private() {
        assert_eq!(private_to(1000, 0o40700, 1000, 0o022), Ok(()));
        assert_eq!(private_to(1000, 0o40755, 1000, 0o022), Ok(()));
        let other = private_to(0, 0o40700, 1000, 0o022).unwrap_err();
        assert!(
            other.contains("owned by uid 0") && other.contains("uid 1000"),
            "{other}"
        );
        let group = private_to(1000, 0o40770, 1000, 0o022).unwrap_err();
        assert!(
            group.contains("writable by its group") && group.contains("770"),
            "{group}"
        );
        let world = private_to(1000, 0o41777, 1000, 0o022).unwrap_err();
        assert!(world.contains("group and others"), "{world}");
        // The key: not even readable by anyone else.
        assert_eq!(private_to(1000, 0o100600, 1000, 0o077), Ok(()));
        let readable = private_to(1000, 0o100644, 1000, 0o077).unwrap_err();
        assert!(
            readable.contains("readable or writable by group and others"),
            "{readable}"
        );
    }

    #[test]
    fn a_key_is_created_once_private_and_read_back_the_same() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state").join("provgate").join("cache-key");
        let first = Key::load_or_create(&path).expect("created");
        let meta = std::fs::metadata(&path).expect("the key exists");
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(meta.len(), KEY_BYTES as u64);
        assert_eq!(Key::load_or_create(&path).expect("read").0, first.0);
        assert_ne!(first.0, [0; KEY_BYTES]);
        // No temporary file left beside it.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["cache-key"]);
    }

    #[test]
    fn a_key_others_may_read_a_short_key_or_a_link_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cache-key");
        std::fs::write(&path, [1u8; KEY_BYTES]).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        let why = Key::load_or_create(&path).err().expect("refused");
        assert!(why.contains("readable or writable"), "{why}");

        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        assert!(Key::load_or_create(&path).is_ok());
        std::fs::write(&path, [1u8; 5]).unwrap();
        let why = Key::load_or_create(&path).err().expect("refused");
        assert!(why.contains("32 bytes"), "{why}");

        let link = dir.path().join("link-key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let why = Key::load_or_create(&link).err().expect("refused");
        assert!(why.contains("symbolic link"), "{why}");
    }

    #[test]
    fn a_key_inside_the_cache_directory_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = CodeCache::with_key_file(dir.path().to_path_buf(), dir.path().join("keys").join("cache-key"));
        let why = cache.prepare().err().expect("refused");
        assert!(why.contains("inside the cache directory"), "{why}");
        assert!(!dir.path().join("keys").exists(), "a key was written into the cache");
    }
}
