//! A stand-in for Gitea's commit endpoint, `GET /api/v1/repos/{owner}/{repo}/git/commits/{sha}`.
//!
//! Gitea itself cannot be installed here, so this speaks its API shapes and
//! status codes (from Gitea's source, see "What Gitea answers" below): 200
//! with the commit JSON, 404 for an unknown owner, repository or commit and
//! for a private repository the caller may not see, 422 only for a ref Git
//! could never name, 401 for a token it does not know. Some repository names
//! (any owner) misbehave on purpose, so tests read clearly:
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
//! | `echopart`    | 200, `{"sha": <its token without the first and last character>}` |
//! | `e500` `e502` | 500 (Gitea's empty-message error) / 502 (a proxy's HTML page) |
//! | `e422`        | Gitea's 422 for a ref it cannot parse                         |
//! | `e429`        | 429 with `Retry-After: 60`                                    |
//! | `e401` `e403` | Gitea's 401 / 403 (missing `read:repository` scope)           |
//!
//! Tests can also configure, per repository or for all of them:
//!
//! - [`GiteaStandIn::rename`]: a renamed or transferred repository, answered
//!   as real Gitea answers it (below);
//! - [`GiteaStandIn::redirect_raw`]: any status with any `Location`, for
//!   redirects Gitea would never send;
//! - [`GiteaStandIn::set_delay`] and [`GiteaStandIn::hang_all`]: a slow Gitea,
//!   or one that never answers at all.
//!
//! ## What Gitea answers
//!
//! Checked in go-gitea/gitea's source (1.22 and 1.23, the releases whose
//! rename redirect is modelled below): `routers/api/v1/api.go`
//! (`repoAssignment`), `routers/api/v1/repo/commits.go` (`GetSingleCommit`,
//! `getCommit`), `services/context/api.go` (`APIError`, `NotFound`; it was
//! `modules/context/api.go` before 1.22) and `modules/git/ref.go`
//! (`IsValidRefPattern`). In the order Gitea decides:
//!
//! 1. a token it does not know: 401, from the auth middleware;
//! 2. an owner that does not exist (and was never renamed):
//!    `ctx.NotFound("GetUserByName", err)`, so 404 with
//!    `{"errors": ["user redirect does not exist [name: <owner, lowercased>]"],
//!    "message": "GetUserByName", "url": …}`;
//! 3. a repository that does not exist (and was never renamed) or that the
//!    caller may not see: `ctx.NotFound()`, 404 with `{"errors": null,
//!    "message": "The target couldn't be found.", "url": …}`;
//! 4. a `{sha}` that fails `git.IsValidRefPattern` (a control character,
//!    space, backslash or one of `~^:?*[`; `..`, `//`, `/.` or `@{`; a
//!    leading `/` or `.`; a trailing `/`, `.` or `.lock`; or just `@`):
//!    `ctx.Error(422, …)`, whose body is the `APIError` struct, `{"message":
//!    "no valid ref or sha: <sha>", "url": …}`, with no `errors`;
//! 5. otherwise `GitRepo.GetCommit(sha)` resolves it as Git does: a full
//!    SHA, an abbreviated one (four hex digits or more, either case) or a
//!    ref. What it cannot resolve is `git.IsErrNotExist`, and
//!    `ctx.NotFound(sha)` answers 404 with `{"errors": null, "message":
//!    <the sha as asked>, "url": …}`: a well-formed 40-hex SHA that is not
//!    there is a 404, never a 422, and so is a short SHA that matches no
//!    commit (or more than one). A short SHA that matches one commit is a 200
//!    naming the full SHA. (Branches and tags are not modelled: any other
//!    name is a 404.)
//!
//! `NotFound` writes a Go `map[string]any`, so the keys come sorted and
//! `errors` is `null` when no error was passed. (Gitea 1.24 renamed it
//! `APIErrorNotFound` and later dropped `errors`; provgate reads neither
//! body, only the status.) `url` is `setting.API.SwaggerURL`,
//! `<AppURL>api/swagger`.
//!
//! ## Renamed and transferred repositories
//!
//! Real Gitea keeps a redirect row (old owner, lowercased old name → the
//! repository's id) when a repository is renamed or transferred. The API's
//! `repoAssignment` middleware (`routers/api/v1/api.go`) finds the owner and,
//! when no repository has the requested name, calls
//! `repo_model.LookupRedirect` and then `context.RedirectToRepo`
//! (`services/context/repo.go`; `modules/context/repo.go` in older
//! releases). So the redirect comes before any permission check and before
//! the commit is looked at: a commit that does not exist, or a private
//! repository, still gets it; only the token (checked earlier, by the API's
//! auth middleware) can stop it. `RedirectToRepo` replaces the first
//! `PathEscape(owner)/PathEscape(repo)` in the request's escaped path with the
//! new names, appends `?` and the raw query when there is one, and calls
//! `ctx.Redirect(path.Join(setting.AppSubURL, redirectPath), 301)`:
//!
//! - the status is 301 Moved Permanently since go-gitea/gitea#34005 (March
//!   2025, backported to 1.23 as #34010: git clients follow 301 but not 307).
//!   Before it was 307 Temporary Redirect (302 Found, `ctx.Redirect`'s
//!   default then, in the oldest versions). The status is the same for web
//!   and API requests and for every method. `Base.Redirect`
//!   (`services/context/base.go`) defaults to 303 See Other, but
//!   `RedirectToRepo` always passes its status. (A renamed *owner* goes
//!   through `RedirectToUser` instead, still 307; not modelled here.)
//! - the `Location` is same-host and relative: `/api/v1/repos/{new owner}/
//!   {new repo}/git/commits/{sha}` plus `?query`, prefixed with the app
//!   sub-URL (empty here). `path.Join` runs Go's `path.Clean` over path and
//!   query together, and Go's `http.Redirect` cleans the path again and
//!   writes a short HTML body for a GET; both are reproduced.
//!
//! A chain of renames leads in one hop, as Gitea's redirects point at the
//! repository's id, and the redirect for a name goes away once a repository
//! takes that name again. The commits are not moved: a test adds them under
//! the new name.
//!
//! ## Counting
//!
//! Every commit request is logged when it arrives, before any delay or hang,
//! and counts as in flight until its answer is produced or the handler is
//! dropped (the client went away, or the stand-in stopped). The `drip` and
//! `huge` answers stay in flight until their bodies end.
//!
//! It runs on 127.0.0.1 in a thread with its own multi-thread runtime, so
//! both plain and `#[tokio::test]` tests can use it, and stops when dropped.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
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

