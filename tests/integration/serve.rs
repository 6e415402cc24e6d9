//! `provgate serve` end to end: the real binary listening on loopback, a
//! reqwest client, the Gitea stand-in and (for `image` requests) a real
//! registry. Every status code of SPEC §5, concurrency with a hanging Gitea
//! (and `--gitea-concurrency`) or a hanging credential helper, reload by
//! SIGHUP, shutdown by SIGTERM, readiness, the decision log and the metrics.
//! Concurrency is asserted as an order of events (what was answered while
//! what was still pending), never as a duration.
//!
//! Time bounds here are generous upper limits for a loaded 2-core machine,
//! never measurements; the load figures are in docs/serve.md.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use provgate_testkit::gitea::GiteaStandIn;
use provgate_testkit::registry::{Format, HungHelper, Pushed, Registry, process_dead, process_gone};
use provgate_testkit::serve::metric;
use provgate_testkit::*;
use serde_json::{Value, json};

/// How long a server may take to print its address (the first start in a
/// fresh checkout compiles the policy).
const START_DEADLINE: Duration = Duration::from_secs(120);
/// Upper bound for anything that should happen "soon".
const SOON: Duration = Duration::from_secs(30);

const OTHER_SHA: &str = "0d4c7b6a5e3f2d1c0b9a8f7e6d5c4b3a29180716";
const TOKEN: &str = "pg-serve-token-7f3a9c1e";

