//! `provgate policy inspect`, `build`, `push`, `pull` and `digest`.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;

use super::args::{NetworkArgs, PolicyAt, PolicyRegistry};
use super::{Outcome, Verdicts};
use crate::policy::oci::{self, OciRef};
use crate::policy::{Artifact, Limits, Origin, Policy, PolicyError, cache::CodeCache};
use crate::usage::UsageError;
use provgate_contract::slot;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print an artifact's name, version, digest, WIT world, rules and settings.
    Inspect {
        /// Artifact to describe: a file or oci://REF [default: the built-in one].
        path: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: InspectFormat,
        /// Require a valid cosign signature made with this public key (PEM)
        /// on the manifest of an oci://REF.
        #[arg(long, value_name = "FILE")]
        policy_key: Option<PathBuf>,
        #[command(flatten)]
        network: Box<NetworkArgs>,
    },
    /// Write a new artifact: the same compiled rules with other settings inside.
    #[command(after_help = "The settings file has exactly these keys:\n  \
        {\"gitea_base_url\": \"https://git.example.org\", \"allowed_owners\": [\"my-org\"],\n   \
        \"created_max_skew_seconds\": 300, \"on_unavailable\": \"deny\"}")]
    Build {
        /// Settings JSON (see policies/molecule.json).
        #[arg(long, value_name = "FILE")]
        settings: PathBuf,
        /// Where to write the new artifact.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Artifact whose compiled rules to reuse [default: the built-in one].
        #[arg(long, value_name = "PATH")]
        from: Option<PathBuf>,
    },
    /// Push an artifact to an OCI registry (the CNCF Wasm OCI artifact
    /// layout: its one layer is the file, so the layer digest is the policy
    /// digest every verdict names). Prints the pinned reference
    /// oci://REGISTRY/REPO@sha256:<manifest> and the artifact digest.
    Push {
        /// The artifact file (see `policy build`).
        file: PathBuf,
        /// Where: oci://REGISTRY/REPO:TAG.
        target: String,
        /// org.opencontainers.image.source: where the policy's settings live.
        #[arg(long, value_name = "URL", value_parser = super::args::non_blank)]
        source: Option<String>,
        /// org.opencontainers.image.revision: the commit they were built from.
        #[arg(long, value_name = "SHA", value_parser = super::args::non_blank)]
        revision: Option<String>,
        #[command(flatten)]
        network: Box<NetworkArgs>,
    },
    /// Fetch an artifact from an OCI registry into a file, every byte
    /// checked (the manifest against the reference's digest, the artifact
    /// against the layer's).
    Pull {
        /// oci://REGISTRY/REPO@sha256:… or oci://REGISTRY/REPO:TAG.
        reference: String,
        /// Where to write the artifact.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Require a valid cosign signature made with this public key (PEM).
        #[arg(long, value_name = "FILE")]
        policy_key: Option<PathBuf>,
        #[command(flatten)]
        network: Box<NetworkArgs>,
    },
    /// Print an artifact's digest (sha256:…) and nothing else: of a file,
    /// of the one layer of oci://REF (checked), or of the built-in artifact.
    Digest {
        /// A file or oci://REF [default: the built-in artifact].
        target: Option<PathBuf>,
        /// Require a valid cosign signature made with this public key (PEM).
        #[arg(long, value_name = "FILE")]
        policy_key: Option<PathBuf>,
        #[command(flatten)]
        network: Box<NetworkArgs>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InspectFormat {
    Text,
    Json,
}

pub fn run(cmd: &PolicyCommand) -> anyhow::Result<Outcome> {
    match cmd {
        PolicyCommand::Inspect {
            path,
            format,
            policy_key,
            network,
        } => inspect(path.as_deref(), *format, policy_key.as_deref(), network),
        PolicyCommand::Build { settings, out, from } => build(settings, out, from.as_deref()),
        PolicyCommand::Push {
            file,
            target,
            source,
            revision,
            network,
        } => push(file, target, source, revision, network),
        PolicyCommand::Pull {
            reference,
            out,
            policy_key,
            network,
        } => pull(reference, out, policy_key.as_deref(), network),
        PolicyCommand::Digest {
            target,
            policy_key,
            network,
        } => digest(target.as_deref(), policy_key.as_deref(), network),
    }
}

impl PolicyCommand {
    /// The network flags of a subcommand that may talk to a registry
    /// (`inspect`, `push`, `pull`, `digest`); `None` for `build`.
    pub fn network(&self) -> Option<&NetworkArgs> {
        match self {
            PolicyCommand::Inspect { network, .. }
            | PolicyCommand::Push { network, .. }
            | PolicyCommand::Pull { network, .. }
            | PolicyCommand::Digest { network, .. } => Some(&**network),
            PolicyCommand::Build { .. } => None,
        }
    }
}

/// The registry flags of `network`, with its CA files trusted (`main`
/// does that only for the commands `Command::network` names; the first
/// call counts, so a second one here is harmless).
fn registry_of(network: &NetworkArgs) -> anyhow::Result<PolicyRegistry> {
    crate::tls::add_ca_files(&network.ca_files)?;
    Ok(PolicyRegistry {
        insecure: network.insecure_registry.clone(),
        authfile: network.authfile.clone(),
        timeout: Some(network.registry_timeout),
    })
}

/// `oci://REF`, or a usage error naming what was given.
fn oci_reference(given: &str, what: &str) -> anyhow::Result<OciRef> {
    if oci::strip(given).is_none() {
        return Err(UsageError::msg(format!(
            "{what} {}: give oci://REGISTRY/REPO:TAG or oci://REGISTRY/REPO@sha256:…",
            crate::text::quote(given)
        ))
        .into());
    }
    OciRef::parse(given).map_err(|e| UsageError::msg(e.to_string()).into())
}

fn push(
    file: &Path,
    target: &str,
    source: &Option<String>,
    revision: &Option<String>,
    network: &NetworkArgs,
) -> anyhow::Result<Outcome> {
    let registry = registry_of(network)?;
    let target = oci_reference(target, "the target")?;
    if target.digest().is_some() || target.tag().is_none() {
        return Err(UsageError::msg(format!(
            "the target oci://{} must name a tag (oci://REGISTRY/REPO:TAG), not a digest",
            target.reference
        ))
        .into());
    }
    // Only a usable policy is pushed: it loads, and describes itself.
    let policy = super::load_policy(Some(file), None, Verdicts::One)?;
    let description = policy.description();
    let annotations = oci::Annotations {
        source: source.clone(),
        revision: revision.clone(),
        version: Some(description.version.clone()),
        title: Some(description.name.clone()),
    };
    let bytes = policy.artifact().bytes.clone();
    let created = oci::created_now();
    let opts = registry.options();
    let pushed = super::block_on_own_thread(oci::push(&target, &bytes, description, &annotations, &created, &opts))??;
    println!("{}", pushed.pinned);
    println!("digest  {}", pushed.artifact_digest);
    Ok(Outcome::Allowed)
}

fn pull(reference: &str, out: &Path, key: Option<&Path>, network: &NetworkArgs) -> anyhow::Result<Outcome> {
    let registry = registry_of(network)?;
    oci_reference(reference, "the reference")?;
    let mut output = super::create(&Some(out.to_path_buf()), "--out")?.expect("a path was given");
    let at = PolicyAt {
        path: Some(Path::new(reference)),
        key,
        registry: Some(&registry),
    };
    let artifact = super::read_policy(at)?;
    output.replace(&artifact.bytes)?;
    let crate::policy::Origin::Registry(pinned) = &artifact.origin else {
        unreachable!("an oci:// reference is loaded from a registry")
    };
    println!("wrote {} ({} bytes)", out.display(), artifact.bytes.len());
    println!("digest  {}", artifact.digest);
    println!("from    {pinned}");
    Ok(Outcome::Allowed)
}

fn digest(target: Option<&Path>, key: Option<&Path>, network: &NetworkArgs) -> anyhow::Result<Outcome> {
    let registry = registry_of(network)?;
    let at = PolicyAt {
        path: target,
        key,
        registry: Some(&registry),
    };
    let artifact = super::read_policy(at)?;
    println!("{}", artifact.digest);
    Ok(Outcome::Allowed)
}

fn inspect(
    path: Option<&Path>,
    format: InspectFormat,
    key: Option<&Path>,
    network: &NetworkArgs,
) -> anyhow::Result<Outcome> {
    let registry = registry_of(network)?;
    let at = PolicyAt {
        path,
        key,
        registry: Some(&registry),
    };
    let policy = super::load_policy(at, None, Verdicts::One)?;
    let d = policy.description();
    let mut out = std::io::stdout().lock();
    let written = match format {
        InspectFormat::Json => serde_json::to_writer_pretty(&mut out, d)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        InspectFormat::Text => (|| {
            writeln!(out, "name      {}", d.name)?;
            writeln!(out, "version   {}", d.version)?;
            writeln!(out, "digest    {}", d.digest)?;
            writeln!(out, "world     {}", d.world)?;
            writeln!(out, "source    {}", policy.artifact().origin)?;
            writeln!(out, "rules     {}", d.rules.join(", "))?;
            writeln!(out, "settings")?;
            writeln!(out, "  gitea_base_url            {}", d.settings.gitea_base_url)?;
            writeln!(
                out,
                "  allowed_owners            {}",
                d.settings.allowed_owners.join(", ")
            )?;
            writeln!(
                out,
                "  created_max_skew_seconds  {}",
                d.settings.created_max_skew_seconds
            )?;
            writeln!(out, "  on_unavailable            {}", d.settings.on_unavailable)
        })(),
    };
    written.context("cannot write to stdout")?;
    Ok(Outcome::Allowed)
}

/// The largest settings file `policy build` reads.
const MAX_SETTINGS_FILE_BYTES: u64 = 64 << 10;

/// Writes the settings into a copy of the base artifact, then loads the
/// result: the guest itself validates the settings, so an invalid field is
/// refused here, at build time, with the guest's message naming it.
fn build(settings_path: &Path, out: &Path, from: Option<&Path>) -> anyhow::Result<Outcome> {
    let shown = settings_path.display();
    // The slot holds 4 KiB once compacted; a settings file many times that
    // is not one (or is a device that never ends).
    let raw = crate::input::read_at_most(&settings_path.to_string_lossy(), MAX_SETTINGS_FILE_BYTES)
        .with_context(|| format!("cannot read settings {shown}"))
        .map_err(UsageError::from)?;
    if let Some(repeated) = repeated_key(&raw) {
        return Err(UsageError::msg(format!("settings {shown}: {repeated}")).into());
    }
    let settings = slot::canonical(&raw).map_err(|e| UsageError::msg(format!("settings {shown}: {e}")))?;
    let base = Artifact::load(from)?;
    let bytes = slot::write(&base.bytes, &settings).map_err(|e| match e {
        slot::SlotError::TooLarge(_) => anyhow::Error::from(UsageError::msg(format!("settings {shown}: {e}"))),
        // The base artifact has no settings slot provgate can write.
        _ => PolicyError::Load(format!("{}: {e}", base.origin)).into(),
    })?;
    let artifact = Artifact::from_bytes(Cow::Owned(bytes), Origin::File(out.to_path_buf()));
    let policy = match Policy::load_for_one_verdict(artifact, Limits::default(), CodeCache::from_env().as_ref()) {
        Ok(p) => p,
        Err(PolicyError::Settings { reason, .. }) => {
            return Err(UsageError::msg(format!("settings {shown}: {reason}")).into());
        }
        Err(e) => return Err(e.into()),
    };

    let tmp = out.with_extension("wasm.tmp");
    std::fs::write(&tmp, &policy.artifact().bytes)
        .and_then(|()| std::fs::rename(&tmp, out))
        .with_context(|| format!("cannot write {}", out.display()))
        .map_err(UsageError::from)?;
    let d = policy.description();
    println!("wrote {} ({} bytes)", out.display(), policy.artifact().bytes.len());
    println!("digest  {}", d.digest);
    println!(
        "gitea   {}  owners {}",
        d.settings.gitea_base_url,
        d.settings.allowed_owners.join(", ")
    );
    Ok(Outcome::Allowed)
}

/// The first key that one JSON object of `raw` holds twice, at any depth,
/// described: serde_json (and so the artifact) keeps the last of them,
/// while a reviewer reading the file sees the first. `None` when there is
/// none, or when `raw` is not JSON at all ([`slot::canonical`] says why).
fn repeated_key(raw: &[u8]) -> Option<String> {
    use serde::de::DeserializeSeed;
    let found = std::cell::RefCell::new(None);
    let mut reader = serde_json::Deserializer::from_slice(raw);
    let walk = Walk {
        path: "settings".into(),
        found: &found,
    };
    match walk.deserialize(&mut reader) {
        // Only the walk's own error (a "data" error) comes with a key.
        Err(e) if e.classify() == serde_json::error::Category::Data => found.into_inner().map(|(path, key)| {
            format!(
                "the key {} appears twice in {} (the second time at line {}, column {}); \
                 only the last would count, so remove one",
                crate::text::quote(&key),
                crate::text::shown(&path),
                e.line(),
                e.column()
            )
        }),
        _ => None,
    }
}

/// Walks any JSON value, refusing an object that holds a key twice: its
/// path (as the guest names fields, `settings.a[0].b`) and the key are left
/// in `found`. Every other value is accepted and dropped.
struct Walk<'a> {
    path: String,
    found: &'a std::cell::RefCell<Option<(String, String)>>,
}

