//! Registry credentials, found the way docker, skopeo and crane find them,
//! without blocking a runtime thread.
//!
//! # Which file
//!
//! The first of these that is given is the only one read (as skopeo does):
//!
//! 1. `--authfile FILE` ([`AuthSources::authfile`]);
//! 2. `$REGISTRY_AUTH_FILE`;
//! 3. `$DOCKER_CONFIG/config.json`;
//! 4. `~/.docker/config.json`.
//!
//! A file named by 1 or 2 must exist. The docker locations may be absent
//! (anonymous), but `$DOCKER_CONFIG` being set means `~/.docker` is not
//! looked at, as in docker's `config.Dir()`. A file that exists but cannot
//! be read, is not JSON or has the wrong shape is an error naming it, never
//! anonymous.
//!
//! # Which credentials
//!
//! As docker's `ConfigFile.GetCredentialsStore` and `GetAuthConfig`
//! (`cli/config/configfile/file.go`): the helper `credHelpers[KEY]` if that
//! entry exists, else the helper `credsStore` if set, else `auths`. A
//! helper that is chosen is the only source: when it has nothing for the
//! registry the answer is anonymous, not `auths` (docker's `nativeStore`
//! replaces the file's entry with the helper's empty answer). An empty
//! `credHelpers[KEY]` selects `auths` even when `credsStore` is set.
//!
//! KEY is the registry host\[:port\], except Docker Hub's, which is
//! `https://index.docker.io/v1/` (docker's `registry.IndexServer`). In
//! `auths`, an exact KEY wins; otherwise a key that reduces to the host
//! (`https://host/v1/`, `http://host`, `host/namespace`: docker's
//! `credentials.ConvertToHostname`) matches, the first in sorted order.
//! Beyond docker, Hub's credentials are also found under `docker.io`,
//! `index.docker.io` or `registry-1.docker.io` (the keys `podman login`
//! writes into `$REGISTRY_AUTH_FILE`), after the docker key. JSON field
//! names match case-insensitively, like Go's `encoding/json`.
//!
//! An `auths` entry gives `identitytoken` if set, else `auth` (base64 of
//! `user:password`) if set, else `username` and `password`.
//!
//! # Helpers
//!
//! `docker-credential-NAME get` reads the server KEY on stdin and answers
//! `{"ServerURL","Username","Secret"}` on stdout (a `Username` of `<token>`
//! makes `Secret` an identity token). The helper runs as a `tokio::process`
//! child in its own process group: when the caller's future is dropped (the
//! registry time-out), the whole group is sent SIGKILL and the helper is
//! reaped by a background task, so a hung helper, or a hung program the
//! helper started, cannot outlive the request. A helper that exits
//! non-zero saying `credentials not found` (docker's helpers say it on
//! stdout) means anonymous. Errors name the helper and show its stderr,
//! truncated, with control characters escaped and with anything from its
//! stdout or stdin cut out; stdout itself is never shown, as it is where
//! secrets are.

mod file;
mod helper;

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::text::quote;
use file::{ConfigFile, is_hub};

pub use helper::MAX_HELPER_STDOUT;

/// Docker Hub's key in config files and for helpers (docker's `registry.IndexServer`).
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// Auth files are small; a bigger one is refused.
pub const MAX_AUTH_FILE_BYTES: u64 = 4 << 20;
/// What a secret is shown as.
const REDACTED: &str = "<redacted>";

/// Credentials for one registry. `Debug` shows no secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`, or a helper's `<token>`):
    /// never sent to a registry itself, but exchanged at its token realm
    /// for an access token (`grant_type=refresh_token`, see
    /// `input/registry/auth.rs`).
    IdentityToken(String),
}

impl Credentials {
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Credentials::Anonymous)
    }

    /// Nothing at all is anonymous; a user name or a secret is Basic.
    fn basic(username: String, password: String) -> Self {
        if username.is_empty() && password.is_empty() {
            Credentials::Anonymous
        } else {
            Credentials::Basic { username, password }
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &REDACTED)
                .finish(),
            Credentials::IdentityToken(_) => f.debug_tuple("IdentityToken").field(&REDACTED).finish(),
        }
    }
}