/// A running `provgate serve --listen 127.0.0.1:0 …` (its default log level,
/// info), killed when dropped.
struct Server {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
    /// What the server wrote to stdout, line by line.
    out: Arc<Mutex<Vec<String>>>,
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

/// How a server that was expected to refuse to start ended.
struct Refused {
    status: ExitStatus,
    stderr: String,
}

/// A started server: the child, its stderr and stdout lines as they come,
/// and the address it says it listens on, once it does.
type Spawned = (
    Child,
    Arc<Mutex<Vec<String>>>,
    Arc<Mutex<Vec<String>>>,
    mpsc::Receiver<String>,
);

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Spawned {
    let mut cmd = Command::new(provgate_testkit::provgate_bin());
    cmd.arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(repo_root())
        .env("PROVGATE_CACHE_DIR", cache_dir())
        .env_remove("NO_COLOR")
        .env_remove("GITEA_TOKEN")
        .env_remove("RUST_LOG")
        // No registry credentials from the caller's environment: a
        // DOCKER_CONFIG without a config.json is anonymous (tests set their own).
        .env_remove("REGISTRY_AUTH_FILE")
        .env("DOCKER_CONFIG", repo_root().join("target").join("no-docker-config"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("provgate serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let (log, rx) = watch_stderr(stderr, listening_address);
    let out = Arc::new(Mutex::new(Vec::new()));
    let stdout = child.stdout.take().expect("stdout");
    let kept = Arc::clone(&out);
    // Read for the child's whole life, like stderr: a full pipe would block it.
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { break };
            kept.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });
    (child, log, out, rx)
}

/// `127.0.0.1:PORT` from the `listening on http://127.0.0.1:PORT …` line.
fn listening_address(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("listening on http://")?;
    Some(rest.split_whitespace().next()?.to_string())
}

impl Server {
    fn start(args: &[&str]) -> Server {
        Server::start_env(args, &[])
    }

    fn start_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let (mut child, log, out, rx) = spawn(args, env);
        let deadline = Instant::now() + START_DEADLINE;
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(addr) => break addr,
                Err(_) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!("provgate serve exited ({status}) before listening:\n{}", joined(&log));
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "provgate serve did not listen within {START_DEADLINE:?}:\n{}",
                        joined(&log)
                    );
                }
            }
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        provgate::http::install_provider();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Server {
            child,
            addr,
            log,
            out,
            runtime,
            client,
        }
    }

    /// Runs `provgate serve` expecting it to exit without listening.
    fn refuses(args: &[&str], env: &[(&str, &str)]) -> Refused {
        let (mut child, log, _, rx) = spawn(args, env);
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(addr) = rx.try_recv() {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "provgate serve started on {addr} but should have refused:\n{}",
                    joined(&log)
                );
            }
            if let Some(status) = child.try_wait().unwrap() {
                // Let the reader thread drain the pipe.
                std::thread::sleep(Duration::from_millis(100));
                return Refused {
                    status,
                    stderr: joined(&log),
                };
            }
            assert!(Instant::now() < deadline, "provgate serve neither listened nor exited");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn log(&self) -> String {
        joined(&self.log)
    }

    /// POST /v1/verify with a body and optional `Authorization` value.
    fn post_raw(&self, body: impl Into<reqwest::Body>, authorization: Option<&str>) -> (u16, Value) {
        let request = self.verify_request(body, authorization);
        self.runtime.block_on(async move {
            let response = request.send().await.expect("the server answers");
            let status = response.status().as_u16();
            let text = response.text().await.expect("a body");
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
            (status, json)
        })
    }

    fn post(&self, body: &Value) -> (u16, Value) {
        self.post_raw(body.to_string(), None)
    }

    fn verify_request(&self, body: impl Into<reqwest::Body>, authorization: Option<&str>) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .post(self.url("/v1/verify"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request
    }

    /// Sends a request in the background; `.join()` waits for its answer.
    fn post_in_background(&self, body: &Value) -> tokio::task::JoinHandle<(u16, Value)> {
        let request = self.verify_request(body.to_string(), None);
        self.runtime.spawn(async move {
            let response = request.send().await.expect("the server answers");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("a JSON body"))
        })
    }

    fn join<T>(&self, task: tokio::task::JoinHandle<T>) -> T {
        self.runtime.block_on(task).expect("the request task")
    }

    fn get(&self, path: &str, authorization: Option<&str>) -> (u16, String) {
        let mut request = self.client.get(self.url(path));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        self.runtime.block_on(async move {
            let response = request.send().await.expect("the server answers");
            (response.status().as_u16(), response.text().await.expect("a body"))
        })
    }

    fn metrics(&self) -> String {
        let (status, text) = self.get("/metrics", None);
        assert_eq!(status, 200, "{text}");
        text
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits until the log has at least `count` lines containing `needle`.
    fn wait_for_log(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + SOON;
        while self.log.lock().unwrap().iter().filter(|l| l.contains(needle)).count() < count {
            assert!(
                Instant::now() < deadline,
                "no {count}× {needle:?} in the log within {SOON:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {within:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn joined(log: &Mutex<Vec<String>>) -> String {
    log.lock().unwrap().join("\n")
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + SOON;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {SOON:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An artifact with the built-in rules whose settings point at the stand-in.
pub(crate) fn build_policy(gitea: &GiteaStandIn, dir: &Path, name: &str, skew: u32) -> PathBuf {
    let settings = dir.join(format!("{name}.json"));
    std::fs::write(
        &settings,
        json!({
            "gitea_base_url": gitea.base_url(),
            "allowed_owners": ["molecule-ai"],
            "created_max_skew_seconds": skew,
        })
        .to_string(),
    )
    .unwrap();
    let out = dir.join(format!("{name}.wasm"));
    let o = provgate(
        &[
            "policy",
            "build",
            "--settings",
            settings.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "policy build: {}", stderr(&o));
    out
}

fn digest_of(path: &Path) -> String {
    provgate_testkit::registry::sha256_digest(&std::fs::read(path).unwrap())
}

/// The four labels of an image built from `owner/repo` at `sha`.
pub(crate) fn labels(gitea: &GiteaStandIn, repo: &str, sha: &str) -> Value {
    json!({
        SOURCE: format!("{}/molecule-ai/{repo}", gitea.base_url()),
        REVISION: sha,
        CREATED: "2024-05-02T10:20:30Z",
        RUN_ID: "4242",
    })
}

/// A `subject` request for an image built from `molecule-ai/repo` at `sha`.
fn subject_body(gitea: &GiteaStandIn, mode: &str, repo: &str, sha: &str) -> Value {
    json!({
        "mode": mode,
        "subject": {
            "reference": format!("registry.example/molecule-ai/{repo}:staging-{sha}"),
            "digest": DIGEST,
            "labels": labels(gitea, repo, sha),
        }
    })
}

fn unlabeled_body(mode: &str) -> Value {
    json!({"mode": mode, "subject": {"reference": "registry.example/molecule-ai/app:old", "digest": DIGEST, "labels": {}}})
}

/// A stand-in with `molecule-ai/app@SHA`, and a policy pointing at it.
fn gitea_and_policy(dir: &Path) -> (GiteaStandIn, PathBuf) {
    let gitea = GiteaStandIn::start();
    gitea.add_commit("molecule-ai", "app", SHA);
    let policy = build_policy(&gitea, dir, "standin", 300);
    (gitea, policy)
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn subject_request_returns_the_guests_verdict_with_the_served_policy_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (gitea, policy) = gitea_and_policy(dir.path());
    let server = Server::start(&["--policy", s(&policy)]);

    let (status, v) = server.post(&subject_body(&gitea, "enforce", "app", SHA));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "verified", "{v}");
    assert_eq!(v["allowed"], true);
    assert_eq!(v["mode"], "enforce");
    assert_eq!(v["event"], "redeploy.verify.reachable");
    assert_eq!(v["policy"]["digest"], digest_of(&policy));
    assert_eq!(v["subject"]["digest"], DIGEST);
    assert_eq!(v["findings"].as_array().unwrap().len(), 9, "{v}");

    // A denial is still a 200: the caller reads `allowed`.
    let (status, v) = server.post(&unlabeled_body("enforce"));
    assert_eq!(
        (status, &v["allowed"], &v["event"]),
        (200, &json!(false), &json!("redeploy.verify.unlabeled"))
    );
    let (status, v) = server.post(&unlabeled_body("log-only"));
    assert_eq!(
        (status, &v["allowed"], &v["mode"]),
        (200, &json!(true), &json!("log-only"))
    );

    // A pin inside the subject is judged.
    let mut body = subject_body(&gitea, "enforce", "app", SHA);
    body["subject"]["pin"] = json!({"runtime": "python", "digest": DIGEST, "source_sha": OTHER_SHA});
    let (status, v) = server.post(&body);
    assert_eq!(
        (status, &v["event"]),
        (200, &json!("redeploy.verify.pin_mismatch")),
        "{v}"
    );

    let (status, text) = server.get("/healthz", None);
    assert_eq!(status, 200, "{text}");
}

/// Pushes `molecule-ai/app:<tag>` to `registry`, labelled as built from
/// the stand-in's `molecule-ai/app` at `SHA`: the image `image` requests
/// ask for. What was pushed.
fn push_app(gitea: &GiteaStandIn, registry: &Registry, tag: &str) -> Pushed {
    let l = labels(gitea, "app", SHA);
    let label_pairs: Vec<(&str, &str)> = l
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
        .collect();
    registry.push_image("molecule-ai/app", tag, &label_pairs, Format::Oci)
}

/// `--policy POLICY --allow-registry HOST --insecure-registry HOST` then
/// `extra`: a server that may fetch images from `host` over plain HTTP.
fn fetching_from<'a>(policy: &'a Path, host: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--policy",
        s(policy),
        "--allow-registry",
        host,
        "--insecure-registry",
        host,
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn image_request_is_fetched_from_an_allowed_registry_and_judged() {
    let dir = tempfile::tempdir().unwrap();
    let (gitea, policy) = gitea_and_policy(dir.path());
    let registry = Registry::start();
    let tag = format!("staging-{SHA}");
    let pushed = push_app(&gitea, &registry, &tag);
    let host = registry.host();
    let server = Server::start(&fetching_from(&policy, &host, &[]));

    let image = format!("{host}/molecule-ai/app:{tag}");
    let (status, v) = server.post(
        &json!({"mode": "enforce", "image": image, "pin": {"digest": pushed.manifest_digest, "source_sha": SHA}}),
    );
    assert_eq!(status, 200, "{v}\n{}", server.log());
    assert_eq!(v["status"], "verified", "{v}");
    assert_eq!(v["subject"]["reference"], image);
    assert_eq!(v["subject"]["digest"], pushed.manifest_digest);
    let pin = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "pin.consistent")
        .unwrap();
    assert_eq!(pin["outcome"], "pass", "{v}");

    // The fetch (manifest and config at least) and the look-up are in the
    // peers' latency histograms, each request once.
    let m = server.metrics();
    let count = |peer: &str| {
        metric(
            &m,
            &format!("provgate_peer_request_duration_seconds_count{{peer=\"{peer}\"}}"),
        )
    };
    assert!(count("registry").is_some_and(|n| n >= 2.0), "{m}");
    assert_eq!(count("gitea"), Some(gitea.hits("/git/commits/") as f64), "{m}");
    assert_eq!(count("pins"), Some(0.0), "{m}");
}

#[test]
fn image_from_a_registry_not_allowed_is_403_and_never_contacted() {
    // A listener that would see any connection attempt.
    let bait = TcpListener::bind("127.0.0.1:0").unwrap();
    bait.set_nonblocking(true).unwrap();
    let bait_host = bait.local_addr().unwrap().to_string();
    let server = Server::start(&[
        "--allow-registry",
        "registry.example",
        "--insecure-registry",
        &bait_host,
    ]);

    for image in [
        format!("{bait_host}/molecule-ai/app:latest"),
        "169.254.169.254/latest/meta-data:x".to_string(),
        "registry.example:5000/molecule-ai/app:latest".to_string(),
        "nginx:latest".to_string(),
    ] {
        let (status, v) = server.post(&json!({"mode": "enforce", "image": image}));
        assert_eq!(status, 403, "{image}: {v}");
        assert!(v["error"].as_str().unwrap().contains("--allow-registry"), "{v}");
    }
    assert!(
        matches!(bait.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the server connected to a registry it does not allow"
    );
}

#[test]
fn image_that_cannot_be_fetched_is_502_naming_the_reason() {
    let host = format!("127.0.0.1:{}", closed_port());
    let server = Server::start(&["--allow-registry", &host, "--insecure-registry", &host]);
    let (status, v) = server.post(&json!({"mode": "log-only", "image": format!("{host}/molecule-ai/app:latest")}));
    assert_eq!(status, 502, "{v}");
    let error = v["error"].as_str().unwrap();
    assert!(error.contains("unreachable") && error.contains(&host), "{error}");

    // A reference that does not parse is the caller's mistake.
    let (status, v) = server.post(&json!({"mode": "log-only", "image": "Not A Reference"}));
    assert_eq!(status, 400, "{v}");
}

#[test]
fn malformed_requests_are_400_with_an_error_naming_the_problem() {
    let server = Server::start(&[]);
    let cases: [(String, &str); 6] = [
        ("{\"mode\": \"enforce\", ".into(), "not valid JSON"),
        (json!({"mode": "strict", "subject": {}}).to_string(), "\"strict\""),
        (
            json!({"mode": "enforce", "subject": {"reference": "r/a:b", "labels": {}}}).to_string(),
            "\"subject.digest\"",
        ),
        (json!({"subject": {}}).to_string(), "\"mode\""),
        (json!({"mode": "enforce"}).to_string(), "\"image\""),
        (
            json!({"mode": "enforce", "image": "r.example/a:b", "pinn": {"digest": DIGEST}}).to_string(),
            "\"pinn\"",
        ),
    ];
    for (body, names) in cases {
        let (status, v) = server.post_raw(body.clone(), None);
        assert_eq!(status, 400, "{body}: {v}");
        let error = v["error"].as_str().unwrap_or_else(|| panic!("no error field: {v}"));
        assert!(error.contains(names), "{body}: {error:?} does not name {names}");
    }
}

#[test]
fn body_over_64_kib_is_413_and_one_just_under_is_judged() {
    let server = Server::start(&[]);
    let with_note = |len: usize| {
        let mut body = unlabeled_body("log-only");
        body["subject"]["labels"]["note"] = json!("x");
        let base = body.to_string().len() - 1;
        body["subject"]["labels"]["note"] = json!("x".repeat(len - base));
        let text = body.to_string();
        assert_eq!(text.len(), len);
        text
    };
    let (status, v) = server.post_raw(with_note(64 * 1024), None);
    assert_eq!(status, 200, "{v}");
    let (status, v) = server.post_raw(with_note(64 * 1024 + 1), None);
    assert_eq!(status, 413, "{v}");
    assert!(v["error"].as_str().unwrap().contains("64 KiB"), "{v}");
}

/// Every part of `secret` long enough to identify it (8 characters) that
/// `text` holds.
fn parts_of(secret: &str, text: &str) -> Vec<String> {
    secret
        .as_bytes()
        .windows(8)
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .filter(|part| text.contains(part.as_str()))
        .collect()
}

#[test]
fn bearer_token_is_required_when_configured_and_neither_token_is_ever_logged() {
    const GITEA_TOKEN: &str = "gT9xQm4v-Zr7Lk2wPn8-Hs5c";
    let dir = tempfile::tempdir().unwrap();
    let gitea = GiteaStandIn::start();
    // Private: only a look-up that carries the token finds it.
    gitea.add_private_commit("molecule-ai", "app", SHA, GITEA_TOKEN);
    let policy = build_policy(&gitea, dir.path(), "standin", 300);
    let decisions = dir.path().join("decisions.jsonl");
    let server = Server::start_env(
        &[
            "--policy",
            s(&policy),
            "--decision-log",
            s(&decisions),
            "--gitea-timeout",
            "2",
            "--auth-token-env",
            "PG_SERVE_TOKEN",
            "-vv",
        ],
        &[("PG_SERVE_TOKEN", &format!("{TOKEN}\n")), ("GITEA_TOKEN", GITEA_TOKEN)],
    );
    let body = unlabeled_body("log-only").to_string();
    for authorization in [
        None,
        Some("Bearer wrong-token".to_string()),
        Some(format!("Basic {TOKEN}")),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
    ] {
        let (status, v) = server.post_raw(body.clone(), authorization.as_deref());
        assert_eq!(status, 401, "{authorization:?}: {v}");
        assert!(!v.to_string().contains(TOKEN));
    }
    let bearer = format!("Bearer {TOKEN}");
    let (status, v) = server.post_raw(body.clone(), Some(&bearer));
    assert_eq!(status, 200, "{v}");
    let (status, v) = server.post_raw(body, Some(&format!("bearer {TOKEN}")));
    assert_eq!(status, 200, "the scheme is case-insensitive: {v}");

    // Subjects whose look-ups go to Gitea with its token: found in the
    // private repository, not found, a Gitea that fails, refuses the token,
    // never answers, and hostile ones that send the token back, whole or
    // most of it.
    let mut verdicts = Vec::new();
    for (repo, sha, event) in [
        ("app", SHA, "reachable"),
        ("app", OTHER_SHA, "unresolved"),
        ("e500", SHA, "unavailable"),
        ("e401", SHA, "unavailable"),
        ("hang", SHA, "unavailable"),
        ("echo", SHA, "unavailable"),
        ("echopart", SHA, "unavailable"),
    ] {
        let subject = subject_body(&gitea, "enforce", repo, sha).to_string();
        let (status, v) = server.post_raw(subject, Some(&bearer));
        assert_eq!(status, 200, "{repo}: {v}");
        assert_eq!(v["event"], format!("redeploy.verify.{event}"), "{repo}: {v}");
        verdicts.push(v.to_string());
    }
    // Each subject's look-up reached Gitea (a failing one may be retried).
    let requests = gitea.requests();
    let asked: std::collections::BTreeSet<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(asked.len(), 7, "{requests:?}");
    for r in &requests {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("token {GITEA_TOKEN}").as_str()),
            "the token went to Gitea in the Authorization header: {r:?}"
        );
    }

    assert_eq!(server.get("/metrics", None).0, 401);
    let (status, metrics) = server.get("/metrics", Some(&bearer));
    assert_eq!(status, 200);
    assert_eq!(server.get("/healthz", None).0, 200, "probes need no token");

    // A record for each of the nine verdicts.
    let read = || std::fs::read_to_string(&decisions).unwrap_or_default();
    wait_until("every verdict is in the decision log", || read().lines().count() >= 9);
    let decision_log = read();
    assert!(
        decision_log.contains("token ***"),
        "the echo was scrubbed: {decision_log}"
    );
    let log = server.log();
    assert!(log.contains("status=401"), "{log}");
    let out = joined(&server.out);
    for (what, text) in [
        ("stderr", &log),
        ("stdout", &out),
        ("the metrics", &metrics),
        ("the decision log", &decision_log),
        ("a verdict", &verdicts.join("\n")),
    ] {
        for secret in [TOKEN, GITEA_TOKEN] {
            let leaked = parts_of(secret, text);
            assert!(leaked.is_empty(), "{leaked:?} of a token in {what}:\n{text}");
        }
    }
}

#[test]
fn auth_token_env_that_is_unset_or_empty_refuses_to_start() {
    let unset = Server::refuses(&["--auth-token-env", "PG_SERVE_NO_SUCH_VAR"], &[]);
    assert_eq!(unset.status.code(), Some(2), "{}", unset.stderr);
    assert!(unset.stderr.contains("PG_SERVE_NO_SUCH_VAR"), "{}", unset.stderr);

    let empty = Server::refuses(&["--auth-token-env", "PG_SERVE_EMPTY"], &[("PG_SERVE_EMPTY", " \n")]);
    assert_eq!(empty.status.code(), Some(2), "{}", empty.stderr);
    assert!(empty.stderr.contains("empty"), "{}", empty.stderr);
}

#[test]
fn a_policy_that_fails_to_load_or_its_digest_pin_refuses_to_start_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"not a component").unwrap();
    let refused = Server::refuses(&["--policy", s(&garbage)], &[]);
    assert_eq!(refused.status.code(), Some(3), "{}", refused.stderr);

    let wrong = format!("sha256:{}", "0".repeat(64));
    let refused = Server::refuses(&["--policy-digest", &wrong], &[]);
    assert_eq!(refused.status.code(), Some(3), "{}", refused.stderr);
    assert!(refused.stderr.contains("digest mismatch"), "{}", refused.stderr);
}

#[test]
fn a_hanging_gitea_lookup_does_not_hold_up_other_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (gitea, policy) = gitea_and_policy(dir.path());
    // Ample for the 24 others to be answered first, even on a loaded machine.
    let server = Server::start(&["--policy", s(&policy), "--gitea-timeout", "4"]);

    let hung = server.post_in_background(&subject_body(&gitea, "enforce", "hang", SHA));
    wait_until("the hanging look-up reaches Gitea", || gitea.hits("/hang/") == 1);

    // Uncached and cached look-ups, and subjects needing none, all complete
    // while the hanging one is still waiting for Gitea.
    let others: Vec<_> = (0..24)
        .map(|i| match i % 3 {
            0 => server.post_in_background(&subject_body(&gitea, "enforce", "app", SHA)),
            1 => server.post_in_background(&subject_body(&gitea, "log-only", "other", OTHER_SHA)),
            _ => server.post_in_background(&unlabeled_body("log-only")),
        })
        .collect();
    for (i, task) in others.into_iter().enumerate() {
        let (status, v) = server.join(task);
        assert_eq!(status, 200, "{v}");
        let expected = [
            "redeploy.verify.reachable",
            "redeploy.verify.unresolved",
            "redeploy.verify.unlabeled",
        ][i % 3];
        assert_eq!(v["event"], expected, "{v}");
    }
    assert!(
        !hung.is_finished(),
        "the hanging request finished before the others were answered"
    );
    assert_eq!(gitea.in_flight(), 1, "the hanging look-up is still waiting for Gitea");

    // The hang ends at --gitea-timeout as "unavailable", denied in enforce.
    let (status, v) = server.join(hung);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["event"], "redeploy.verify.unavailable", "{v}");
    assert_eq!(v["allowed"], false);
}

