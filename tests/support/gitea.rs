//! A stand-in for Gitea's commit endpoint, `GET /api/v1/repos/{owner}/{repo}/git/commits/{sha}`.
//!
//! Gitea itself cannot be installed here, so this speaks its API shapes and
//! status codes (from Gitea's source): 200 with the commit JSON, 404 for an
//! unknown repository or commit and for a private repository the caller may
//! not see, 422 for a malformed ref, 401 for a token it does not know. Some
//! repository names (any owner) misbehave on purpose, so tests read clearly:
//!
//! | repo          | answer                                                        |
//! |---------------|---------------------------------------------------------------|
//! | `hang`        | never answers                                                 |
//! | `redirect`    | 302 to `http://evil.example.invalid/...`                      |
//! | `huge`        | 200, a 20 MB JSON body, chunked (no Content-Length)           |
//! | `hugelen`     | 200, a 20 MB JSON body with its Content-Length                |
//! | `liar`        | 200, a valid commit body for a different SHA                  |
//! | `notjson`     | 200, an HTML page                                             |
//! | `drip`        | 200, the right commit body, one byte per second               |
//! | `echo`        | 200, `{"sha": <the request's Authorization header>}`          |
//! | `e500` `e502` | 500 (Gitea's empty-message error) / 502 (a proxy's HTML page) |
//! | `e422`        | Gitea's 422 for a ref it cannot parse                         |
//! | `e429`        | 429 with `Retry-After: 60`                                    |
//! | `e401` `e403` | Gitea's 401 / 403 (missing `read:repository` scope)           |
//!
//! It runs on 127.0.0.1 in a thread with its own multi-thread runtime, so
//! both plain and `#[tokio::test]` tests can use it, and stops when dropped.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

/// Where the `redirect` repository points.
pub const EVIL_HOST: &str = "evil.example.invalid";

/// Size of the `huge` and `hugelen` bodies.
pub const HUGE_BYTES: usize = 20 * 1024 * 1024;

/// One request the stand-in received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
}

type Key = (String, String, String);

#[derive(Default)]
struct Books {
    public: HashSet<Key>,
    /// commit → the token that may see it.
    private: HashMap<Key, String>,
    /// Tokens Gitea knows but that unlock no private repository.
    tokens: HashSet<String>,
    requests: Vec<Request>,
    delay: Duration,
}

struct Shared {
    base_url: String,
    books: Mutex<Books>,
    /// A raw socket that writes the `drip` and `huge` bodies; see [`relay`].
    raw_source: SocketAddr,
    relay: reqwest::Client,
}

