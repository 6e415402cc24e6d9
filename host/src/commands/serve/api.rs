//! The routes of `provgate serve`, the request body, the bearer-token check
//! and the one log line per request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{ApiError, fetch_status};
use super::{MAX_BODY_BYTES, Shared};
use crate::input::registry;
use crate::judge::judge;
use crate::record::Record;
use crate::subject::{Pin, Subject};
use crate::text::{quote, shown};
use crate::verdict::Mode;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    let guarded = Router::new()
        .route("/v1/verify", post(verify))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(shared.clone(), require_token));
    Router::new()
        .merge(guarded)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // The body whole, or 413 / 408 before a handler waits on it.
        .layer(middleware::from_fn_with_state(shared.clone(), super::read_body))
        .layer(middleware::from_fn_with_state(shared.clone(), observe))
        .with_state(shared)
}

/// Every route and the methods it takes, for the metrics' `path` label, the
/// `Allow` header of a 405 and the 404's message; [`router`] and
/// docs/openapi.json name the same five (the OpenAPI test checks both).
pub(super) const ROUTES: [(&str, &str); 5] = [
    ("/v1/verify", "POST"),
    ("/healthz", "GET,HEAD"),
    ("/readyz", "GET,HEAD"),
    ("/metrics", "GET,HEAD"),
    ("/openapi.json", "GET,HEAD"),
];

fn route(path: &str) -> Option<&'static (&'static str, &'static str)> {
    ROUTES.iter().find(|(route, _)| *route == path)
}

/// Attached to a verdict's response for the log line and the metrics.
#[derive(Clone)]
struct Judged {
    /// The decision record's id (docs/records.md), as `--decision-log`
    /// would write it: the line and the record can be matched up.
    decision_id: String,
    /// [`crate::text::shown`]: they came from the caller or a registry.
    reference: String,
    digest: String,
    policy_digest: String,
    event: String,
    mode: Mode,
    allowed: bool,
    input: &'static str,
}

/// The header a request id is read from and echoed back in.
const REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// The caller's `x-request-id` when it is plain (1 to 64 characters of
/// `A-Za-z0-9._-`), so that it can be logged as it is and echoed back
/// without harm; otherwise one of this server's own: a random prefix drawn
/// once per process and a counter, unique for the process's life.
fn request_id(request: &Request) -> String {
    let given = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if let Some(id) = given {
        return id.to_owned();
    }
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        // std's per-process random hash keys: randomness without a crate.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.write_u32(std::process::id());
        hasher.finish() as u32
    });
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix:08x}-{n:06}")
}

/// Counts and logs every request: request id, method, path, status,
/// latency, and for a verdict its decision id, reference, digest, policy
/// digest, event, mode and `allowed`. Never a header (the token is one).
/// Every error answer gets a JSON body, axum's own 405 included.
async fn observe(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let _in_flight = shared.metrics.enter();
    let mut response = json_error_body(next.run(request).await, &path);
    if let Ok(value) = header::HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let latency = started.elapsed();
    let status = response.status().as_u16();
    let route = route_label(&path);
    shared.metrics.responded(route, status);
    // Microsecond resolution, printed as e.g. 0.412.
    let latency_ms = latency.as_micros() as f64 / 1000.0;
    match response.extensions().get::<Judged>() {
        Some(judged) => {
            shared
                .metrics
                .judged(&judged.event, judged.mode, judged.allowed, judged.input, latency);
            tracing::info!(
                request_id = %id,
                %method,
                path,
                status,
                decision_id = %judged.decision_id,
                reference = %judged.reference,
                digest = %judged.digest,
                policy_digest = %judged.policy_digest,
                event = %judged.event,
                mode = judged.mode.as_str(),
                allowed = judged.allowed,
                input = judged.input,
                latency_ms,
                "request"
            );
        }
        None => tracing::info!(request_id = %id, %method, path, status, latency_ms, "request"),
    }
    response
}

