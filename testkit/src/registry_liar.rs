//! A registry that lies (issue 7): a small HTTP/1.1 server on `IP:0` that
//! stands in front of a real registry as a proxy (or answers on its own)
//! and, for the requests a rule matches, answers with a [`Lie`] instead of
//! the truth.
//!
//! ```ignore
//! let reg = Registry::start();
//! let liar = Liar::proxy(&reg.host());
//! liar.lie(Route::Manifest, None, Lie::Drip { chunked: true });
//! // provgate verify {liar.host()}/molecule-ai/app:… --insecure-registry {liar.host()}
//! ```
//!
//! It is written on raw sockets, not on an HTTP library, because the lies
//! are what an HTTP library prevents: a `Content-Length` that does not match
//! the body, a body that never ends, a byte a second. Every connection
//! carries one request and is closed after the answer (`Connection: close`).
//!
//! | lie | answer |
//! |---|---|
//! | [`Lie::Pass`] (no rule) | the upstream's status, headers and body |
//! | [`Lie::Drip`] | the upstream's answer, its body one byte a second |
//! | [`Lie::Redirect`] | `status` with `Location: {to}{path}` |
//! | [`Lie::Huge`] | a 200 of `len` bytes (declared, or chunked) |
//! | [`Lie::Endless`] | a 200 whose chunked body never ends |
//! | [`Lie::Replace`] | the upstream's answer with other body bytes |
//! | [`Lie::Length`] | the upstream's body under a `Content-Length` that is off |
//! | [`Lie::Fail`] | `status` with the given body (an error envelope, hostile bytes) |
//! | [`Lie::HugeFail`] | `status` with a chunked body of `len` bytes |
//! | [`Lie::Echo`] | a Basic challenge, then `status` echoing the `Authorization` sent |
//! | [`Lie::SwapAfterFirst`] | the truth on the first `GET`, then other bytes (a moved tag) |
//!
//! Requests the liar hands on carry their body and `Content-Type` too, so
//! a push (`PUT` of a manifest) through it reaches the registry behind.
//!
//! With [`Liar::require_token`] it is also a token registry in front of an
//! anonymous one: `/v2/` requests without `Authorization: Bearer <token>`
//! get a 401 challenge naming its own `/token` realm, which hands the token
//! out to anyone (anonymous pull); requests with it go upstream without it.
//! [`Liar::require_token_from`] names another realm instead (another liar,
//! whose [`Liar::tokens`] say how its `/token` answers: a token, the OAuth2
//! refresh-token exchange, a huge or endless answer, an error, an echo).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The longest any single answer is kept going (drips, endless bodies, held
/// connections), so that a client that never hangs up cannot leak a task
/// past the test.
const LONGEST_ANSWER: Duration = Duration::from_secs(300);

/// The unit an endless or huge body is written in.
const CHUNK: usize = 64 << 10;

/// Which requests a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /v2/<name>/manifests/<reference>`
    Manifest,
    /// `GET /v2/<name>/blobs/<digest>`
    Blob,
}

