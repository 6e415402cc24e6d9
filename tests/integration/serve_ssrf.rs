//! `provgate serve` against registries that try to send it elsewhere
//! (SSRF): a registry in `--allow-registry` picks its token realm and its
//! redirects, and must not be able to make the server call the machine's
//! own or its network's internal addresses. Each lie is told by the lying
//! proxy of `testkit/src/registry_liar.rs` in front of a real registry; the
//! internal host is another liar whose request log shows that it was never
//! contacted. The same host becomes reachable when the operator names it
//! (`--allow-auth-host`, `--allow-redirect-host`).
//!
//! (`verify`, run by a user, still goes anywhere: `registry_lies.rs`.)

use std::path::PathBuf;
use std::time::Duration;

use provgate_testkit::gitea::GiteaStandIn;
use provgate_testkit::registry::{Format, Pushed, Registry};
use provgate_testkit::registry_liar::{Liar, Lie, Route, TokenAnswer};
use provgate_testkit::serve::Served;
use provgate_testkit::*;
use serde_json::{Value, json};

/// How long a server may take to print its address (the first start in a
/// fresh checkout compiles the policy).
const REPO: &str = "molecule-ai/app";
/// The token the token service hands out: what a 502 must never reflect.
const TOKEN: &str = "internal-token-page-4c8e1d";

/// A running `provgate serve --listen 127.0.0.1:0 …`, killed when dropped.
struct Server {
    served: Served,
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut cmd = provgate_testkit::serve::command(args, &[]);
        cmd.stdout(std::process::Stdio::null());
        let served = Served::start(cmd);
        provgate::http::install_provider();
        Server {
            served,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    /// POST /v1/verify of `image` (enforce, pinned to `pin`): status and body.
    fn verify(&self, image: &str, pin: &str) -> (u16, Value) {
        let body = json!({"mode": "enforce", "image": image, "pin": {"digest": pin, "source_sha": SHA}});
        let request = self
            .client
            .post(format!("http://{}/v1/verify", self.served.addr))
            .header("content-type", "application/json")
            .body(body.to_string());
        self.runtime.block_on(async move {
            let response = request.send().await.expect("the server answers");
            let status = response.status().as_u16();
            let text = response.text().await.expect("a body");
            (
                status,
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
            )
        })
    }

    fn log(&self) -> String {
        self.served.log()
    }
}

/// The Gitea stand-in with `molecule-ai/app@SHA`, a policy pointing at it,
/// a real registry with the image built from it, and the lying proxy in
/// front. (The liar is dropped before the registry behind it.)
struct Stage {
    liar: Liar,
    pushed: Pushed,
    reg: Registry,
    policy: PathBuf,
    _gitea: GiteaStandIn,
    _dir: tempfile::TempDir,
}

impl Stage {
    fn new() -> Stage {
        let dir = tempfile::tempdir().unwrap();
        let gitea = GiteaStandIn::start();
        gitea.add_commit("molecule-ai", "app", SHA);
        // The built-in rules, their settings pointing at the stand-in.
        let policy = PathBuf::from(policy_for(&gitea.base_url(), dir.path()));
        let reg = Registry::start();
        let source = format!("{}/{REPO}", gitea.base_url());
        let labels = [
            (SOURCE, source.as_str()),
            (REVISION, SHA),
            (CREATED, "2024-05-02T10:20:30Z"),
            (RUN_ID, "4242"),
        ];
        let pushed = reg.push_image(REPO, &format!("staging-{SHA}"), &labels, Format::Oci);
        let liar = Liar::proxy(&reg.host());
        Stage {
            liar,
            pushed,
            reg,
            policy,
            _gitea: gitea,
            _dir: dir,
        }
    }

    fn image(&self) -> String {
        format!("{}/{REPO}:staging-{SHA}", self.liar.host())
    }

    /// A server allowed to fetch from the liar over plain HTTP, plus `extra`.
    fn serve(&self, extra: &[&str]) -> Server {
        let host = self.liar.host();
        let mut args = vec![
            "--policy",
            self.policy.to_str().unwrap(),
            "--allow-registry",
            &host,
            "--insecure-registry",
            &host,
        ];
        args.extend_from_slice(extra);
        Server::start(&args)
    }

    /// Another host, 127.0.0.2, proxying to the same registry.
    fn elsewhere(&self) -> Liar {
        Liar::start("127.0.0.2", Some(&self.reg.host()), None)
    }

    /// The image judged through `server`: a 200 with a verified verdict
    /// on the pushed digest.
    #[track_caller]
    fn assert_verified(&self, server: &Server) {
        let (status, v) = server.verify(&self.image(), &self.pushed.manifest_digest);
        assert_eq!(status, 200, "{v}\n{}", server.log());
        assert_eq!(v["status"], "verified", "{v}");
        assert_eq!(v["subject"]["digest"], self.pushed.manifest_digest, "{v}");
    }

