//! Values from outside cannot forge a line, a workflow command, a terminal
//! escape or a log entry on any stream, and no part of a secret they echo
//! is shown (issue #14: "workflow-command and log-line injection", "secrets
//! cut before they are scrubbed").
//!
//! The servers here are canned HTTP answers on a raw socket, so that the
//! hostile bytes reach provgate exactly as written; the index test pushes
//! its hostile platform name to the real registry, which accepts it.

use std::time::Duration;

use provgate::lookup::Answer;
use provgate::lookup::gitea::{GiteaClient, Token};
use provgate_testkit::canned::{Canned, http};
use provgate_testkit::registry::{Format, Registry};
use provgate_testkit::{code, good_labels, provgate_env, stderr, stdout};

const SHA: &str = "3f786850e387550fdab836ed7e6dc881de23001b";
/// The token the hostile servers echo; long and unlike anything else here.
const TOKEN: &str = "zq81-injection-token-Vb3n-7Xw0";
/// A workflow command, a forged log line, a terminal escape, a bell and a
/// bidi override: what a hostile value carries.
const HOSTILE: &str = "x\n::error title=provgate::FORGED\n2026-12-01T00:00:00Z  INFO request status=200 \
                       event=redeploy.verify.reachable\u{1b}[2K\u{7}\u{202e}";

/// No line of `text` starts (after blanks, as runners read it) with a
/// workflow command or carries a raw escape, bell or bidi override, and no
/// eight characters of [`TOKEN`] appear in it.
#[track_caller]
fn assert_inert(what: &str, text: &str) {
    for line in text.lines() {
        assert!(
            !line.trim_start().starts_with("::"),
            "{what}: a workflow command got through: {line:?}"
        );
        assert!(
            !line.trim_start().starts_with("2026-12-01T00:00:00Z"),
            "{what}: a forged log line: {line:?}"
        );
    }
    for bad in ['\u{1b}', '\u{7}', '\u{202e}', '\r'] {
        assert!(!text.contains(bad), "{what}: raw {bad:?} in {text:?}");
    }
    assert_no_token(what, text);
}

#[track_caller]
fn assert_no_token(what: &str, text: &str) {
    for window in TOKEN.as_bytes().windows(8) {
        let window = std::str::from_utf8(window).unwrap();
        assert!(
            !text.contains(window),
            "{what}: {window:?} of the token shown in {text:?}"
        );
    }
}