/// How to answer a matching request.
#[derive(Clone, Debug)]
pub enum Lie {
    /// The upstream's answer, unchanged.
    Pass,
    /// The upstream's status and headers, then its body one byte a second:
    /// chunked (one chunk per byte, no `Content-Length`), or under an honest
    /// `Content-Length`.
    Drip { chunked: bool },
    /// `status` (301, 302, 307, 308) with `Location: {to}{path and query}`;
    /// `to` is a base like `http://127.0.0.2:PORT`.
    Redirect { status: u16, to: String },
    /// A 200 of `len` bytes (a JSON-looking prefix, then padding), with a
    /// `Content-Length` when `declared`, chunked otherwise.
    Huge { len: u64, declared: bool },
    /// A 200 whose chunked body never ends.
    Endless,
    /// The upstream's status and headers with `body` instead of its body.
    /// With `digest_header`, `Docker-Content-Digest` is rewritten to the
    /// sha256 of `body` (a liar that keeps its story consistent); otherwise
    /// the upstream's header is kept.
    Replace { body: Vec<u8>, digest_header: bool },
    /// The upstream's whole body under `Content-Length` = its length +
    /// `delta`. After the body the connection is closed, or with
    /// `hold_open` kept open (saying nothing) until the client hangs up.
    Length { delta: i64, hold_open: bool },
    /// `status` with `body` (JSON content type), nothing from upstream.
    Fail { status: u16, body: Vec<u8> },
    /// `status` with a chunked body of `len` bytes of padding.
    HugeFail { status: u16, len: u64 },
    /// A request without `Authorization` gets a 401 `Basic` challenge; one
    /// with it gets `status` and an error envelope whose message echoes
    /// the header's value (a registry that repeats what it was sent).
    Echo { status: u16 },
    /// The first matching `GET` gets the upstream's answer unchanged; every
    /// later one gets `body` instead, with `Docker-Content-Digest` rewritten
    /// to match it: a tag that is moved to another image right after it was
    /// read (the gap between a `verify` and a `crane copy`). Other methods
    /// pass. Made with [`Lie::swap_after_first`]; `gets` counts the `GET`s.
    SwapAfterFirst { body: Vec<u8>, gets: Arc<AtomicUsize> },
}

impl Lie {
    /// [`Lie::SwapAfterFirst`] with `body` as the later answer.
    pub fn swap_after_first(body: Vec<u8>) -> Lie {
        Lie::SwapAfterFirst {
            body,
            gets: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// How a liar answers `/token` requests (see [`Liar::tokens`]).
#[derive(Clone, Debug)]
pub enum TokenAnswer {
    /// `{"token": …}` to anyone.
    Give(String),
    /// The OAuth2 refresh-token exchange of the distribution spec: a `POST`
    /// whose form has `grant_type=refresh_token`, `refresh_token` equal to
    /// the one given, a `client_id` and a `scope` gets
    /// `{"access_token": …}`; anything else a 400.
    Exchange {
        refresh_token: String,
        access_token: String,
    },
    /// A 200 of `len` bytes, declared or chunked.
    Huge { len: u64, declared: bool },
    /// A 200 whose chunked body never ends.
    Endless,
    /// `status` with `body`.
    Fail { status: u16, body: Vec<u8> },
    /// `status` with a body echoing the `Authorization` sent.
    Echo { status: u16 },
}

/// One request the liar received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The body (a `POST`'s form), as text.
    pub body: String,
}

struct Rule {
    route: Route,
    reference: Option<String>,
    lie: Lie,
}

struct State {
    /// `HOST:PORT` of the real registry behind, if any.
    upstream: Option<String>,
    /// The `Authorization` the liar itself sends upstream when a request
    /// carries none (storage that needs nothing from the client, like a
    /// presigned URL).
    upstream_authorization: Option<String>,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
    /// `http://IP:PORT` of the liar itself (the token realm).
    url: String,
    /// The bearer token `/v2/` requests must carry, if any.
    token: Mutex<Option<String>>,
    /// The realm the challenge names, when not the liar's own `/token`.
    realm: Mutex<Option<String>>,
    /// How `/token` is answered, if at all.
    tokens: Mutex<Option<TokenAnswer>>,
}

/// A running liar; stops when dropped.
pub struct Liar {
    addr: SocketAddr,
    state: Arc<State>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Liar {
    /// A proxy on 127.0.0.1 in front of the registry at `upstream` (`HOST:PORT`).
    pub fn proxy(upstream: &str) -> Liar {
        Liar::start("127.0.0.1", Some(upstream), None)
    }

    /// A liar with nothing behind it: `/v2/` answers 200, every other
    /// request 404 unless a rule answers it.
    pub fn standalone(ip: &str) -> Liar {
        Liar::start(ip, None, None)
    }

    /// A liar on `ip` (e.g. `127.0.0.2`, "another host"), proxying to
    /// `upstream` if given, sending its own `upstream_authorization` (an
    /// `Authorization` header value) with requests that bring none.
    pub fn start(ip: &str, upstream: Option<&str>, upstream_authorization: Option<&str>) -> Liar {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(TcpListener::bind((ip, 0)))
            .unwrap_or_else(|e| panic!("the liar cannot listen on {ip}: {e}"));
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream: upstream.map(str::to_string),
            upstream_authorization: upstream_authorization.map(str::to_string),
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            url: format!("http://{addr}"),
            token: Mutex::new(None),
            realm: Mutex::new(None),
            tokens: Mutex::new(None),
        });
        let accept_state = Arc::clone(&state);
        runtime.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&accept_state);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(LONGEST_ANSWER, answer(&state, socket)).await;
                });
            }
        });
        Liar {
            addr,
            state,
            runtime: Some(runtime),
        }
    }

    /// `IP:PORT`, as a registry host in an image reference.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://IP:PORT`, as a redirect target.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, answer `route` requests (for `reference`, a tag or
    /// digest, or for any when `None`) with `lie`. The first matching rule wins.
    pub fn lie(&self, route: Route, reference: Option<&str>, lie: Lie) {
        self.state.rules.lock().unwrap().push(Rule {
            route,
            reference: reference.map(str::to_string),
            lie,
        });
    }

    /// From now on, act as a token registry handing out `token`.
    pub fn require_token(&self, token: &str) {
        *self.state.token.lock().unwrap() = Some(token.to_string());
        self.tokens(TokenAnswer::Give(token.to_string()));
    }

    /// From now on, require `token` as [`Liar::require_token`] does, but
    /// name `realm` (a URL) in the challenge: the token comes from there.
    pub fn require_token_from(&self, token: &str, realm: &str) {
        *self.state.token.lock().unwrap() = Some(token.to_string());
        *self.state.realm.lock().unwrap() = Some(realm.to_string());
    }

    /// From now on, answer `/token` requests with `answer`.
    pub fn tokens(&self, answer: TokenAnswer) {
        *self.state.tokens.lock().unwrap() = Some(answer);
    }

    /// `{url}/token`, as a realm.
    pub fn realm(&self) -> String {
        format!("{}/token", self.url())
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The requests whose path contains `part`.
    pub fn seen_for(&self, part: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path.contains(part)).collect()
    }
}