    /// The image refused through `server`: a 502 whose error names each of
    /// `words`. The error.
    #[track_caller]
    fn assert_refused(&self, server: &Server, words: &[&str]) -> String {
        let (status, v) = server.verify(&self.image(), &self.pushed.manifest_digest);
        assert_eq!(status, 502, "{v}\n{}", server.log());
        let error = v["error"].as_str().unwrap_or_default().to_string();
        for word in words {
            assert!(error.contains(word), "{word:?} missing from the error: {error}");
        }
        error
    }
}

#[test]
fn a_token_realm_on_another_loopback_port_is_502_never_contacted_until_allow_auth_host_names_it() {
    let stage = Stage::new();
    let tokens = Liar::standalone("127.0.0.1");
    tokens.tokens(TokenAnswer::Give(TOKEN.into()));
    stage.liar.require_token_from(TOKEN, &tokens.realm());

    let server = stage.serve(&[]);
    let error = stage.assert_refused(
        &server,
        &[
            "token realm",
            &tokens.realm(),
            "not an allowed host",
            "loopback",
            &format!("--allow-auth-host {}", tokens.host()),
        ],
    );
    assert!(
        tokens.seen().is_empty(),
        "the token service was contacted: {:?}",
        tokens.seen()
    );
    assert!(!error.contains(TOKEN), "{error}");
    assert!(!server.log().contains(TOKEN), "{}", server.log());
    drop(server);

    let server = stage.serve(&["--allow-auth-host", &tokens.host()]);
    stage.assert_verified(&server);
    assert_eq!(tokens.seen_for("/token").len(), 1, "{:?}", tokens.seen());
    let bearer = Some(format!("Bearer {TOKEN}"));
    assert!(
        stage
            .liar
            .seen_for("/manifests/")
            .iter()
            .any(|s| s.authorization == bearer)
    );
}

#[test]
fn a_token_realm_on_the_registrys_own_host_and_port_needs_no_flag() {
    let stage = Stage::new();
    stage.liar.require_token(TOKEN);

    let server = stage.serve(&[]);
    stage.assert_verified(&server);
    assert_eq!(stage.liar.seen_for("/token").len(), 1, "{:?}", stage.liar.seen());
}

#[test]
fn a_blob_redirect_to_a_loopback_host_is_502_never_contacted_until_allow_redirect_host_names_it() {
    let stage = Stage::new();
    let storage = stage.elsewhere();
    stage.liar.lie(
        Route::Blob,
        None,
        Lie::Redirect {
            status: 307,
            to: storage.url(),
        },
    );

    let server = stage.serve(&[]);
    stage.assert_refused(
        &server,
        &[
            "blob redirect",
            &storage.url(),
            "127.0.0.2 is a loopback address",
            &format!("--allow-redirect-host {}", storage.host()),
        ],
    );
    assert!(
        storage.seen().is_empty(),
        "the storage host was contacted: {:?}",
        storage.seen()
    );
    drop(server);

    // A HOST entry allows every port of it.
    let server = stage.serve(&["--allow-redirect-host", "127.0.0.2"]);
    stage.assert_verified(&server);
    assert_eq!(
        storage.seen_for(&stage.pushed.config_digest).len(),
        1,
        "{:?}",
        storage.seen()
    );
}

#[test]
fn a_manifest_redirect_to_a_loopback_host_is_502_never_contacted_until_allow_redirect_host_names_it() {
    let stage = Stage::new();
    let elsewhere = stage.elsewhere();
    stage.liar.lie(
        Route::Manifest,
        None,
        Lie::Redirect {
            status: 302,
            to: elsewhere.url(),
        },
    );
    // Plain HTTP to it is allowed: only the reach guard stands in the way.
    let insecure = elsewhere.host();

    let server = stage.serve(&["--insecure-registry", &insecure]);
    stage.assert_refused(
        &server,
        &[
            "manifest redirect",
            &elsewhere.url(),
            "loopback",
            "--allow-redirect-host",
        ],
    );
    assert!(
        elsewhere.seen().is_empty(),
        "the other host was contacted: {:?}",
        elsewhere.seen()
    );
    drop(server);

    let server = stage.serve(&["--insecure-registry", &insecure, "--allow-redirect-host", &insecure]);
    stage.assert_verified(&server);
    assert_eq!(elsewhere.seen_for("/manifests/").len(), 1, "{:?}", elsewhere.seen());
}

#[test]
fn a_blob_redirect_to_a_name_that_resolves_to_loopback_is_refused_at_resolution_and_never_contacted() {
    let stage = Stage::new();
    // Storage on 127.0.0.1, named `localhost`: no IP literal to check
    // before the request, so the resolver is what refuses it.
    let storage = Liar::start("127.0.0.1", Some(&stage.reg.host()), None);
    let port = storage.host().rsplit_once(':').unwrap().1.to_string();
    stage.liar.lie(
        Route::Blob,
        None,
        Lie::Redirect {
            status: 307,
            to: format!("http://localhost:{port}"),
        },
    );

    let server = stage.serve(&[]);
    stage.assert_refused(
        &server,
        &[
            "blob redirect",
            "localhost resolves to",
            "loopback",
            "--allow-redirect-host localhost:",
        ],
    );
    assert!(
        storage.seen().is_empty(),
        "the storage host was contacted: {:?}",
        storage.seen()
    );
}

#[test]
fn an_allowed_redirect_targets_error_body_is_never_reflected_in_the_502_or_the_log() {
    const THIRD_PARTY: &str = "THIRD-PARTY-INTERNAL-BODY s3 bucket acl=private key=AKIAEXAMPLE";
    let stage = Stage::new();
    let body = format!(r#"{{"errors":[{{"code":"BLOB_UNKNOWN","message":"{THIRD_PARTY}"}}]}}"#);
    let storage = provgate_testkit::canned::Canned::start(provgate_testkit::canned::http(
        "404 Not Found",
        &[("Content-Type", "application/json")],
        &body,
    ));
    stage.liar.lie(
        Route::Blob,
        None,
        Lie::Redirect {
            status: 302,
            to: format!("{}/bucket/x", storage.base),
        },
    );
    let server = stage.serve(&["--allow-redirect-host", storage.host()]);
    let error = stage.assert_refused(&server, &["404"]);
    assert!(storage.asked() > 0, "the allowed storage host was asked");
    assert!(!error.contains("THIRD-PARTY") && !error.contains("AKIA"), "{error}");
    assert!(!server.log().contains("THIRD-PARTY"), "{}", server.log());
}
