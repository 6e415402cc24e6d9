//! The server's status matrix, in process: each request goes through the
//! same router `serve` binds, with the built-in policy, and nothing listens.

use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::handler::Handler;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::settings::Settings;
use super::{MAX_BODY_BYTES, app};
use crate::input::credentials::AuthSources;
use crate::input::registry::RegistryOptions;
use crate::policy::cache::CodeCache;
use crate::policy::{Artifact, Limits, Policy};

const ALLOWED: &str = "registry.example";
const DIGEST: &str = "sha256:8cbffb2fd0364dd51e206a3ed61d584d5a7668fb71df7469702d24b6d2536d09";
const TOKEN: &str = "serve-test-token-5b1e";

fn settings() -> Settings {
    Settings {
        gitea_timeout: Duration::from_secs(1),
        gitea_concurrency: 4,
        decision_log: None,
        registry: RegistryOptions {
            auth: AuthSources::from_env(None),
            platform: "linux/amd64".into(),
            insecure: Vec::new(),
            timeout: Duration::from_secs(1),
            reach: crate::input::registry::Reach::Guarded {
                auth_hosts: Vec::new(),
                redirect_hosts: Vec::new(),
            },
        },
        shutdown_timeout: Duration::from_secs(1),
        policy_path: None,
        policy_digest: None,
        policy_key: None,
        policy_registry: Default::default(),
        policy_refresh: None,
        allow: vec![ALLOWED.into()],
        auth: None,
        gitea_token: None,
    }
}

/// The built-in policy, its compiled code shared with the integration tests.
fn policy() -> Policy {
    let cache = CodeCache::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-code-cache"));
    Policy::load(Artifact::builtin(), Limits::default(), Some(&cache)).expect("the built-in policy loads")
}

fn router_with(settings: Settings) -> Router {
    app(settings, policy()).expect("the app builds").0
}