impl Shared {
    fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct GiteaStandIn {
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl GiteaStandIn {
    pub fn start() -> GiteaStandIn {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("gitea-stand-in".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("stand-in runtime");
                // provgate builds its HTTP clients on rustls/ring; so does this relay.
                provgate::tls::install_provider();
                runtime.block_on(async move {
                    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind stand-in");
                    let raw_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind raw source");
                    let shared = Arc::new(Shared {
                        base_url: format!("http://{}", listener.local_addr().expect("stand-in address")),
                        books: Mutex::new(Books::default()),
                        raw_source: raw_listener.local_addr().expect("raw source address"),
                        relay: reqwest::Client::builder().no_proxy().build().expect("relay client"),
                    });
                    tokio::spawn(serve_raw(raw_listener, shared.base_url.clone()));
                    let app = Router::new()
                        .route("/api/v1/repos/{owner}/{repo}/git/commits/{sha}", get(commit))
                        .fallback(no_route)
                        .with_state(shared.clone());
                    tokio::spawn(async move { axum::serve(listener, app).await });
                    ready_tx.send(shared).expect("report the stand-in ready");
                    let _ = stop_rx.await;
                });
                // Cancels every task, including the `hang` handlers that never end.
                runtime.shutdown_background();
            })
            .expect("start the stand-in thread");
        let shared = ready_rx.recv().expect("stand-in started");
        GiteaStandIn {
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// A commit in a public repository.
    pub fn add_commit(&self, owner: &str, repo: &str, sha: &str) {
        self.shared.books().public.insert(key(owner, repo, sha));
    }

    /// A commit in a private repository that only `token` may see. A
    /// repository with any private commit is private as a whole.
    pub fn add_private_commit(&self, owner: &str, repo: &str, sha: &str, token: &str) {
        self.shared
            .books()
            .private
            .insert(key(owner, repo, sha), token.to_owned());
    }

    /// A token Gitea accepts that unlocks no private repository.
    pub fn add_token(&self, token: &str) {
        self.shared.books().tokens.insert(token.to_owned());
    }

    /// A pause before every answer.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.books().delay = delay;
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.books().requests.clone()
    }

    /// How many requests had a path containing `path_part`.
    pub fn hits(&self, path_part: &str) -> usize {
        self.shared
            .books()
            .requests
            .iter()
            .filter(|r| r.path.contains(path_part))
            .count()
    }
}

impl Drop for GiteaStandIn {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn key(owner: &str, repo: &str, sha: &str) -> Key {
    (owner.to_owned(), repo.to_owned(), sha.to_owned())
}

enum Auth {
    None,
    Token(String),
    /// A scheme Gitea would not accept as a token (e.g. garbage, or empty).
    Unusable,
}

fn auth(headers: &HeaderMap) -> Auth {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Auth::None;
    };
    let Ok(value) = value.to_str() else {
        return Auth::Unusable;
    };
    match value.split_once(' ') {
        Some((scheme, token))
            if (scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer"))
                && !token.trim().is_empty() =>
        {
            Auth::Token(token.trim().to_owned())
        }
        _ => Auth::Unusable,
    }
}

async fn commit(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let delay = {
        let mut books = shared.books();
        books.requests.push(Request {
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            authorization: headers
                .get(header::AUTHORIZATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into()),
        });
        books.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let base = shared.base_url.as_str();
    let query = uri.query().unwrap_or("");

    match repo.as_str() {
        "hang" => return std::future::pending::<Response>().await,
        "redirect" => {
            let location = format!("http://{EVIL_HOST}/api/v1/repos/{owner}/{repo}/git/commits/{sha}");
            return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
        }
        // No Content-Length: only counting the bytes as they arrive can stop the client.
        "huge" => return relay(&shared, Flow::Flood, &owner, &repo, &sha).await,
        "hugelen" => {
            let mut body = commit_json(base, &owner, &repo, &sha, query);
            body["padding"] = Value::String("x".repeat(HUGE_BYTES));
            return json_response(StatusCode::OK, &body);
        }
        "liar" => {
            return json_response(
                StatusCode::OK,
                &commit_json(base, &owner, &repo, &other_sha(&sha), query),
            );
        }
        "notjson" => {
            let page =
                "<!DOCTYPE html><html><head><title>Sign In</title></head><body>Sign in to continue</body></html>";
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                page,
            )
                .into_response();
        }
        "drip" => return relay(&shared, Flow::Drip, &owner, &repo, &sha).await,
        "e500" => return api_error(StatusCode::INTERNAL_SERVER_ERROR, base, ""),
        "e502" => {
            let page = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>";
            return (StatusCode::BAD_GATEWAY, [(header::CONTENT_TYPE, "text/html")], page).into_response();
        }
        "e429" => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    (header::RETRY_AFTER, "60"),
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                ],
                "Too Many Requests\n",
            )
                .into_response();
        }
        // A hostile server: quotes the caller's credentials back.
        "echo" => {
            let authorization = headers
                .get(header::AUTHORIZATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()));
            return json_response(StatusCode::OK, &json!({ "sha": authorization.unwrap_or_default() }));
        }
        "e422" => {
            return api_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                base,
                &format!("no valid ref or sha: {sha}"),
            );
        }
        "e401" => return api_error(StatusCode::UNAUTHORIZED, base, "invalid username, password or token"),
        "e403" => {
            let message = "token does not have at least one of required scope(s), required=[read:repository]";
            return api_error(StatusCode::FORBIDDEN, base, message);
        }
        _ => {}
    }

    let books = shared.books();
    let token = match auth(&headers) {
        Auth::None => None,
        Auth::Token(token) if books.tokens.contains(&token) || books.private.values().any(|t| *t == token) => {
            Some(token)
        }
        Auth::Token(_) | Auth::Unusable => {
            return api_error(StatusCode::UNAUTHORIZED, base, "invalid username, password or token");
        }
    };

    // Like Gitea, a private repository the caller may not see does not exist.
    let in_repo = |(o, r, _): &Key| *o == owner && *r == repo;
    let private: Vec<(&Key, &String)> = books.private.iter().filter(|(k, _)| in_repo(k)).collect();
    let visible = if private.is_empty() {
        books.public.iter().any(in_repo)
    } else {
        private.iter().any(|(_, t)| Some(*t) == token.as_ref())
    };
    if !visible {
        return api_error(StatusCode::NOT_FOUND, base, "The target couldn't be found.");
    }
    if !(sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit())) {
        return api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            base,
            &format!("no valid ref or sha: {sha}"),
        );
    }
    let wanted = key(&owner, &repo, &sha);
    if books.public.contains(&wanted) || books.private.contains_key(&wanted) {
        json_response(StatusCode::OK, &commit_json(base, &owner, &repo, &sha, query))
    } else {
        api_error(
            StatusCode::NOT_FOUND,
            base,
            &format!("object does not exist [id: {sha}, rel_path: ]"),
        )
    }
}

async fn no_route(State(shared): State<Arc<Shared>>) -> Response {
    api_error(StatusCode::NOT_FOUND, &shared.base_url, "not found")
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// Gitea's `APIError` shape.
fn api_error(status: StatusCode, base: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({ "message": message, "url": format!("{base}/api/swagger") }),
    )
}

/// A different, still well-formed SHA.
fn other_sha(sha: &str) -> String {
    let mut other: String = sha.chars().rev().collect();
    if other == sha {
        other = sha.chars().map(|c| if c == '0' { '1' } else { '0' }).collect();
    }
    other
}

