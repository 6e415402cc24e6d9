//! Gitea look-ups are retried only where a retry is safe and may help — a
//! refused or reset connection, a 5xx, a 429 (its `Retry-After` honoured
//! when it fits) — inside the look-up's one total time-out, and never for
//! another 4xx (docs/reference.md §5). The server is a script of canned
//! answers, so the number of requests is exact.

use std::time::Duration;

use provgate::lookup::Answer;
use provgate::lookup::gitea::GiteaClient;
use provgate::retry::MAX_ATTEMPTS;
use provgate_testkit::canned::{Canned, http};
use provgate_testkit::{code, policy_for, provgate_env, stderr, stdout};

const SHA: &str = "3f786850e387550fdab836ed7e6dc881de23001b";

fn found_body() -> String {
    format!(r#"{{"sha": "{SHA}", "url": "x", "commit": {{"message": "m"}}}}"#)
}

fn ok() -> Vec<u8> {
    http("200 OK", &[("Content-Type", "application/json")], &found_body())
}

fn status(line: &str) -> Vec<u8> {
    http(
        line,
        &[("Content-Type", "application/json")],
        r#"{"message": "no", "url": "x"}"#,
    )
}

fn client(gitea: &Canned, timeout: Duration) -> GiteaClient {
    GiteaClient::new(&gitea.base, None, timeout).expect("client")
}

async fn ask(client: &GiteaClient) -> Answer {
    client.commit("molecule-ai", "app", SHA).await
}

#[track_caller]
fn reason(answer: &Answer, words: &[&str]) {
    match answer {
        Answer::Unavailable { reason } | Answer::NotFound { reason } => {
            for word in words {
                assert!(reason.contains(word), "{word:?} missing from {reason:?}");
            }
        }
        other => panic!("expected a reason, got {other:?}"),
    }
}

#[tokio::test]
async fn a_500_then_a_200_is_found_after_exactly_two_requests() {
    let gitea = Canned::script(vec![status("500 Internal Server Error"), ok()]);
    let client = client(&gitea, Duration::from_secs(5));
    assert_eq!(ask(&client).await, Answer::Found);
    assert_eq!(gitea.asked(), 2);
    assert_eq!(client.retries(), 1);
}

#[tokio::test]
async fn a_429_with_retry_after_1_is_found_on_the_second_request() {
    let gitea = Canned::script(vec![http("429 Too Many Requests", &[("Retry-After", "1")], ""), ok()]);
    let client = client(&gitea, Duration::from_secs(5));
    let started = std::time::Instant::now();
    assert_eq!(ask(&client).await, Answer::Found);
    assert_eq!(gitea.asked(), 2);
    // Retry-After is a floor, not a timing claim: the second request came
    // no sooner than the server asked.
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_connection_closed_without_an_answer_is_retried() {
    let gitea = Canned::script(vec![Vec::new(), ok()]);
    let client = client(&gitea, Duration::from_secs(5));
    assert_eq!(ask(&client).await, Answer::Found);
    assert_eq!(gitea.asked(), 2);
}

#[tokio::test]
async fn a_404_and_every_other_4xx_are_asked_exactly_once() {
    for line in [
        "404 Not Found",
        "422 Unprocessable Entity",
        "401 Unauthorized",
        "403 Forbidden",
        "400 Bad Request",
    ] {
        let gitea = Canned::start(status(line));
        let client = client(&gitea, Duration::from_secs(5));
        let answer = ask(&client).await;
        assert!(!matches!(answer, Answer::Found), "{line}: {answer:?}");
        assert_eq!(gitea.asked(), 1, "{line} was retried");
        assert_eq!(client.retries(), 0, "{line}");
    }
}

#[tokio::test]
async fn an_always_failing_gitea_is_unavailable_after_the_last_attempt() {
    let gitea = Canned::start(status("503 Service Unavailable"));
    let client = client(&gitea, Duration::from_secs(5));
    let answer = ask(&client).await;
    reason(
        &answer,
        &["HTTP 503", &format!("gave up after {MAX_ATTEMPTS} attempts")],
    );
    assert!(matches!(answer, Answer::Unavailable { .. }));
    assert_eq!(gitea.asked(), MAX_ATTEMPTS as usize);
}

#[tokio::test]
async fn a_retry_after_longer_than_the_time_left_is_not_waited_for() {
    let gitea = Canned::start(http("429 Too Many Requests", &[("Retry-After", "60")], ""));
    let client = client(&gitea, Duration::from_secs(3));
    let answer = ask(&client).await;
    reason(&answer, &["HTTP 429", "Retry-After", "does not fit"]);
    assert_eq!(gitea.asked(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried_until_the_attempts_run_out() {
    // Bind, learn the port, close: nothing listens there any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let client = GiteaClient::new(&format!("http://127.0.0.1:{port}"), None, Duration::from_secs(5)).expect("client");
    let answer = ask(&client).await;
    reason(
        &answer,
        &["could not connect", &format!("gave up after {MAX_ATTEMPTS} attempts")],
    );
    assert_eq!(client.retries(), u64::from(MAX_ATTEMPTS - 1));
}

#[test]
fn verify_is_verified_through_one_gitea_500_and_says_so_at_v() {
    let gitea = Canned::script(vec![status("502 Bad Gateway"), ok()]);
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = policy_for(&gitea.base, dir.path());
    let mut inspect: serde_json::Value = serde_json::from_slice(
        &std::fs::read(provgate_testkit::repo_root().join("tests/data/inspect/skopeo.json")).expect("sample"),
    )
    .expect("json");
    inspect["Labels"]["org.opencontainers.image.source"] = serde_json::json!(format!("{}/molecule-ai/app", gitea.base));
    inspect["Labels"]["org.opencontainers.image.revision"] = serde_json::json!(SHA);
    let file = dir.path().join("inspect.json");
    std::fs::write(&file, inspect.to_string()).expect("write");
    let o = provgate_env(
        &[
            "verify",
            "--inspect",
            file.to_str().expect("utf-8"),
            "--reference",
            &format!("git.moleculesai.app/molecule-ai/app:staging-{SHA}"),
            "--policy",
            &policy,
            "--format",
            "json",
            "-v",
        ],
        None,
        &[],
    );
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(code(&o), 0, "{out}\n{err}");
    let verdict: serde_json::Value = serde_json::from_str(&out).expect("verdict JSON");
    assert_eq!(verdict["status"], "verified", "{out}");
    assert_eq!(gitea.asked(), 2);
    assert!(
        err.contains("retrying a Gitea look-up") && err.contains("HTTP 502"),
        "{err}"
    );
}

#[test]
fn a_registry_503_is_retried_and_its_404_after_that_is_not() {
    let body = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
    let registry = Canned::script(vec![
        http("503 Service Unavailable", &[], ""),
        http("404 Not Found", &[("Content-Type", "application/json")], body),
    ]);
    let o = registry.verify_from("molecule-ai/app:1");
    let err = stderr(&o);
    assert_eq!(code(&o), 4, "{err}");
    assert!(
        err.contains("manifest unknown") || err.contains("MANIFEST_UNKNOWN"),
        "{err}"
    );
    assert!(err.contains("retrying") && err.contains("HTTP 503"), "{err}");
    assert_eq!(registry.asked(), 2, "one retry after the 503, none after the 404");
}
