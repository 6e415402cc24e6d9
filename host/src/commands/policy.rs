//! `provgate policy inspect` and `provgate policy build`.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;

use super::{Outcome, Verdicts};
use crate::policy::{Artifact, Limits, Origin, Policy, PolicyError, cache::CodeCache};
use crate::usage::UsageError;
use provgate_contract::slot;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print an artifact's name, version, digest, WIT world, rules and settings.
    Inspect {
        /// Artifact to describe [default: the built-in one].
        path: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: InspectFormat,
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InspectFormat {
    Text,
    Json,
}

pub fn run(cmd: &PolicyCommand) -> anyhow::Result<Outcome> {
    match cmd {
        PolicyCommand::Inspect { path, format } => inspect(path.as_deref(), *format),
        PolicyCommand::Build { settings, out, from } => build(settings, out, from.as_deref()),
    }
}

fn inspect(path: Option<&Path>, format: InspectFormat) -> anyhow::Result<Outcome> {
    let policy = super::load_policy(path, None, Verdicts::One)?;
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
