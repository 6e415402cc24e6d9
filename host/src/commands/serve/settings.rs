//! What `serve`'s command line decided, checked before anything listens.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::args::ServeArgs;
use crate::commands::args::PolicyRegistry;
use crate::input::registry::{Reach, RegistryOptions};
use crate::lookup::gitea::Token;
use crate::record::Record;
use crate::text::quote;
use crate::usage::UsageError;

pub(super) struct Settings {
    pub gitea_timeout: Duration,
    pub gitea_concurrency: usize,
    pub decision_log: Option<DecisionLog>,
    pub registry: RegistryOptions,
    pub shutdown_timeout: Duration,
    pub policy_path: Option<PathBuf>,
    pub policy_digest: Option<String>,
    /// `--policy-key`: a `--policy oci://REF` is fetched again with it on
    /// every reload and refresh.
    pub policy_key: Option<PathBuf>,
    /// The registry flags a `--policy oci://REF` is fetched with.
    pub policy_registry: PolicyRegistry,
    /// `--policy-refresh`: how often the tag of `--policy oci://REPO:TAG`
    /// is resolved again (checked: a tag, signed with `--policy-key`).
    pub policy_refresh: Option<Duration>,
    /// Lower-cased `host[:port]`s.
    pub allow: Vec<String>,
    /// sha256 of the bearer token, compared in constant time.
    pub auth: Option<[u8; 32]>,
    pub gitea_token: Option<Token>,
}

impl Settings {
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Settings> {
        let auth = args.auth_token_env.as_deref().map(auth_digest).transpose()?;
        let allow = allow_list(&args.allow_registry)?;
        for insecure in &args.network.insecure_registry {
            if !allow.contains(&insecure.trim().to_ascii_lowercase()) {
                tracing::warn!(
                    registry = %insecure,
                    "--insecure-registry names a registry that --allow-registry does not: requests for it get 403"
                );
            }
        }
        let decision_log = args.decision_log.as_deref().map(DecisionLog::open).transpose()?;
        if let Some(every) = args.policy_refresh {
            check_refresh(args.policy.policy.as_deref(), args.policy.policy_key.is_some(), every)?;
        }
        Ok(Settings {
            gitea_timeout: args.network.gitea_timeout,
            gitea_concurrency: args.network.gitea_concurrency as usize,
            decision_log,
            registry: RegistryOptions {
                reach: reach(args),
                ..args.network.registry()
            },
            shutdown_timeout: args.shutdown_timeout,
            policy_path: args.policy.policy.clone(),
            policy_digest: args.policy.policy_digest.clone(),
            policy_key: args.policy.policy_key.clone(),
            policy_registry: args.policy.registry.clone(),
            policy_refresh: args.policy_refresh,
            allow,
            auth,
            gitea_token: Token::from_env(),
        })
    }
}

/// `--policy-refresh` follows a tag in a registry, and a tag can be moved
/// by anyone who may push to it: only an artifact signed with
/// `--policy-key` is taken from it.
fn check_refresh(policy: Option<&std::path::Path>, signed: bool, every: Duration) -> Result<(), UsageError> {
    let shown = |p: &std::path::Path| quote(&p.to_string_lossy());
    let reference = match policy {
        Some(path) => match path.to_str().and_then(crate::policy::oci::strip) {
            Some(reference) => reference,
            None => {
                return Err(UsageError::msg(format!(
                    "--policy-refresh follows a tag in a registry (--policy oci://REPO:TAG); \
                     --policy {} is a file: send SIGHUP to reload it",
                    shown(path)
                )));
            }
        },
        None => {
            return Err(UsageError::msg(
                "--policy-refresh follows a tag in a registry: give --policy oci://REPO:TAG",
            ));
        }
    };
    let parsed = crate::policy::oci::OciRef::parse(reference).map_err(|e| UsageError::msg(format!("--policy: {e}")))?;
    if parsed.digest().is_some() {
        return Err(UsageError::msg(format!(
            "--policy-refresh follows a tag, and --policy oci://{} names a digest, which never moves: \
             leave out --policy-refresh, or give oci://REPO:TAG",
            parsed.reference
        )));
    }
    if !signed {
        return Err(UsageError::msg(format!(
            "--policy-refresh {every:?} follows the moving tag oci://{}: give --policy-key too, so that \
             only an artifact signed with it is ever swapped in",
            parsed.reference
        )));
    }
    Ok(())
}

/// `--decision-log`: records are handed to a thread of their own that
/// writes and flushes them, so no request waits on the disk.
pub(crate) struct DecisionLog {
    lines: std::sync::mpsc::Sender<Vec<u8>>,
}

