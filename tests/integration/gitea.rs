use std::time::Duration;

use provgate::lookup::gitea::{DEFAULT_TIMEOUT, Gitea, GiteaClient, Token};
use provgate::lookup::{Answer, Answers, Question};
use provgate_testkit::gitea::{EVIL_HOST, GiteaStandIn};
use serde_json::json;

const SHA: &str = "3f786850e387550fdab836ed7e6dc881de23001b";
const OTHER_SHA: &str = "89e6c98d92887913cadf06b2adb97f26cde4849b";
const QUERY: &str = "stat=false&verification=false&files=false";
/// Short, so the time-out tests are quick; long enough for a loaded machine.
const SHORT: Duration = Duration::from_millis(800);
/// How long [`ask`] waits before failing a test whose client never gives up.
const GENEROUS: Duration = Duration::from_secs(10);

fn client(gitea: &GiteaStandIn, token: Option<&str>, timeout: Duration) -> GiteaClient {
    GiteaClient::new(&gitea.base_url(), token.map(|t| Token::new(t.to_owned())), timeout).expect("client")
}

/// Asks, and fails the test (instead of hanging it) if the client does not
/// give up by itself.
async fn ask(client: &GiteaClient, owner: &str, repo: &str, sha: &str) -> Answer {
    tokio::time::timeout(GENEROUS, client.commit(owner, repo, sha))
        .await
        .unwrap_or_else(|_| panic!("no answer about {owner}/{repo} within {GENEROUS:?}"))
}