/// The `n`th of many distinct well-formed commits.
fn nth_sha(n: usize) -> String {
    format!("{n:040x}")
}

/// The events of `verdicts`, counted.
fn events(verdicts: &[(u16, Value)]) -> std::collections::BTreeMap<String, usize> {
    let mut counted = std::collections::BTreeMap::new();
    for (status, v) in verdicts {
        assert_eq!(*status, 200, "{v}");
        *counted.entry(v["event"].as_str().unwrap().to_string()).or_default() += 1;
    }
    counted
}

#[test]
fn cached_and_lookup_free_requests_are_answered_while_two_hundred_lookups_hang() {
    const PENDING: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let (gitea, policy) = gitea_and_policy(dir.path());
    let server = Server::start(&[
        "--policy",
        s(&policy),
        "--gitea-timeout",
        "60",
        "--gitea-concurrency",
        "256",
    ]);
    // Gitea answers once, and the answer is cached.
    let cached = subject_body(&gitea, "enforce", "app", SHA);
    let (status, v) = server.post(&cached);
    assert_eq!((status, &v["event"]), (200, &json!("redeploy.verify.reachable")), "{v}");
    assert_eq!(gitea.answered(), 1);

    // Then it answers nothing, and 200 look-ups for distinct commits wait for it.
    gitea.hang_all(true);
    let pending: Vec<_> = (0..PENDING)
        .map(|n| server.post_in_background(&subject_body(&gitea, "enforce", "app", &nth_sha(n))))
        .collect();
    assert!(
        gitea.wait_for_in_flight(PENDING, SOON),
        "only {} of {PENDING} look-ups reached Gitea:\n{}",
        gitea.in_flight(),
        server.log()
    );

    let (status, v) = server.post(&cached);
    assert_eq!(
        (status, &v["event"], &v["allowed"]),
        (200, &json!("redeploy.verify.reachable"), &json!(true)),
        "{v}"
    );
    let (status, v) = server.post(&unlabeled_body("enforce"));
    assert_eq!(
        (status, &v["event"], &v["allowed"]),
        (200, &json!("redeploy.verify.unlabeled"), &json!(false)),
        "{v}"
    );

    // Both were answered while every one of the others was still waiting,
    // and the cached commit was not asked again.
    assert_eq!(gitea.in_flight(), PENDING, "a hanging look-up ended");
    assert_eq!(gitea.answered(), 1, "Gitea answered a look-up it should be hanging on");
    assert_eq!(gitea.requests().len(), PENDING + 1, "the cached commit was asked again");
    let finished = pending.iter().filter(|task| task.is_finished()).count();
    assert_eq!(finished, 0, "{finished} of the hanging requests were answered");
    for task in pending {
        task.abort();
    }
}