/// Where credentials may come from: the caller's `--authfile` and the
/// environment, read once into this struct (tests build it by hand).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthSources {
    /// `--authfile FILE`: the only file read when given.
    pub authfile: Option<PathBuf>,
    /// `$REGISTRY_AUTH_FILE`.
    pub registry_auth_file: Option<PathBuf>,
    /// `$DOCKER_CONFIG`, a directory holding `config.json`.
    pub docker_config: Option<PathBuf>,
    /// `$HOME`, for `~/.docker/config.json`.
    pub home: Option<PathBuf>,
    /// The `PATH` helpers are looked up in and run with; `None` is
    /// provgate's own.
    pub path: Option<OsString>,
}

/// Which of the sources a file came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Authfile,
    RegistryAuthFile,
    DockerConfig,
    Home,
}

impl Origin {
    fn name(self) -> &'static str {
        match self {
            Origin::Authfile => "--authfile",
            Origin::RegistryAuthFile => "$REGISTRY_AUTH_FILE",
            Origin::DockerConfig => "$DOCKER_CONFIG",
            Origin::Home => "~/.docker",
        }
    }

    /// A file the user named must exist; docker's default need not.
    fn required(self) -> bool {
        matches!(self, Origin::Authfile | Origin::RegistryAuthFile)
    }
}

impl AuthSources {
    /// `authfile` and the environment. Empty variables count as unset.
    pub fn from_env(authfile: Option<PathBuf>) -> Self {
        Self::from_vars(authfile, |name| std::env::var_os(name))
    }

    fn from_vars(authfile: Option<PathBuf>, var: impl Fn(&str) -> Option<OsString>) -> Self {
        let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        AuthSources {
            authfile,
            registry_auth_file: set("REGISTRY_AUTH_FILE"),
            docker_config: set("DOCKER_CONFIG"),
            home: set("HOME"),
            path: None,
        }
    }

    /// The one file credentials are read from, and which source named it
    /// (`--authfile`, `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG` or
    /// `~/.docker`); `None` when there is none to look at.
    pub fn auth_file(&self) -> Option<(PathBuf, &'static str)> {
        self.choose().map(|(path, origin)| (path, origin.name()))
    }

    fn choose(&self) -> Option<(PathBuf, Origin)> {
        let given = |p: &Option<PathBuf>| p.as_ref().filter(|p| !p.as_os_str().is_empty()).cloned();
        if let Some(file) = given(&self.authfile) {
            Some((file, Origin::Authfile))
        } else if let Some(file) = given(&self.registry_auth_file) {
            Some((file, Origin::RegistryAuthFile))
        } else if let Some(dir) = given(&self.docker_config) {
            Some((dir.join("config.json"), Origin::DockerConfig))
        } else {
            given(&self.home).map(|home| (home.join(".docker").join("config.json"), Origin::Home))
        }
    }
}

/// Why credentials could not be found. No variant holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot use the registry auth file {}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("the registry auth file {} (from {from}) does not exist", path.display())]
    MissingFile { path: PathBuf, from: &'static str },
    #[error("credential helper {helper} failed: {reason}")]
    Helper { helper: String, reason: String },
    #[error("credential helper {helper} is not installed (it is not on PATH)")]
    HelperMissing { helper: String },
}

/// The credentials for `registry`, a host\[:port\] as oci-client's
/// `Reference::resolve_registry()` gives it (`index.docker.io` for Docker Hub),
/// registered with [`crate::secrets`] so that no answer echoing them is shown.
pub async fn for_registry(registry: &str, sources: &AuthSources) -> Result<Credentials, CredentialError> {
    let found = find(registry, sources).await?;
    match &found {
        Credentials::Anonymous => {}
        Credentials::Basic { username, password } => crate::secrets::register_basic(username, password),
        Credentials::IdentityToken(token) => crate::secrets::register(token),
    }
    Ok(found)
}

