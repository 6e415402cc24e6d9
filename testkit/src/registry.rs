//! A REAL OCI registry for tests: Debian's `docker-registry` (CNCF
//! distribution 2.8), started on `127.0.0.1:0` in a temporary directory,
//! seeded over the distribution API (POST upload, PUT blob `?digest=`, PUT
//! manifest) and killed when dropped.
//!
//! ```ignore
//! let reg = Registry::start();
//! let pushed = reg.push_image("molecule-ai/app", "staging-<sha>", &labels, Format::Oci);
//! // provgate verify {reg.host()}/molecule-ai/app:staging-<sha> --insecure-registry {reg.host()}
//! ```
//!
//! The binary is installed with apt when it is missing ([`ensure_installed`]);
//! when it still cannot be found the tests FAIL (under `CI=true` and
//! elsewhere): a missing registry never turns into a skipped test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// How long the registry may take to print `listening on …`.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// Serialises apt between test binaries running at the same time.
const APT_LOCK: &str = "/tmp/provgate-apt.lock";

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Which family of media types an image (or index) is pushed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OCI image manifest / OCI image index.
    Oci,
    /// Docker v2 schema 2 manifest / Docker manifest list.
    Docker,
}

impl Format {
    pub fn manifest_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_MANIFEST,
            Format::Docker => DOCKER_MANIFEST,
        }
    }

    pub fn index_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_INDEX,
            Format::Docker => DOCKER_LIST,
        }
    }

    pub fn config_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_CONFIG,
            Format::Docker => DOCKER_CONFIG,
        }
    }

    pub fn layer_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_LAYER,
            Format::Docker => DOCKER_LAYER,
        }
    }
}

/// One image as pushed: the sha256 of the exact bytes the registry stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// `sha256:…` of the image manifest.
    pub manifest_digest: String,
    /// `sha256:…` of the image config blob.
    pub config_digest: String,
}

/// A multi-platform image as pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedIndex {
    /// `sha256:…` of the OCI index / Docker manifest list.
    pub index_digest: String,
    /// `("linux/amd64", image)` for each platform, in the order given.
    pub manifests: Vec<(String, Pushed)>,
}

impl PushedIndex {
    /// The image pushed for `platform` (`os/arch[/variant]`).
    pub fn platform(&self, platform: &str) -> &Pushed {
        self.manifests
            .iter()
            .find(|(p, _)| p == platform)
            .map(|(_, m)| m)
            .unwrap_or_else(|| panic!("no {platform} image in this index"))
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Standard base64 (with padding), for docker config `auth` fields.
pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes `dir/config.json` in docker's format with one `auths` entry
/// (`auth` = base64 "user:password") for `host`; returns `dir` so it can be
/// handed to `DOCKER_CONFIG`.
pub fn write_docker_config(dir: &Path, host: &str, user: &str, password: &str) -> PathBuf {
    let auth = base64(format!("{user}:{password}").as_bytes());
    let config = json!({"auths": {host: {"auth": auth}}});
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    dir.to_path_buf()
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn tools_present() -> bool {
    on_path("docker-registry").is_some() && on_path("htpasswd").is_some()
}

/// Makes sure `docker-registry` and `htpasswd` are on PATH, installing
/// `docker-registry apache2-utils` with apt when they are not (once per
/// process, one apt at a time across processes). Panics when they are still
/// missing: a missing registry fails the tests, it never skips them.
pub fn ensure_installed() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if tools_present() {
            return;
        }
        // Inside the lock, check again: another test binary may have just
        // installed them. `DPkg::Lock::Timeout` waits for any other apt.
        let script = "command -v docker-registry >/dev/null && command -v htpasswd >/dev/null && exit 0; \
             export DEBIAN_FRONTEND=noninteractive; \
             apt-get install -y -o DPkg::Lock::Timeout=300 docker-registry apache2-utils \
             || { apt-get update -o DPkg::Lock::Timeout=300 \
                  && apt-get install -y -o DPkg::Lock::Timeout=300 docker-registry apache2-utils; }";
        let mut cmd = if on_path("flock").is_some() {
            let mut c = Command::new("flock");
            c.args([APT_LOCK, "sh", "-c", script]);
            c
        } else {
            let mut c = Command::new("sh");
            c.args(["-c", script]);
            c
        };
        match cmd.stdin(Stdio::null()).output() {
            Ok(out) if !out.status.success() => eprintln!(
                "registry harness: apt-get install docker-registry apache2-utils failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Ok(_) => {}
            Err(e) => eprintln!("registry harness: could not run apt-get: {e}"),
        }
    });
    if !tools_present() {
        let missing: Vec<&str> = ["docker-registry", "htpasswd"]
            .into_iter()
            .filter(|p| on_path(p).is_none())
            .collect();
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true and {missing:?} not on PATH even after `apt-get install -y docker-registry \
                 apache2-utils`: the registry tests must run in CI, they are never skipped"
            );
        }
        panic!(
            "{missing:?} not on PATH and `apt-get install -y docker-registry apache2-utils` did not \
             provide them; install them to run the registry tests (they are not skipped)"
        );
    }
}