#[test]
fn gitea_concurrency_is_never_exceeded_and_is_what_holds_the_other_lookups_back() {
    const N: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let (gitea, policy) = gitea_and_policy(dir.path());
    for n in 0..3 * N {
        gitea.add_commit("molecule-ai", "app", &nth_sha(n));
    }
    let server = Server::start(&[
        "--policy",
        s(&policy),
        "--gitea-concurrency",
        &N.to_string(),
        "--gitea-timeout",
        "2",
    ]);

    // The first look-ups to arrive hang until --gitea-timeout: N of them
    // are in flight together, and the bound is then what holds the rest.
    gitea.set_delay(Duration::from_millis(100));
    gitea.hang_all(true);
    let tasks: Vec<_> = (0..3 * N)
        .map(|n| server.post_in_background(&subject_body(&gitea, "enforce", "app", &nth_sha(n))))
        .collect();
    assert!(
        gitea.wait_for_in_flight(N, SOON),
        "{N} look-ups were never in flight at once ({} are):\n{}",
        gitea.in_flight(),
        server.log()
    );
    assert_eq!(gitea.requests().len(), N, "more than {N} look-ups were sent at once");
    gitea.hang_all(false);

    let verdicts: Vec<(u16, Value)> = tasks.into_iter().map(|task| server.join(task)).collect();
    let counted = events(&verdicts);
    assert_eq!(
        counted,
        [
            ("redeploy.verify.reachable".to_string(), 2 * N),
            ("redeploy.verify.unavailable".to_string(), N),
        ]
        .into(),
        "the first {N} time out, the others are answered"
    );
    assert_eq!(gitea.requests().len(), 3 * N, "{:?}", gitea.requests());
    // The bound itself was proved above: while N hung, no other look-up
    // arrived. After the time-out the stand-in may still count a hung
    // request for a moment after provgate dropped its connection (it is
    // counted until its handler is dropped), so its maximum can briefly
    // pass N; it must have reached N.
    assert!(gitea.max_in_flight() >= N, "--gitea-concurrency {N}");
}