/// An error answer that has no body of its own (axum's 405 for a method a
/// route does not take) gets `{"error": "…"}` like every other; its
/// headers stay. A 405 gets its `Allow` here (axum would add it only after
/// this layer, and keeps one that is there).
fn json_error_body(response: Response, path: &str) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let (parts, _) = response.into_parts();
    let error = match route(path).map(|&(_, allow)| allow) {
        Some(allow) if status == axum::http::StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::MethodNotAllowed(allow.to_owned())
        }
        _ => ApiError::Status(status),
    };
    let mut answer = error.into_response();
    for (name, value) in &parts.headers {
        if !answer.headers().contains_key(name) {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

/// The metrics label for a path: only the routes this server has.
fn route_label(path: &str) -> &'static str {
    route(path).map_or("other", |(route, _)| route)
}

/// With `--auth-token-env`: `Authorization: Bearer <token>`, compared in
/// constant time (as sha256 digests, so the length does not leak either).
async fn require_token(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Result<Response, ApiError> {
    if let Some(expected) = &shared.settings.auth {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let ok = given.is_some_and(|token| bool::from(Sha256::digest(token.as_bytes()).as_slice().ct_eq(expected)));
        if !ok {
            return Err(ApiError::Unauthorized);
        }
    }
    Ok(next.run(request).await)
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready once a policy is loaded, which `serve` does before it listens.
async fn readyz(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let active = shared.active();
    Json(json!({ "status": "ready", "policy": active.policy.artifact().digest }))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], super::openapi::document())
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Result<impl IntoResponse, ApiError> {
    let text = shared.metrics.encode().map_err(ApiError::Metrics)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    ))
}