impl Drop for Liar {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `sha256:<hex>` of `bytes`.
fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `(route, reference)` of a `/v2/<name>/{manifests,blobs}/<ref>` path.
    fn route(&self) -> Option<(Route, &str)> {
        let path = self.path.split('?').next().unwrap_or_default();
        let rest = path.strip_prefix("/v2/")?;
        let (_, reference) = rest.rsplit_once('/')?;
        if rest.contains("/manifests/") {
            Some((Route::Manifest, reference))
        } else if rest.contains("/blobs/") {
            Some((Route::Blob, reference))
        } else {
            None
        }
    }
}

/// What the upstream said.
struct Upstream {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Upstream {
    fn not_found() -> Upstream {
        let body = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"the liar has nothing here"}]}"#.to_vec();
        Upstream {
            status: 404,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body,
        }
    }
}

/// The upstream headers worth handing on (the rest are hop-by-hop or
/// describe the body the liar may change).
const KEPT_HEADERS: [&str; 5] = [
    "content-type",
    "docker-content-digest",
    "docker-distribution-api-version",
    "www-authenticate",
    "location",
];

async fn answer(state: &State, mut socket: TcpStream) -> std::io::Result<()> {
    let Some(request) = read_request(&mut socket).await? else {
        return Ok(());
    };
    state.seen.lock().unwrap().push(Seen {
        method: request.method.clone(),
        path: request.path.clone(),
        authorization: request.header("authorization").map(str::to_string),
        body: String::from_utf8_lossy(&request.body).into_owned(),
    });
    let lie = request.route().and_then(|(route, reference)| {
        let rules = state.rules.lock().unwrap();
        rules
            .iter()
            .find(|r| r.route == route && r.reference.as_deref().is_none_or(|want| want == reference))
            .map(|r| r.lie.clone())
    });
    let head_only = request.method == "HEAD";
    let token = state.token.lock().unwrap().clone();
    let tokens = state.tokens.lock().unwrap().clone();
    if let Some(answer) = tokens
        && request.path.split('?').next() == Some("/token")
    {
        return answer_token(&mut socket, &request, answer).await;
    }
    if let Some(token) = &token {
        let json = [("Content-Type".to_string(), "application/json".to_string())];
        if request.header("authorization") != Some(format!("Bearer {token}").as_str()) {
            let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"a token, please"}]}"#;
            let realm = state.realm.lock().unwrap().clone();
            let realm = realm.unwrap_or_else(|| format!("{}/token", state.url));
            let challenge = format!(r#"Bearer realm="{realm}",service="liar""#);
            let headers = [json[0].clone(), ("WWW-Authenticate".to_string(), challenge)];
            write_head(&mut socket, 401, &headers, Some(body.len() as u64)).await?;
            return socket.write_all(body).await;
        }
    }

    // A moved tag: the truth once, then the other bytes.
    let lie = match lie {
        Some(Lie::SwapAfterFirst { body, gets }) if request.method == "GET" => {
            if gets.fetch_add(1, Ordering::SeqCst) == 0 {
                Some(Lie::Pass)
            } else {
                Some(Lie::Replace {
                    body,
                    digest_header: true,
                })
            }
        }
        Some(Lie::SwapAfterFirst { .. }) => Some(Lie::Pass),
        other => other,
    };
    match lie.unwrap_or(Lie::Pass) {
        // Resolved above.
        Lie::SwapAfterFirst { .. } => unreachable!("a swap is resolved to Pass or Replace"),
        Lie::Redirect { status, to } => {
            let location = format!("{to}{}", request.path);
            write_head(&mut socket, status, &[("Location", location)], Some(0)).await
        }
        Lie::Huge { len, declared } => {
            let headers = [("Content-Type".to_string(), "application/json".to_string())];
            if declared {
                write_head(&mut socket, 200, &headers, Some(len)).await?;
                write_padding(&mut socket, Some(len), false).await
            } else {
                write_head(&mut socket, 200, &headers, None).await?;
                write_padding(&mut socket, Some(len), true).await
            }
        }
        Lie::Endless => {
            let headers = [("Content-Type".to_string(), "application/json".to_string())];
            write_head(&mut socket, 200, &headers, None).await?;
            write_padding(&mut socket, None, true).await
        }
        Lie::Pass => {
            let up = upstream(state, &request).await;
            let len = up.body.len() as u64;
            write_head(&mut socket, up.status, &up.headers, Some(len)).await?;
            if !head_only {
                socket.write_all(&up.body).await?;
            }
            socket.flush().await
        }
        Lie::Drip { chunked } => {
            let up = upstream(state, &request).await;
            let len = (!chunked).then_some(up.body.len() as u64);
            write_head(&mut socket, up.status, &up.headers, len).await?;
            for byte in &up.body {
                if chunked {
                    socket.write_all(&[b'1', b'\r', b'\n', *byte, b'\r', b'\n']).await?;
                } else {
                    socket.write_all(&[*byte]).await?;
                }
                socket.flush().await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            if chunked {
                socket.write_all(b"0\r\n\r\n").await?;
            }
            socket.flush().await
        }
        Lie::Replace { body, digest_header } => {
            let mut up = upstream(state, &request).await;
            if digest_header {
                up.headers
                    .retain(|(k, _)| !k.eq_ignore_ascii_case("docker-content-digest"));
                up.headers.push(("Docker-Content-Digest".into(), sha256(&body)));
            }
            write_head(&mut socket, up.status, &up.headers, Some(body.len() as u64)).await?;
            socket.write_all(&body).await?;
            socket.flush().await
        }
        Lie::Fail { status, body } => {
            let headers = [("Content-Type".to_string(), "application/json".to_string())];
            write_head(&mut socket, status, &headers, Some(body.len() as u64)).await?;
            socket.write_all(&body).await?;
            socket.flush().await
        }
        Lie::HugeFail { status, len } => {
            let headers = [("Content-Type".to_string(), "application/json".to_string())];
            write_head(&mut socket, status, &headers, None).await?;
            write_padding(&mut socket, Some(len), true).await
        }
        Lie::Echo { status } => match request.header("authorization") {
            None => {
                let headers = [("WWW-Authenticate".to_string(), r#"Basic realm="liar""#.to_string())];
                write_head(&mut socket, 401, &headers, Some(0)).await
            }
            Some(sent) => {
                let body = envelope("DENIED", &format!("you sent {sent}"));
                let headers = [("Content-Type".to_string(), "application/json".to_string())];
                write_head(&mut socket, status, &headers, Some(body.len() as u64)).await?;
                socket.write_all(body.as_bytes()).await?;
                socket.flush().await
            }
        },
        Lie::Length { delta, hold_open } => {
            let up = upstream(state, &request).await;
            let declared = (up.body.len() as i64 + delta).max(0) as u64;
            write_head(&mut socket, up.status, &up.headers, Some(declared)).await?;
            socket.write_all(&up.body).await?;
            socket.flush().await?;
            if hold_open {
                // Say nothing more; wait for the client to give up.
                let mut sink = [0u8; 1024];
                while socket.read(&mut sink).await? > 0 {}
            }
            Ok(())
        }
    }
}

/// A `/token` request answered as `answer` says.
async fn answer_token(socket: &mut TcpStream, request: &Request, answer: TokenAnswer) -> std::io::Result<()> {
    let json = [("Content-Type".to_string(), "application/json".to_string())];
    let (status, body) = match answer {
        TokenAnswer::Give(token) => (200, format!(r#"{{"token":"{token}"}}"#).into_bytes()),
        TokenAnswer::Exchange {
            refresh_token,
            access_token,
        } => {
            let form = form_pairs(&request.body);
            let field = |k: &str| form.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
            let good = request.method == "POST"
                && field("grant_type") == Some("refresh_token")
                && field("refresh_token") == Some(refresh_token.as_str())
                && field("client_id").is_some_and(|c| !c.is_empty())
                && field("scope").is_some_and(|s| s.starts_with("repository:"));
            if good {
                (200, format!(r#"{{"access_token":"{access_token}"}}"#).into_bytes())
            } else {
                (400, br#"{"error":"invalid_grant"}"#.to_vec())
            }
        }
        TokenAnswer::Huge { len, declared } => {
            write_head(socket, 200, &json, declared.then_some(len)).await?;
            return write_padding(socket, Some(len), !declared).await;
        }
        TokenAnswer::Endless => {
            write_head(socket, 200, &json, None).await?;
            return write_padding(socket, None, true).await;
        }
        TokenAnswer::Fail { status, body } => (status, body),
        TokenAnswer::Echo { status } => {
            let sent = request.header("authorization").unwrap_or("nothing");
            (status, format!("you sent Authorization: {sent}").into_bytes())
        }
    };
    write_head(socket, status, &json, Some(body.len() as u64)).await?;
    socket.write_all(&body).await?;
    socket.flush().await
}

/// An OCI error envelope with one error.
pub fn envelope(code: &str, message: &str) -> String {
    serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string()
}

/// The pairs of an `application/x-www-form-urlencoded` body, decoded.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'+', _) => out.push(b' '),
                (b'%', Some(b)) => {
                    out.push(b);
                    i += 2;
                }
                (b, _) => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Forwards `request` to the upstream (with its `Accept` and
/// `Authorization`); a liar with no upstream knows only `/v2/`. Plain HTTP
/// on a raw socket, like the rest: the liar needs no TLS stack.
async fn upstream(state: &State, request: &Request) -> Upstream {
    let Some(base) = &state.upstream else {
        if request.path.split('?').next() == Some("/v2/") {
            return Upstream {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: b"{}".to_vec(),
            };
        }
        return Upstream::not_found();
    };
    match tokio::time::timeout(Duration::from_secs(30), forward(base, state, request)).await {
        Ok(Ok(up)) => up,
        Ok(Err(e)) => bad_gateway(format!("the liar's upstream failed: {e}")),
        Err(_) => bad_gateway("the liar's upstream did not answer".into()),
    }
}

fn bad_gateway(message: String) -> Upstream {
    Upstream {
        status: 502,
        headers: vec![("Content-Type".into(), "text/plain".into())],
        body: message.into_bytes(),
    }
}

async fn forward(host: &str, state: &State, request: &Request) -> std::io::Result<Upstream> {
    let mut socket = TcpStream::connect(host).await?;
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n",
        request.method, request.path
    );
    if let Some(accept) = request.header("accept") {
        head.push_str(&format!("Accept: {accept}\r\n"));
    }
    // A token registry's token is the liar's own business, not the upstream's.
    let client_auth = request
        .header("authorization")
        .filter(|_| state.token.lock().unwrap().is_none());
    if let Some(auth) = client_auth.or(state.upstream_authorization.as_deref()) {
        head.push_str(&format!("Authorization: {auth}\r\n"));
    }
    // A push's body goes on with its type.
    if let Some(content_type) = request.header("content-type") {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    if !request.body.is_empty() || matches!(request.method.as_str(), "PUT" | "POST" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    }
    head.push_str("\r\n");
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(&request.body).await?;
    let mut raw = Vec::new();
    socket.read_to_end(&mut raw).await?;

    let bad = |what: &str| std::io::Error::other(format!("upstream answer: {what}"));
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of head"))?;
    let text = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let all: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = all
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let mut body = raw[end + 4..].to_vec();
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    if request.method == "HEAD" {
        body.clear();
    }
    let headers = all
        .into_iter()
        .filter(|(k, _)| KEPT_HEADERS.contains(&k.to_ascii_lowercase().as_str()))
        .collect();
    Ok(Upstream { status, headers, body })
}

/// The body of a chunked transfer.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// Reads one request: its head, and a body of at most 64 KiB when its
/// `Content-Length` announces one; `None` when the client hung up first.
async fn read_request(socket: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if buf.len() > 64 << 10 {
            return Ok(None);
        }
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let path = first.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(64 << 10);
    let mut body = buf[end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

/// Status line and headers; `Content-Length: len`, or chunked when `None`.
async fn write_head(
    socket: &mut TcpStream,
    status: u16,
    headers: &[(impl AsRef<str>, String)],
    len: Option<u64>,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Whatever",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{}: {v}\r\n", k.as_ref()));
    }
    match len {
        Some(len) => head.push_str(&format!("Content-Length: {len}\r\n")),
        None => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    head.push_str("\r\n");
    socket.write_all(head.as_bytes()).await?;
    socket.flush().await
}

/// `{"schemaVersion":2,"padding":"xxxx…` up to `len` bytes (for ever when
/// `None`), chunked or raw; stops quietly when the client hangs up.
async fn write_padding(socket: &mut TcpStream, len: Option<u64>, chunked: bool) -> std::io::Result<()> {
    let mut block = br#"{"schemaVersion":2,"padding":""#.to_vec();
    block.resize(CHUNK, b'x');
    let mut left = len;
    let mut first = true;
    loop {
        let take = match left {
            Some(0) => break,
            Some(n) => n.min(CHUNK as u64) as usize,
            None => CHUNK,
        };
        let bytes = if first {
            &block[..take]
        } else {
            &block[block.len() - take..]
        };
        first = false;
        let result = if chunked {
            let mut framed = format!("{take:x}\r\n").into_bytes();
            framed.extend_from_slice(bytes);
            framed.extend_from_slice(b"\r\n");
            socket.write_all(&framed).await
        } else {
            socket.write_all(bytes).await
        };
        if result.is_err() {
            return Ok(()); // the client stopped reading: the point of a cap
        }
        if let Some(n) = left.as_mut() {
            *n -= take as u64;
        }
    }
    if chunked {
        socket.write_all(b"0\r\n\r\n").await?;
    }
    socket.flush().await
}
