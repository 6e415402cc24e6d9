//! One module per subcommand, each with its own arguments, and what several
//! of them share: argument groups ([`args`]), loading the policy, reading
//! what a past decision was told, output files and the async runtime.
//!
//! A command returns how it came out ([`Outcome`]) or an error whose chain
//! holds a typed error (`UsageError`, `PolicyError`, `FetchError`); `main`
//! alone turns either into an exit code.

pub mod args;
pub mod audit;
pub mod control_plane;
pub mod policy;
pub mod promote;
pub mod replay;
pub mod serve;
pub mod ship;
pub mod verify;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, anyhow};

use crate::lookup::Answered;
use crate::lookup::replay::Recording01;
use crate::policy::oci::{self, OciRef};
use crate::policy::signature::PublicKey;
use crate::policy::{Artifact, Limits, Policy, cache::CodeCache};
use crate::record::{self, Record};
use crate::usage::UsageError;
use args::PolicyAt;

/// How a command that ran to its end came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed, or a command that found nothing to object to.
    Allowed,
    /// Denied in enforce mode; for `replay`, some decision differs; for
    /// `audit`, a `--fail-on` status occurred.
    Denied,
    /// Stopped by a signal after writing what it had (`audit`).
    Interrupted(Signal),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// What `--replay FILE` holds: a decision record (0.2) or a 0.1 recording.
pub struct Replayed {
    /// The clock the recorded run used, when it says.
    pub now: Option<SystemTime>,
    pub answers: Vec<Answered>,
    /// The decision record, when it is one.
    pub record: Option<Record>,
}

impl Replayed {
    /// Every failure here is the caller's: the file is theirs.
    pub fn read(path: &Path) -> anyhow::Result<Replayed> {
        Replayed::parse(path).map_err(|e| UsageError::from(e).into())
    }

    fn parse(path: &Path) -> anyhow::Result<Replayed> {
        let what = format!("replay file {}", path.display());
        let bytes = path
            .to_str()
            .ok_or_else(|| anyhow!("{what}: the path is not UTF-8"))
            .and_then(crate::input::read_file_or_stdin)
            .with_context(|| format!("cannot read {what}"))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).with_context(|| format!("{what} is not JSON"))?;
        if value.get("lookups").is_some() {
            let old: Recording01 =
                serde_json::from_value(value).with_context(|| format!("{what} is not a provgate recording"))?;
            let now = old
                .now
                .as_deref()
                .map(record::parse_now)
                .transpose()
                .with_context(|| what.clone())?;
            return Ok(Replayed {
                now,
                answers: old.lookups,
                record: None,
            });
        }
        let record =
            record::from_value(value).with_context(|| format!("{what} is not a decision record or a 0.1 recording"))?;
        Ok(Replayed {
            now: Some(record::parse_now(&record.now)?),
            answers: record.answers.clone(),
            record: Some(record),
        })
    }
}

/// How many verdicts the loaded policy will give: the sandbox is sized for it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Verdicts {
    One,
    Many,
}

/// Loads the built-in artifact, the file at `at.path` or, for
/// `oci://REF`, the artifact in a registry (through the artifact cache,
/// signed with `at.key` when given); refuses any other digest than
/// `digest` when given; compiled and described.
pub fn load_policy<'a>(
    at: impl Into<PolicyAt<'a>>,
    digest: Option<&str>,
    verdicts: Verdicts,
) -> anyhow::Result<Policy> {
    let artifact = read_policy(at.into())?;
    if let Some(expected) = digest {
        artifact.require_digest(expected)?;
    }
    load_artifact(artifact, verdicts)
}

/// The artifact `at` names, checked (its digest, and for `oci://` its
/// manifest's and signature), not yet compiled.
pub fn read_policy(at: PolicyAt<'_>) -> anyhow::Result<Artifact> {
    let remote = at.path.and_then(Path::to_str).and_then(oci::strip);
    let Some(reference) = remote else {
        if at.key.is_some() {
            return Err(UsageError::msg(
                "--policy-key checks the cosign signature of a policy in a registry: give --policy oci://REF",
            )
            .into());
        }
        return Ok(Artifact::load(at.path)?);
    };
    let opts = at.registry.cloned().unwrap_or_default().options();
    let reference = OciRef::parse(reference).map_err(|e| UsageError::msg(format!("--policy: {e}")))?;
    let key = at.key.map(PublicKey::from_file).transpose().map_err(UsageError::msg)?;
    let resolved = block_on_own_thread(oci::resolve(&reference, &opts, key.as_ref()))??;
    Ok(resolved.artifact)
}