/// Gitea's `api.Commit` as `convert.ToCommit` fills it; `stat`, `verification`
/// and `files` turned off (`=false`) come back as `null`, as in Gitea.
fn commit_json(base: &str, owner: &str, repo: &str, sha: &str, query: &str) -> Value {
    let off = |flag: &str| query.split('&').any(|pair| pair == format!("{flag}=false"));
    let api = format!("{base}/api/v1/repos/{owner}/{repo}/git");
    let tree: String = sha.chars().rev().collect();
    let parent = format!("{}{}", &sha[1.min(sha.len())..], &sha[..1.min(sha.len())]);
    let date = "2024-05-02T10:20:30Z";
    let signature = json!({ "name": "Ada Lovelace", "email": "ada@example.org", "date": date });
    let user = json!({
        "id": 1,
        "login": owner,
        "login_name": "",
        "full_name": "Ada Lovelace",
        "email": "ada@example.org",
        "avatar_url": format!("{base}/avatars/1"),
        "html_url": format!("{base}/{owner}"),
        "language": "",
        "is_admin": false,
        "restricted": false,
        "active": true,
        "prohibit_login": false,
        "visibility": "public",
        "created": date,
        "username": owner
    });
    let verification = if off("verification") {
        Value::Null
    } else {
        json!({ "verified": false, "reason": "gpg.error.not_signed_commit", "signature": "", "signer": null, "payload": "" })
    };
    let files = if off("files") {
        Value::Null
    } else {
        json!([{ "filename": "README.md", "status": "modified" }])
    };
    let stats = if off("stat") {
        Value::Null
    } else {
        json!({ "total": 2, "additions": 1, "deletions": 1 })
    };
    json!({
        "url": format!("{api}/commits/{sha}"),
        "sha": sha,
        "created": date,
        "html_url": format!("{base}/{owner}/{repo}/commit/{sha}"),
        "commit": {
            "url": format!("{api}/commits/{sha}"),
            "author": signature,
            "committer": signature,
            "message": "Build the image\n",
            "tree": { "url": format!("{api}/trees/{tree}"), "sha": tree, "created": date },
            "verification": verification
        },
        "author": user,
        "committer": user,
        "parents": [{ "url": format!("{api}/commits/{parent}"), "sha": parent, "created": date }],
        "files": files,
        "stats": stats
    })
}

/// How the raw source writes its body.
#[derive(Clone, Copy)]
enum Flow {
    /// The right commit, one byte per second.
    Drip,
    /// [`HUGE_BYTES`] of JSON, as fast as it goes, ended by closing the connection.
    Flood,
}

/// axum can stream a body only from a `futures` `Stream` or a hand-written
/// `http_body::Body`, and neither trait's crate is a dependency here. So the
/// `drip` and `huge` answers are relayed from a raw socket that writes them
/// (see [`serve_raw`]): reqwest's response body is an `http_body::Body` axum
/// accepts, and hyper sends it on as it comes.
async fn relay(shared: &Shared, flow: Flow, owner: &str, repo: &str, sha: &str) -> Response {
    let mode = match flow {
        Flow::Drip => "drip",
        Flow::Flood => "flood",
    };
    let url = format!("http://{}/{mode}/{owner}/{repo}/{sha}", shared.raw_source);
    match shared.relay.get(url).send().await {
        Ok(upstream) => {
            let len = upstream.content_length();
            let mut response = Response::new(Body::new(reqwest::Body::from(upstream)));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                "application/json;charset=utf-8".parse().expect("header"),
            );
            if let Some(len) = len {
                headers.insert(header::CONTENT_LENGTH, len.into());
            }
            response
        }
        Err(_) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &shared.base_url,
            "raw source unreachable",
        ),
    }
}

async fn serve_raw(listener: TcpListener, base: String) {
    while let Ok((socket, _)) = listener.accept().await {
        let base = base.clone();
        tokio::spawn(async move {
            let _ = serve_raw_one(socket, &base).await;
        });
    }
}

/// Answers `GET /{drip|flood}/{owner}/{repo}/{sha}`.
async fn serve_raw_one(socket: TcpStream, base: &str) -> std::io::Result<()> {
    let head = read_head(&socket).await?;
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    let mut parts = target.trim_start_matches('/').splitn(4, '/');
    let mut next = || parts.next().unwrap_or("");
    let (mode, owner, repo, sha) = (next(), next(), next(), next());
    let mut body = commit_json(base, owner, repo, sha, "stat=false&verification=false&files=false");
    if mode == "drip" {
        let body = body.to_string();
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        write_all(&socket, head.as_bytes()).await?;
        for byte in body.as_bytes() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            write_all(&socket, std::slice::from_ref(byte)).await?;
        }
    } else {
        body["padding"] = Value::String("x".repeat(HUGE_BYTES));
        let body = body.to_string();
        write_all(
            &socket,
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n",
        )
        .await?;
        for piece in body.as_bytes().chunks(64 * 1024) {
            write_all(&socket, piece).await?;
        }
    }
    Ok(())
}

/// Reads up to the blank line after the request head (with `net` only: the
/// `io-util` extension traits are not a declared feature).
async fn read_head(socket: &TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        socket.readable().await?;
        match socket.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

async fn write_all(socket: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        socket.writable().await?;
        match socket.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
