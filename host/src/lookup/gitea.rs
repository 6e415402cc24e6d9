//! The Gitea commit look-up: one `GET /api/v1/repos/{owner}/{repo}/git/commits/{sha}`.
//!
//! Gitea's answer decides a rule, so the client trusts it only when it is
//! unambiguous: `Found` needs a 200 whose JSON names the very SHA asked (the
//! path accepts any ref, so a branch or short SHA would also get a 200), and
//! every answer that is neither "found" nor a clear "not found" becomes
//! `Unavailable`. It talks only to the configured base URL: redirects are
//! never followed, bodies are capped and the whole exchange has one
//! deadline. Gitea's same-host redirect of a renamed or transferred
//! repository (`Location: /api/v1/repos/<owner>/<repo>/git/commits/<sha>…`)
//! is reported as `Moved`, for the guest to decide about; any other
//! redirect is `Unavailable`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{Response, StatusCode, Url};
use tokio::sync::Semaphore;

use super::{Answer, Answering, Answers, Question};
use crate::http::{CappedError, error_chain, read_capped};
use crate::retry::{Peer, Retry, Schedule, was_reset};
use crate::text::quote;

/// How long one look-up may take, from connecting to the last body byte,
/// retries included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A commit answer with `stat`, `verification` and `files` off is about 2 KiB;
/// anything far larger is not the answer asked for and is not read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The environment variable [`Token::from_env`] reads.
pub const TOKEN_ENV: &str = "GITEA_TOKEN";

