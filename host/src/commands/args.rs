//! The argument groups several commands share, so that `verify`, `audit`
//! and `serve` spell, default and check them the same way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::input::credentials::AuthSources;
use crate::input::registry::RegistryOptions;
use crate::lookup::Source;
use crate::lookup::gitea::Token;

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Policy artifact to run [default: the one built into this binary].
    #[arg(long, value_name = "PATH")]
    pub policy: Option<PathBuf>,

    /// Refuse to run any artifact whose sha256 is not this.
    #[arg(long, value_name = "sha256:…")]
    pub policy_digest: Option<String>,
}

impl PolicyArgs {
    pub fn path(&self) -> Option<&Path> {
        self.policy.as_deref()
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
    #[arg(long, value_name = "HOST:PORT")]
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

/// A flag's value in seconds, for clap: positive and finite.
pub fn seconds(value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|t| !t.is_zero())
        .ok_or_else(|| "must be a positive number of seconds".to_string())
}

#[cfg(test)]
mod tests {
    use super::seconds;
    use std::time::Duration;

    #[test]
    fn seconds_are_positive_and_finite() {
        assert_eq!(seconds("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(seconds("30"), Ok(Duration::from_secs(30)));
        for bad in ["0", "-1", "inf", "NaN", "", "ten"] {
            assert!(seconds(bad).is_err(), "{bad:?} accepted");
        }
    }
}