fn unavailable_reason(answer: Answer) -> String {
    match answer {
        Answer::Unavailable { reason } => reason,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

async fn ask(base: &str) -> Answer {
    let client = GiteaClient::new(base, Some(Token::new(TOKEN.into())), Duration::from_secs(5)).expect("client");
    client.commit("acme", "app", SHA).await
}

#[tokio::test]
async fn a_retry_after_echoing_the_token_past_the_old_200_character_cut_shows_no_part_of_it() {
    let echoed = format!("{} token {TOKEN} \u{202e}", "9".repeat(190));
    let gitea = Canned::start(http("429 Too Many Requests", &[("Retry-After", &echoed)], ""));
    let reason = unavailable_reason(ask(&gitea.base).await);
    assert!(gitea.heads().concat().contains(TOKEN), "the token was sent");
    assert!(
        reason.contains("rate-limiting") && reason.contains("Retry-After"),
        "{reason}"
    );
    assert_inert("the 429 reason", &reason);
}

#[tokio::test]
async fn a_sha_echoing_the_authorization_header_past_the_cut_shows_no_part_of_it() {
    // 50 characters, then the header as Gitea received it: the token
    // straddles the 80-character cut of a quoted value.
    let body = format!(r#"{{"sha": "{}Authorization: token {TOKEN}"}}"#, "f".repeat(50));
    let gitea = Canned::start(http("200 OK", &[("Content-Type", "application/json")], &body));
    let reason = unavailable_reason(ask(&gitea.base).await);
    assert!(reason.contains("another commit"), "{reason}");
    assert_inert("the wrong-sha reason", &reason);
}

#[tokio::test]
async fn a_content_type_with_bidi_controls_and_a_newline_is_quoted() {
    let gitea = Canned::start(http(
        "200 OK",
        &[("Content-Type", "text/html\u{202e}lmth")],
        "<html>not json</html>",
    ));
    let reason = unavailable_reason(ask(&gitea.base).await);
    assert!(reason.contains("not JSON") && reason.contains("\\u{202e}"), "{reason}");
    assert_inert("the not-JSON reason", &reason);
}

#[test]
fn an_inspect_reference_with_terminal_escapes_prints_one_escaped_header_line() {
    let mut inspect: serde_json::Value = serde_json::from_slice(
        &std::fs::read(provgate_testkit::repo_root().join("tests/data/inspect/skopeo.json")).unwrap(),
    )
    .unwrap();
    inspect["Name"] = serde_json::json!(format!("registry.example/app{HOSTILE}"));
    // An untrusted source: no Gitea is asked, so nothing leaves loopback.
    inspect["Labels"]["org.opencontainers.image.source"] = serde_json::json!("https://untrusted.invalid/acme/app");
    let file = std::env::temp_dir().join(format!("provgate-injection-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(&inspect).unwrap()).unwrap();
    let o = provgate_env(&["verify", "--inspect", file.to_str().unwrap()], None, &[]);
    let _ = std::fs::remove_file(&file);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(matches!(code(&o), 0 | 1), "exit {}: {err}", code(&o));
    let header = out.lines().next().expect("a header line");
    assert!(
        header.contains("registry.example/app") && header.contains("\\n::error"),
        "{header}"
    );
    assert_inert("verify's text output", &out);
    assert_inert("verify's stderr", &err);
}

#[test]
fn the_same_reference_in_workflow_command_format_forges_no_command() {
    let mut inspect: serde_json::Value = serde_json::from_slice(
        &std::fs::read(provgate_testkit::repo_root().join("tests/data/inspect/skopeo.json")).unwrap(),
    )
    .unwrap();
    inspect["Name"] = serde_json::json!(format!("registry.example/app{HOSTILE}"));
    // An untrusted source: no Gitea is asked, so nothing leaves loopback.
    inspect["Labels"]["org.opencontainers.image.source"] = serde_json::json!("https://untrusted.invalid/acme/app");
    let file = std::env::temp_dir().join(format!("provgate-injection-gh-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(&inspect).unwrap()).unwrap();
    let o = provgate_env(
        &[
            "verify",
            "--inspect",
            file.to_str().unwrap(),
            "--gitea-timeout",
            "2",
            "--format",
            "github",
        ],
        None,
        &[],
    );
    let _ = std::fs::remove_file(&file);
    let out = stdout(&o);
    // provgate's own commands only: each line is one of its annotations.
    for line in out.lines() {
        assert!(
            [
                "::error title=provgate ",
                "::warning title=provgate ",
                "::notice title=provgate ",
                "::group::provgate findings",
                "::endgroup::",
            ]
            .iter()
            .any(|own| line.starts_with(own)),
            "not provgate's own workflow command: {line:?}"
        );
    }
    assert!(!out.contains(['\u{1b}', '\u{7}', '\u{202e}']), "{out:?}");
}

#[test]
fn a_hostile_platform_name_in_a_real_index_reaches_stderr_quoted() {
    let reg = Registry::start();
    let hostile_platform = format!("linux/arm64{HOSTILE}");
    let labels = good_labels(SHA);
    reg.push_index(
        "acme/app",
        "multi",
        &[("linux/amd64", labels.clone()), (hostile_platform.as_str(), labels)],
        Format::Oci,
    );
    let reference = format!("{}/acme/app:multi", reg.host());
    let o = provgate_env(
        &[
            "verify",
            &reference,
            "--insecure-registry",
            &reg.host(),
            "--platform",
            "linux/s390x",
        ],
        None,
        &[],
    );
    let err = stderr(&o);
    assert_eq!(code(&o), 4, "{err}");
    assert!(err.contains("linux/s390x") && err.contains("linux/amd64"), "{err}");
    assert!(err.contains("\\n::error"), "the hostile name is shown, escaped: {err}");
    assert_inert("verify's stderr", &err);
}

#[test]
fn an_error_envelope_from_a_registry_cannot_forge_a_line_of_verify_or_of_the_serve_log() {
    let message = serde_json::to_string(&format!("denied{HOSTILE}")).unwrap();
    let body = format!(r#"{{"errors":[{{"code":"DENIED","message":{message}}}]}}"#);
    let registry = Canned::start(http("403 Forbidden", &[("Content-Type", "application/json")], &body));
    let o = registry.verify_from("acme/app:1");
    let err = stderr(&o);
    assert_eq!(code(&o), 4, "{err}");
    assert!(registry.asked() > 0, "the registry was asked");
    assert!(err.contains("provgate: error:"), "{err}");
    assert_inert("verify's stderr", &err);
}

#[test]
fn a_pin_runtime_with_a_workflow_command_is_quoted_in_the_audit_summary() {
    let pins = serde_json::json!([{
        "runtime": format!("py{HOSTILE}"),
        "digest": format!("sha256:{}", "a".repeat(64)),
        "source_sha": SHA,
        "image": "127.0.0.1:9/app",
    }]);
    let dir = std::env::temp_dir().join(format!("provgate-injection-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pins_file = dir.join("pins.json");
    std::fs::write(&pins_file, serde_json::to_vec(&pins).unwrap()).unwrap();
    // Nothing listens on port 9: the pin is an error row, and the summary
    // still lists its runtime.
    let o = provgate_env(
        &[
            "audit",
            "--pins",
            pins_file.to_str().unwrap(),
            "--insecure-registry",
            "127.0.0.1:9",
            "--registry-timeout",
            "5",
        ],
        None,
        &[],
    );
    let _ = std::fs::remove_dir_all(&dir);
    let err = stderr(&o);
    assert!(err.contains("runtime"), "a summary was printed: {err}");
    assert!(err.contains("\"pyx\\n::error"), "the runtime is shown quoted: {err}");
    assert_inert("audit's stderr", &err);
}

#[test]
fn json_output_carries_bidi_and_c1_characters_escaped_not_raw() {
    let mut inspect: serde_json::Value = serde_json::from_slice(
        &std::fs::read(provgate_testkit::repo_root().join("tests/data/inspect/skopeo.json")).unwrap(),
    )
    .unwrap();
    inspect["Name"] = serde_json::json!("registry.example/app\u{202e}\u{9b}31m\u{85}x");
    inspect["Labels"]["org.opencontainers.image.source"] = serde_json::json!("https://untrusted.invalid/acme/app");
    let file = std::env::temp_dir().join(format!("provgate-injection-json-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(&inspect).unwrap()).unwrap();
    let o = provgate_env(
        &["verify", "--inspect", file.to_str().unwrap(), "--format", "json"],
        None,
        &[],
    );
    let _ = std::fs::remove_file(&file);
    let out = stdout(&o);
    assert!(!out.contains(['\u{202e}', '\u{9b}', '\u{85}']), "raw in {out:?}");
    let verdict: serde_json::Value = serde_json::from_str(&out).expect("still JSON");
    assert_eq!(
        verdict["subject"]["reference"],
        "registry.example/app\u{202e}\u{9b}31m\u{85}x"
    );
}