/// A Gitea access token. Kept in a newtype so that no `{:?}`, `{}` or error
/// chain can print it: it is only ever written into the `Authorization` header.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(secret: String) -> Self {
        crate::secrets::register(&secret);
        Token(secret)
    }

    /// The token from `GITEA_TOKEN`; unset, empty or blank means none. Surrounding
    /// white space is dropped because a trailing newline from a secret file
    /// would otherwise make every request fail.
    pub fn from_env() -> Option<Token> {
        match std::env::var(TOKEN_ENV) {
            Ok(value) if !value.trim().is_empty() => Some(Token::new(value.trim().to_owned())),
            Ok(_) | Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                tracing::warn!("{TOKEN_ENV} is not valid Unicode; ignoring it");
                None
            }
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Asks one Gitea server about commits. Cheap to share: `&self` methods only.
pub struct GiteaClient {
    http: reqwest::Client,
    /// `scheme://host[:port]`, no trailing slash.
    base: String,
    /// `token <T>`, marked sensitive so HTTP/2 never indexes it.
    auth: Option<HeaderValue>,
    timeout: Duration,
    /// Requests made again after a failure that may pass (serve's metrics).
    retries: AtomicU64,
}

impl fmt::Debug for GiteaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GiteaClient")
            .field("base", &self.base)
            .field("token", &self.auth.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl GiteaClient {
    /// `base_url` is `http(s)://host[:port]`; a path, query, fragment or user-info
    /// is refused because the API path is appended to it and the rule
    /// `source.trusted` compares sources against the same base.
    pub fn new(base_url: &str, token: Option<Token>, timeout: Duration) -> anyhow::Result<Self> {
        let base = normalise_base(base_url)?;
        anyhow::ensure!(!timeout.is_zero(), "the Gitea time-out must be longer than zero");
        let auth = match &token {
            Some(token) => {
                let mut value = HeaderValue::from_str(&format!("token {}", token.0)).map_err(|_| {
                    anyhow::anyhow!("{TOKEN_ENV} contains characters that cannot be sent in an HTTP header")
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let http = crate::http::client_builder()
            .connect_timeout(timeout)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot set up the HTTP client for Gitea: {e}"))?;
        Ok(GiteaClient {
            http,
            base,
            auth,
            timeout,
            retries: AtomicU64::new(0),
        })
    }

    /// Requests retried so far, over every look-up of this client.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The normalised base URL (`scheme://host[:port]`) requests go to.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Does commit `sha` exist in `owner/repo`? Never fails: every problem is
    /// an [`Answer::Unavailable`] whose reason says what to do about it.
    pub async fn commit(&self, owner: &str, repo: &str, sha: &str) -> Answer {
        if let Err(reason) = check_request(owner, repo, sha) {
            return Answer::unavailable(reason);
        }
        let asked = Asked {
            base: &self.base,
            owner,
            repo,
            sha,
            token_set: self.auth.is_some(),
        };
        tracing::debug!(base = %self.base, owner, repo, sha, "asking Gitea for a commit");
        // One deadline over every attempt's connect, headers and
        // chunk-by-chunk body read, and the waits between them, so that
        // neither a server dripping bytes nor one failing over and over can
        // hold a look-up open.
        let mut schedule = Schedule::new(Peer::Gitea, self.timeout);
        let answer = loop {
            let Ok(tried) = tokio::time::timeout_at(schedule.deadline(), self.exchange(&asked)).await else {
                break Answer::unavailable(format!(
                    "Gitea at {} did not finish answering about {} within {:?}{}; it is slow or unreachable, \
                     try again later",
                    self.base,
                    asked.what(),
                    self.timeout,
                    schedule.which()
                ));
            };
            let Answer::Unavailable { reason } = &tried.answer else {
                break tried.answer;
            };
            let wait = match schedule.next(tried.retry) {
                Ok(wait) => wait,
                Err(why) if why.is_empty() => break tried.answer,
                Err(why) => break Answer::unavailable(format!("{reason}{why}")),
            };
            self.retries.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                base = %self.base,
                owner,
                repo,
                sha,
                attempt = schedule.attempt(),
                wait_ms = wait.as_millis() as u64,
                "retrying a Gitea look-up: {reason}"
            );
            tokio::time::sleep(wait).await;
        };
        tracing::debug!(owner, repo, sha, ?answer, "Gitea answered");
        answer
    }

    /// One request: its answer, and whether asking again may help.
    async fn exchange(&self, asked: &Asked<'_>) -> Tried {
        let url = format!(
            "{}/api/v1/repos/{}/{}/git/commits/{}?stat=false&verification=false&files=false",
            self.base, asked.owner, asked.repo, asked.sha
        );
        let mut request = self.http.get(url).header(ACCEPT, "application/json");
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let response = match crate::latency::timed(Peer::Gitea, request.send()).await {
            Ok(response) => response,
            Err(e) => {
                let retry = Retry::for_error(&e);
                return Tried {
                    answer: Answer::unavailable(asked.send_failed(e.without_url())),
                    retry,
                };
            }
        };
        let status = response.status();
        let retry = Retry::for_status(status, response.headers());
        if status == StatusCode::OK {
            return self.judge_body(asked, response).await;
        }
        let answer = match status {
            StatusCode::NOT_FOUND => Answer::not_found(asked.not_found()),
            // Gitea answers 422 only for a ref it cannot parse, and a full
            // lower-case SHA always parses: whatever sent this is not
            // telling us the commit is missing.
            StatusCode::UNPROCESSABLE_ENTITY => Answer::unavailable(format!(
                "Gitea at {} answered HTTP {status} about {}, which Gitea gives only for a ref it cannot parse; \
                 check that {} is Gitea's address and nothing in between rewrites the request",
                asked.base,
                asked.what(),
                asked.base
            )),
            StatusCode::UNAUTHORIZED if asked.token_set => Answer::unavailable(format!(
                "Gitea at {} refused the {TOKEN_ENV} (HTTP {status}): it is invalid, expired or revoked",
                asked.base
            )),
            StatusCode::UNAUTHORIZED => Answer::unavailable(format!(
                "Gitea at {} requires sign-in (HTTP {status}) and no {TOKEN_ENV} is set",
                asked.base
            )),
            StatusCode::FORBIDDEN if asked.token_set => Answer::unavailable(format!(
                "Gitea at {} forbade reading {}/{} (HTTP {status}): the token lacks the read:repository scope \
                 or sign-in is required",
                asked.base, asked.owner, asked.repo
            )),
            StatusCode::FORBIDDEN => Answer::unavailable(format!(
                "Gitea at {} forbade reading {}/{} (HTTP {status}): it requires sign-in and no {TOKEN_ENV} is set",
                asked.base, asked.owner, asked.repo
            )),
            StatusCode::TOO_MANY_REQUESTS => {
                let retry = match response.headers().get(RETRY_AFTER) {
                    Some(value) => format!(
                        ", Retry-After: {}",
                        crate::text::shown(&String::from_utf8_lossy(value.as_bytes()))
                    ),
                    None => String::new(),
                };
                Answer::unavailable(format!(
                    "Gitea at {} is rate-limiting provgate (HTTP {status}{retry}); try again later",
                    asked.base
                ))
            }
            s if s.is_server_error() => Answer::unavailable(format!(
                "Gitea at {} failed with HTTP {status} while looking up {}; try again later",
                asked.base,
                asked.what()
            )),
            // The statuses Gitea has answered a rename with over the years
            // (302, 307, now 301); 308 for a proxy that upgrades them.
            StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT => match asked.moved_to(&response) {
                Some((owner, repo)) => {
                    tracing::debug!(owner = asked.owner, repo = asked.repo, to_owner = %owner, to_repo = %repo, "Gitea says the repository moved");
                    Answer::moved(&owner, &repo)
                }
                None => Answer::unavailable(asked.redirected(&response)),
            },
            s if s.is_redirection() => Answer::unavailable(asked.redirected(&response)),
            _ => Answer::unavailable(format!(
                "Gitea at {} answered HTTP {status}, which provgate does not expect, about {}",
                asked.base,
                asked.what()
            )),
        };
        Tried { answer, retry }
    }

    /// A 200's body: found only for the very SHA asked. A body broken off
    /// by a reset connection may pass on a retry; nothing else here would.
    async fn judge_body(&self, asked: &Asked<'_>, mut response: Response) -> Tried {
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| asked.shown(&String::from_utf8_lossy(v.as_bytes())));
        let body = match read_capped(&mut response, MAX_BODY_BYTES).await {
            Ok(body) => body,
            Err(CappedError::Declared(len)) => {
                return Tried::last(format!(
                    "Gitea at {} declared a {len}-byte answer about {}, more than the {} KiB provgate reads",
                    asked.base,
                    asked.what(),
                    MAX_BODY_BYTES / 1024
                ));
            }
            Err(CappedError::TooLarge) => {
                return Tried::last(format!(
                    "Gitea at {} sent more than the {} KiB provgate reads about {}",
                    asked.base,
                    MAX_BODY_BYTES / 1024,
                    asked.what()
                ));
            }
            Err(CappedError::Read(e)) => {
                let retry = if was_reset(&e) {
                    Retry::Yes { after: None }
                } else {
                    Retry::No
                };
                let reason = format!(
                    "Gitea at {} broke off its answer about {} ({}); try again later",
                    asked.base,
                    asked.what(),
                    outside(error_chain(&e.without_url()))
                );
                return Tried {
                    answer: Answer::unavailable(reason),
                    retry,
                };
            }
        };
        let json: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(json) => json,
            Err(_) => {
                return Tried::last(format!(
                    "Gitea at {} answered HTTP 200 about {} with a body that is not JSON (content type {}); \
                     check that {} is Gitea's address",
                    asked.base,
                    asked.what(),
                    content_type.as_deref().unwrap_or("not given"),
                    asked.base
                ));
            }
        };
        match json.get("sha").and_then(serde_json::Value::as_str) {
            Some(sha) if sha == asked.sha => Tried {
                answer: Answer::Found,
                retry: Retry::No,
            },
            Some(other) => Tried::last(format!(
                "Gitea at {} answered about {} with another commit ({}); provgate accepts only the exact SHA",
                asked.base,
                asked.what(),
                asked.shown(other)
            )),
            None => Tried::last(format!(
                "Gitea at {} answered HTTP 200 about {} without a commit \"sha\"; check that {} is Gitea's address",
                asked.base,
                asked.what(),
                asked.base
            )),
        }
    }
}

/// One request of a look-up: its answer, and whether asking again may help.
struct Tried {
    answer: Answer,
    retry: Retry,
}

impl Tried {
    /// An unavailable answer that no retry would change.
    fn last(reason: String) -> Tried {
        Tried {
            answer: Answer::unavailable(reason),
            retry: Retry::No,
        }
    }
}

/// What one look-up asked, for building reasons.
struct Asked<'a> {
    base: &'a str,
    owner: &'a str,
    repo: &'a str,
    sha: &'a str,
    token_set: bool,
}

impl Asked<'_> {
    /// Server text quoted for a reason (scrubbed of secrets, escaped, cut).
    fn shown(&self, text: &str) -> String {
        quote(text)
    }

    fn what(&self) -> String {
        format!("commit {} in {}/{}", self.sha, self.owner, self.repo)
    }

    fn not_found(&self) -> String {
        let hint = if self.token_set {
            " (or the GITEA_TOKEN cannot see a private repository)"
        } else {
            " (no GITEA_TOKEN is set: Gitea also answers 404 for a private repository it won't show without a token)"
        };
        format!(
            "Gitea at {} has no commit {} in {}/{}, or no such repository (HTTP 404){hint}",
            self.base, self.sha, self.owner, self.repo
        )
    }

    fn send_failed(&self, e: reqwest::Error) -> String {
        let detail = outside(error_chain(&e));
        if e.is_timeout() {
            format!(
                "Gitea at {} did not answer about {} in time ({detail}); try again later",
                self.base,
                self.what()
            )
        } else if let Some(hint) = crate::tls::explain(&detail, host_of(self.base), None) {
            format!("could not connect to Gitea at {}: {hint} ({detail})", self.base)
        } else if e.is_connect() {
            format!(
                "could not connect to Gitea at {} ({detail}); check the address and that Gitea is up",
                self.base
            )
        } else {
            format!(
                "the request to Gitea at {} failed ({detail}); try again later",
                self.base
            )
        }
    }

    /// The new owner and repository of Gitea's redirect for a renamed or
    /// transferred repository: same origin, the same API path with only the
    /// owner and repository replaced, plain names. Anything else is not a
    /// rename and is never reported as one.
    fn moved_to(&self, response: &Response) -> Option<(String, String)> {
        let location = response.headers().get(LOCATION)?.to_str().ok()?;
        let target = response.url().join(location).ok()?;
        if target.origin() != response.url().origin() {
            return None;
        }
        let mut segments = target.path_segments()?;
        let expected = ["api", "v1", "repos"];
        if !expected.iter().all(|e| segments.next() == Some(e)) {
            return None;
        }
        let (owner, repo) = (segments.next()?, segments.next()?);
        let rest: Vec<&str> = segments.collect();
        if rest != ["git", "commits", self.sha] || !is_plain_name(owner) || !is_plain_name(repo) {
            return None;
        }
        if owner.eq_ignore_ascii_case(self.owner) && repo.eq_ignore_ascii_case(self.repo) {
            return None;
        }
        Some((owner.to_owned(), repo.to_owned()))
    }

    fn redirected(&self, response: &Response) -> String {
        let status = response.status();
        let target = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|location| response.url().join(location).ok())
            .and_then(|url| url.host_str().map(str::to_owned));
        match target {
            Some(host) => format!(
                "Gitea at {} answered HTTP {status} with a redirect to {}, which provgate does not follow; \
                 configure the URL Gitea really serves",
                self.base,
                self.shown(&host)
            ),
            None => format!(
                "Gitea at {} answered HTTP {status} with a redirect, which provgate does not follow; \
                 configure the URL Gitea really serves",
                self.base
            ),
        }
    }
}

