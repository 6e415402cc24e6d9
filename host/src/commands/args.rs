//! The argument groups several commands share, so that `verify`, `audit`
//! and `serve` spell, default and check them the same way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::input::credentials::AuthSources;
use crate::input::registry::RegistryOptions;
use crate::lookup::Source;
use crate::lookup::gitea::Token;

/// `--policy`, `--policy-digest` and `--policy-key`, and the registry
/// flags of the command they are part of (`--insecure-registry`,
/// `--authfile`, `--registry-timeout`: a `--policy oci://REF` is fetched
/// under the same rules as the images). Parsed by hand around
/// [`PolicyFlags`] so that it can read those flags where the command's
/// [`NetworkArgs`] declares them; a command without them (`replay`) fetches
/// with the defaults.
#[derive(Debug)]
pub struct PolicyArgs {
    pub policy: Option<PathBuf>,
    pub policy_digest: Option<String>,
    pub policy_key: Option<PathBuf>,
    /// The command's registry flags, as a `--policy oci://REF` uses them.
    pub registry: PolicyRegistry,
}

/// The flags of [`PolicyArgs`] themselves.
#[derive(Debug, Args)]
struct PolicyFlags {
    /// Policy artifact to run: a file, or an artifact in an OCI registry
    /// (oci://REGISTRY/REPO@sha256:… or :TAG), pulled through the local
    /// artifact cache [default: the one built into this binary].
    #[arg(long, value_name = "PATH|oci://REF")]
    policy: Option<PathBuf>,

    /// Refuse to run any artifact whose sha256 is not this (for oci://, the
    /// digest of its one layer: the artifact file).
    #[arg(long, value_name = "sha256:…", value_parser = policy_digest)]
    policy_digest: Option<String>,

    /// Require a valid cosign signature made with this public key (PEM,
    /// cosign.pub) on the manifest of a --policy oci://REF.
    #[arg(long, value_name = "FILE")]
    policy_key: Option<PathBuf>,
}

/// The registry flags a `--policy oci://REF` is fetched with.
#[derive(Clone, Debug, Default)]
pub struct PolicyRegistry {
    pub insecure: Vec<String>,
    pub authfile: Option<PathBuf>,
    pub timeout: Option<Duration>,
}

impl PolicyRegistry {
    pub fn options(&self) -> RegistryOptions {
        RegistryOptions {
            auth: AuthSources::from_env(self.authfile.clone()),
            platform: String::new(),
            insecure: self.insecure.clone(),
            timeout: self.timeout.unwrap_or(crate::input::registry::DEFAULT_TIMEOUT),
            // The operator's own flag, as for `verify`'s images.
            reach: crate::input::registry::Reach::Anywhere,
        }
    }

    /// What `matches` holds of [`NetworkArgs`]' registry flags: read, not
    /// taken, and nothing when the command has no such flags.
    fn from_matches(matches: &clap::ArgMatches) -> PolicyRegistry {
        PolicyRegistry {
            insecure: matches
                .try_get_many::<String>("insecure_registry")
                .ok()
                .flatten()
                .map(|values| values.cloned().collect())
                .unwrap_or_default(),
            authfile: matches.try_get_one::<PathBuf>("authfile").ok().flatten().cloned(),
            timeout: matches
                .try_get_one::<Duration>("registry_timeout")
                .ok()
                .flatten()
                .copied(),
        }
    }
}