#[test]
fn a_hung_credential_helper_holds_up_only_its_own_image_request_which_ends_in_502_with_the_helper_killed() {
    let dir = tempfile::tempdir().unwrap();
    let (gitea, policy) = gitea_and_policy(dir.path());
    let registry = Registry::start();
    let tag = format!("staging-{SHA}");
    push_app(&gitea, &registry, &tag);
    let host = registry.host();
    let hang = HungHelper::install(&dir.path().join("helper"));
    let docker_config = dir.path().join("docker");
    hang.configure(&docker_config, &host);
    let path = hang.path_env();
    let server = Server::start_env(
        &fetching_from(&policy, &host, &["--registry-timeout", "2"]),
        &[("DOCKER_CONFIG", s(&docker_config)), ("PATH", &path)],
    );

    // More hung helpers than the server has worker threads.
    let hung = std::thread::available_parallelism().map_or(2, |n| n.get()) + 1;
    let image = json!({"mode": "enforce", "image": format!("{host}/molecule-ai/app:{tag}")});
    let images: Vec<_> = (0..hung).map(|_| server.post_in_background(&image)).collect();
    wait_until("every image request's credential helper runs", || {
        hang.started().len() == hung
    });

    let (status, v) = server.post(&subject_body(&gitea, "enforce", "app", SHA));
    assert_eq!((status, &v["event"]), (200, &json!("redeploy.verify.reachable")), "{v}");
    let finished = images.iter().filter(|task| task.is_finished()).count();
    assert_eq!(
        finished, 0,
        "image requests ended before the subject request was answered"
    );

    for task in images {
        let (status, v) = server.join(task);
        assert_eq!(status, 502, "{v}");
        let error = v["error"].as_str().unwrap();
        assert!(error.contains(&host) && error.contains("within 2 s"), "{error}");
    }
    // Each helper is killed with what it started, and reaped by the server.
    let started = hang.started();
    assert_eq!(started.len(), hung, "a helper ran again: {started:?}");
    for (helper, child) in started {
        wait_until(&format!("helper {helper} is gone"), || process_gone(helper));
        wait_until(&format!("the helper's child {child} is dead"), || process_dead(child));
    }
}