impl Walk<'_> {
    fn at(&self, path: String) -> Self {
        Walk {
            path,
            found: self.found,
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let mut index = 0;
        while items
            .next_element_seed(self.at(format!("{}[{index}]", self.path)))?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = entries.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                *self.found.borrow_mut() = Some((self.path.clone(), key));
                return Err(serde::de::Error::custom("a key appears twice"));
            }
            entries.next_value_seed(self.at(format!("{}.{key}", self.path)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::repeated_key;

    #[test]
    fn a_key_repeated_at_any_depth_is_named_with_where_it_is() {
        let top = repeated_key(br#"{"gitea_base_url": "https://a.example", "gitea_base_url": "https://b.example"}"#)
            .expect("a repeated top-level key");
        assert!(top.contains("\"gitea_base_url\" appears twice in settings "), "{top}");
        assert!(top.contains("line 1, column"), "{top}");
        let nested = repeated_key(b"{\"a\": [1, {\"b\": {\"c\": 1,\n \"c\": 2}}]}").expect("a repeated nested key");
        assert!(nested.contains("\"c\" appears twice in settings.a[1].b "), "{nested}");
        assert!(nested.contains("line 2, column"), "{nested}");
        // Quoted as any outside value is: a control character is escaped.
        let odd = repeated_key(b"{\"x\\u001b\": 1, \"x\\u001b\": 2}").expect("a repeated odd key");
        assert!(!odd.contains('\u{1b}'), "{odd:?}");
    }

    #[test]
    fn distinct_keys_or_text_that_is_not_json_are_left_to_the_json_reader() {
        for ok in [
            &br#"{"gitea_base_url": "https://g.example", "allowed_owners": ["a", "a"]}"#[..],
            br#"{"a": {"x": 1}, "b": {"x": 1}, "c": [{"x": 1}, {"x": 2}]}"#,
            br#"[1, "two", null, true, 2.5, -3]"#,
            br#"{"gitea_base_url": "#,
            b"not json",
            b"",
        ] {
            assert_eq!(repeated_key(ok), None, "{}", String::from_utf8_lossy(ok));
        }
    }
}