impl DecisionLog {
    fn open(target: &str) -> anyhow::Result<DecisionLog> {
        let mut out: Box<dyn std::io::Write + Send> = if target == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(target)
                    .with_context(|| format!("cannot open --decision-log {target}"))
                    .map_err(UsageError::from)?,
            )
        };
        let (lines, received) = std::sync::mpsc::channel::<Vec<u8>>();
        let target = target.to_owned();
        std::thread::Builder::new()
            .name("provgate-decisions".into())
            .spawn(move || {
                while let Ok(line) = received.recv() {
                    // One whole line per write; the OS appends it at once.
                    if let Err(e) = out.write_all(&line).and_then(|()| out.flush()) {
                        tracing::error!(target = %target, "cannot write the decision log: {e}");
                    }
                }
            })
            .context("cannot start the decision-log writer")?;
        Ok(DecisionLog { lines })
    }

    pub(crate) fn write(&self, record: &Record) {
        let _ = self.lines.send(record.line());
    }
}

/// The sha256 of the bearer token in the environment variable `name`.
fn auth_digest(name: &str) -> Result<[u8; 32], UsageError> {
    let flag = format!("--auth-token-env {name}");
    let value = match std::env::var(name) {
        Ok(value) => value,
        Err(std::env::VarError::NotPresent) => {
            return Err(UsageError::msg(format!(
                "{flag}: the environment variable {name} is not set"
            )));
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(UsageError::msg(format!(
                "{flag}: the value of {name} is not valid Unicode"
            )));
        }
    };
    // A trailing newline from a secret file would otherwise lock every caller out.
    let token = value.trim();
    crate::secrets::register(token);
    if token.is_empty() {
        return Err(UsageError::msg(format!(
            "{flag}: the environment variable {name} is empty"
        )));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(UsageError::msg(format!(
            "{flag}: the token must be visible ASCII characters without spaces"
        )));
    }
    Ok(Sha256::digest(token.as_bytes()).into())
}

/// Where an allowed registry may send this server next: its own
/// `HOST:PORT`, the hosts of `--allow-auth-host` (token realms) and
/// `--allow-redirect-host` (redirects), and hosts whose every address is
/// public. A caller picks the image, so a registry must not be able to
/// make the server call its own or its network's internal addresses.
fn reach(args: &ServeArgs) -> Reach {
    let lower = |hosts: &[String]| hosts.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
    Reach::Guarded {
        auth_hosts: lower(&args.allow_auth_host),
        redirect_hosts: lower(&args.allow_redirect_host),
    }
}

/// `--allow-registry` entries, checked and lower-cased.
fn allow_list(entries: &[String]) -> Result<Vec<String>, UsageError> {
    entries
        .iter()
        .map(|entry| {
            let host = entry.trim().to_ascii_lowercase();
            let plain = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
            if plain {
                Ok(host)
            } else {
                Err(UsageError::msg(format!(
                    "--allow-registry {}: expected HOST or HOST:PORT as written in image references \
                     (no scheme, path or user name)",
                    quote(entry)
                )))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_auth_and_redirect_hosts_make_the_guarded_reach() {
        use clap::Parser;
        #[derive(Parser)]
        struct Serve {
            #[command(flatten)]
            args: ServeArgs,
        }
        let parse = |extra: &[&str]| {
            let mut argv = vec!["serve", "--listen", "127.0.0.1:0"];
            argv.extend_from_slice(extra);
            Serve::try_parse_from(argv).map(|s| s.args)
        };
        let none = parse(&[]).expect("no flags");
        assert_eq!(
            reach(&none),
            Reach::Guarded {
                auth_hosts: vec![],
                redirect_hosts: vec![]
            }
        );
        let some = parse(&[
            "--allow-auth-host",
            "Auth.Internal:9",
            "--allow-redirect-host",
            "cdn.internal",
            "--allow-redirect-host",
            "[::1]:8443",
        ])
        .expect("hosts");
        assert_eq!(
            reach(&some),
            Reach::Guarded {
                auth_hosts: vec!["auth.internal:9".into()],
                redirect_hosts: vec!["cdn.internal".into(), "[::1]:8443".into()],
            }
        );
        for bad in ["http://auth.internal", "auth.internal/token", "user@auth.internal", ""] {
            assert!(parse(&["--allow-auth-host", bad]).is_err(), "{bad:?} accepted");
            assert!(parse(&["--allow-redirect-host", bad]).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn allow_list_takes_hosts_and_ports_only() {
        let ok = allow_list(&["Registry.Example:5000".into(), "ghcr.io".into()]).expect("plain hosts");
        assert_eq!(ok, ["registry.example:5000", "ghcr.io"]);
        for bad in ["", "https://ghcr.io", "ghcr.io/org", "user@ghcr.io", "a b"] {
            assert!(allow_list(&[bad.into()]).is_err(), "{bad:?} accepted");
        }
    }
}