/// Runs `work` to its end on a thread of its own with a runtime of its
/// own: loading a policy happens before a command's runtime starts, or on
/// a blocking thread of `serve`'s.
pub fn block_on_own_thread<T: Send>(work: impl std::future::Future<Output = T> + Send) -> anyhow::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| current_thread().map(|runtime| runtime.block_on(work)))
            .join()
            .map_err(|_| anyhow!("loading the policy panicked"))?
    })
}

pub fn load_artifact(artifact: Artifact, verdicts: Verdicts) -> anyhow::Result<Policy> {
    tracing::info!(policy = %artifact.origin, digest = %artifact.digest, "loading policy");
    let cache = CodeCache::from_env();
    Ok(match verdicts {
        Verdicts::One => Policy::load_for_one_verdict(artifact, Limits::default(), cache.as_ref())?,
        Verdicts::Many => Policy::load(artifact, Limits::default(), cache.as_ref())?,
    })
}

/// A file for writing a run's output, checked now so that an unwritable
/// path fails before any work is done, and written only when the output is
/// ready ([`Output::replace`]): a path that is also an input (`--inspect
/// x.json --record x.json`) is read before it is overwritten.
pub fn create(path: &Option<PathBuf>, flag: &str) -> anyhow::Result<Option<Output>> {
    path.as_ref()
        .map(|p| {
            Output::open(p)
                .with_context(|| format!("cannot create {flag} {}", p.display()))
                .map_err(|e| UsageError::from(e).into())
        })
        .transpose()
}

/// An output file checked by [`create`]. A write that fails is the caller's
/// to mend (a full disk, a device named as the file), like a path that
/// cannot be created.
///
/// A regular file (or a path where none is yet) is replaced whole: the new
/// content goes to a temporary file beside it, `.<name>.provgate-<pid>-<n>.tmp`,
/// which is synced and then renamed over it. So a run that is killed, or
/// whose disk fills, leaves the previous file as it was (or no file), never
/// an empty or half-written one; the temporary file exists only while it is
/// written, and a run killed in that moment may leave it behind, under that
/// name. A symbolic link is followed: the file it names is replaced, the
/// link stays. Anything else (a terminal, a pipe, `/dev/null`) cannot be
/// replaced and is written in place, and so is a file in a directory
/// provgate may not create files in (emptied first, as before).
pub struct Output(Destination);

enum Destination {
    Replaced {
        /// The file replaced: the path given, or the file its link names.
        target: PathBuf,
        /// The file this run wrote (now at `target`), for [`Output::append`].
        written: Option<std::fs::File>,
    },
    /// Written where it is; a regular file is emptied first.
    InPlace { file: std::fs::File, regular: bool },
}