impl clap::FromArgMatches for PolicyArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Self::from_arg_matches_mut(&mut matches.clone())
    }

    fn from_arg_matches_mut(matches: &mut clap::ArgMatches) -> Result<Self, clap::Error> {
        // Read before any flattened group after this one takes its values.
        let registry = PolicyRegistry::from_matches(matches);
        let flags = PolicyFlags::from_arg_matches_mut(matches)?;
        Ok(PolicyArgs {
            policy: flags.policy,
            policy_digest: flags.policy_digest,
            policy_key: flags.policy_key,
            registry,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for PolicyArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        PolicyFlags::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        PolicyFlags::augment_args_for_update(cmd)
    }
}

/// Where a policy is loaded from: what [`crate::commands::load_policy`]
/// takes (a path, or all of [`PolicyArgs`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct PolicyAt<'a> {
    /// A file or `oci://REF`; `None` for the built-in artifact.
    pub path: Option<&'a Path>,
    /// `--policy-key`.
    pub key: Option<&'a Path>,
    /// The registry flags for `oci://`; `None`: the defaults.
    pub registry: Option<&'a PolicyRegistry>,
}

impl<'a> From<Option<&'a Path>> for PolicyAt<'a> {
    fn from(path: Option<&'a Path>) -> Self {
        PolicyAt {
            path,
            ..PolicyAt::default()
        }
    }
}

impl<'a> From<Option<&'a PathBuf>> for PolicyAt<'a> {
    fn from(path: Option<&'a PathBuf>) -> Self {
        PolicyAt::from(path.map(PathBuf::as_path))
    }
}

impl PolicyArgs {
    /// Everything `load_policy` needs of these flags.
    pub fn path(&self) -> PolicyAt<'_> {
        PolicyAt {
            path: self.policy.as_deref(),
            key: self.policy_key.as_deref(),
            registry: Some(&self.registry),
        }
    }

    pub fn digest(&self) -> Option<&str> {
        self.policy_digest.as_deref()
    }
}

/// How images are fetched and commits looked up: the same flags, defaults
/// and checks for `verify`, `audit` and `serve`.
#[derive(Debug, Args)]
pub struct NetworkArgs {
    /// Platform whose labels are judged in a multi-platform image.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", default_value = "linux/amd64")]
    pub platform: String,

    /// Allow plain HTTP to this registry (HOST:PORT); repeatable. HTTPS otherwise.
    #[arg(long, value_name = "HOST:PORT", value_parser = registry_host)]
    pub insecure_registry: Vec<String>,

    /// Total time allowed for fetching one image from its registry.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    pub registry_timeout: Duration,

    /// Total time allowed for one Gitea look-up.
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = seconds)]
    pub gitea_timeout: Duration,

    /// Gitea look-ups in flight at once; the rest wait their turn, holding
    /// no thread.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_GITEA_CONCURRENCY,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub gitea_concurrency: u32,

    /// Registry credentials file (docker's config.json or containers'
    /// auth.json format) [default: $REGISTRY_AUTH_FILE, else
    /// $DOCKER_CONFIG/config.json, else ~/.docker/config.json].
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,

    /// Also trust the CA certificates in this PEM file, for every HTTPS
    /// connection (registry, Gitea, pins URL); repeatable. The system's trust
    /// store (or SSL_CERT_FILE / SSL_CERT_DIR) is trusted as well.
    #[arg(long = "ca-file", value_name = "PEM")]
    pub ca_files: Vec<PathBuf>,
}

/// Enough to keep a Gitea busy without queueing a CI run or an audit
/// behind it; a server with many distinct commits in flight may want more.
pub const DEFAULT_GITEA_CONCURRENCY: u32 = 64;

impl NetworkArgs {
    pub fn registry(&self) -> RegistryOptions {
        RegistryOptions {
            auth: AuthSources::from_env(self.authfile.clone()),
            platform: self.platform.clone(),
            insecure: self.insecure_registry.clone(),
            timeout: self.registry_timeout,
            // The user's own run: token realms and redirects lead anywhere
            // (`serve` guards them; see its settings).
            reach: crate::input::registry::Reach::Anywhere,
        }
    }

    /// Where this run's answers come from when nothing is replayed: Gitea,
    /// with the token from `GITEA_TOKEN`.
    pub fn gitea(&self) -> Source {
        Source::Gitea {
            token: Token::from_env(),
            timeout: self.gitea_timeout,
            concurrency: self.gitea_concurrency as usize,
        }
    }
}