#[test]
fn decision_log_has_one_record_per_verdict_and_replay_agrees_with_every_one() {
    let dir = tempfile::tempdir().unwrap();
    let (gitea, policy) = gitea_and_policy(dir.path());
    let log = dir.path().join("decisions.jsonl");
    let server = Server::start(&["--policy", s(&policy), "--decision-log", s(&log)]);

    let mut pinned = subject_body(&gitea, "enforce", "app", SHA);
    pinned["subject"]["pin"] = json!({"runtime": "python", "digest": DIGEST, "source_sha": OTHER_SHA});
    // No verdict, no record: these come first, so a record of them would be
    // the first lines of the log.
    assert_eq!(server.post_raw("{", None).0, 400);
    assert_eq!(server.post(&json!({"mode": "enforce", "image": "nginx:latest"})).0, 403);
    let bodies = [
        subject_body(&gitea, "enforce", "app", SHA),
        // The same commit, answered from the cache.
        subject_body(&gitea, "log-only", "app", SHA),
        subject_body(&gitea, "enforce", "app", OTHER_SHA),
        subject_body(&gitea, "enforce", "e500", SHA),
        unlabeled_body("enforce"),
        pinned,
    ];
    let mut verdicts = Vec::new();
    for body in &bodies {
        let (status, v) = server.post(body);
        assert_eq!(status, 200, "{v}");
        verdicts.push(v);
    }

    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until("a record of every verdict is written", || {
        read().lines().count() >= verdicts.len()
    });
    let text = read();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a record line ({e}): {l:?}")))
        .collect();
    assert_eq!(records.len(), verdicts.len(), "{text}");
    for (record, verdict) in records.iter().zip(&verdicts) {
        assert_eq!(record["record"], "provgate.decision/1", "{record}");
        assert_eq!(&record["verdict"], verdict, "the record's verdict is the one returned");
    }
    let answers = answer_kinds(&records);
    assert_eq!(
        answers,
        [
            vec!["found"],
            vec!["found"],
            vec!["not_found"],
            vec!["unavailable"],
            vec![],
            vec!["found"]
        ],
        "{text}"
    );

    let o = provgate(&["replay", s(&log), "--policy", s(&policy)], None);
    assert_eq!(code(&o), 0, "stdout:\n{}\nstderr:\n{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("replayed 6 records") && err.contains("6 agree, 0 differ"),
        "{err}"
    );
}

/// For the reload tests: the stand-in (with `molecule-ai/app@SHA`), two
/// policies pointing at it with different digests (`first`, and `second`
/// with another skew), and `served`, the file a server is started on: a
/// copy of the first.
struct Reloadable {
    dir: tempfile::TempDir,
    gitea: GiteaStandIn,
    first: PathBuf,
    second: PathBuf,
    served: PathBuf,
}

impl Reloadable {
    fn new() -> Reloadable {
        let dir = tempfile::tempdir().unwrap();
        let (gitea, first) = gitea_and_policy(dir.path());
        let second = build_policy(&gitea, dir.path(), "second", 600);
        let served = dir.path().join("served.wasm");
        std::fs::copy(&first, &served).unwrap();
        Reloadable {
            dir,
            gitea,
            first,
            second,
            served,
        }
    }

    /// Replaces the served file with the second policy the way a
    /// deployment would: written aside, renamed over.
    fn swap_in_the_second(&self) {
        let staged = self.dir.path().join("served.wasm.new");
        std::fs::copy(&self.second, &staged).unwrap();
        std::fs::rename(&staged, &self.served).unwrap();
    }
}

#[test]
fn readyz_is_200_with_the_digest_of_the_policy_being_served_and_needs_no_token() {
    let reload = Reloadable::new();
    let server = Server::start_env(
        &["--policy", s(&reload.served), "--auth-token-env", "PG_SERVE_TOKEN"],
        &[("PG_SERVE_TOKEN", TOKEN)],
    );
    let ready = || {
        let (status, text) = server.get("/readyz", None);
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        assert_eq!(v["status"], "ready", "{v}");
        v["policy"]
            .as_str()
            .unwrap_or_else(|| panic!("no policy digest: {v}"))
            .to_string()
    };
    assert_eq!(ready(), digest_of(&reload.first));

    reload.swap_in_the_second();
    server.signal("HUP");
    server.wait_for_log("policy reloaded", 1);
    assert_eq!(ready(), digest_of(&reload.second));
}

#[test]
fn sighup_swaps_in_a_new_policy_and_logs_both_digests() {
    let reload = Reloadable::new();
    let (old, new) = (digest_of(&reload.first), digest_of(&reload.second));
    assert_ne!(old, new);
    let server = Server::start(&["--policy", s(&reload.served)]);
    let body = subject_body(&reload.gitea, "enforce", "app", SHA);
    assert_eq!(server.post(&body).1["policy"]["digest"], old);

    reload.swap_in_the_second();
    server.signal("HUP");
    server.wait_for_log("policy reloaded", 1);

    let (status, v) = server.post(&body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["policy"]["digest"], new, "{}", server.log());
    let line = server
        .log()
        .lines()
        .find(|l| l.contains("policy reloaded"))
        .unwrap()
        .to_string();
    assert!(line.contains(&old) && line.contains(&new), "{line}");
    let metrics = server.metrics();
    assert!(metrics.contains(&format!("digest=\"{new}\"")), "{metrics}");
    assert!(
        metrics.contains("provgate_policy_reloads_total{result=\"ok\"} 1"),
        "{metrics}"
    );
}

#[test]
fn sighup_with_a_broken_or_unpinned_artifact_keeps_serving_the_old_policy() {
    let reload = Reloadable::new();
    let old = digest_of(&reload.first);
    let server = Server::start(&["--policy", s(&reload.served), "--policy-digest", &old]);
    let body = subject_body(&reload.gitea, "enforce", "app", SHA);

    // Garbage in place of the artifact.
    std::fs::write(&reload.served, b"\0asm garbage").unwrap();
    server.signal("HUP");
    server.wait_for_log("policy reload refused", 1);
    let (status, v) = server.post(&body);
    assert_eq!((status, &v["policy"]["digest"]), (200, &json!(old)), "{v}");

    // A valid artifact that is not the one --policy-digest pins.
    std::fs::copy(&reload.second, &reload.served).unwrap();
    server.signal("HUP");
    server.wait_for_log("policy reload refused", 2);
    let (status, v) = server.post(&body);
    assert_eq!((status, &v["policy"]["digest"]), (200, &json!(old)), "{v}");
    assert!(server.log().contains("digest mismatch"), "{}", server.log());
    assert!(
        server
            .metrics()
            .contains("provgate_policy_reloads_total{result=\"refused\"} 2"),
        "{}",
        server.metrics()
    );
}