#[track_caller]
fn unavailable(answer: Answer, words: &[&str]) -> String {
    match answer {
        Answer::Unavailable { reason } => {
            for word in words {
                assert!(reason.contains(word), "{word:?} missing from {reason:?}");
            }
            reason
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[track_caller]
fn not_found(answer: Answer, words: &[&str]) -> String {
    match answer {
        Answer::NotFound { reason } => {
            for word in words {
                assert!(reason.contains(word), "{word:?} missing from {reason:?}");
            }
            reason
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn found_only_when_gitea_returns_the_same_sha() {
    let gitea = GiteaStandIn::start();
    gitea.add_commit("acme", "app", SHA);
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    assert_eq!(ask(&client, "acme", "app", SHA).await, Answer::Found);
    // The very same commit body, but for another SHA than asked.
    let reason = unavailable(
        ask(&client, "acme", "liar", SHA).await,
        &["another commit", "acme/liar"],
    );
    assert!(reason.contains(&SHA.chars().rev().collect::<String>()), "{reason}");
}

#[tokio::test]
async fn asks_once_for_the_cheap_commit_view_without_credentials() {
    let gitea = GiteaStandIn::start();
    gitea.add_commit("acme", "app", SHA);
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    assert_eq!(ask(&client, "acme", "app", SHA).await, Answer::Found);
    let requests = gitea.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].path, format!("/api/v1/repos/acme/app/git/commits/{SHA}"));
    assert_eq!(requests[0].query.as_deref(), Some(QUERY));
    assert_eq!(requests[0].authorization, None);
}

#[tokio::test]
async fn missing_commit_without_token_says_no_token_was_set() {
    let gitea = GiteaStandIn::start();
    gitea.add_commit("acme", "app", SHA);
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    not_found(
        ask(&client, "acme", "app", OTHER_SHA).await,
        &["404", OTHER_SHA, "acme/app", "no GITEA_TOKEN is set"],
    );
}

#[tokio::test]
async fn missing_commit_with_token_does_not_blame_a_missing_token() {
    let gitea = GiteaStandIn::start();
    gitea.add_commit("acme", "app", SHA);
    gitea.add_token("valid-token");
    let client = client(&gitea, Some("valid-token"), DEFAULT_TIMEOUT);
    let reason = not_found(ask(&client, "acme", "app", OTHER_SHA).await, &["404", OTHER_SHA]);
    assert!(!reason.contains("no GITEA_TOKEN"), "{reason}");
}

#[tokio::test]
async fn unknown_repository_is_not_found() {
    let gitea = GiteaStandIn::start();
    gitea.add_commit("acme", "app", SHA);
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    not_found(
        ask(&client, "acme", "nothing-here", SHA).await,
        &["404", "acme/nothing-here"],
    );
}

#[tokio::test]
async fn private_repo_found_with_token_sends_token_header() {
    let gitea = GiteaStandIn::start();
    gitea.add_private_commit("acme", "secret", SHA, "tok-private-1");
    let client = client(&gitea, Some("tok-private-1"), DEFAULT_TIMEOUT);
    assert_eq!(ask(&client, "acme", "secret", SHA).await, Answer::Found);
    let requests = gitea.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].authorization.as_deref(), Some("token tok-private-1"));
}

#[tokio::test]
async fn private_repo_without_token_is_not_found_and_says_no_token_was_set() {
    let gitea = GiteaStandIn::start();
    gitea.add_private_commit("acme", "secret", SHA, "tok-private-1");
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    not_found(
        ask(&client, "acme", "secret", SHA).await,
        &["404", "no GITEA_TOKEN is set", "private"],
    );
}

#[tokio::test]
async fn private_repo_with_a_token_that_cannot_see_it_is_not_found() {
    let gitea = GiteaStandIn::start();
    gitea.add_private_commit("acme", "secret", SHA, "tok-private-1");
    gitea.add_token("tok-other");
    let client = client(&gitea, Some("tok-other"), DEFAULT_TIMEOUT);
    let reason = not_found(ask(&client, "acme", "secret", SHA).await, &["404", "private"]);
    assert!(!reason.contains("no GITEA_TOKEN"), "{reason}");
}

#[tokio::test]
async fn token_gitea_does_not_know_is_unavailable_with_401() {
    let gitea = GiteaStandIn::start();
    gitea.add_commit("acme", "app", SHA);
    let client = client(&gitea, Some("revoked-token"), DEFAULT_TIMEOUT);
    unavailable(
        ask(&client, "acme", "app", SHA).await,
        &["401", "GITEA_TOKEN", "invalid"],
    );
}

#[tokio::test]
async fn gitea_401_without_token_says_sign_in_is_required() {
    let gitea = GiteaStandIn::start();
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    unavailable(
        ask(&client, "acme", "e401", SHA).await,
        &["401", "sign-in", "no GITEA_TOKEN is set"],
    );
}

#[tokio::test]
async fn forbidden_403_names_the_missing_scope() {
    let gitea = GiteaStandIn::start();
    gitea.add_token("weak-token");
    let client = client(&gitea, Some("weak-token"), DEFAULT_TIMEOUT);
    unavailable(
        ask(&client, "acme", "e403", SHA).await,
        &["403", "read:repository", "acme/e403"],
    );
}

#[tokio::test]
async fn rate_limit_429_is_unavailable_and_mentions_retry_after() {
    let gitea = GiteaStandIn::start();
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    unavailable(
        ask(&client, "acme", "e429", SHA).await,
        &["429", "Retry-After: 60", &gitea.base_url()],
    );
}

#[tokio::test]
async fn server_error_500_is_unavailable() {
    let gitea = GiteaStandIn::start();
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    unavailable(ask(&client, "acme", "e500", SHA).await, &["500", "try again later"]);
}

#[tokio::test]
async fn bad_gateway_502_is_unavailable() {
    let gitea = GiteaStandIn::start();
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    unavailable(ask(&client, "acme", "e502", SHA).await, &["502", "try again later"]);
}

#[tokio::test]
async fn a_422_for_a_full_sha_is_unavailable_not_a_claim_that_the_commit_is_missing() {
    // Gitea gives 422 only for a ref it cannot parse; provgate sends only
    // full SHAs, so a 422 says something other than "no such commit".
    let gitea = GiteaStandIn::start();
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    unavailable(ask(&client, "acme", "e422", SHA).await, &["422", SHA, "cannot parse"]);
    assert_eq!(gitea.hits("e422"), 1, "a 422 is never retried");
}

#[tokio::test]
async fn not_json_body_is_unavailable() {
    let gitea = GiteaStandIn::start();
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    unavailable(ask(&client, "acme", "notjson", SHA).await, &["not JSON", "text/html"]);
}

// Redirects: only Gitea's same-host rename redirect means something, and
// even that one is reported, never followed.

/// The `Location` real Gitea sends for `owner/repo` renamed, with the query
/// provgate asks with.
fn commit_location(owner: &str, repo: &str, sha: &str) -> String {
    format!("/api/v1/repos/{owner}/{repo}/git/commits/{sha}?{QUERY}")
}

#[tokio::test]
async fn redirect_to_another_host_is_unavailable_and_not_followed() {
    let gitea = GiteaStandIn::start();
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    unavailable(
        ask(&client, "acme", "redirect", SHA).await,
        &["302", "redirect", EVIL_HOST, "does not follow"],
    );
    assert_eq!(gitea.requests().len(), 1, "{:?}", gitea.requests());
}

#[tokio::test]
async fn gitea_rename_redirect_is_moved_and_not_followed() {
    let gitea = GiteaStandIn::start();
    gitea.rename("acme", "app", "acme", "app-renamed");
    gitea.add_commit("acme", "app-renamed", SHA);
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    assert_eq!(
        ask(&client, "acme", "app", SHA).await,
        Answer::moved("acme", "app-renamed")
    );
    let requests = gitea.requests();
    assert_eq!(requests.len(), 1, "the client followed the redirect: {requests:?}");
    assert_eq!(requests[0].path, format!("/api/v1/repos/acme/app/git/commits/{SHA}"));
}

#[tokio::test]
async fn gitea_transfer_to_another_owner_is_moved_naming_the_new_owner() {
    let gitea = GiteaStandIn::start();
    gitea.rename("acme", "app", "other-org", "app");
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    // The commit need not exist: Gitea redirects before it looks.
    assert_eq!(
        ask(&client, "acme", "app", SHA).await,
        Answer::moved("other-org", "app")
    );
    // Gitea finds the old name in any case.
    assert_eq!(
        ask(&client, "ACME", "App", SHA).await,
        Answer::moved("other-org", "app")
    );
    assert_eq!(gitea.requests().len(), 2, "{:?}", gitea.requests());
}

#[tokio::test]
async fn rename_redirect_is_moved_for_every_status_gitea_has_used() {
    // 301 since Gitea 1.23, 307 before, 302 in the oldest releases; 308 is
    // 301's method-keeping twin.
    for status in [301, 302, 307, 308] {
        let gitea = GiteaStandIn::start();
        gitea.redirect_raw("acme", "app", status, &commit_location("acme", "app-renamed", SHA));
        let client = client(&gitea, None, DEFAULT_TIMEOUT);
        assert_eq!(
            ask(&client, "acme", "app", SHA).await,
            Answer::moved("acme", "app-renamed"),
            "HTTP {status}"
        );
        assert_eq!(gitea.requests().len(), 1, "HTTP {status}: {:?}", gitea.requests());
    }
}

#[tokio::test]
async fn rename_redirect_with_an_absolute_same_origin_location_is_moved() {
    let gitea = GiteaStandIn::start();
    let location = format!("{}{}", gitea.base_url(), commit_location("acme", "app2", SHA));
    gitea.redirect_raw("acme", "app", 307, &location);
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    assert_eq!(ask(&client, "acme", "app", SHA).await, Answer::moved("acme", "app2"));
}

/// Every status a rename redirect may come with.
const RENAME_STATUSES: [u16; 4] = [301, 302, 307, 308];

/// Asks about acme/app, which answers each status with `location`; every
/// answer must be Unavailable, not followed, with `words` in its reason.
async fn refused_redirects(gitea: &GiteaStandIn, locations: &[String], words: &[&str]) {
    let client = client(gitea, None, DEFAULT_TIMEOUT);
    let before = gitea.requests().len();
    for status in RENAME_STATUSES {
        for location in locations {
            gitea.redirect_raw("acme", "app", status, location);
            let answer = ask(&client, "acme", "app", SHA).await;
            let Answer::Unavailable { reason } = &answer else {
                panic!("HTTP {status} to {location:?}: {answer:?}");
            };
            for word in [&status.to_string(), "redirect", "does not follow"].iter().chain(words) {
                assert!(
                    reason.contains(word),
                    "HTTP {status} to {location:?}: {word:?} missing from {reason:?}"
                );
            }
        }
    }
    let asked = gitea.requests().len() - before;
    assert_eq!(
        asked,
        RENAME_STATUSES.len() * locations.len(),
        "a redirect was followed"
    );
}

#[tokio::test]
async fn redirect_to_another_origin_is_unavailable_even_in_the_shape_of_a_rename() {
    let gitea = GiteaStandIn::start();
    let port = gitea.base_url().rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let renamed = commit_location("acme", "app2", SHA);
    let locations = [
        format!("https://127.0.0.1:{port}{renamed}"),
        format!("http://127.0.0.1:{}{renamed}", port.wrapping_add(1)),
        format!("http://localhost:{port}{renamed}"),
    ];
    refused_redirects(&gitea, &locations, &[]).await;
    let evil = [
        format!("http://{EVIL_HOST}{renamed}"),
        format!("//{EVIL_HOST}{renamed}"),
    ];
    refused_redirects(&gitea, &evil, &[EVIL_HOST]).await;
}

#[tokio::test]
async fn redirect_to_the_same_host_but_another_api_path_is_unavailable() {
    let gitea = GiteaStandIn::start();
    let locations = [
        format!("/api/v1/repos/acme/app2/git/trees/{SHA}"),
        format!("/api/v1/repos/acme/app2/commits/{SHA}"),
        format!("/api/v1/repos/acme/app2/git/commits/{SHA}/extra"),
        "/api/v1/repos/acme/app2/git/commits/".to_string(),
        format!("/api/v1/repos/acme/git/commits/{SHA}"),
        format!("/api/v2/repos/acme/app2/git/commits/{SHA}"),
        format!("/gitea/api/v1/repos/acme/app2/git/commits/{SHA}"),
        format!("/acme/app2/commit/{SHA}"),
        "/user/login".to_string(),
        "/".to_string(),
    ];
    refused_redirects(&gitea, &locations, &["127.0.0.1"]).await;
}

#[tokio::test]
async fn redirect_back_to_the_repository_asked_about_is_unavailable() {
    let gitea = GiteaStandIn::start();
    let locations = [commit_location("acme", "app", SHA), commit_location("ACME", "APP", SHA)];
    refused_redirects(&gitea, &locations, &[]).await;
}

#[tokio::test]
async fn redirect_naming_another_sha_is_unavailable() {
    let gitea = GiteaStandIn::start();
    let locations: Vec<String> = [OTHER_SHA, &SHA[..12], &SHA.to_uppercase(), "main"]
        .iter()
        .map(|sha| commit_location("acme", "app2", sha))
        .collect();
    refused_redirects(&gitea, &locations, &[]).await;
}

#[tokio::test]
async fn redirect_naming_an_owner_or_repository_that_is_not_plain_is_unavailable() {
    let gitea = GiteaStandIn::start();
    let long = "a".repeat(256);
    let locations: Vec<String> = [
        ("ev%2Fil", "app"),
        ("ev%20il", "app"),
        ("%2e%2e", "app"),
        ("ev~il", "app"),
        ("ev@il", "app"),
        ("%C3%A9vil", "app"),
        (long.as_str(), "app"),
        ("acme", "app%3Fx=1"),
        ("acme", "app;x"),
        ("", "app"),
    ]
    .iter()
    .map(|(owner, repo)| commit_location(owner, repo, SHA))
    .collect();
    refused_redirects(&gitea, &locations, &[]).await;
}

#[tokio::test]
async fn redirect_with_an_empty_location_is_unavailable() {
    // An empty Location resolves to the request itself: a loop, not a rename.
    let gitea = GiteaStandIn::start();
    gitea.redirect_raw("acme", "app", 302, "");
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    unavailable(ask(&client, "acme", "app", SHA).await, &["302", "does not follow"]);
}

#[tokio::test]
async fn twenty_megabyte_body_is_capped() {
    let gitea = GiteaStandIn::start();
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    // No Content-Length: only counting the bytes as they arrive can stop it.
    unavailable(ask(&client, "acme", "huge", SHA).await, &["sent more than", "64 KiB"]);
}

#[tokio::test]
async fn body_declared_larger_than_the_cap_is_refused() {
    let gitea = GiteaStandIn::start();
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    unavailable(ask(&client, "acme", "hugelen", SHA).await, &["declared", "64 KiB"]);
}

#[tokio::test]
async fn hanging_gitea_is_unavailable_after_the_total_timeout() {
    let gitea = GiteaStandIn::start();
    let client = client(&gitea, None, SHORT);
    // `ask` fails the test if the client does not give up by itself.
    unavailable(
        ask(&client, "acme", "hang", SHA).await,
        &["did not finish answering", "within", "acme/hang"],
    );
}

#[tokio::test]
async fn slow_drip_body_hits_the_total_timeout() {
    let gitea = GiteaStandIn::start();
    let client = client(&gitea, None, SHORT);
    // The headers arrive at once and a byte every second, so no single read
    // waits long: only a deadline on the whole exchange ends it (and `ask`
    // fails the test if nothing does).
    unavailable(
        ask(&client, "acme", "drip", SHA).await,
        &["did not finish answering", "within"],
    );
    assert_eq!(gitea.hits("/drip/"), 1);
}

#[tokio::test]
async fn slow_answer_within_the_timeout_is_found() {
    let gitea = GiteaStandIn::start();
    gitea.add_commit("acme", "app", SHA);
    gitea.set_delay(Duration::from_millis(300));
    let client = client(&gitea, None, Duration::from_secs(5));
    assert_eq!(ask(&client, "acme", "app", SHA).await, Answer::Found);
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let client = GiteaClient::new(&base, None, DEFAULT_TIMEOUT).expect("client");
    unavailable(ask(&client, "acme", "app", SHA).await, &["could not connect", &base]);
}

#[tokio::test]
async fn malformed_sha_is_refused_without_asking_gitea() {
    let gitea = GiteaStandIn::start();
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    for sha in [
        "main",
        &SHA[..12],
        &SHA.to_uppercase(),
        &format!("{SHA}00"),
        "../../../../etc/passwd",
    ] {
        unavailable(
            ask(&client, "acme", "app", sha).await,
            &["40 lower-case hexadecimal", "did not ask Gitea"],
        );
    }
    assert_eq!(gitea.requests(), vec![]);
}

#[tokio::test]
async fn malformed_owner_or_repo_is_refused_without_asking_gitea() {
    let gitea = GiteaStandIn::start();
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    for (owner, repo) in [
        ("..", "app"),
        ("acme", "."),
        ("acme", "a/b"),
        ("acme", "app?x=1"),
        ("", "app"),
        ("acme", "a%2Fb"),
    ] {
        unavailable(
            ask(&client, owner, repo, SHA).await,
            &["not a plain Gitea name", "did not ask Gitea"],
        );
    }
    assert_eq!(gitea.requests(), vec![]);
}

#[test]
fn base_url_with_a_path_or_credentials_is_refused() {
    for base in [
        "http://127.0.0.1:3000/gitea",
        "https://me:pw@git.example.org",
        "git.example.org",
        "file:///x",
    ] {
        let err = GiteaClient::new(base, None, DEFAULT_TIMEOUT).expect_err(base);
        assert!(err.to_string().contains("http(s)://host[:port]"), "{err}");
        assert!(!err.to_string().contains("pw"), "{err}");
    }
}

// Gitea as the pipeline asks it

#[tokio::test]
async fn gitea_answers_nothing_at_hand_and_answers_like_the_client_when_awaited() {
    let gitea = GiteaStandIn::start();
    gitea.add_commit("acme", "app", SHA);
    let answers = Gitea::new(client(&gitea, None, DEFAULT_TIMEOUT), 4);
    let found = Question::new("acme", "app", SHA);
    assert_eq!(answers.at_hand(&found), None);
    assert!(gitea.requests().is_empty(), "at_hand went to the network");
    assert_eq!(answers.answer(&found).await, Answer::Found);
    not_found(
        answers.answer(&Question::new("acme", "app", OTHER_SHA)).await,
        &["404", "no GITEA_TOKEN is set"],
    );
    unavailable(answers.answer(&Question::new("acme", "e502", SHA)).await, &["502"]);
    assert_eq!(gitea.hits("/acme/app/"), 2);
}

#[tokio::test]
async fn gitea_keeps_at_most_its_concurrency_of_look_ups_in_flight() {
    let gitea = GiteaStandIn::start();
    gitea.add_commit("acme", "app", SHA);
    gitea.set_delay(Duration::from_millis(100));
    let answers = Gitea::new(client(&gitea, None, Duration::from_secs(5)), 2);
    let questions: Vec<Question> = (0..6).map(|_| Question::new("acme", "app", SHA)).collect();
    let all = futures_util::future::join_all(questions.iter().map(|q| answers.answer(q)));
    let all = tokio::time::timeout(GENEROUS, all).await.expect("every look-up ends");
    assert_eq!(all, vec![Answer::Found; 6]);
    assert_eq!(gitea.requests().len(), 6);
    assert!(
        gitea.max_in_flight() <= 2,
        "{} look-ups were in flight at once",
        gitea.max_in_flight()
    );
}

#[tokio::test]
async fn token_never_appears_in_any_answer() {
    const SECRET: &str = "tok-7c1f0e9a4b2d-DO-NOT-LEAK";
    const TIMEOUT: Duration = Duration::from_millis(500);
    let gitea = GiteaStandIn::start();
    gitea.add_commit("acme", "app", SHA);
    gitea.add_private_commit("acme", "secret", SHA, SECRET);
    let refused_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let known = client(&gitea, Some(SECRET), TIMEOUT);
    // Gitea does not know this one: every ordinary answer is a 401.
    let unknown_secret = format!("{SECRET}-unknown");
    let unknown = client(&gitea, Some(&unknown_secret), TIMEOUT);
    let refused = GiteaClient::new(
        &format!("http://127.0.0.1:{refused_port}"),
        Some(Token::new(SECRET.into())),
        TIMEOUT,
    )
    .expect("client");

    gitea.rename("acme", "renamed", "acme", "app");
    let quick = [
        "app", "secret", "missing", "redirect", "renamed", "huge", "hugelen", "liar", "notjson", "echo", "e401",
        "e403", "e422", "e429", "e500", "e502",
    ];
    let mut answers = Vec::new();
    for client in [&known, &unknown] {
        assert!(!format!("{client:?}").contains("tok-"));
        for repo in quick {
            answers.push(ask(client, "acme", repo, SHA).await);
            answers.push(ask(client, "acme", repo, OTHER_SHA).await);
        }
        for repo in ["hang", "drip"] {
            answers.push(ask(client, "acme", repo, SHA).await);
        }
        answers.push(ask(client, "acme", "app", "not-a-sha").await);
        answers.push(ask(client, "../x", "app", SHA).await);
    }
    // The refused client all at once: each of its look-ups is retried until
    // the time-out, and one after the other they would take most of a minute.
    assert!(!format!("{refused:?}").contains("tok-"));
    let mut asked = Vec::new();
    for repo in quick {
        asked.push(ask(&refused, "acme", repo, SHA));
    }
    asked.push(ask(&refused, "acme", "app", "not-a-sha"));
    answers.extend(futures_util::future::join_all(asked).await);
    // The secret was used, refused, and echoed back by the hostile `echo`.
    assert!(answers.contains(&Answer::Found), "{answers:?}");
    assert!(
        answers
            .iter()
            .any(|a| matches!(a, Answer::Unavailable { reason: r } if r.contains("401"))),
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .any(|a| matches!(a, Answer::Unavailable { reason: r } if r.contains("token ***"))),
        "{answers:?}"
    );
    for answer in &answers {
        let text = format!("{answer:?}");
        assert!(!text.contains("7c1f0e9a4b2d"), "token leaked: {text}");
    }
    // It did reach Gitea, in the header only.
    let sent = gitea.requests();
    assert!(
        sent.iter()
            .any(|r| r.authorization.as_deref() == Some(&format!("token {SECRET}")))
    );
    assert!(
        sent.iter()
            .all(|r| !r.path.contains("tok-") && !r.query.clone().unwrap_or_default().contains("tok-"))
    );
    assert_eq!(
        format!("{} {:?}", Token::new(SECRET.into()), Token::new(SECRET.into())),
        "*** ***"
    );
}

// The stand-in itself: the statuses and bodies of Gitea's commit endpoint
// (see testkit/src/gitea.rs for where in Gitea's source each comes from),
// asked directly, so that requests provgate never sends are covered too.

/// One GET, redirects not followed: status, `Location`, body.
async fn raw_get(gitea: &GiteaStandIn, path: &str) -> (u16, Option<String>, String) {
    provgate::http::install_provider();
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = tokio::time::timeout(GENEROUS, http.get(format!("{}{path}", gitea.base_url())).send())
        .await
        .expect("the stand-in answers")
        .expect("the request is sent");
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (status, location, response.text().await.expect("a body"))
}

fn commit_path(owner: &str, repo: &str, sha: &str) -> String {
    format!("/api/v1/repos/{owner}/{repo}/git/commits/{sha}")
}

/// The body of Gitea's `ctx.NotFound(...)`, exactly: sorted keys, `errors`
/// null when no error was passed.
fn not_found_body(gitea: &GiteaStandIn, errors: &str, message: &str) -> String {
    format!(
        r#"{{"errors":{errors},"message":"{message}","url":"{}/api/swagger"}}"#,
        gitea.base_url()
    )
}

#[tokio::test]
async fn stand_in_answers_a_missing_full_sha_404_naming_it_not_422() {
    let gitea = GiteaStandIn::start();
    gitea.add_commit("acme", "app", SHA);
    let (status, _, body) = raw_get(&gitea, &commit_path("acme", "app", OTHER_SHA)).await;
    assert_eq!((status, body), (404, not_found_body(&gitea, "null", OTHER_SHA)));
}

#[tokio::test]
async fn stand_in_resolves_short_and_upper_case_shas_like_git() {
    let gitea = GiteaStandIn::start();
    gitea.add_commit("acme", "app", SHA);
    // Shares its first four digits with SHA, so four digits are ambiguous.
    let twin = format!("{}{}", &SHA[..4], &OTHER_SHA[4..]);
    gitea.add_commit("acme", "app", &twin);
    for found in [&SHA[..7], &SHA[..12], &SHA.to_uppercase(), SHA] {
        let (status, _, body) = raw_get(&gitea, &commit_path("acme", "app", found)).await;
        assert_eq!(status, 200, "{found}: {body}");
        let commit: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(commit["sha"], SHA, "{found}: the full SHA is named");
    }
    // Matching nothing, matching two, too short to be an abbreviation, or
    // not hex: `git rev-parse` finds nothing, and Gitea says 404.
    for missing in ["0000000", &SHA[..4], &SHA[..3], "main", "not-a-sha", "g3f786850e"] {
        let (status, _, body) = raw_get(&gitea, &commit_path("acme", "app", missing)).await;
        assert_eq!(
            (status, body),
            (404, not_found_body(&gitea, "null", missing)),
            "{missing}"
        );
    }
}

#[tokio::test]
async fn stand_in_answers_422_only_for_a_ref_git_could_never_name() {
    let gitea = GiteaStandIn::start();
    gitea.add_commit("acme", "app", SHA);
    // As sent (percent-encoded where a URL needs it), and as Gitea reads it.
    for (sent, read) in [
        ("a..b", "a..b"),
        ("HEAD~1", "HEAD~1"),
        ("HEAD%5E", "HEAD^"),
        ("a:b", "a:b"),
        ("a%20b", "a b"),
        ("x.lock", "x.lock"),
        (".hidden", ".hidden"),
        ("end.", "end."),
        ("@", "@"),
        ("a@%7B1%7D", "a@{1}"),
        ("a%2Ab", "a*b"),
    ] {
        let (status, _, body) = raw_get(&gitea, &commit_path("acme", "app", sent)).await;
        assert_eq!(status, 422, "{sent}: {body}");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        // `ctx.Error` writes the `APIError` struct: no `errors` at all.
        assert_eq!(
            error,
            json!({"message": format!("no valid ref or sha: {read}"), "url": format!("{}/api/swagger", gitea.base_url())}),
            "{sent}"
        );
    }
    // The repository is looked up first: a malformed ref of a repository
    // that is not there is a 404.
    let (status, _, _) = raw_get(&gitea, &commit_path("acme", "nothing-here", "a..b")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn stand_in_answers_an_unknown_owner_or_repository_with_gitea_s_not_found_bodies() {
    let gitea = GiteaStandIn::start();
    gitea.add_commit("acme", "app", SHA);
    gitea.add_private_commit("acme", "secret", SHA, "tok-private-1");
    for repo in ["nothing-here", "secret"] {
        let (status, _, body) = raw_get(&gitea, &commit_path("acme", repo, SHA)).await;
        assert_eq!(
            (status, body),
            (404, not_found_body(&gitea, "null", "The target couldn't be found.")),
            "{repo}"
        );
    }
    let (status, _, body) = raw_get(&gitea, &commit_path("Nobody", "app", SHA)).await;
    assert_eq!(
        (status, body),
        (
            404,
            not_found_body(
                &gitea,
                r#"["user redirect does not exist [name: nobody]"]"#,
                "GetUserByName"
            )
        )
    );
}

#[tokio::test]
async fn stand_in_redirects_a_renamed_repository_on_the_same_host_keeping_the_query() {
    let gitea = GiteaStandIn::start();
    gitea.rename("acme", "app", "acme", "app-renamed");
    gitea.rename("acme", "tool", "other-org", "tool");
    for (repo, to) in [
        ("app", "acme/app-renamed"),
        ("APP", "acme/app-renamed"),
        ("tool", "other-org/tool"),
    ] {
        let path = format!("{}?{QUERY}", commit_path("acme", repo, SHA));
        let (status, location, _) = raw_get(&gitea, &path).await;
        assert_eq!(status, 301, "{repo}");
        assert_eq!(
            location.as_deref(),
            Some(format!("/api/v1/repos/{to}/git/commits/{SHA}?{QUERY}").as_str()),
            "{repo}: a relative, same-host Location with the query kept"
        );
    }
    let (_, location, _) = raw_get(&gitea, &commit_path("acme", "app", SHA)).await;
    assert_eq!(
        location.as_deref(),
        Some(commit_path("acme", "app-renamed", SHA).as_str()),
        "no query, no `?`"
    );
}

#[tokio::test]
async fn unknown_owner_is_not_found() {
    let gitea = GiteaStandIn::start();
    gitea.add_commit("acme", "app", SHA);
    let client = client(&gitea, None, DEFAULT_TIMEOUT);
    not_found(ask(&client, "nobody", "app", SHA).await, &["404", "nobody/app"]);
}