impl Output {
    fn open(path: &Path) -> std::io::Result<Output> {
        use std::io::ErrorKind;
        let existing = match std::fs::metadata(path) {
            Ok(meta) if !meta.is_file() => {
                // A directory fails here, as it always did.
                let file = std::fs::OpenOptions::new().write(true).open(path)?;
                return Ok(Output(Destination::InPlace { file, regular: false }));
            }
            // A file provgate may not write stays refused, though it could
            // be renamed over.
            Ok(_) => Some(std::fs::OpenOptions::new().write(true).open(path)?),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        // That a file can be made beside it is what the rename needs.
        match (temp_beside(&target), existing) {
            (Ok((probe, _)), _) => std::fs::remove_file(&probe)?,
            // A file provgate may write in a directory it may not add to:
            // written in place, as it always was, without the rename.
            (Err(e), Some(file)) if e.kind() == ErrorKind::PermissionDenied => {
                return Ok(Output(Destination::InPlace { file, regular: true }));
            }
            (Err(e), _) => return Err(e),
        }
        Ok(Output(Destination::Replaced { target, written: None }))
    }

    /// Replaces the file's content with `bytes`.
    pub fn replace(&mut self, bytes: &[u8]) -> Result<(), UsageError> {
        use std::io::{Seek, Write};
        let done = match &mut self.0 {
            Destination::InPlace { file, regular } => (|| {
                if *regular {
                    file.set_len(0)?;
                    file.rewind()?;
                }
                file.write_all(bytes)?;
                file.flush()
            })(),
            Destination::Replaced { target, written } => replace_file(target, bytes).map(|file| *written = Some(file)),
        };
        done.map_err(|e| UsageError::from(anyhow::Error::new(e)))
    }

    /// Appends to what this run has written so far (the first write of a
    /// run goes through [`Output::replace`]; without one, this is it).
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), UsageError> {
        match &mut self.0 {
            Destination::InPlace { file, .. }
            | Destination::Replaced {
                written: Some(file), ..
            } => std::io::Write::write_all(file, bytes).map_err(|e| UsageError::from(anyhow::Error::new(e))),
            Destination::Replaced { written: None, .. } => self.replace(bytes),
        }
    }
}

/// Writes `bytes` to a temporary file beside `target`, syncs it, gives it
/// `target`'s permissions and renames it over `target`: the file, open for
/// appending. On failure the temporary file is removed and `target` is as
/// it was.
fn replace_file(target: &Path, bytes: &[u8]) -> std::io::Result<std::fs::File> {
    use std::io::Write;
    let (temp, mut file) = temp_beside(target)?;
    let written = (|| {
        file.write_all(bytes)?;
        match std::fs::metadata(target) {
            Ok(old) => file.set_permissions(old.permissions())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        file.sync_all()?;
        std::fs::rename(&temp, target)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    // The rename itself outlives a crash once the directory is synced; a
    // file system that cannot sync a directory still has the new file.
    if let Ok(dir) = std::fs::File::open(parent_of(target)) {
        let _ = dir.sync_all();
    }
    Ok(file)
}

/// The directory `path` is in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// A new file `.<name>.provgate-<pid>-<n>.tmp` in `target`'s directory.
fn temp_beside(target: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = target
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path does not name a file"))?;
    loop {
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(
            ".provgate-{}-{}.tmp",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let temp = parent_of(target).join(temp_name);
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => return Ok((temp, file)),
            // Left by an earlier run of the same pid: take the next number.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A runtime for a command that does its work on one thread.
pub fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow!("cannot start the async runtime: {e}"))
}

/// A runtime whose workers are named after the command (`provgate-audit`).
pub fn multi_thread(name: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(name)
        .build()
        .context("cannot start the async runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn an_output_is_replaced_whole_and_only_when_written() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.md");
        std::fs::write(&path, "the last report").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let mut out = create(&Some(path.clone()), "--report").unwrap().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "the last report",
            "opening keeps it"
        );
        assert_eq!(names_in(dir.path()), ["report.md"], "the probe is gone");

        out.replace(b"the new one\n").unwrap();
        out.append(b"and more\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "the new one\nand more\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "the old file's permissions are kept");
        out.replace(b"again").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "again");
        assert_eq!(names_in(dir.path()), ["report.md"], "no temporary file is left");

        // Dropped before writing: no file where there was none.
        let never = dir.path().join("never.md");
        drop(create(&Some(never.clone()), "--report").unwrap());
        assert!(!never.exists());
    }

    #[test]
    fn a_link_is_followed_and_what_is_not_a_file_is_written_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.md");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.md");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        create(&Some(link.clone()), "--report")
            .unwrap()
            .unwrap()
            .replace(b"new")
            .unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");

        create(&Some(PathBuf::from("/dev/null")), "--report")
            .unwrap()
            .unwrap()
            .replace(b"gone")
            .unwrap();
        for refused in [dir.path().to_path_buf(), dir.path().join("no-such-dir").join("x.md")] {
            let err = create(&Some(refused.clone()), "--report").err().expect("refused");
            assert!(format!("{err:#}").contains("cannot create --report"), "{err:#}");
        }
    }
}