#[test]
fn sighup_with_the_built_in_policy_is_a_logged_no_op() {
    let server = Server::start(&[]);
    server.signal("HUP");
    server.wait_for_log("nothing to reload", 1);
    let (status, v) = server.post(&unlabeled_body("log-only"));
    assert_eq!(status, 200, "{v}");
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (gitea, policy) = gitea_and_policy(dir.path());
    gitea.set_delay(Duration::from_secs(4));
    let mut server = Server::start(&["--policy", s(&policy), "--gitea-timeout", "30"]);

    let in_flight = server.post_in_background(&subject_body(&gitea, "enforce", "app", SHA));
    wait_until("the look-up reaches Gitea", || gitea.hits("/git/commits/") == 1);
    server.signal("TERM");
    server.wait_for_log("SIGTERM", 1);
    // It stops accepting while the request is still being answered.
    wait_until("the listener closes", || {
        std::net::TcpStream::connect(&server.addr).is_err()
    });
    assert!(!in_flight.is_finished(), "the request ended before the listener closed");

    let (status, v) = server.join(in_flight);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["event"], "redeploy.verify.reachable", "{v}");
    let status = server.wait_exit(SOON);
    assert_eq!(status.code(), Some(0), "{}", server.log());
}

#[test]
fn metrics_count_verdicts_by_event_and_mode_lookups_and_cache_hits_without_unbounded_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (gitea, policy) = gitea_and_policy(dir.path());
    let server = Server::start(&["--policy", s(&policy)]);

    let mut served = Value::Null;
    for _ in 0..3 {
        let (status, v) = server.post(&subject_body(&gitea, "enforce", "app", SHA));
        assert_eq!(status, 200, "{v}");
        served = v["policy"].clone();
    }
    for _ in 0..2 {
        assert_eq!(server.post(&unlabeled_body("log-only")).0, 200);
    }
    assert_eq!(server.post(&subject_body(&gitea, "enforce", "app", OTHER_SHA)).0, 200);
    assert_eq!(server.post_raw("{", None).0, 400);

    let m = server.metrics();
    for line in [
        "provgate_verdicts_total{event=\"redeploy.verify.reachable\",mode=\"enforce\",allowed=\"true\"} 3",
        "provgate_verdicts_total{event=\"redeploy.verify.unlabeled\",mode=\"log-only\",allowed=\"true\"} 2",
        "provgate_verdicts_total{event=\"redeploy.verify.unresolved\",mode=\"enforce\",allowed=\"false\"} 1",
        "provgate_verify_duration_seconds_count{input=\"subject\"} 6",
        "provgate_http_requests_total{path=\"/v1/verify\",status=\"200\"} 6",
        "provgate_http_requests_total{path=\"/v1/verify\",status=\"400\"} 1",
        "provgate_gitea_lookups_total{outcome=\"found\"} 1",
        "provgate_gitea_lookups_total{outcome=\"not_found\"} 1",
        "provgate_gitea_lookups_total{outcome=\"unavailable\"} 0",
        "provgate_gitea_cache_hits_total 2",
        // The version the verdicts name: the artifact's own, not provgate's.
        &format!(
            "provgate_policy_info{{name=\"provgate-provenance\",version=\"{}\",digest=\"{}\"}} 1",
            served["version"].as_str().unwrap(),
            digest_of(&policy)
        ),
    ] {
        assert!(m.contains(line), "missing {line:?} in\n{m}");
    }
    assert_eq!(gitea.hits("/git/commits/"), 2, "one look-up per (repo, sha)");
    for unbounded in [SHA, OTHER_SHA, "molecule-ai", "registry.example", DIGEST] {
        assert!(!m.contains(unbounded), "{unbounded} is a label value:\n{m}");
    }
    assert!(m.ends_with("# EOF\n"), "{m}");
}

#[test]
fn by_default_one_uncoloured_log_line_per_request_with_status_event_mode_and_latency() {
    let server = Server::start(&[]);
    assert_eq!(server.post(&unlabeled_body("log-only")).0, 200);
    assert_eq!(server.post_raw("{", None).0, 400);
    server.wait_for_log("status=400", 1);
    let log = server.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" request ") || l.ends_with(" request"))
        .collect();
    let verdict = lines
        .iter()
        .find(|l| l.contains("status=200"))
        .unwrap_or_else(|| panic!("{log}"));
    for field in [
        "method=POST",
        "path=\"/v1/verify\"",
        "event=redeploy.verify.unlabeled",
        "mode=\"log-only\"",
        "latency_ms=",
    ] {
        assert!(verdict.contains(field), "{field} missing: {verdict}");
    }
    assert_eq!(lines.iter().filter(|l| l.contains("status=")).count(), 2, "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "terminal escape codes in a log that is not a terminal: {log:?}"
    );
}

#[test]
fn retried_gitea_lookups_are_counted_in_the_metrics_by_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (gitea, policy) = gitea_and_policy(dir.path());
    let server = Server::start(&["--policy", s(&policy)]);
    let before = server.metrics();
    assert!(before.contains("provgate_retries_total{peer=\"gitea\"} 0"), "{before}");

    // The stand-in's `e500` repository always answers 500: every attempt
    // after the first is a retry.
    let (status, v) = server.post(&subject_body(&gitea, "log-only", "e500", SHA));
    assert_eq!((status, &v["status"]), (200, &json!("indeterminate")), "{v}");
    let attempts = gitea.hits("e500");
    assert!(attempts >= 2, "the 500 was retried: {attempts}");
    let after = server.metrics();
    let expected = format!("provgate_retries_total{{peer=\"gitea\"}} {}", attempts - 1);
    assert!(after.contains(&expected), "{expected} in\n{after}");
    assert!(after.contains("provgate_retries_total{peer=\"registry\"} 0"), "{after}");
    // Every attempt is one sample of the peer's latency histogram.
    assert_eq!(
        metric(&after, "provgate_peer_request_duration_seconds_count{peer=\"gitea\"}"),
        Some(attempts as f64),
        "{after}"
    );
}

// Service conventions: request ids, JSON bodies for every error, the build
// info gauge, `--listen :PORT` and `--log-format json`.