/// Refuses, before any request, what cannot be a plain owner, repository or
/// full SHA: the values go into a URL path, and Gitea resolves any ref there.
fn check_request(owner: &str, repo: &str, sha: &str) -> Result<(), String> {
    for (what, name) in [("owner", owner), ("repository", repo)] {
        if !is_plain_name(name) {
            return Err(format!(
                "the {what} name {} is not a plain Gitea name (up to 255 letters, digits, '.', '_', '-'; not '.' or '..'); \
                 provgate did not ask Gitea",
                quote(name)
            ));
        }
    }
    if !(sha.len() == 40 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))) {
        return Err(format!(
            "the revision {} is not 40 lower-case hexadecimal characters; provgate did not ask Gitea",
            quote(sha)
        ));
    }
    Ok(())
}

/// `host[:port]` of a normalised base URL.
fn host_of(base: &str) -> &str {
    base.split_once("://").map_or(base, |(_, host)| host)
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn normalise_base(base_url: &str) -> anyhow::Result<String> {
    // The URL itself is not echoed: it might carry a password.
    let url = Url::parse(base_url)
        .map_err(|e| anyhow::anyhow!("the Gitea base URL is not a URL ({e}); expected http(s)://host[:port]"))?;
    let problem = if !matches!(url.scheme(), "http" | "https") {
        Some("its scheme is not http or https")
    } else if url.host_str().is_none() {
        Some("it has no host")
    } else if !url.username().is_empty() || url.password().is_some() {
        Some("it carries a user name or password (use GITEA_TOKEN)")
    } else if url.path() != "/" {
        Some("it has a path")
    } else if url.query().is_some() || url.fragment().is_some() {
        Some("it has a query or fragment")
    } else {
        None
    };
    match problem {
        Some(problem) => anyhow::bail!("the Gitea base URL must be http(s)://host[:port], but {problem}"),
        None => Ok(url.origin().ascii_serialization()),
    }
}

/// Library error text, which may carry what the server sent: scrubbed of
/// every secret ([`crate::secrets`]) — a hostile server can echo the
/// `Authorization` header — and made one line.
fn outside(text: String) -> String {
    crate::text::one_line(&text)
}

/// Gitea as an [`Answers`]: at most `concurrency` look-ups in flight at
/// once; the rest wait for a permit as futures, holding no thread.
pub struct Gitea {
    client: GiteaClient,
    permits: Semaphore,
}

impl Gitea {
    pub fn new(client: GiteaClient, concurrency: usize) -> Gitea {
        Gitea {
            client,
            permits: Semaphore::new(concurrency.clamp(1, Semaphore::MAX_PERMITS)),
        }
    }

    pub fn client(&self) -> &GiteaClient {
        &self.client
    }
}

impl fmt::Debug for Gitea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gitea").field("client", &self.client).finish()
    }
}