/// A time flag's value, for clap: seconds (`2.5`) or a duration with a
/// unit (`5s`, `2m`, `1m30s`), positive and finite.
pub fn seconds(value: &str) -> Result<Duration, String> {
    let parsed = match value.parse::<f64>() {
        Ok(secs) => Duration::try_from_secs_f64(secs).ok(),
        Err(_) => humantime::parse_duration(value).ok(),
    };
    parsed
        .filter(|t| !t.is_zero())
        .ok_or_else(|| "must be a positive number of seconds (2.5) or a duration (5s, 2m, 1m30s)".to_string())
}

/// A `--policy-digest`, for clap: `sha256:` and 64 lower-case hex digits.
/// Anything else — an empty value from an unset CI variable, a short or
/// upper-case digest — is bad usage here, not a digest that fails to match.
pub fn policy_digest(value: &str) -> Result<String, String> {
    let hex = value.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(value.to_string())
    } else if value.is_empty() {
        Err("is empty (an unset variable?): give sha256: and 64 lower-case hex digits".into())
    } else {
        Err("give sha256: and 64 lower-case hex digits".into())
    }
}

/// A value that must say something, for clap: an empty or blank one is
/// almost always an unset CI variable (`--pin-source-sha "$SHA"`), and the
/// rules would read it as "no value given" and pass what was meant to be
/// checked.
pub fn non_blank(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err("is empty (an unset variable?); leave the flag out to give no value".into())
    } else {
        Ok(value.to_string())
    }
}

/// A registry as image references name it, for clap: `HOST` or
/// `HOST:PORT`. A scheme, path or user name would never match a reference,
/// so the flag would silently do nothing: refuse it.
pub fn registry_host(value: &str) -> Result<String, String> {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if plain {
        Ok(value.to_string())
    } else if value.contains("://") {
        Err("give HOST or HOST:PORT without a scheme (this flag is what allows plain HTTP)".into())
    } else {
        Err("give HOST or HOST:PORT, with no path, user name or spaces".into())
    }
}

#[cfg(test)]
mod tests {
    use super::{policy_digest, registry_host, seconds};
    use std::time::Duration;

    #[test]
    fn seconds_are_positive_and_finite() {
        assert_eq!(seconds("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(seconds("30"), Ok(Duration::from_secs(30)));
        for bad in ["0", "-1", "inf", "NaN", "", "ten", "0s", "-5s"] {
            assert!(seconds(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(seconds("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(seconds("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(seconds("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(seconds("750ms"), Ok(Duration::from_millis(750)));
    }

    #[test]
    fn a_policy_digest_is_sha256_and_64_lower_case_hex() {
        let good = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(policy_digest(&good), Ok(good.clone()));
        let upper = good.to_uppercase().replace("SHA256", "sha256");
        for bad in [
            "",
            "sha256:",
            "bogus",
            &upper,
            &good[..70],
            &format!("{good}0"),
            &good.replace("sha256:", "sha512:"),
            &format!(" {good}"),
        ] {
            let e = policy_digest(bad).expect_err(bad);
            assert!(e.contains("64 lower-case hex"), "{bad:?}: {e}");
        }
        assert!(policy_digest("").unwrap_err().contains("empty"));
    }

    #[test]
    fn a_registry_is_a_host_and_port_without_scheme_or_path() {
        for good in ["127.0.0.1:5000", "registry.example", "[::1]:5000", "Reg-1.example:443"] {
            assert_eq!(registry_host(good), Ok(good.to_string()));
        }
        assert!(registry_host("http://127.0.0.1:5000").unwrap_err().contains("scheme"));
        for bad in [
            "",
            "127.0.0.1:5000/v2",
            "user@registry.example",
            "registry.example ",
            "a b",
        ] {
            assert!(registry_host(bad).is_err(), "{bad:?} accepted");
        }
    }
}