/// A repository as Gitea looks it up: owner and name, lowercased.
type RepoName = (String, String);

#[derive(Default)]
struct Books {
    public: HashSet<Key>,
    /// commit → the token that may see it.
    private: HashMap<Key, String>,
    /// Tokens Gitea knows but that unlock no private repository.
    tokens: HashSet<String>,
    requests: Vec<Request>,
    delay: Duration,
    /// Every request waits forever, whatever its repository.
    hang_all: bool,
    /// An old name → the owner and name the repository has now, as given.
    renamed: HashMap<RepoName, (String, String)>,
    /// A repository → the status and `Location` it answers, as given.
    raw_redirects: HashMap<RepoName, (StatusCode, HeaderValue)>,
}

struct Shared {
    base_url: String,
    books: Mutex<Books>,
    /// A raw socket that writes the `drip` and `huge` bodies; see [`relay`].
    raw_source: SocketAddr,
    relay: reqwest::Client,
    /// Commit requests being handled now; see [`InFlight`].
    in_flight: AtomicUsize,
    /// The most `in_flight` has ever been.
    max_in_flight: AtomicUsize,
    /// Commit requests whose response has been produced.
    answered: AtomicUsize,
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
                provgate::http::install_provider();
                runtime.block_on(async move {
                    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind stand-in");
                    let raw_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind raw source");
                    let shared = Arc::new(Shared {
                        base_url: format!("http://{}", listener.local_addr().expect("stand-in address")),
                        books: Mutex::new(Books::default()),
                        raw_source: raw_listener.local_addr().expect("raw source address"),
                        relay: reqwest::Client::builder().no_proxy().build().expect("relay client"),
                        in_flight: AtomicUsize::new(0),
                        max_in_flight: AtomicUsize::new(0),
                        answered: AtomicUsize::new(0),
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

    /// A pause before every answer. Requests count as in flight while they wait.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.books().delay = delay;
    }

    /// While `on`, every request that arrives waits forever, whatever its
    /// repository: a Gitea that never answers, with its commits still
    /// there once it is turned off. Requests already waiting keep waiting
    /// until their client goes away.
    pub fn hang_all(&self, on: bool) {
        self.shared.books().hang_all = on;
    }

    /// `old_owner/old_repo` was renamed or transferred to `new_owner/new_repo`:
    /// from now on requests for the old name (in any case) get real Gitea's
    /// same-host redirect (see the module documentation). Its commits are
    /// not moved: add them under the new name. A change of case only is no
    /// rename, as Gitea finds repositories by their lowercased names.
    pub fn rename(&self, old_owner: &str, old_repo: &str, new_owner: &str, new_repo: &str) {
        let (old, new) = (repo_name(old_owner, old_repo), repo_name(new_owner, new_repo));
        let mut books = self.shared.books();
        // The new name is a repository again, so no longer a redirect.
        books.renamed.remove(&new);
        // Gitea's redirects point at the repository, not at a name: older
        // names lead straight to the newest one.
        for target in books.renamed.values_mut() {
            if repo_name(&target.0, &target.1) == old {
                *target = (new_owner.to_owned(), new_repo.to_owned());
            }
        }
        if old != new {
            books.renamed.insert(old, (new_owner.to_owned(), new_repo.to_owned()));
        }
    }

    /// Requests for `owner/repo` (in any case) are answered `status` with
    /// exactly `location`, before anything else is looked at: redirects of
    /// shapes real Gitea never sends, for negative tests.
    pub fn redirect_raw(&self, owner: &str, repo: &str, status: u16, location: &str) {
        let status = StatusCode::from_u16(status).expect("an HTTP status code");
        let location = HeaderValue::from_str(location).expect("a Location header value");
        self.shared
            .books()
            .raw_redirects
            .insert(repo_name(owner, repo), (status, location));
    }

    /// Commit requests being handled now, including the ones delayed or
    /// hanging.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// The most commit requests ever handled at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Commit requests whose response has been produced (a streamed body
    /// may still be on its way).
    pub fn answered(&self) -> usize {
        self.shared.answered.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests are in flight; false if that did
    /// not happen within `timeout`. Lets tests order events without timing
    /// assertions. It blocks the calling thread: from a current-thread
    /// `#[tokio::test]`, run the client elsewhere (e.g. `spawn_blocking`).
    pub fn wait_for_in_flight(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.in_flight() < n {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
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

fn repo_name(owner: &str, repo: &str) -> RepoName {
    (owner.to_lowercase(), repo.to_lowercase())
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
    // Logged and counted on arrival, together, so a test that sees the
    // request also sees it in flight.
    let (in_flight, delay, hang) = {
        let mut books = shared.books();
        books.requests.push(Request {
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            authorization: headers
                .get(header::AUTHORIZATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into()),
        });
        (InFlight::enter(&shared), books.delay, books.hang_all)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if hang {
        std::future::pending::<()>().await;
    }
    let response = respond(&shared, &owner, &repo, &sha, &uri, &headers).await;
    in_flight.answer(response)
}

/// One request counted in [`Shared::in_flight`]. Dropping it uncounts it,
/// so a handler hyper drops (its client went away, or the stand-in
/// stopped) stops counting too, even one that never answers.
struct InFlight {
    shared: Arc<Shared>,
}

/// Marks a response whose body is still being produced (`drip`, `huge`).
#[derive(Clone)]
struct Streamed;

impl InFlight {
    fn enter(shared: &Arc<Shared>) -> InFlight {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight { shared: shared.clone() }
    }

    /// Counts the request answered. A whole response stops counting as in
    /// flight here, before hyper sends it, so a client that has it never
    /// sees it counted; a streamed one keeps counting until its body ends.
    fn answer(self, response: Response) -> Response {
        self.shared.answered.fetch_add(1, Ordering::SeqCst);
        if response.extensions().get::<Streamed>().is_none() {
            return response;
        }
        let (parts, body) = response.into_parts();
        let body = body.into_data_stream().map(move |chunk| {
            let _held = &self;
            chunk
        });
        Response::from_parts(parts, Body::from_stream(body))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A token Gitea does not know, or an `Authorization` it cannot use.
struct UnknownToken;

/// The caller's token if Gitea knows it (`None`: no token at all).
fn caller(books: &Books, headers: &HeaderMap) -> Result<Option<String>, UnknownToken> {
    match auth(headers) {
        Auth::None => Ok(None),
        Auth::Token(token) if books.tokens.contains(&token) || books.private.values().any(|t| *t == token) => {
            Ok(Some(token))
        }
        Auth::Token(_) | Auth::Unusable => Err(UnknownToken),
    }
}

/// Gitea's 401 for an [`UnknownToken`].
fn unauthorized(base: &str) -> Response {
    api_error(StatusCode::UNAUTHORIZED, base, "invalid username, password or token")
}

async fn respond(shared: &Shared, owner: &str, repo: &str, sha: &str, uri: &Uri, headers: &HeaderMap) -> Response {
    let base = shared.base_url.as_str();
    let query = uri.query().unwrap_or("");

    {
        let books = shared.books();
        let name = repo_name(owner, repo);
        if let Some((status, location)) = books.raw_redirects.get(&name) {
            return redirect_response(*status, location.clone());
        }
        // Gitea's auth middleware turns away an unknown token first; then
        // `repoAssignment` redirects, before permissions or the commit.
        if let Some((new_owner, new_repo)) = books.renamed.get(&name) {
            if caller(&books, headers).is_err() {
                return unauthorized(base);
            }
            let location = renamed_location(uri, owner, repo, new_owner, new_repo);
            let location = HeaderValue::from_str(&location).expect("a Location from a request path");
            return redirect_response(StatusCode::MOVED_PERMANENTLY, location);
        }
    }

    match repo {
        "hang" => return std::future::pending::<Response>().await,
        "redirect" => {
            let location = format!("http://{EVIL_HOST}/api/v1/repos/{owner}/{repo}/git/commits/{sha}");
            return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
        }
        // No Content-Length: only counting the bytes as they arrive can stop the client.
        "huge" => return relay(shared, Flow::Flood, owner, repo, sha).await,
        "hugelen" => {
            // The commit's JSON with a 20 MB padding field, spliced in as
            // bytes: serialising a 20 MB string through serde_json at
            // opt-level 0 took seconds on a loaded machine, past the
            // client's time-out, and the test then saw a time-out instead
            // of the declared size it is about.
            let commit = commit_json(base, owner, repo, sha, query).to_string();
            let mut body = Vec::with_capacity(commit.len() + HUGE_BYTES + 16);
            body.extend_from_slice(&commit.as_bytes()[..commit.len() - 1]);
            body.extend_from_slice(br#","padding":""#);
            body.resize(body.len() + HUGE_BYTES, b'x');
            body.extend_from_slice(b"\"}");
            return (
                StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
        }
        "liar" => {
            return json_response(StatusCode::OK, &commit_json(base, owner, repo, &other_sha(sha), query));
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
        "drip" => return relay(shared, Flow::Drip, owner, repo, sha).await,
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
        // Subtler: quotes most of the token, but never all of it.
        "echopart" => {
            let token = match auth(headers) {
                Auth::Token(token) => token,
                Auth::None | Auth::Unusable => String::new(),
            };
            let part: String = token
                .chars()
                .skip(1)
                .take(token.chars().count().saturating_sub(2))
                .collect();
            return json_response(StatusCode::OK, &json!({ "sha": part }));
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
    let Ok(token) = caller(&books, headers) else {
        return unauthorized(base);
    };
    // The order of `repoAssignment`, then `GetSingleCommit` (module docs).
    if !books.owner_exists(owner) {
        let error = format!("user redirect does not exist [name: {}]", owner.to_lowercase());
        return not_found(base, "GetUserByName", &[error]);
    }

    // Like Gitea, a private repository the caller may not see does not exist.
    let in_repo = |(o, r, _): &Key| *o == owner && *r == repo;
    let private: Vec<(&Key, &String)> = books.private.iter().filter(|(k, _)| in_repo(k)).collect();
    let visible = if private.is_empty() {
        books.public.iter().any(in_repo)
    } else {
        private.iter().any(|(_, t)| Some(*t) == token.as_ref())
    };
    if !visible {
        return not_found(base, "The target couldn't be found.", &[]);
    }
    if !is_valid_ref_pattern(sha) {
        return api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            base,
            &format!("no valid ref or sha: {sha}"),
        );
    }
    let commits = books.public.iter().chain(books.private.keys());
    match resolve(commits.filter(|k| in_repo(k)).map(|(_, _, sha)| sha.as_str()), sha) {
        Some(full) => json_response(StatusCode::OK, &commit_json(base, owner, repo, full, query)),
        None => not_found(base, sha, &[]),
    }
}

impl Books {
    /// Whether Gitea would find a user or organisation of this name (any
    /// case): one that owns a repository here, or took one over.
    fn owner_exists(&self, owner: &str) -> bool {
        let owner = owner.to_lowercase();
        let commits = self.public.iter().chain(self.private.keys()).map(|(o, _, _)| o);
        let renamed = self.renamed.iter().flat_map(|((old, _), (new, _))| [old, new]);
        let redirected = self.raw_redirects.keys().map(|(o, _)| o);
        commits
            .chain(renamed)
            .chain(redirected)
            .any(|o| o.to_lowercase() == owner)
    }
}

/// Git's `git.IsValidRefPattern` (`modules/git/ref.go`): the `sha` path
/// segment is refused with 422 only when no ref could ever be called that.
fn is_valid_ref_pattern(name: &str) -> bool {
    let bad_char = |c: char| c < '\u{20}' || c == '\u{7f}' || " \\~^:?*[".contains(c);
    !(name.chars().any(bad_char)
        || name.starts_with(['/', '.'])
        || name.contains("/.")
        || name.ends_with(".lock")
        || name.contains(".lock/")
        || name.contains("..")
        || name.contains("//")
        || name.contains("@{")
        || name.ends_with(['/', '.'])
        || name == "@")
}

/// The commit `asked` names among `commits`, as `git rev-parse` finds it:
/// the full SHA, or an abbreviation of four hex digits or more (either
/// case) that matches exactly one. Refs are not modelled.
fn resolve<'a>(commits: impl Iterator<Item = &'a str>, asked: &str) -> Option<&'a str> {
    if asked.len() < 4 || asked.len() > 40 || !asked.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let asked = asked.to_ascii_lowercase();
    let matching: HashSet<&str> = commits
        .filter(|full| full.to_ascii_lowercase().starts_with(&asked))
        .collect();
    match Vec::from_iter(matching)[..] {
        [one] => Some(one),
        // None, or ambiguous: `git rev-parse` fails, and Gitea says 404.
        _ => None,
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

/// Gitea's `APIError` struct, what `ctx.Error` writes: `message` and `url`.
fn api_error(status: StatusCode, base: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({ "message": message, "url": format!("{base}/api/swagger") }),
    )
}

/// What Gitea's `ctx.NotFound(objs...)` writes: a 404 whose map has
/// `errors` (the errors passed, `null` for none), `message` and `url`, in
/// that (Go's sorted) order.
fn not_found(base: &str, message: &str, errors: &[String]) -> Response {
    let errors = if errors.is_empty() { Value::Null } else { json!(errors) };
    let body = format!(
        r#"{{"errors":{errors},"message":{},"url":{}}}"#,
        Value::from(message),
        Value::from(format!("{base}/api/swagger"))
    );
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        body,
    )
        .into_response()
}

/// What Go's `http.Redirect` writes for a GET: the `Location`, and a short
/// HTML body naming the status.
fn redirect_response(status: StatusCode, location: HeaderValue) -> Response {
    let body = format!(
        "<a href=\"{}\">{}</a>.\n\n",
        html_escape(&String::from_utf8_lossy(location.as_bytes())),
        status.canonical_reason().unwrap_or("")
    );
    let html = HeaderValue::from_static("text/html; charset=utf-8");
    (
        status,
        [(header::LOCATION, location), (header::CONTENT_TYPE, html)],
        body,
    )
        .into_response()
}

/// Go's `htmlEscape` in `net/http`.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// The `Location` of Gitea's `RedirectToRepo` (`services/context/repo.go`)
/// for a request to `owner/repo`, now `new_owner/new_repo`.
fn renamed_location(uri: &Uri, owner: &str, repo: &str, new_owner: &str, new_repo: &str) -> String {
    let from = format!("{}/{}", go_path_escape(owner), go_path_escape(repo));
    let to = format!("{}/{}", go_path_escape(new_owner), go_path_escape(new_repo));
    let mut location = uri.path().replacen(&from, &to, 1);
    if let Some(query) = uri.query().filter(|q| !q.is_empty()) {
        location.push('?');
        location.push_str(query);
    }
    // `path.Join(setting.AppSubURL, redirectPath)`: the sub-URL is empty
    // here, so it is `path.Clean` of path and query together.
    let joined = go_path_clean(&location);
    // `http.Redirect` then cleans the path alone, keeping a trailing slash.
    let (path, query) = joined.split_at(joined.find('?').unwrap_or(joined.len()));
    let mut cleaned = go_path_clean(path);
    if path.ends_with('/') && !cleaned.ends_with('/') {
        cleaned.push('/');
    }
    cleaned + query
}

/// Go's `url.PathEscape`. Gitea's owner and repository names never need
/// escaping; this keeps the replacement in [`renamed_location`] exact.
fn go_path_escape(segment: &str) -> String {
    let mut escaped = String::new();
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~$&+:=@".contains(&byte) {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

/// Go's `path.Clean`: no empty or `.` segments, `..` resolved.
fn go_path_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." if kept.last().is_some_and(|last| *last != "..") => {
                kept.pop();
            }
            ".." if rooted => {}
            _ => kept.push(segment),
        }
    }
    let joined = kept.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_owned()
    } else {
        joined
    }
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

/// The `drip` and `huge` answers are relayed from a raw socket that writes
/// them (see [`serve_raw`]): reqwest's response body is an `http_body::Body`
/// axum accepts, and hyper sends it on as it comes. Marked [`Streamed`], so
/// the request stays in flight until the body ends.
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
            response.extensions_mut().insert(Streamed);
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