impl Answers for Gitea {
    fn at_hand(&self, _: &Question) -> Option<Answer> {
        None
    }

    fn answer<'a>(&'a self, question: &'a Question) -> Answering<'a> {
        Box::pin(async move {
            let Ok(_permit) = self.permits.acquire().await else {
                return Answer::unavailable("provgate is shutting down its Gitea client");
            };
            self.client.commit(&question.owner, &question.repo, &question.sha).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn token_prints_as_stars() {
        let token = Token::new("s3cr3t-value".into());
        assert_eq!(format!("{token} {token:?}"), "*** ***");
        let client = GiteaClient::new("http://127.0.0.1:1", Some(token), DEFAULT_TIMEOUT).expect("client");
        assert!(!format!("{client:?}").contains("s3cr3t"));
    }

    #[test]
    fn plain_names_and_full_shas_only() {
        assert!(check_request("org", "my-repo_1.x", SHA).is_ok());
        for (owner, repo) in [
            ("", "r"),
            (".", "r"),
            ("o", ".."),
            ("o/x", "r"),
            ("o", "r?x"),
            ("o", "r%2F"),
            ("ö", "r"),
        ] {
            assert!(check_request(owner, repo, SHA).is_err(), "{owner}/{repo}");
        }
        for sha in [
            &SHA[..39],
            &SHA.to_uppercase(),
            &format!("{SHA}0"),
            &format!(" {}", &SHA[1..]),
            "main",
        ] {
            assert!(check_request("o", "r", sha).is_err(), "{sha}");
        }
    }

    #[test]
    fn base_url_must_be_scheme_host_and_port() {
        assert_eq!(
            normalise_base("https://git.example.org").ok().as_deref(),
            Some("https://git.example.org")
        );
        assert_eq!(
            normalise_base("http://127.0.0.1:3000/").ok().as_deref(),
            Some("http://127.0.0.1:3000")
        );
        for bad in [
            "git.example.org",
            "ftp://git.example.org",
            "https://user:pw@git.example.org",
            "https://git.example.org/gitea",
            "https://git.example.org?x=1",
            "https://git.example.org#x",
        ] {
            let err = normalise_base(bad).expect_err(bad).to_string();
            assert!(!err.contains("pw@"), "{err}");
        }
    }

    #[test]
    fn token_with_a_newline_is_refused_without_echoing_it() {
        let err = GiteaClient::new(
            "https://git.example.org",
            Some(Token::new("abc\ndef".into())),
            DEFAULT_TIMEOUT,
        )
        .expect_err("newline in token");
        assert!(!format!("{err:#}").contains("abc"));
    }

    #[test]
    fn echoed_token_is_scrubbed_from_outside_text() {
        let _token = Token::new("s3cr3t-value-gitea".into());
        assert_eq!(
            outside("server said token s3cr3t-value-gitea\n".into()),
            "server said token ***\\n"
        );
        let asked = Asked {
            base: "b",
            owner: "o",
            repo: "r",
            sha: SHA,
            token_set: true,
        };
        let long = format!("{}token s3cr3t-value-gitea", "f".repeat(60));
        assert!(!asked.shown(&long).contains("s3cr3t"), "{}", asked.shown(&long));
    }
}