fn router() -> Router {
    router_with(settings())
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn error(&self) -> String {
        self.json()["error"].as_str().expect("an error body").to_string()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request through the router, as `tower::ServiceExt::oneshot` would
/// send it: the router as a service behind a handler, so no tower import.
async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = Handler::call(axum::routing::any_service(router.clone()), request, ()).await;
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the body is read")
        .to_vec();
    Answer { status, headers, body }
}

fn post(body: impl Into<Body>) -> Request<Body> {
    Request::post("/v1/verify")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .expect("a request")
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("a request")
}

/// The facts of an image without labels: judged without any look-up.
fn unlabeled(mode: &str) -> Value {
    json!({"mode": mode, "subject": {"reference": "registry.example/molecule-ai/app:1", "digest": DIGEST, "labels": {}}})
}

#[tokio::test]
async fn a_subject_body_is_judged_200_and_allowed_is_the_guests_decision_for_the_mode() {
    let router = router();
    let enforce = send(&router, post(unlabeled("enforce").to_string())).await;
    assert_eq!(enforce.status, StatusCode::OK, "{}", enforce.text());
    let v = enforce.json();
    assert_eq!(v["allowed"], json!(false), "{v}");
    assert_eq!(v["event"], "redeploy.verify.unlabeled", "{v}");
    assert_eq!(v["mode"], "enforce", "{v}");
    assert_eq!(v["subject"]["digest"], DIGEST, "{v}");
    assert_eq!(v["policy"]["digest"], json!(Artifact::builtin().digest), "{v}");

    let log_only = send(&router, post(unlabeled("log-only").to_string())).await;
    assert_eq!(log_only.status, StatusCode::OK, "{}", log_only.text());
    assert_eq!(log_only.json()["allowed"], json!(true), "{}", log_only.text());
}

#[tokio::test]
async fn a_json_body_is_judged_whatever_content_type_it_is_sent_with() {
    let router = router();
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let mut request = Request::post("/v1/verify");
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let request = request
            .body(Body::from(unlabeled("enforce").to_string()))
            .expect("a request");
        let answer = send(&router, request).await;
        assert_eq!(answer.status, StatusCode::OK, "{content_type:?}: {}", answer.text());
        assert_eq!(answer.json()["allowed"], json!(false), "{content_type:?}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400_saying_so() {
    let answer = send(&router(), post("{not json")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert!(
        answer.error().starts_with("the body is not valid JSON: "),
        "{}",
        answer.text()
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_one_at_the_limit_is_read() {
    let router = router();
    let over = send(&router, post(vec![b' '; MAX_BODY_BYTES + 1])).await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", over.text());
    assert_eq!(over.json(), json!({"error": "the body is larger than 64 KiB"}));

    // Read whole, then refused for what it says, not for its size.
    let at = send(&router, post(vec![b' '; MAX_BODY_BYTES])).await;
    assert_eq!(at.status, StatusCode::BAD_REQUEST, "{}", at.text());
}

#[tokio::test]
async fn get_on_verify_is_405_allowing_post() {
    let answer = send(&router(), get("/v1/verify")).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{}", answer.text());
    assert_eq!(
        answer.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()),
        Some("POST")
    );
}

#[tokio::test]
async fn an_image_from_a_registry_not_allowed_is_403_naming_it() {
    let body = json!({"mode": "enforce", "image": "other.example/molecule-ai/app:1"});
    let answer = send(&router(), post(body.to_string())).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());
    assert_eq!(
        answer.error(),
        "this server does not fetch images from other.example; it is not in its --allow-registry list"
    );
}

#[tokio::test]
async fn an_image_that_is_not_a_reference_is_400_naming_the_field() {
    let body = json!({"mode": "enforce", "image": "registry.example/Molecule-AI/app:1"});
    let answer = send(&router(), post(body.to_string())).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert!(answer.error().starts_with("\"image\": "), "{}", answer.text());
}

#[tokio::test]
async fn readyz_names_the_digest_of_the_policy_being_served() {
    let answer = send(&router(), get("/readyz")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({"status": "ready", "policy": Artifact::builtin().digest})
    );
}

#[tokio::test]
async fn metrics_count_each_answered_request_by_route_and_status_and_each_verdict() {
    let router = router();
    send(&router, post(unlabeled("enforce").to_string())).await;
    send(&router, post("{not json")).await;
    let answer = send(&router, get("/metrics")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = answer.text();
    for line in [
        "provgate_http_requests_total{path=\"/v1/verify\",status=\"200\"} 1",
        "provgate_http_requests_total{path=\"/v1/verify\",status=\"400\"} 1",
        "provgate_verdicts_total{event=\"redeploy.verify.unlabeled\",mode=\"enforce\",allowed=\"false\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
}

#[tokio::test]
async fn an_unknown_route_is_404_listing_the_routes() {
    let answer = send(&router(), get("/v2/verify")).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text());
    assert!(answer.error().contains("POST /v1/verify"), "{}", answer.text());
}

#[tokio::test]
async fn with_a_token_configured_verify_and_metrics_need_it_and_probes_do_not() {
    let router = router_with(Settings {
        auth: Some(Sha256::digest(TOKEN.as_bytes()).into()),
        ..settings()
    });
    for path in ["/v1/verify", "/metrics"] {
        let method = if path == "/metrics" { Method::GET } else { Method::POST };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::from(unlabeled("enforce").to_string()))
            .expect("a request");
        let answer = send(&router, request).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}: {}", answer.text());
        assert_eq!(
            answer
                .headers
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok()),
            Some("Bearer realm=\"provgate\"")
        );
    }
    let with_token = Request::post("/v1/verify")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::from(unlabeled("enforce").to_string()))
        .expect("a request");
    assert_eq!(send(&router, with_token).await.status, StatusCode::OK);
    assert_eq!(send(&router, get("/healthz")).await.status, StatusCode::OK);
    assert_eq!(send(&router, get("/readyz")).await.status, StatusCode::OK);
}
