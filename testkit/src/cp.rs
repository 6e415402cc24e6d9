//! A stand-in for the control plane's admin pins endpoint:
//! `GET /cp/admin/runtime-image-pins` answers the pins it was given when the
//! request carries `Authorization: Bearer <token>`, and 401 otherwise. A
//! `POST` to the same path is recorded (and answered 201) so a test can show
//! that provgate never writes to the control plane. `POST
//! /cp/admin/runtime-image/promote` is taken too; every `POST`'s body is
//! kept ([`ControlPlane::posts`]) and answered with the status a test
//! scripts ([`ControlPlane::answer_posts_with`], 201 by default), so a test
//! of `provgate promote --pin` can see what was written and make it fail.
//!
//! Its 401 body quotes the credentials it was sent, like a careless server
//! would: a test can then show provgate never repeats a token it read.
//!
//! It runs on 127.0.0.1 in a thread with its own runtime and stops when dropped.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

pub const PINS_PATH: &str = "/cp/admin/runtime-image-pins";
/// The promote endpoint: `{template_name, image_digest, git_sha}`.
pub const PROMOTE_PATH: &str = "/cp/admin/runtime-image/promote";

/// One `POST` the stand-in received, with its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posted {
    pub path: String,
    pub authorization: Option<String>,
    /// The body, as text.
    pub body: String,
}

impl Posted {
    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("a POST body that is not JSON ({e}): {}", self.body))
    }
}

/// One request the stand-in received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
}

struct Shared {
    token: String,
    body: String,
    requests: Mutex<Vec<Request>>,
    posts: Mutex<Vec<Posted>>,
    /// The status authorised `POST`s get; `None`: 201.
    post_status: Mutex<Option<u16>>,
}

pub struct ControlPlane {
    base_url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ControlPlane {
    /// Serves `body` (JSON) to requests bearing `token`.
    pub fn start(token: &str, body: String) -> ControlPlane {
        let shared = Arc::new(Shared {
            token: token.to_string(),
            body,
            requests: Mutex::new(Vec::new()),
            posts: Mutex::new(Vec::new()),
            post_status: Mutex::new(None),
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("cp-stand-in".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("cp stand-in runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind cp stand-in");
                    let addr = listener.local_addr().expect("cp stand-in address");
                    let app = Router::new()
                        .route(PINS_PATH, get(pins).post(pins))
                        .route(PROMOTE_PATH, axum::routing::post(pins))
                        .fallback(not_found)
                        .with_state(state);
                    tokio::spawn(async move { axum::serve(listener, app).await });
                    ready_tx
                        .send(format!("http://{addr}"))
                        .expect("report the cp stand-in ready");
                    let _ = stop_rx.await;
                });
                runtime.shutdown_background();
            })
            .expect("start the cp stand-in thread");
        let base_url = ready_rx.recv().expect("cp stand-in started");
        ControlPlane {
            base_url,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The URL of the pins endpoint.
    pub fn pins_url(&self) -> String {
        format!("{}{PINS_PATH}", self.base_url)
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The URL of the promote endpoint.
    pub fn promote_url(&self) -> String {
        format!("{}{PROMOTE_PATH}", self.base_url)
    }

    /// Every `POST` received so far (authorised or not), oldest first.
    pub fn posts(&self) -> Vec<Posted> {
        self.shared.posts.lock().unwrap().clone()
    }

    /// From now on, answer authorised `POST`s with `status` (a 500, say).
    pub fn answer_posts_with(&self, status: u16) {
        *self.shared.post_status.lock().unwrap() = Some(status);
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn pins(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    shared.requests.lock().unwrap().push(Request {
        method: method.to_string(),
        path: uri.path().to_string(),
        authorization: authorization.clone(),
    });
    if method == Method::POST {
        shared.posts.lock().unwrap().push(Posted {
            path: uri.path().to_string(),
            authorization: authorization.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    if authorization.as_deref() != Some(format!("Bearer {}", shared.token).as_str()) {
        let body = serde_json::json!({
            "error": format!("unauthorized: {} is not an admin token", authorization.unwrap_or_default())
        });
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
    }
    if method == Method::POST {
        let status = shared.post_status.lock().unwrap().unwrap_or(201);
        let status = StatusCode::from_u16(status).expect("a scripted status");
        let body = if status.is_success() {
            "{}"
        } else {
            "{\"error\":\"the stand-in was told to fail\"}"
        };
        return (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        shared.body.clone(),
    )
        .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "{\"error\":\"not found\"}").into_response()
}