#[test]
fn every_request_line_has_a_request_id_echoed_back_and_a_verdicts_has_its_decision_id() {
    let server = Server::start(&["--decision-log", "-"]);
    let send = |id: Option<&str>| {
        let mut request = server.verify_request(unlabeled_body("log-only").to_string(), None);
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        server.runtime.block_on(async move {
            let response = request.send().await.expect("the server answers");
            assert_eq!(response.status().as_u16(), 200);
            let echoed = response.headers()["x-request-id"].to_str().unwrap().to_string();
            (echoed, response.json::<Value>().await.unwrap())
        })
    };
    let (echoed, verdict) = send(Some("ci-run.42_a"));
    assert_eq!(echoed, "ci-run.42_a");
    // An id that is not plain is not taken (nor echoed): the server makes one.
    let (made, _) = send(Some("has space"));
    assert_ne!(made, "has space");
    assert!(
        made.len() <= 64 && made.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "{made}"
    );
    let (other, _) = send(None);
    assert_ne!(other, made, "ids are unique");

    server.wait_for_log(&format!("request_id={other}"), 1);
    wait_until("the decision log", || server.out.lock().unwrap().len() >= 3);
    let record: Value = serde_json::from_str(&server.out.lock().unwrap()[0]).unwrap();
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("request_id=ci-run.42_a"))
        .unwrap_or_else(|| panic!("{log}"));
    for field in [
        format!("decision_id={}", record["id"].as_str().unwrap()),
        format!("reference={}", verdict["subject"]["reference"].as_str().unwrap()),
        format!("digest={}", verdict["subject"]["digest"].as_str().unwrap()),
        format!("policy_digest={}", verdict["policy"]["digest"].as_str().unwrap()),
        "event=redeploy.verify.unlabeled".to_string(),
        "allowed=true".to_string(),
    ] {
        assert!(line.contains(&field), "{field} missing: {line}");
    }
    let (status, _) = server.get("/healthz", None);
    assert_eq!(status, 200);
    server.wait_for_log("path=\"/healthz\"", 1);
    let health = server.log();
    let health = health.lines().find(|l| l.contains("path=\"/healthz\"")).unwrap();
    assert!(health.contains("request_id="), "{health}");
}

#[test]
fn every_error_status_has_a_json_body_and_405_an_allow_header() {
    let server = Server::start(&[]);
    let answer = |method: reqwest::Method, path: &str| {
        let request = server.client.request(method, server.url(path));
        server.runtime.block_on(async move {
            let response = request.send().await.expect("the server answers");
            let status = response.status().as_u16();
            let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_string());
            let body: Value = response.json().await.expect("a JSON body");
            (status, allow, body)
        })
    };
    let (status, allow, body) = answer(reqwest::Method::GET, "/v1/verify");
    assert_eq!((status, allow.as_deref()), (405, Some("POST")), "{body}");
    assert!(body["error"].as_str().unwrap().contains("POST"), "{body}");
    let (status, allow, body) = answer(reqwest::Method::DELETE, "/healthz");
    assert_eq!((status, allow.as_deref()), (405, Some("GET,HEAD")), "{body}");
    let (status, _, body) = answer(reqwest::Method::GET, "/no/such/route");
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("/v1/verify"), "{body}");
}

#[test]
fn metrics_have_the_build_info_gauge() {
    let server = Server::start(&[]);
    let metrics = server.metrics();
    assert!(metrics.contains("# TYPE provgate_build_info gauge"), "{metrics}");
    let line = format!("provgate_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
}

#[test]
fn listen_colon_port_listens_on_every_interface_and_a_bare_port_is_refused() {
    let mut cmd = provgate_command(&["serve", "--listen", ":0"], &[]);
    let mut child = cmd.spawn().unwrap();
    let (log, rx) = watch_stderr(child.stderr.take().unwrap(), listening_address);
    let addr = rx.recv_timeout(START_DEADLINE);
    let _ = child.kill();
    let _ = child.wait();
    let addr = addr.unwrap_or_else(|_| panic!("did not listen:\n{}", joined(&log)));
    assert!(addr.starts_with("0.0.0.0:") && !addr.ends_with(":0"), "{addr}");

    let o = provgate(&["serve", "--listen", "8080"], None);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains(":PORT"), "{}", stderr(&o));
}

#[test]
fn log_format_json_makes_every_serve_log_line_a_json_object() {
    let server = Server::start(&["--log-format", "json"]);
    assert_eq!(server.post(&unlabeled_body("enforce")).0, 200);
    server.wait_for_log("\"status\":200", 1);
    let log = server.log();
    for line in log.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    let request: Value = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["message"] == "request")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(request["status"], 200, "{request}");
    assert_eq!(request["event"], "redeploy.verify.unlabeled", "{request}");
    assert!(
        request["request_id"].is_string() && request["decision_id"].is_string(),
        "{request}"
    );
}

#[test]
fn sighup_with_random_bytes_for_the_policy_logs_one_short_refused_line_and_keeps_serving() {
    let reload = Reloadable::new();
    let old = digest_of(&reload.first);
    let server = Server::start(&["--policy", s(&reload.served)]);
    let body = subject_body(&reload.gitea, "log-only", "app", SHA);
    assert_eq!(server.post(&body).1["policy"]["digest"], old);

    // Bytes that are not WebAssembly at all (wasmtime's error about them
    // runs over many lines), written aside and renamed over the policy.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let staged = reload.dir.path().join("served.wasm.noise");
    std::fs::write(&staged, &noise).unwrap();
    std::fs::rename(&staged, &reload.served).unwrap();
    let before = server.log.lock().unwrap().len();
    server.signal("HUP");
    server.wait_for_log("policy reload refused", 1);

    let (status, v) = server.post(&body);
    assert_eq!((status, &v["policy"]["digest"]), (200, &json!(old)), "{v}");
    let log = server.log.lock().unwrap().clone();
    let refused: Vec<&String> = log.iter().filter(|l| l.contains("policy reload refused")).collect();
    assert_eq!(refused.len(), 1, "{log:#?}");
    let line = refused[0];
    assert!(
        line.chars().count() <= 300,
        "{} characters: {line}",
        line.chars().count()
    );
    assert!(line.contains(&old), "{line}");
    // Nothing of the loader's error on lines of its own: every line since
    // the signal is a log line of its own, with a level.
    for later in &log[before..] {
        assert!(
            [" INFO ", " WARN ", " DEBUG ", " ERROR "]
                .iter()
                .any(|level| later.contains(level)),
            "a line that is not a log line: {later:?}\n{log:#?}"
        );
    }
}