async fn verify(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Extension<Judged>, [(header::HeaderName, &'static str); 1], Vec<u8>), ApiError> {
    let request = parse(&body.map_err(ApiError::Body)?).map_err(ApiError::BadRequest)?;

    let (subject, input) = match request.input {
        Input::Subject(subject) => (subject, "subject"),
        Input::Image { reference, pin } => {
            let mut subject = fetch(&shared, &reference).await?.subject;
            subject.pin = pin;
            (subject, "image")
        }
    };

    let active = shared.active();
    let answers = active.lookup.answers();
    let decision = judge(&active.policy, &subject, request.mode, SystemTime::now(), &*answers)
        .await
        .map_err(|e| {
            tracing::error!("the policy failed: {e}");
            ApiError::Policy(e)
        })?;
    // Built for every verdict, logged or not, for its id: a sha256 over
    // the decision's inputs, small beside the evaluation itself.
    let record = Record::new(&decision, &subject);
    if let Some(log) = &shared.settings.decision_log {
        log.write(&record);
    }
    let verdict = decision.verdict;
    let judged = Judged {
        decision_id: shown(&record.id),
        reference: shown(&verdict.subject.reference),
        digest: shown(&verdict.subject.digest),
        policy_digest: shown(&verdict.policy.digest),
        event: shown(&verdict.decided.event),
        mode: verdict.mode,
        allowed: verdict.decided.allowed,
        input,
    };
    // Escaped as verify's JSON is (crate::text::to_json): a verdict always
    // serialises.
    let body = crate::text::to_json(&verdict).unwrap_or_default();
    Ok((Extension(judged), [(header::CONTENT_TYPE, "application/json")], body))
}

/// Fetches an image, only from an `--allow-registry` host: 400 for a bad
/// reference, 403 for any other registry, 500 when this server's own
/// credentials are unusable, 502 when the registry fails.
async fn fetch(shared: &Shared, reference: &str) -> Result<registry::Fetched, ApiError> {
    // The same parse the fetch uses, so the registry checked is the one asked.
    let parsed = registry::parse_reference(reference).map_err(|e| ApiError::BadRequest(format!("\"image\": {e}")))?;
    let named = parsed.registry().to_ascii_lowercase();
    let resolved = parsed.resolve_registry().to_ascii_lowercase();
    let allowed = shared.settings.allow.iter().any(|a| *a == named || *a == resolved);
    if !allowed {
        shared.metrics.fetched("refused");
        tracing::warn!(registry = %named, "refused to fetch from a registry not in --allow-registry");
        return Err(ApiError::RegistryNotAllowed(named));
    }
    match registry::fetch(reference, &shared.settings.registry).await {
        Ok(fetched) => {
            shared.metrics.fetched("ok");
            Ok(fetched)
        }
        Err(e) if fetch_status(&e).is_client_error() => Err(ApiError::Fetch(e)),
        Err(e) => {
            shared.metrics.fetched("failed");
            tracing::warn!(registry = %named, "cannot fetch the image: {e}");
            Err(ApiError::Fetch(e))
        }
    }
}

/// What the caller asked for.
#[derive(Debug, PartialEq)]
pub(super) struct VerifyRequest {
    pub mode: Mode,
    pub input: Input,
}

#[derive(Debug, PartialEq)]
pub(super) enum Input {
    /// Fetch this reference from its registry; judge it with this pin.
    Image { reference: String, pin: Option<Pin> },
    /// The facts, already in hand.
    Subject(Subject),
}

/// Parses `{"mode", "image", "pin"?}` or `{"mode", "subject"}`. The error
/// names the field at fault. Unknown fields are refused: a misspelt `pin`
/// would otherwise silently skip `pin.consistent`.
pub(super) fn parse(body: &[u8]) -> Result<VerifyRequest, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    let Value::Object(top) = value else {
        return Err(
            "the body must be a JSON object: {\"mode\", \"image\", \"pin\"?} or {\"mode\", \"subject\"}".into(),
        );
    };
    only_fields(&top, "", &["mode", "image", "pin", "subject"])?;
    let mode = match top.get("mode") {
        None | Some(Value::Null) => return Err("missing field \"mode\" (\"enforce\" or \"log-only\")".into()),
        Some(Value::String(mode)) => match mode.as_str() {
            "enforce" => Mode::Enforce,
            "log-only" => Mode::LogOnly,
            other => {
                return Err(format!(
                    "unknown mode {}: expected \"enforce\" or \"log-only\"",
                    quote(other)
                ));
            }
        },
        Some(_) => return Err("field \"mode\" must be a string: \"enforce\" or \"log-only\"".into()),
    };
    let given = |key| top.get(key).filter(|v| !v.is_null());
    let input = match (given("image"), given("subject")) {
        (Some(_), Some(_)) => return Err("give either \"image\" or \"subject\", not both".into()),
        (None, None) => {
            return Err(
                "missing field \"image\" (a reference for the server to fetch) or \"subject\" (the image's facts)"
                    .into(),
            );
        }
        (Some(image), None) => {
            let reference = string(image, "image")?;
            if reference.trim().is_empty() {
                return Err("field \"image\" is empty".into());
            }
            let pin = given("pin").map(|p| pin(p, "pin")).transpose()?;
            Input::Image { reference, pin }
        }
        (None, Some(subject)) => {
            if given("pin").is_some() {
                return Err("\"pin\" goes inside \"subject\" when the facts are given".into());
            }
            Input::Subject(parse_subject(subject)?)
        }
    };
    Ok(VerifyRequest { mode, input })
}

fn parse_subject(value: &Value) -> Result<Subject, String> {
    let object = object(value, "subject")?;
    only_fields(object, "subject.", &["reference", "digest", "labels", "pin"])?;
    let labels = match object.get("labels") {
        None => return Err("missing field \"subject.labels\" (an object; {} when the image has none)".into()),
        // `docker inspect` says null for an image without labels.
        Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(labels)) => labels
            .iter()
            .map(|(key, value)| match value {
                Value::String(value) => Ok((key.clone(), value.clone())),
                _ => Err(format!("label \"subject.labels\"[{}] must be a string", quote(key))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("field \"subject.labels\" must be an object of strings".into()),
    };
    Ok(Subject {
        reference: required_string(object, "subject.", "reference")?,
        digest: required_string(object, "subject.", "digest")?,
        labels,
        pin: object
            .get("pin")
            .filter(|p| !p.is_null())
            .map(|p| pin(p, "subject.pin"))
            .transpose()?,
        platform: None,
    })
}

fn pin(value: &Value, name: &str) -> Result<Pin, String> {
    let object = object(value, name)?;
    let prefix = format!("{name}.");
    only_fields(object, &prefix, &["runtime", "digest", "source_sha"])?;
    Pin::new(
        optional_string(object, &prefix, "runtime")?,
        optional_string(object, &prefix, "digest")?,
        optional_string(object, &prefix, "source_sha")?,
    )
    .map_err(|e| format!("field \"{name}\": {e}"))
}

fn object<'v>(value: &'v Value, name: &str) -> Result<&'v Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("field \"{name}\" must be an object"))
}

fn only_fields(object: &Map<String, Value>, prefix: &str, known: &[&str]) -> Result<(), String> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(format!(
            "unknown field {}; expected {}",
            quote(&format!("{prefix}{key}")),
            known
                .iter()
                .map(|k| format!("\"{prefix}{k}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => Ok(()),
    }
}

fn string(value: &Value, name: &str) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("field \"{name}\" must be a string"))
}

fn required_string(object: &Map<String, Value>, prefix: &str, key: &str) -> Result<String, String> {
    match object.get(key) {
        None | Some(Value::Null) => Err(format!("missing field \"{prefix}{key}\"")),
        Some(value) => string(value, &format!("{prefix}{key}")),
    }
}

fn optional_string(object: &Map<String, Value>, prefix: &str, key: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => string(value, &format!("{prefix}{key}")).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: Value) -> String {
        parse(body.to_string().as_bytes()).expect_err("refused")
    }

    #[test]
    fn both_body_forms_parse() {
        let image = parse(br#"{"mode": "enforce", "image": "r.example/a:b", "pin": {"digest": "sha256:x"}}"#)
            .expect("image form");
        assert_eq!(image.mode, Mode::Enforce);
        assert!(
            matches!(image.input, Input::Image { ref pin, .. } if pin.as_ref().unwrap().digest.as_deref() == Some("sha256:x"))
        );

        let subject = parse(
            br#"{"mode": "log-only", "subject": {"reference": "r/a:b", "digest": "sha256:y",
                 "labels": {"k": "v"}, "pin": {"runtime": "py", "digest": "sha256:y", "source_sha": null}}}"#,
        )
        .expect("subject form");
        assert_eq!(subject.mode, Mode::LogOnly);
        let Input::Subject(s) = subject.input else {
            panic!("not a subject")
        };
        assert_eq!(s.labels["k"], "v");
        assert_eq!(s.pin.unwrap().runtime.as_deref(), Some("py"));
    }

    #[test]
    fn errors_name_the_field_at_fault() {
        assert!(err(json!({"image": "a/b:c"})).contains("\"mode\""));
        assert!(err(json!({"mode": "strict", "image": "a/b:c"})).contains("\"strict\""));
        assert!(err(json!({"mode": "enforce"})).contains("\"image\""));
        assert!(err(json!({"mode": "enforce", "image": "a", "subject": {}})).contains("not both"));
        let s = json!({"reference": "r", "labels": {}});
        assert!(err(json!({"mode": "enforce", "subject": s})).contains("\"subject.digest\""));
        let s = json!({"reference": "r", "digest": "d", "labels": {"k": 1}});
        assert!(err(json!({"mode": "enforce", "subject": s})).contains("\"k\""));
        let s = json!({"reference": "r", "digest": "d", "labels": {}, "pinn": {}});
        assert!(err(json!({"mode": "enforce", "subject": s})).contains("\"subject.pinn\""));
        assert!(err(json!({"mode": "enforce", "image": "a", "pin": {}})).contains("\"pin\": a pin needs"));
        assert!(parse(b"{not json").unwrap_err().contains("not valid JSON"));
        assert!(parse(b"[]").unwrap_err().contains("JSON object"));
    }
}