async fn find(registry: &str, sources: &AuthSources) -> Result<Credentials, CredentialError> {
    let Some((path, origin)) = sources.choose() else {
        return Ok(Credentials::Anonymous);
    };
    let Some(bytes) = read_auth_file(&path, origin).await? else {
        return Ok(Credentials::Anonymous);
    };
    let file_error = |reason: String| CredentialError::File {
        path: path.clone(),
        reason,
    };
    let config = ConfigFile::parse(&bytes).map_err(file_error)?;
    drop(bytes);

    let key = if is_hub(registry) { DOCKER_HUB_KEY } else { registry };
    if let Some((entry, helper)) = config.helper_for(key, registry) {
        if helper.contains(['/', '\0']) {
            return Err(file_error(format!(
                "{entry} is {}, which is not a helper name (docker-credential-NAME, looked up on PATH)",
                quote(helper)
            )));
        }
        return helper::from_helper(helper, key, sources).await;
    }
    match config.auth_entry_for(key, registry) {
        Some((name, entry)) => entry
            .credentials()
            .map_err(|why| file_error(format!("auths[{}].{why}", quote(name)))),
        None => Ok(Credentials::Anonymous),
    }
}

/// The file's bytes, or `None` for an absent docker default. The read runs
/// on the blocking pool: even a FIFO that never answers holds no worker.
async fn read_auth_file(path: &Path, origin: Origin) -> Result<Option<Vec<u8>>, CredentialError> {
    let owned = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        std::fs::File::open(&owned)?
            .take(MAX_AUTH_FILE_BYTES + 1)
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    })
    .await;
    let error = |reason: String| CredentialError::File {
        path: path.to_path_buf(),
        reason,
    };
    match read {
        Ok(Ok(bytes)) if bytes.len() as u64 > MAX_AUTH_FILE_BYTES => {
            Err(error(format!("it is larger than {} MiB", MAX_AUTH_FILE_BYTES >> 20)))
        }
        Ok(Ok(bytes)) => Ok(Some(bytes)),
        Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound && !origin.required() => Ok(None),
        Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => Err(CredentialError::MissingFile {
            path: path.to_path_buf(),
            from: origin.name(),
        }),
        Ok(Err(e)) => Err(error(e.to_string())),
        Err(e) => Err(error(format!("the read failed ({e})"))),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    use std::time::{Duration, Instant};

    use super::*;

    const REGISTRY: &str = "registry.example:5000";

    /// A temp dir with a `bin` of helper scripts that only these sources see.
    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("bin")).unwrap();
            Fixture { dir }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.path(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(&path, text).unwrap();
            path
        }

        fn helper(&self, name: &str, body: &str) {
            let path = self.path(&format!("bin/docker-credential-{name}"));
            let mut file = std::fs::File::create(&path).unwrap();
            write!(file, "#!/bin/sh\n{body}\n").unwrap();
            file.set_permissions(std::fs::Permissions::from_mode(0o755)).unwrap();
            file.sync_all().unwrap();
        }

        fn sources(&self) -> AuthSources {
            let mut path = OsString::from(self.path("bin"));
            path.push(":/usr/bin:/bin");
            AuthSources {
                path: Some(path),
                ..AuthSources::default()
            }
        }

        fn authfile(&self, json: &str) -> AuthSources {
            AuthSources {
                authfile: Some(self.write("auth.json", json)),
                ..self.sources()
            }
        }
    }

    fn basic(username: &str, password: &str) -> Credentials {
        Credentials::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    async fn lookup(registry: &str, sources: &AuthSources) -> Result<Credentials, CredentialError> {
        // A generous bound so that a bug hangs no test run.
        tokio::time::timeout(Duration::from_secs(60), for_registry(registry, sources))
            .await
            .expect("the lookup finishes")
    }

    #[tokio::test]
    async fn an_auths_entry_with_base64_auth_is_basic() {
        let fx = Fixture::new();
        // base64("alice:s3cret:with:colons")
        let sources =
            fx.authfile(r#"{"auths": {"registry.example:5000": {"auth": "YWxpY2U6czNjcmV0OndpdGg6Y29sb25z"}}}"#);
        assert_eq!(
            lookup(REGISTRY, &sources).await.unwrap(),
            basic("alice", "s3cret:with:colons")
        );
    }

    #[tokio::test]
    async fn an_auths_entry_with_username_and_password_is_basic() {
        let fx = Fixture::new();
        let sources = fx.authfile(r#"{"auths": {"registry.example:5000": {"username": "bob", "password": "pw"}}}"#);
        assert_eq!(lookup(REGISTRY, &sources).await.unwrap(), basic("bob", "pw"));
    }

    #[tokio::test]
    async fn an_identity_token_wins_within_an_entry() {
        let fx = Fixture::new();
        let sources =
            fx.authfile(r#"{"auths": {"registry.example:5000": {"auth": "YTpi", "identitytoken": "refresh-me"}}}"#);
        assert_eq!(
            lookup(REGISTRY, &sources).await.unwrap(),
            Credentials::IdentityToken("refresh-me".into())
        );
    }

    #[tokio::test]
    async fn auths_keys_are_matched_like_docker() {
        let fx = Fixture::new();
        let sources = fx.authfile(
            r#"{"Auths": {
                "https://registry.example:5000/v1/": {"auth": "bGVnYWN5OnVybA=="},
                "http://plain.example": {"username": "p", "password": "q"},
                "quay.example/some/namespace": {"username": "ns", "password": "x"},
                "https://index.docker.io/v1/": {"username": "hub", "password": "h"},
                "exact.example": {"username": "exact", "password": "e"},
                "https://exact.example/v1/": {"username": "legacy", "password": "l"}
            }}"#,
        );
        assert_eq!(lookup(REGISTRY, &sources).await.unwrap(), basic("legacy", "url"));
        assert_eq!(lookup("plain.example", &sources).await.unwrap(), basic("p", "q"));
        assert_eq!(lookup("quay.example", &sources).await.unwrap(), basic("ns", "x"));
        assert_eq!(lookup("index.docker.io", &sources).await.unwrap(), basic("hub", "h"));
        assert_eq!(lookup("exact.example", &sources).await.unwrap(), basic("exact", "e"));
        assert_eq!(lookup("other.example", &sources).await.unwrap(), Credentials::Anonymous);
    }

    #[tokio::test]
    async fn docker_hub_is_also_found_under_podmans_key() {
        let fx = Fixture::new();
        let sources = fx.authfile(r#"{"auths": {"docker.io": {"auth": "cG9kOm1hbg=="}}}"#);
        assert_eq!(lookup("index.docker.io", &sources).await.unwrap(), basic("pod", "man"));
    }

    #[tokio::test]
    async fn cred_helpers_win_over_creds_store_and_auths() {
        let fx = Fixture::new();
        fx.helper(
            "good",
            r#"cat >/dev/null; printf '{"ServerURL":"x","Username":"from-helper","Secret":"hs"}'"#,
        );
        fx.helper(
            "store",
            r#"cat >/dev/null; printf '{"Username":"from-store","Secret":"ss"}'"#,
        );
        let sources = fx.authfile(
            r#"{"credHelpers": {"registry.example:5000": "good"}, "credsStore": "store",
                "auths": {"registry.example:5000": {"username": "from-file", "password": "f"},
                          "other.example": {"username": "from-file", "password": "f"}}}"#,
        );
        assert_eq!(lookup(REGISTRY, &sources).await.unwrap(), basic("from-helper", "hs"));
        // No credHelpers entry: credsStore, even though auths has one.
        assert_eq!(
            lookup("other.example", &sources).await.unwrap(),
            basic("from-store", "ss")
        );
    }

    #[tokio::test]
    async fn an_empty_cred_helpers_entry_means_auths() {
        let fx = Fixture::new();
        let sources = fx.authfile(
            r#"{"credHelpers": {"registry.example:5000": ""}, "credsStore": "absent",
                "auths": {"registry.example:5000": {"username": "file", "password": "f"}}}"#,
        );
        assert_eq!(lookup(REGISTRY, &sources).await.unwrap(), basic("file", "f"));
    }

    #[tokio::test]
    async fn a_helper_is_given_the_server_on_stdin_and_answers_json() {
        let fx = Fixture::new();
        fx.helper(
            "hub",
            r#"[ "$1" = get ] || exit 9
server=$(cat)
[ "$server" = "https://index.docker.io/v1/" ] || { echo "wrong server" >&2; exit 1; }
printf '{"ServerURL":"%s","Username":"hubuser","Secret":"hubpass"}\n' "$server""#,
        );
        fx.helper(
            "token",
            r#"cat >/dev/null; echo '{"Username":"<token>","Secret":"refresh"}'"#,
        );
        let sources = fx.authfile(r#"{"credHelpers": {"https://index.docker.io/v1/": "hub"}, "credsStore": "token"}"#);
        assert_eq!(
            lookup("index.docker.io", &sources).await.unwrap(),
            basic("hubuser", "hubpass")
        );
        assert_eq!(
            lookup(REGISTRY, &sources).await.unwrap(),
            Credentials::IdentityToken("refresh".into())
        );
    }

    #[tokio::test]
    async fn a_helper_without_credentials_means_anonymous_not_auths() {
        let fx = Fixture::new();
        // docker's helpers say it on stdout; some say it on stderr.
        fx.helper(
            "none",
            "cat >/dev/null; echo 'credentials not found in native keychain'; exit 1",
        );
        fx.helper(
            "none2",
            "cat >/dev/null; echo 'error: Credentials not found' >&2; exit 1",
        );
        let sources = fx.authfile(
            r#"{"credsStore": "none", "credHelpers": {"other.example": "none2"},
                "auths": {"registry.example:5000": {"username": "file", "password": "f"}}}"#,
        );
        assert_eq!(lookup(REGISTRY, &sources).await.unwrap(), Credentials::Anonymous);
        assert_eq!(lookup("other.example", &sources).await.unwrap(), Credentials::Anonymous);
    }

    #[tokio::test]
    async fn a_missing_helper_is_named() {
        let fx = Fixture::new();
        let sources = fx.authfile(r#"{"credsStore": "nosuch"}"#);
        let error = lookup(REGISTRY, &sources).await.unwrap_err();
        assert!(
            matches!(&error, CredentialError::HelperMissing { helper } if helper == "docker-credential-nosuch"),
            "{error:?}"
        );
        assert!(error.to_string().contains("docker-credential-nosuch"), "{error}");
    }

    #[tokio::test]
    async fn a_helper_name_with_a_slash_is_refused() {
        let fx = Fixture::new();
        let sources = fx.authfile(r#"{"credHelpers": {"registry.example:5000": "../../tmp/x"}}"#);
        let error = lookup(REGISTRY, &sources).await.unwrap_err();
        assert!(matches!(&error, CredentialError::File { .. }), "{error:?}");
        assert!(error.to_string().contains("credHelpers"), "{error}");
    }

    #[tokio::test]
    async fn a_broken_file_is_an_error_naming_it() {
        let fx = Fixture::new();
        let sources = fx.authfile(r#"{"auths": {"registry.example:5000": {"auth": "YTpi"}"#);
        let error = lookup(REGISTRY, &sources).await.unwrap_err();
        let path = sources.authfile.as_ref().unwrap();
        assert!(
            matches!(&error, CredentialError::File { path: p, .. } if p == path),
            "{error:?}"
        );
        assert!(error.to_string().contains(&path.display().to_string()), "{error}");
        assert!(error.to_string().contains("not valid JSON"), "{error}");

        for shape in [
            "[]",
            r#"{"auths": []}"#,
            r#"{"credsStore": 1}"#,
            r#"{"credHelpers": {"a": 2}}"#,
        ] {
            let sources = fx.authfile(shape);
            let error = lookup(REGISTRY, &sources).await.unwrap_err();
            assert!(matches!(&error, CredentialError::File { .. }), "{shape}: {error:?}");
        }
    }

    #[tokio::test]
    async fn shape_and_base64_errors_show_no_secret() {
        let fx = Fixture::new();
        for (json, secret) in [
            (
                r#"{"auths": {"registry.example:5000": "c2VjcmV0LXZhbHVl"}}"#,
                "c2VjcmV0LXZhbHVl",
            ),
            (
                r#"{"auths": {"registry.example:5000": {"password": ["hunter2-secret"]}}}"#,
                "hunter2-secret",
            ),
            (
                r#"{"auths": {"registry.example:5000": {"auth": "!!hunter2-secret!!"}}}"#,
                "hunter2-secret",
            ),
            // base64("hunter2-secret"): no colon.
            (
                r#"{"auths": {"registry.example:5000": {"auth": "aHVudGVyMi1zZWNyZXQ="}}}"#,
                "hunter2",
            ),
        ] {
            let error = lookup(REGISTRY, &fx.authfile(json)).await.unwrap_err();
            let text = format!("{error} {error:?}");
            assert!(matches!(error, CredentialError::File { .. }), "{text}");
            assert!(!text.contains(secret), "{text}");
            assert!(text.contains("registry.example:5000"), "{text}");
        }
    }

    #[tokio::test]
    async fn a_missing_named_file_is_an_error_a_missing_default_is_anonymous() {
        let fx = Fixture::new();
        let missing = fx.path("nope/auth.json");
        let sources = AuthSources {
            registry_auth_file: Some(missing.clone()),
            home: Some(fx.dir.path().to_path_buf()),
            ..fx.sources()
        };
        let error = lookup(REGISTRY, &sources).await.unwrap_err();
        assert!(
            matches!(&error, CredentialError::MissingFile { path, from: "$REGISTRY_AUTH_FILE" } if *path == missing),
            "{error:?}"
        );
        assert!(error.to_string().contains(&missing.display().to_string()), "{error}");

        let sources = AuthSources {
            authfile: Some(missing.clone()),
            ..fx.sources()
        };
        let error = lookup(REGISTRY, &sources).await.unwrap_err();
        assert!(
            matches!(&error, CredentialError::MissingFile { from: "--authfile", .. }),
            "{error:?}"
        );

        // A home without ~/.docker, or a $DOCKER_CONFIG without config.json.
        let sources = AuthSources {
            home: Some(fx.dir.path().to_path_buf()),
            ..fx.sources()
        };
        assert_eq!(lookup(REGISTRY, &sources).await.unwrap(), Credentials::Anonymous);
        let sources = AuthSources {
            docker_config: Some(fx.path("bin")),
            ..fx.sources()
        };
        assert_eq!(lookup(REGISTRY, &sources).await.unwrap(), Credentials::Anonymous);
        // Nothing at all.
        assert_eq!(lookup(REGISTRY, &fx.sources()).await.unwrap(), Credentials::Anonymous);
    }

    #[tokio::test]
    async fn an_unreadable_file_is_an_error() {
        let fx = Fixture::new();
        let sources = AuthSources {
            docker_config: Some(fx.dir.path().to_path_buf()),
            ..fx.sources()
        };
        std::fs::create_dir(fx.path("config.json")).unwrap();
        let error = lookup(REGISTRY, &sources).await.unwrap_err();
        assert!(matches!(&error, CredentialError::File { .. }), "{error:?}");
        assert!(error.to_string().contains("config.json"), "{error}");
    }

    #[tokio::test]
    async fn only_the_first_source_is_read() {
        let fx = Fixture::new();
        let entry = |user: &str| format!(r#"{{"auths": {{"registry.example:5000": {{"username": "{user}"}}}}}}"#);
        let authfile = fx.write("a/auth.json", &entry("authfile"));
        let registry_auth_file = fx.write("r/auth.json", &entry("registry-auth-file"));
        fx.write("d/config.json", &entry("docker-config"));
        fx.write("h/.docker/config.json", &entry("home"));
        let all = AuthSources {
            authfile: Some(authfile),
            registry_auth_file: Some(registry_auth_file),
            docker_config: Some(fx.path("d")),
            home: Some(fx.path("h")),
            ..fx.sources()
        };
        let user = |sources: AuthSources| async move {
            match lookup(REGISTRY, &sources).await.unwrap() {
                Credentials::Basic { username, .. } => username,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(user(all.clone()).await, "authfile");
        let no_authfile = AuthSources {
            authfile: Some(PathBuf::new()), // empty: not given
            ..all.clone()
        };
        assert_eq!(user(no_authfile.clone()).await, "registry-auth-file");
        let docker = AuthSources {
            registry_auth_file: None,
            ..no_authfile
        };
        assert_eq!(user(docker.clone()).await, "docker-config");
        let home = AuthSources {
            docker_config: None,
            ..docker.clone()
        };
        assert_eq!(user(home).await, "home");
        // The first file has nothing for the registry: no fall-back.
        let empty = fx.write("e/config.json", "{}");
        let first_empty = AuthSources {
            authfile: Some(empty),
            ..docker
        };
        assert_eq!(lookup(REGISTRY, &first_empty).await.unwrap(), Credentials::Anonymous);
        assert_eq!(first_empty.auth_file().unwrap().1, "--authfile");
    }

    #[tokio::test]
    async fn empty_and_null_files_are_anonymous() {
        let fx = Fixture::new();
        for json in ["", " \n", "null", "{}", r#"{"auths": null, "credsStore": null}"#] {
            assert_eq!(
                lookup(REGISTRY, &fx.authfile(json)).await.unwrap(),
                Credentials::Anonymous,
                "{json:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_hanging_helper_dies_with_the_callers_timeout() {
        let fx = Fixture::new();
        let pids = fx.path("pids");
        let pids = pids.display();
        // The helper and a program it started (as a wrapper script would).
        fx.helper(
            "hang",
            &format!(
                "echo $$ > {pids}.tmp && mv {pids}.tmp {pids}.helper\n\
                 sleep 1000 &\n\
                 echo $! > {pids}.tmp && mv {pids}.tmp {pids}.child\n\
                 wait"
            ),
        );
        let sources = fx.authfile(r#"{"credsStore": "hang"}"#);
        let pid = |which: &str| {
            let text = std::fs::read_to_string(format!("{pids}.{which}")).ok()?;
            text.trim().parse::<u32>().ok()
        };

        // Run the lookup until both have started (on a loaded machine that
        // can take longer than the time-out below)...
        let mut lookup = Box::pin(for_registry(REGISTRY, &sources));
        let started = async {
            while pid("helper").is_none() || pid("child").is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::select! {
            result = &mut lookup => panic!("the lookup finished: {result:?}"),
            waited = tokio::time::timeout(Duration::from_secs(30), started) => waited.expect("the helper starts"),
        }
        // ...then let the caller's time-out drop it, as the registry fetch does.
        let result = tokio::time::timeout(Duration::from_millis(200), lookup).await;
        assert!(result.is_err(), "the timeout fires: {result:?}");

        let (helper, child) = (pid("helper").unwrap(), pid("child").unwrap());
        // provgate reaps the helper itself; the orphaned child is init's to
        // reap, so for it dead (a zombie) is enough.
        wait_until_gone(helper, false).await;
        wait_until_gone(child, true).await;
    }

    async fn wait_until_gone(pid: u32, zombie_is_gone: bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => return,
                Ok(stat) => stat,
            };
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            if zombie_is_gone && state == Some('Z') {
                return;
            }
            assert!(Instant::now() < deadline, "process {pid} is still there: {stat}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_failing_helpers_error_shows_stderr_but_no_secret_stdin_or_stdout() {
        let fx = Fixture::new();
        fx.helper(
            "leaky",
            r#"server=$(cat)
printf 'asked for %s; the secret is Sup3rS3cretValue; \033[31mred\n' "$server" >&2
printf '{"Username":"leaky-user-name","Secret":"Sup3rS3cretValue"}'
exit 3"#,
        );
        let sources = fx.authfile(r#"{"credsStore": "leaky"}"#);
        let error = lookup(REGISTRY, &sources).await.unwrap_err();
        let text = format!("{error} | {error:?}");
        assert!(matches!(&error, CredentialError::Helper { helper, .. } if helper == "docker-credential-leaky"));
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.contains("the secret is"), "stderr is shown: {text}");
        assert!(
            text.contains("\\u{1b}[31mred"),
            "control characters are escaped: {text}"
        );
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(!text.contains("Sup3rS3cretValue"), "{text}");
        assert!(!text.contains("leaky-user-name"), "{text}");
        assert!(!text.contains("Username"), "{text}");
        assert!(!text.contains(REGISTRY), "{text}");
    }

    #[tokio::test]
    async fn a_helper_answering_too_much_or_nonsense_is_an_error() {
        let fx = Fixture::new();
        fx.helper("endless", "cat >/dev/null; exec yes Sup3rS3cretValue");
        fx.helper("nonsense", "cat >/dev/null; echo 'Sup3rS3cretValue'");
        fx.helper(
            "typed",
            r#"cat >/dev/null; echo '{"Username": 1, "Secret": "Sup3rS3cretValue"}'"#,
        );
        fx.helper("silent", "exit 1");
        for (helper, expected) in [
            ("endless", "larger than 64 KiB"),
            ("nonsense", "not a JSON object"),
            ("typed", "not a JSON object"),
            ("silent", "nothing on stderr"),
        ] {
            let sources = fx.authfile(&format!(r#"{{"credsStore": "{helper}"}}"#));
            let error = lookup(REGISTRY, &sources).await.unwrap_err();
            let text = error.to_string();
            assert!(text.contains(&format!("docker-credential-{helper}")), "{text}");
            assert!(text.contains(expected), "{text}");
            assert!(!text.contains("Sup3rS3cretValue"), "{text}");
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let shown = format!(
            "{:?} {:?} {:?}",
            basic("user", "pass-secret"),
            Credentials::IdentityToken("token-secret".into()),
            Credentials::Anonymous
        );
        assert!(
            !shown.contains("pass-secret") && !shown.contains("token-secret"),
            "{shown}"
        );
        assert!(shown.contains("user") && shown.contains("Anonymous"), "{shown}");
    }

    #[test]
    fn the_environment_is_read_once_and_empty_means_unset() {
        let env = |name: &str| match name {
            "REGISTRY_AUTH_FILE" => Some(OsString::new()),
            "DOCKER_CONFIG" => Some(OsString::from("/etc/docker-config")),
            "HOME" => Some(OsString::from("/home/u")),
            _ => None,
        };
        let sources = AuthSources::from_vars(None, env);
        assert_eq!(sources.registry_auth_file, None);
        assert_eq!(
            sources.auth_file(),
            Some((PathBuf::from("/etc/docker-config/config.json"), "$DOCKER_CONFIG"))
        );
        let sources = AuthSources::from_vars(Some("/a.json".into()), |_| None);
        assert_eq!(sources.auth_file(), Some((PathBuf::from("/a.json"), "--authfile")));
        let sources = AuthSources::from_vars(None, |name| (name == "HOME").then(|| "/h".into()));
        assert_eq!(
            sources.auth_file(),
            Some((PathBuf::from("/h/.docker/config.json"), "~/.docker"))
        );
        assert_eq!(AuthSources::from_vars(None, |_| None).auth_file(), None);
    }
}