/// A running `docker-registry serve` on 127.0.0.1, killed on drop.
pub struct Registry {
    child: Option<Child>,
    host: String,
    dir: tempfile::TempDir,
    credentials: Option<(String, String)>,
    log: Arc<Mutex<Vec<String>>>,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    /// `http` or, with [`Registry::start_tls`], `https`.
    scheme: &'static str,
}

impl Registry {
    /// An anonymous registry: anyone may push and pull.
    pub fn start() -> Registry {
        Registry::launch(None, None)
    }

    /// An anonymous registry speaking only HTTPS (`http.tls`), with `cert`.
    pub fn start_tls(cert: &crate::tls::ServerCert) -> Registry {
        Registry::launch(None, Some(cert))
    }

    /// A registry behind htpasswd (bcrypt) basic auth with one user. The
    /// harness itself pushes with these credentials.
    pub fn start_with_basic_auth(user: &str, password: &str) -> Registry {
        Registry::launch(Some((user.to_string(), password.to_string())), None)
    }

    fn launch(credentials: Option<(String, String)>, tls: Option<&crate::tls::ServerCert>) -> Registry {
        ensure_installed();
        let dir = tempfile::Builder::new().prefix("provgate-registry-").tempdir().unwrap();
        let root = dir.path().join("storage");
        std::fs::create_dir_all(&root).unwrap();
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:0\n  secret: provgate-test-secret\n",
            root = root.display()
        );
        if let Some(cert) = tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.cert_file.display(),
                cert.key_file.display()
            ));
        }
        if let Some((user, password)) = &credentials {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .stdin(Stdio::null())
                .output()
                .expect("htpasswd runs");
            assert!(
                out.status.success(),
                "htpasswd: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, &out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: provgate-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();

        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .current_dir(dir.path())
            .env_remove("REGISTRY_HTTP_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry starts");

        let stderr = child.stderr.take().expect("the registry's stderr");
        let (log, rx) = crate::watch_stderr(stderr, listening_address);

        let deadline = Instant::now() + START_DEADLINE;
        let host = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(addr) => break addr,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "docker-registry exited ({status}) before listening:\n{}",
                            log.lock().unwrap().join("\n")
                        );
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "docker-registry did not print `listening on` within {START_DEADLINE:?}:\n{}",
                        log.lock().unwrap().join("\n")
                    );
                }
            }
        };
        assert!(host.starts_with("127.0.0.1:"), "registry listens on {host}");

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        provgate::http::install_provider();
        let mut client = reqwest::Client::builder().timeout(Duration::from_secs(20)).no_proxy();
        if tls.is_some() {
            // The harness seeds its own registry, whatever certificate the
            // test gave it (another name, expired): provgate is what judges it.
            client = client.tls_danger_accept_invalid_certs(true);
        }
        let client = client.build().unwrap();
        Registry {
            child: Some(child),
            host,
            dir,
            credentials,
            log,
            client,
            runtime,
            scheme: if tls.is_some() { "https" } else { "http" },
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// The registry's storage root (`rootdirectory` of its config).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// What the registry has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Kills the registry (and waits for it): "registry down". The port
    /// stays known through [`Registry::host`]; nothing listens there any more.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Pushes one single-platform (`linux/amd64`) image: a small layer, an
    /// image config carrying `labels`, and the manifest under `tag`.
    pub fn push_image(&self, repo: &str, tag: &str, labels: &[(&str, &str)], format: Format) -> Pushed {
        self.push_platform_image(repo, tag, "linux/amd64", labels, format)
    }

    /// Pushes one image per `(platform, labels)` by digest, then an OCI
    /// index / Docker manifest list naming them under `tag`.
    pub fn push_index(
        &self,
        repo: &str,
        tag: &str,
        images: &[(&str, Vec<(&str, &str)>)],
        format: Format,
    ) -> PushedIndex {
        let mut manifests = Vec::new();
        let mut entries = Vec::new();
        for (platform, labels) in images {
            let (manifest, pushed) = self.build_and_push_image(repo, platform, labels, format);
            self.put_manifest(repo, &pushed.manifest_digest, format.manifest_type(), &manifest);
            let (os, arch, variant) = split_platform(platform);
            let mut plat = json!({"architecture": arch, "os": os});
            if let Some(variant) = variant {
                plat["variant"] = json!(variant);
            }
            entries.push(json!({
                "mediaType": format.manifest_type(),
                "digest": pushed.manifest_digest,
                "size": manifest.len(),
                "platform": plat,
            }));
            manifests.push((platform.to_string(), pushed));
        }
        let index = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": format.index_type(),
            "manifests": entries,
        }))
        .unwrap();
        let index_digest = self.put_manifest(repo, tag, format.index_type(), &index);
        PushedIndex {
            index_digest,
            manifests,
        }
    }

    /// Overwrites the stored blob `digest` with different bytes of the same
    /// length, so the registry serves wrong bytes under the old digest. In a
    /// JSON blob the hex digit after the first `sha256:` changes (the blob
    /// stays a valid image config); otherwise the last byte flips.
    pub fn tamper_blob(&self, digest: &str) {
        let path = self.blob_path(digest);
        let mut data = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let original = data.clone();
        let needle = b"sha256:";
        match data.windows(needle.len()).position(|w| w == needle) {
            Some(at) if at + needle.len() < data.len() => {
                let i = at + needle.len();
                data[i] = if data[i] == b'0' { b'1' } else { b'0' };
            }
            _ => {
                let last = data.len() - 1;
                data[last] ^= 0x01;
            }
        }
        assert_ne!(data, original);
        assert_ne!(sha256_digest(&data), digest);
        std::fs::write(&path, &data).unwrap();
    }

    /// Where the registry keeps blob `digest`.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// GETs a manifest the way a client would, for harness self-checks:
    /// `(status, Content-Type, body)`.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> (StatusCode, String, Vec<u8>) {
        let url = format!("{}/manifests/{reference}", self.repo_url(repo));
        let accept = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", ");
        let request = self.authed(self.client.get(url).header(ACCEPT, accept));
        self.run(async move {
            let response = request.send().await.expect("GET manifest");
            let status = response.status();
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = response.bytes().await.unwrap().to_vec();
            (status, content_type, body)
        })
    }

    /// Pushes a cosign signature for the manifest `manifest_digest` in
    /// `repo`, as cosign stores one (sigstore/cosign
    /// `specs/SIGNATURE_SPEC.md`): the manifest tagged `sha256-<hex>.sig`,
    /// whose one layer (`application/vnd.dev.cosign.simplesigning.v1+json`)
    /// is `payload` and carries `signature_b64` in its
    /// `dev.cosignproject.cosign/signature` annotation. Returns the
    /// signature manifest's digest.
    pub fn push_cosign_signature(
        &self,
        repo: &str,
        manifest_digest: &str,
        payload: &[u8],
        signature_b64: &str,
    ) -> String {
        let config = br#"{"architecture":"","config":{},"created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config_digest = self.put_blob(repo, config);
        let payload_digest = self.put_blob(repo, payload);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": [{
                "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                "digest": payload_digest,
                "size": payload.len(),
                "annotations": {"dev.cosignproject.cosign/signature": signature_b64},
            }],
        }))
        .unwrap();
        let tag = format!("{}.sig", manifest_digest.replacen(':', "-", 1));
        self.put_manifest(repo, &tag, OCI_MANIFEST, &manifest)
    }

    fn push_platform_image(
        &self,
        repo: &str,
        tag: &str,
        platform: &str,
        labels: &[(&str, &str)],
        format: Format,
    ) -> Pushed {
        let (manifest, pushed) = self.build_and_push_image(repo, platform, labels, format);
        let digest = self.put_manifest(repo, tag, format.manifest_type(), &manifest);
        assert_eq!(digest, pushed.manifest_digest);
        pushed
    }

    /// Uploads the layer and config blobs; returns the manifest bytes (not
    /// yet pushed) and the digests.
    fn build_and_push_image(
        &self,
        repo: &str,
        platform: &str,
        labels: &[(&str, &str)],
        format: Format,
    ) -> (Vec<u8>, Pushed) {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        // A few random-looking bytes behind a gzip magic number; unique per push.
        let seed = format!("{repo} {platform} {serial} {:?}", Instant::now());
        let mut layer = vec![0x1f, 0x8b, 0x08, 0x00];
        layer.extend_from_slice(&Sha256::digest(seed.as_bytes()));
        layer.extend_from_slice(&Sha256::digest(layer.as_slice()));
        let layer_digest = sha256_digest(&layer);

        let (os, arch, variant) = split_platform(platform);
        let labels: Map<String, Value> = labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let mut config = json!({
            "architecture": arch,
            "os": os,
            "created": "2026-11-01T10:00:00Z",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["/app"],
                "WorkingDir": "/",
                "Labels": labels,
            },
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "history": [{"created": "2026-11-01T10:00:00Z", "created_by": "COPY app /app # buildkit"}],
        });
        if let Some(variant) = variant {
            config["variant"] = json!(variant);
        }
        let config = serde_json::to_vec(&config).unwrap();
        let config_digest = self.put_blob(repo, &config);
        let layer_digest = self.put_blob(repo, &layer);

        let manifest = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": format.manifest_type(),
            "config": {"mediaType": format.config_type(), "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": format.layer_type(), "digest": layer_digest, "size": layer.len()}],
        }))
        .unwrap();
        let pushed = Pushed {
            manifest_digest: sha256_digest(&manifest),
            config_digest,
        };
        (manifest, pushed)
    }

    /// POST an upload, PUT the bytes with `?digest=`; returns the digest.
    fn put_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let start = self.authed(self.client.post(format!("{}/blobs/uploads/", self.repo_url(repo))));
        let base = format!("{}://{}", self.scheme, self.host);
        let location = self.run(async move {
            let response = start.send().await.expect("POST blob upload");
            let status = response.status();
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = response.text().await.unwrap_or_default();
            assert_eq!(status, StatusCode::ACCEPTED, "POST blob upload: {body}");
            location.expect("upload Location")
        });
        let mut url = if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            location
        };
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str("digest=");
        url.push_str(&digest);
        let put = self.authed(
            self.client
                .put(url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(bytes.to_vec()),
        );
        self.run(async move {
            let response = put.send().await.expect("PUT blob");
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            assert_eq!(status, StatusCode::CREATED, "PUT blob: {body}");
        });
        digest
    }

    /// PUT a manifest (by tag or digest) with its media type; returns the
    /// digest of the bytes, checked against the registry's answer.
    fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let put = self.authed(
            self.client
                .put(format!("{}/manifests/{reference}", self.repo_url(repo)))
                .header(CONTENT_TYPE, media_type)
                .body(bytes.to_vec()),
        );
        let answered = self.run(async move {
            let response = put.send().await.expect("PUT manifest");
            let status = response.status();
            let answered = response
                .headers()
                .get("Docker-Content-Digest")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = response.text().await.unwrap_or_default();
            assert_eq!(status, StatusCode::CREATED, "PUT manifest {reference}: {body}");
            answered
        });
        if let Some(answered) = answered {
            assert_eq!(answered, digest, "registry's digest of manifest {reference}");
        }
        digest
    }

    fn repo_url(&self, repo: &str) -> String {
        format!("{}://{}/v2/{repo}", self.scheme, self.host)
    }

    fn authed(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.credentials {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    /// Runs a request future on the harness's runtime, from a helper thread
    /// so that callers inside a tokio runtime can use the harness too.
    fn run<T: Send>(&self, future: impl std::future::Future<Output = T> + Send) -> T {
        assert!(self.child.is_some(), "the registry was stopped");
        std::thread::scope(|s| {
            s.spawn(|| self.runtime.block_on(future))
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `listening on 127.0.0.1:PORT` in a registry log line → `127.0.0.1:PORT`.
fn listening_address(line: &str) -> Option<String> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    let port = addr.rsplit_once(':')?.1;
    (!port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) && port != "0").then_some(addr)
}

/// `os/arch[/variant]`.
fn split_platform(platform: &str) -> (&str, &str, Option<&str>) {
    let mut parts = platform.splitn(3, '/');
    let os = parts.next().unwrap();
    let arch = parts
        .next()
        .unwrap_or_else(|| panic!("platform {platform} is not os/arch"));
    (os, arch, parts.next())
}

/// A temporary directory holding a replay recording in which the given
/// commits of `molecule-ai/app` exist, and an (initially empty) docker
/// config directory, so the developer's own credentials are never read.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new(shas: &[&str]) -> Scratch {
        let dir = tempfile::tempdir().expect("temp dir");
        let lookups: Vec<serde_json::Value> = shas
            .iter()
            .map(|sha| serde_json::json!({"owner": "molecule-ai", "repo": "app", "sha": sha, "answer": "found"}))
            .collect();
        std::fs::write(
            dir.path().join("found.replay.json"),
            serde_json::json!({"now": "2026-11-20T12:00:00Z", "lookups": lookups}).to_string(),
        )
        .expect("write the recording");
        std::fs::create_dir(dir.path().join("docker")).expect("docker config dir");
        Scratch { dir }
    }

    pub fn replay(&self) -> std::path::PathBuf {
        self.dir.path().join("found.replay.json")
    }

    /// The `DOCKER_CONFIG` directory (empty unless a config was written).
    pub fn docker_config(&self) -> std::path::PathBuf {
        self.dir.path().join("docker")
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// A docker credential helper that never answers, `docker-credential-hang`:
/// every run starts a `sleep` of its own (in its process group), records
/// both PIDs and waits. A registry whose docker config names it in
/// `credHelpers` can only be reached once provgate gives up on it.
///
/// ```ignore
/// let hang = HungHelper::install(dir.path());
/// hang.configure(&docker_config_dir, &reg.host());
/// // run provgate with PATH = hang.path_env(), DOCKER_CONFIG = docker_config_dir
/// let started = hang.started(); // [(helper pid, its child's pid)]
/// ```
pub struct HungHelper {
    bin: PathBuf,
    pids: PathBuf,
}

/// The helper's name in `credHelpers`.
pub const HUNG_HELPER: &str = "hang";

impl HungHelper {
    /// Writes `dir/bin/docker-credential-hang`; its runs are recorded in `dir/pids`.
    pub fn install(dir: &Path) -> HungHelper {
        let bin = dir.join("bin");
        let pids = dir.join("pids");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&pids).unwrap();
        let pids_dir = pids.to_str().expect("a UTF-8 temporary path");
        assert!(!pids_dir.contains('\''), "{pids_dir}");
        // `$$.pid` holds the child's PID; the rename makes it whole when it appears.
        let script = format!(
            "#!/bin/sh\n\
             # Never answers: provgate must give up on it and kill it.\n\
             sleep 300 &\n\
             echo $! > '{pids_dir}'/$$.tmp && mv '{pids_dir}'/$$.tmp '{pids_dir}'/$$.pid\n\
             wait\n"
        );
        let path = bin.join(format!("docker-credential-{HUNG_HELPER}"));
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        HungHelper { bin, pids }
    }

    /// `PATH` with the helper's directory first.
    pub fn path_env(&self) -> String {
        let rest = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
        format!("{}:{rest}", self.bin.display())
    }

    /// Writes `config_dir/config.json` naming this helper for `host`.
    pub fn configure(&self, config_dir: &Path, host: &str) {
        std::fs::create_dir_all(config_dir).unwrap();
        let config = json!({"credHelpers": {host: HUNG_HELPER}});
        std::fs::write(config_dir.join("config.json"), config.to_string()).unwrap();
    }

    /// `(helper PID, its child's PID)` of every run that has started.
    pub fn started(&self) -> Vec<(u32, u32)> {
        let mut started: Vec<(u32, u32)> = std::fs::read_dir(&self.pids)
            .unwrap()
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                if path.extension()? != "pid" {
                    return None;
                }
                let helper = path.file_stem()?.to_str()?.parse().ok()?;
                let child = std::fs::read_to_string(&path).ok()?.trim().parse().ok()?;
                Some((helper, child))
            })
            .collect();
        started.sort_unstable();
        started
    }
}

/// No process `pid` exists any more, not even as a zombie: it ended and
/// its parent reaped it.
pub fn process_gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// Process `pid` runs no more: gone, or a zombie waiting for a parent that
/// does not reap (an orphan whose new parent is this machine's PID 1).
pub fn process_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // `pid (comm) STATE …`: the state follows the last `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| matches!(state, "Z" | "X")),
    }
}

/// Waits (polling, up to `within`) until `done`; false if it never was.
pub fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
