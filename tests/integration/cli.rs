//! End to end: the real `provgate` binary on every input shape, output
//! format and exit code of SPEC §5.

use std::path::Path;
use std::process::Output;

use provgate_testkit::gitea::GiteaStandIn;
use provgate_testkit::registry::Scratch;
use provgate_testkit::*;
use serde_json::{Value, json};
use tempfile::TempDir;

const INDEX_ARM64_SHA: &str = "5d9ee30983e84f6012f39a955c89feab135942df";
const LOCAL_SHA: &str = "d59ef4645ec16653e575fc13ebf5d364f53f841a";

fn fixture(name: &str) -> String {
    format!("tests/data/inspect/{name}")
}

/// A recording in which every fixture commit exists (in a directory of
/// its own, with [`Scratch::replay`] its path).
fn replay_all_found() -> Scratch {
    Scratch::new(&[SHA, INDEX_ARM64_SHA, LOCAL_SHA])
}

fn verdict_json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("stdout is not a verdict ({e}): {}", stdout(o)))
}

/// Exit `expected`, with both streams in the failure message.
#[track_caller]
fn assert_exit(o: &Output, expected: i32) {
    assert_eq!(code(o), expected, "{}\n{}", stdout(o), stderr(o));
}

/// The verdict of a run that must have exited `expected`.
#[track_caller]
fn judged(o: &Output, expected: i32) -> Value {
    assert_exit(o, expected);
    verdict_json(o)
}

/// Stderr says `what`.
#[track_caller]
fn assert_says(o: &Output, what: &str) {
    assert!(stderr(o).contains(what), "{}", stderr(o));
}

/// `provgate verify --inspect INSPECT --replay REPLAY` then `extra`: a
/// decision on a file, Gitea's answers taken from a recording or record.
fn verify_replayed(inspect: &str, replay: &str, extra: &[&str]) -> Output {
    let mut args = vec!["verify", "--inspect", inspect, "--replay", replay];
    args.extend_from_slice(extra);
    provgate(&args, None)
}

/// [`verify_replayed`] as JSON (`--format json`, then `extra`).
fn verify_json(inspect: &str, replay: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    verify_replayed(inspect, replay, &args)
}

/// `provgate replay RECORDS` then `extra`.
fn replay(records: &str, extra: &[&str]) -> Output {
    let mut args = vec!["replay", records];
    args.extend_from_slice(extra);
    provgate(&args, None)
}

fn outcomes(v: &Value) -> Vec<(String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The shipped examples of the README's quick start.
const VERIFIED: &str = "docs/examples/verified.json";
const REJECTED: &str = "docs/examples/rejected.json";
const VERIFIED_RECORD: &str = "docs/examples/verified.record.json";
const REJECTED_RECORD: &str = "docs/examples/rejected.record.json";
/// The 0.1 recording both examples were first decided with.
const RECORDING_01: &str = "docs/examples/lookups.replay.json";

fn finding<'a>(v: &'a Value, rule: &str) -> &'a Value {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no finding for {rule}: {v}"))
}

/// The one decision record in `path` (relative to the repository root).
fn record_at(path: impl AsRef<Path>) -> Value {
    let text = std::fs::read_to_string(repo_root().join(path.as_ref())).unwrap();
    assert!(
        text.ends_with('\n') && text.matches('\n').count() == 1,
        "{} is not one JSON line: {text}",
        path.as_ref().display()
    );
    serde_json::from_str(&text).unwrap()
}

/// `records` as JSON lines in `dir/name`; the path.
fn records_file(dir: &Path, name: &str, records: &[Value]) -> String {
    let path = dir.join(name);
    let lines: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&path, lines).unwrap();
    path.to_str().unwrap().to_string()
}

/// The verified example with `labels` changed, as `dir/name.json`.
fn inspect_with_labels(dir: &Path, name: &str, labels: &[(&str, &str)]) -> String {
    let mut v: Value = serde_json::from_slice(&std::fs::read(repo_root().join(VERIFIED)).unwrap()).unwrap();
    for (key, value) in labels {
        v["image"]["config"]["Labels"][*key] = json!(value);
    }
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, v.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

/// A 0.1 recording with its own clock, in which the example's commit exists.
fn recording_01_at(dir: &Path, name: &str, now: &str) -> String {
    let path = dir.join(format!("{name}.replay.json"));
    let lookup = json!({"owner": "molecule-ai", "repo": "app", "sha": SHA, "answer": "found"});
    std::fs::write(&path, json!({"now": now, "lookups": [lookup]}).to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn quick_start_verified_example_exits_0() {
    let o = verify_replayed(VERIFIED, VERIFIED_RECORD, &[]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(out.starts_with("VERIFIED"), "{out}");
    assert!(out.contains("redeploy.verify.reachable"), "{out}");
}

#[test]
fn quick_start_rejected_example_exits_1_with_the_failing_rule_first() {
    let o = verify_replayed(REJECTED, REJECTED_RECORD, &[]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(out.starts_with("REJECTED"), "{out}");
    let first_rule_line = out
        .lines()
        .find(|l| l.trim_start().starts_with(['✗', '?', '✓', '-']))
        .unwrap();
    assert!(
        first_rule_line.contains("FAIL") && first_rule_line.contains("revision.resolves"),
        "{out}"
    );
}

#[test]
fn the_shipped_example_records_replay_as_agreeing_with_the_builtin_policy() {
    // If this fails after a change to the guest or its settings, make the
    // records again (see docs/examples/): they name the built-in artifact.
    let dir = tempfile::tempdir().unwrap();
    let both = records_file(
        dir.path(),
        "examples.jsonl",
        &[record_at(VERIFIED_RECORD), record_at(REJECTED_RECORD)],
    );
    let o = replay(&both, &[]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "");
    assert_says(&o, "2 agree, 0 differ");
    for (record, example) in [(VERIFIED_RECORD, VERIFIED), (REJECTED_RECORD, REJECTED)] {
        let r = record_at(record);
        let judged = verify_json(example, record, &[]);
        assert_eq!(
            verdict_json(&judged),
            r["verdict"],
            "{record} is not {example}'s verdict"
        );
    }
}

#[test]
fn verify_replay_still_reads_a_0_1_recording() {
    for (example, record, exit) in [(VERIFIED, VERIFIED_RECORD, 0), (REJECTED, REJECTED_RECORD, 1)] {
        let old = verify_json(example, RECORDING_01, &[]);
        assert_eq!(code(&old), exit, "{example}: {}", stderr(&old));
        let new = verify_json(example, record, &[]);
        assert_eq!(verdict_json(&old), verdict_json(&new), "{example}");
    }
    // The 0.1 recording's clock is used: a created label after it is in the future.
    let dir = tempfile::tempdir().unwrap();
    let future = inspect_with_labels(dir.path(), "future", &[(CREATED, "2026-11-20T12:05:01Z")]);
    let v = judged(&verify_json(&future, RECORDING_01, &[]), 1);
    assert_eq!(finding(&v, "created.format")["outcome"], "fail");
}

#[test]
fn every_inspect_shape_of_the_same_image_gives_the_same_verdict() {
    let recording = replay_all_found();
    let replay = recording.replay();
    let replay = replay.to_str().unwrap();
    let mut verdicts = Vec::new();
    for (file, extra) in [
        ("buildx-single.json", vec![]),
        ("buildx-single-attested.json", vec![]),
        ("buildx-index.json", vec![]),
        ("skopeo.json", vec![]),
        ("docker-inspect.json", vec![]),
        ("oci-config.json", vec!["--digest", DIGEST]),
    ] {
        let o = verify_json(&fixture(file), replay, &extra);
        assert_eq!(code(&o), 0, "{file}: {}\n{}", stdout(&o), stderr(&o));
        let v = verdict_json(&o);
        assert_eq!(v["status"], "verified", "{file}");
        assert_eq!(v["event"], "redeploy.verify.reachable", "{file}");
        verdicts.push((file, outcomes(&v)));
    }
    // The rules that depend on the image itself agree across shapes (the tag
    // rule depends on the reference each tool prints).
    let core = |o: &Vec<(String, String)>| {
        o.iter()
            .filter(|(r, _)| r != "tag.consistent")
            .cloned()
            .collect::<Vec<_>>()
    };
    for (file, o) in &verdicts[1..] {
        assert_eq!(core(o), core(&verdicts[0].1), "{file} differs from buildx-single.json");
    }
}

#[test]
fn platform_flag_selects_which_images_labels_are_judged() {
    let recording = replay_all_found();
    let replay = recording.replay();
    let index = fixture("buildx-index.json");
    let run = |platform| verify_json(&index, replay.to_str().unwrap(), &["--platform", platform]);
    let amd = run("linux/amd64");
    assert_exit(&amd, 0);
    assert_eq!(verdict_json(&amd)["subject"]["platform"], "linux/amd64");

    // The arm64 image carries another revision than the tag names.
    let v = judged(&run("linux/arm64"), 1);
    assert_eq!(v["subject"]["platform"], "linux/arm64");
    assert_eq!(v["event"], "redeploy.verify.pin_mismatch");
    assert_eq!(
        v["subject"]["digest"],
        verdict_json(&amd)["subject"]["digest"],
        "the index digest is the subject"
    );

    let missing = run("linux/s390x");
    assert_exit(&missing, 2);
    assert_says(&missing, "linux/s390x");
}

#[test]
fn stdin_dash_reads_the_json_from_standard_input() {
    let skopeo = std::fs::read(repo_root().join(fixture("skopeo.json"))).unwrap();
    let o = provgate(
        &["verify", "--inspect", "-", "--replay", RECORDING_01, "--format", "json"],
        Some(&skopeo),
    );
    assert_eq!(
        judged(&o, 0)["subject"]["reference"],
        "git.moleculesai.app/molecule-ai/app"
    );
}

#[test]
fn docker_inspect_of_a_local_image_needs_digest() {
    // A saved `docker inspect` of an image built here and never pushed:
    // provgate reads the file and never runs docker (there is no daemon on
    // the test machines), so no daemon is involved either way.
    let recording = replay_all_found();
    let replay = recording.replay();
    let local = fixture("docker-inspect-local.json");
    let o = verify_replayed(&local, replay.to_str().unwrap(), &[]);
    assert_exit(&o, 2);
    assert_says(&o, "[0].RepoDigests has no entry");
    assert_says(&o, "locally built image that was never pushed");
    assert_says(&o, "--digest sha256:… is required");
    assert!(stdout(&o).is_empty(), "a verdict without a digest: {}", stdout(&o));

    // With the manifest digest given, the local image is judged like any
    // other: its labels name a commit the recording has.
    let o = verify_replayed(
        &local,
        replay.to_str().unwrap(),
        &["--digest", DIGEST, "--format", "json"],
    );
    let v = judged(&o, 0);
    assert_eq!(v["status"], "verified", "{v}");
    assert_eq!(v["event"], "redeploy.verify.reachable", "{v}");
    assert_eq!(v["subject"]["reference"], "molecule-ai/app:dev");
    assert_eq!(v["subject"]["digest"], DIGEST, "the digest given, not the image Id");
    let resolves = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "revision.resolves")
        .unwrap();
    assert!(resolves["message"].as_str().unwrap().contains(LOCAL_SHA), "{resolves}");
}

#[test]
fn json_verdict_has_exactly_the_fields_of_spec_section_4() {
    let v = verdict_json(&verify_example(&[]));
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["allowed", "event", "findings", "mode", "policy", "status", "subject"]
    );
    assert_eq!(v["mode"], "enforce");
    assert_eq!(v["allowed"], true);
    assert!(v["policy"]["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(v["policy"]["name"], "provgate-provenance");
    assert_eq!(v["findings"].as_array().unwrap().len(), 9);
}

#[test]
fn log_only_mode_exits_0_for_a_rejected_image() {
    let o = verify_replayed(REJECTED, REJECTED_RECORD, &["--mode", "log-only", "--format", "json"]);
    let v = judged(&o, 0);
    assert_eq!(
        (v["status"].as_str(), v["allowed"].as_bool(), v["mode"].as_str()),
        (Some("rejected"), Some(true), Some("log-only"))
    );
}

#[test]
fn github_format_prints_workflow_commands() {
    let o = verify_replayed(REJECTED, REJECTED_RECORD, &["--format", "github"]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| l.starts_with("::error title=provgate revision.resolves::")),
        "{out}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("::error title=provgate rejected::"),
        "{out}"
    );
}

/// `verify` of the verified example, replayed, as JSON, with `extra` flags.
fn verify_example(extra: &[&str]) -> Output {
    verify_json(VERIFIED, VERIFIED_RECORD, extra)
}

#[test]
fn pin_flags_feed_pin_consistent() {
    let other = format!("sha256:{}", "0".repeat(64));
    let o = verify_example(&[
        "--pin-digest",
        &other,
        "--pin-source-sha",
        SHA,
        "--pin-runtime",
        "python",
    ]);
    let v = judged(&o, 1);
    assert_eq!(v["event"], "redeploy.verify.pin_mismatch");
    assert_eq!(finding(&v, "pin.consistent")["outcome"], "fail");

    let o = verify_example(&["--pin-digest", DIGEST, "--pin-source-sha", SHA]);
    assert_eq!(finding(&judged(&o, 0), "pin.consistent")["outcome"], "pass");

    let o = verify_example(&[]);
    assert_eq!(finding(&verdict_json(&o), "pin.consistent")["outcome"], "skipped");
}

#[test]
fn pin_source_sha_alone_enables_pin_consistent_and_compares_it_with_the_revision() {
    let v = judged(&verify_example(&["--pin-source-sha", SHA]), 0);
    assert_eq!(finding(&v, "pin.consistent")["outcome"], "pass", "{v}");

    let other = "1".repeat(40);
    let v = judged(&verify_example(&["--pin-source-sha", &other]), 1);
    let pin = finding(&v, "pin.consistent");
    assert_eq!(pin["outcome"], "fail", "{v}");
    assert!(pin["message"].as_str().unwrap().contains(&other), "{pin}");
    assert_eq!(v["event"], "redeploy.verify.pin_mismatch");
}

#[test]
fn pin_digest_alone_enables_pin_consistent_and_asks_for_the_source_sha() {
    let v = judged(&verify_example(&["--pin-digest", DIGEST]), 0);
    let pin = finding(&v, "pin.consistent");
    assert_eq!(pin["outcome"], "pass", "{v}");
    assert!(pin["message"].as_str().unwrap().contains("backfill"), "{pin}");
    let o = verify_example(&["--pin-digest", &format!("sha256:{}", "0".repeat(64))]);
    assert_exit(&o, 1);
}

#[test]
fn pin_runtime_alone_is_a_usage_error() {
    let o = verify_example(&["--pin-runtime", "python"]);
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("--pin-digest") && stderr(&o).contains("--pin-source-sha"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "", "a verdict was given");
}

// exit code 2: bad usage or bad input

#[test]
fn malformed_json_exits_2_and_names_the_input() {
    let o = provgate(&["verify", "--inspect", "-"], Some(b"{\"Name\": "));
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("--inspect \"-\"") && stderr(&o).contains("line 1"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unknown_json_shape_exits_2_and_lists_the_accepted_shapes() {
    let o = provgate(&["verify", "--inspect", &fixture("unknown-shape.json")], None);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("skopeo inspect"), "{}", stderr(&o));
}

#[test]
fn unreadable_file_exits_2_and_names_it() {
    let o = provgate(&["verify", "--inspect", "no/such/file.json"], None);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("no/such/file.json"), "{}", stderr(&o));
}

#[test]
fn bare_oci_config_without_digest_exits_2() {
    let o = provgate(&["verify", "--inspect", &fixture("oci-config.json")], None);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--digest"), "{}", stderr(&o));
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(code(&provgate(&["verify"], None)), 2);
    assert_eq!(
        code(&provgate(&["verify", "--inspect", "x", "--mode", "strict"], None)),
        2
    );
    assert_eq!(
        code(&provgate(&["verify", "--inspect", "x", "--format", "yaml"], None)),
        2
    );
    assert_eq!(code(&provgate(&["frobnicate"], None)), 2);
}

#[test]
fn replay_file_that_is_not_a_recording_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "[1,2]").unwrap();
    let o = verify_replayed("docs/examples/verified.json", bad.to_str().unwrap(), &[]);
    assert_exit(&o, 2);
    assert_says(&o, "bad.json");
}

#[test]
fn help_teaches_usage_and_exit_codes() {
    let o = provgate(&["--help"], None);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("Exit codes: 0 allowed, 1 denied"), "{}", stdout(&o));
    let o = provgate(&["verify", "--help"], None);
    assert!(
        stdout(&o).contains("--inspect") && stdout(&o).contains("--replay"),
        "{}",
        stdout(&o)
    );
}

// exit code 3: the policy artifact

#[test]
fn a_policy_file_that_is_not_a_component_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("policy.wasm");
    std::fs::write(&bogus, b"\0asm\x01\0\0\0 definitely not a component").unwrap();
    let o = verify_replayed(VERIFIED, VERIFIED_RECORD, &["--policy", bogus.to_str().unwrap()]);
    assert_exit(&o, 3);
    assert_says(&o, "policy.wasm");
}

#[test]
fn the_builtin_digest_satisfies_policy_digest() {
    let digest = provgate::policy::Artifact::builtin().digest;
    assert_exit(
        &verify_replayed(VERIFIED, VERIFIED_RECORD, &["--policy-digest", &digest]),
        0,
    );
}

// policy build and inspect

fn write_settings(dir: &Path, json: &str) -> String {
    let path = dir.join("settings.json");
    std::fs::write(&path, json).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn policy_build_from_the_project_settings_reproduces_the_builtin_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("same.wasm");
    let o = provgate(
        &[
            "policy",
            "build",
            "--settings",
            "policies/molecule.json",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let built = std::fs::read(&out).unwrap();
    assert_eq!(
        provgate::digest::sha256_digest(&built),
        provgate::policy::Artifact::builtin().digest
    );
}

#[test]
fn policy_build_refuses_bad_settings_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.wasm");
    for (json, field) in [
        (
            r#"{"gitea_base_url":"https://g.example","allowed_owners":["a"],"colour":"red"}"#,
            "settings.colour",
        ),
        (
            r#"{"gitea_base_url":"https://g.example","allowed_owners":"a"}"#,
            "settings.allowed_owners",
        ),
        (
            r#"{"gitea_base_url":"https://g.example/gitea","allowed_owners":["a"]}"#,
            "settings.gitea_base_url",
        ),
        (
            r#"{"gitea_base_url":"ftp://g.example","allowed_owners":["a"]}"#,
            "settings.gitea_base_url",
        ),
        (
            r#"{"gitea_base_url":"https://u:p@g.example","allowed_owners":["a"]}"#,
            "settings.gitea_base_url",
        ),
        (
            r#"{"gitea_base_url":"https://g.example","allowed_owners":["a"],"created_max_skew_seconds":"300"}"#,
            "settings.created_max_skew_seconds",
        ),
        (
            r#"{"gitea_base_url":"https://g.example","allowed_owners":["a"],"on_unavailable":"sometimes"}"#,
            "settings.on_unavailable",
        ),
        (r#"{"gitea_base_url": "#, "not valid JSON"),
    ] {
        let settings = write_settings(dir.path(), json);
        let o = provgate(
            &[
                "policy",
                "build",
                "--settings",
                &settings,
                "--out",
                out.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(code(&o), 2, "{json}: {}", stderr(&o));
        assert!(stderr(&o).contains(field), "{json}: {}", stderr(&o));
        assert!(!out.exists(), "{json}: an artifact was written");
    }
}

#[test]
fn policy_build_refuses_a_key_given_twice_at_any_depth_naming_it_and_the_file() {
    // JSON readers keep the last of two equal keys; a reviewer reads the
    // first. Refused, whichever of them the guest would accept.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.wasm");
    for (json, key, within) in [
        (
            "{\"gitea_base_url\": \"https://git.example.org\",\n \"allowed_owners\": [\"my-org\"],\n \"gitea_base_url\": \"https://evil.example\"}",
            "\"gitea_base_url\"",
            "in settings (the second time at line 3",
        ),
        (
            r#"{"gitea_base_url": "https://g.example", "allowed_owners": ["a"], "on_unavailable": "deny", "on_unavailable": "allow"}"#,
            "\"on_unavailable\"",
            "in settings ",
        ),
        // Escapes do not hide a repeat: both spell "allowed_owners".
        (
            r#"{"gitea_base_url": "https://g.example", "allowed_owners": ["a"], "allowed_\u006fwners": ["evil"]}"#,
            "\"allowed_owners\"",
            "in settings ",
        ),
        (
            r#"{"gitea_base_url": "https://g.example", "allowed_owners": ["a"], "x": [{"y": {"z": 1, "z": 2}}]}"#,
            "\"z\"",
            "in settings.x[0].y ",
        ),
    ] {
        let settings = write_settings(dir.path(), json);
        let o = provgate(
            &[
                "policy",
                "build",
                "--settings",
                &settings,
                "--out",
                out.to_str().unwrap(),
            ],
            None,
        );
        assert_exit(&o, 2);
        assert_says(
            &o,
            &format!("settings {settings}: the key {key} appears twice {within}"),
        );
        assert!(!out.exists(), "{json}: an artifact was written");
    }
}

#[test]
fn policy_inspect_prints_name_digest_world_rules_and_settings() {
    let o = provgate(&["policy", "inspect", "--format", "json"], None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["name"], "provgate-provenance");
    assert_eq!(d["world"], "provgate:policy/provgate@0.2.0");
    assert_eq!(d["digest"], provgate::policy::Artifact::builtin().digest);
    assert_eq!(d["rules"].as_array().unwrap().len(), 9);
    assert_eq!(d["settings"]["gitea_base_url"], GITEA);
    assert_eq!(d["settings"]["allowed_owners"], json!(["molecule-ai"]));
    let text = stdout(&provgate(&["policy", "inspect"], None));
    assert!(
        text.contains("revision.resolves") && text.contains("on_unavailable"),
        "{text}"
    );
}

// against a Gitea (stand-in) over the network

/// For decisions that ask a Gitea: the stand-in, a temporary directory,
/// and a policy in it that asks the stand-in.
struct Standin {
    gitea: GiteaStandIn,
    dir: TempDir,
    policy: String,
}

impl Standin {
    /// The policy trusting `molecule-ai` ([`policy_for`]).
    fn start() -> Standin {
        Standin::with_policy(|gitea, dir| policy_for(&gitea.base_url(), dir))
    }

    /// The policy `build` makes for the stand-in, in the directory.
    fn with_policy(build: impl FnOnce(&GiteaStandIn, &Path) -> String) -> Standin {
        let gitea = GiteaStandIn::start();
        let dir = tempfile::tempdir().unwrap();
        let policy = build(&gitea, dir.path());
        Standin { gitea, dir, policy }
    }

    /// `name` in the directory.
    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// The verified example with its source moved to the stand-in's
    /// `molecule-ai/<repo>`, as `<repo>.json` in the directory.
    fn subject(&self, repo: &str) -> String {
        let source = format!("{}/molecule-ai/{repo}", self.gitea.base_url());
        inspect_with_labels(self.dir.path(), repo, &[(SOURCE, &source)])
    }

    /// `provgate verify --inspect SUBJECT --policy <this policy> --format
    /// json` then `extra`, with `env`.
    fn verify_env(&self, subject: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let mut args = vec![
            "verify",
            "--inspect",
            subject,
            "--policy",
            &self.policy,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        provgate_env(&args, None, env)
    }

    /// [`Standin::verify_env`] with no environment of its own.
    fn verify(&self, subject: &str, extra: &[&str]) -> Output {
        self.verify_env(subject, extra, &[])
    }

    /// [`Standin::verify`] recording the decision to `record`.
    fn verify_recorded(&self, subject: &str, record: &Path) -> Output {
        self.verify(subject, &["--record", record.to_str().unwrap()])
    }

    /// `provgate replay RECORDS --policy <this policy>`.
    fn replay(&self, records: &str) -> Output {
        replay(records, &["--policy", &self.policy])
    }
}

#[test]
fn record_then_replay_reproduces_the_decision_and_never_leaks_the_token() {
    let standin = Standin::start();
    let gitea = &standin.gitea;
    let token = "pg-test-token-4b1d9c";
    gitea.add_private_commit("molecule-ai", "app", SHA, token);
    let subject = standin.subject("app");
    let record = standin.path("run.record.json");

    let o = standin.verify_env(
        &subject,
        &["--record", record.to_str().unwrap(), "-vv"],
        &[("GITEA_TOKEN", token)],
    );
    assert_exit(&o, 0);
    let recorded = std::fs::read_to_string(&record).unwrap();
    for text in [stdout(&o), stderr(&o), recorded.clone()] {
        assert!(!text.contains(token), "the token leaked: {text}");
    }
    assert_eq!(gitea.hits("/git/commits/"), 1);
    assert_eq!(
        gitea.requests()[0].authorization.as_deref(),
        Some(format!("token {token}").as_str())
    );

    let replayed = standin.verify(&subject, &["--replay", record.to_str().unwrap()]);
    assert_eq!(judged(&replayed, 0), verdict_json(&o));
    assert_exit(&standin.replay(record.to_str().unwrap()), 0);
    assert_eq!(gitea.hits("/git/commits/"), 1, "replay touched the network");
}

#[test]
fn private_repo_without_token_is_rejected_with_a_hint_about_the_token() {
    let standin = Standin::start();
    standin
        .gitea
        .add_private_commit("molecule-ai", "app", SHA, "some-token");
    let v = judged(&standin.verify(&standin.subject("app"), &[]), 1);
    assert_eq!(v["event"], "redeploy.verify.unresolved");
    let resolves = finding(&v, "revision.resolves");
    assert!(
        resolves["message"].as_str().unwrap().contains("GITEA_TOKEN"),
        "{resolves}"
    );
}

#[test]
fn hanging_gitea_gives_an_indeterminate_denial_after_the_timeout() {
    let standin = Standin::start();
    let o = standin.verify(&standin.subject("hang"), &["--gitea-timeout", "0.5"]);
    let v = judged(&o, 1);
    assert_eq!(
        (v["status"].as_str(), v["event"].as_str()),
        (Some("indeterminate"), Some("redeploy.verify.unavailable"))
    );
}

#[test]
fn input_over_16_mib_exits_2_and_says_so() {
    let big = vec![b' '; 17 << 20];
    let o = provgate(&["verify", "--inspect", "-"], Some(&big));
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("larger than 16 MiB"), "{}", stderr(&o));
}

#[test]
fn a_tampered_code_cache_entry_is_ignored_and_rewritten() {
    let cache = tempfile::tempdir().unwrap();
    let cache_env = [("PROVGATE_CACHE_DIR", cache.path().to_str().unwrap())];
    let args = ["verify", "--inspect", VERIFIED, "--replay", VERIFIED_RECORD];
    assert_eq!(code(&provgate_env(&args, None, &cache_env)), 0);
    let entry = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .expect("a cache entry was written");
    let original = std::fs::read(&entry).unwrap();
    let mut tampered = original.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0xff;
    std::fs::write(&entry, &tampered).unwrap();

    let o = provgate_env(&args, None, &cache_env);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("tampered"),
        "the bad entry was not reported: {}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&entry).unwrap(), original, "the entry was not rewritten");
}

fn commit_path(owner: &str, repo: &str) -> String {
    format!("/api/v1/repos/{owner}/{repo}/git/commits/{SHA}")
}

fn request_paths(gitea: &GiteaStandIn) -> Vec<String> {
    gitea.requests().into_iter().map(|r| r.path).collect()
}

// a renamed or transferred repository (Gitea's same-host redirect)

#[test]
fn a_repository_moved_to_an_allowed_owner_is_verified_and_revision_resolves_says_it_moved() {
    let standin = Standin::with_policy(|gitea, dir| {
        policy_with_settings(
            dir,
            "two-owners",
            &json!({"gitea_base_url": gitea.base_url(), "allowed_owners": ["molecule-ai", "molecule-labs"]}),
        )
    });
    let gitea = &standin.gitea;
    gitea.rename("molecule-ai", "app", "molecule-labs", "app-next");
    gitea.add_commit("molecule-labs", "app-next", SHA);
    let record = standin.path("moved.record.json");
    let v = judged(&standin.verify_recorded(&standin.subject("app"), &record), 0);
    assert_eq!(v["status"], "verified");
    let resolves = finding(&v, "revision.resolves");
    assert_eq!(resolves["outcome"], "pass", "{resolves}");
    let message = resolves["message"].as_str().unwrap();
    assert!(
        message.contains("molecule-labs/app-next") && message.contains("moved from molecule-ai/app"),
        "{message}"
    );
    // The record keeps both answers, and replays to the same decision.
    let r = record_at(&record);
    assert_eq!(
        r["answers"],
        json!([
            {"owner": "molecule-ai", "repo": "app", "sha": SHA, "answer": "moved",
             "moved_to": {"owner": "molecule-labs", "repo": "app-next"}},
            {"owner": "molecule-labs", "repo": "app-next", "sha": SHA, "answer": "found"},
        ])
    );
    assert_exit(&standin.replay(record.to_str().unwrap()), 0);
    assert_eq!(gitea.requests().len(), 2, "replay touched the network");
}

#[test]
fn a_repository_moved_to_an_owner_not_allowed_is_rejected_and_provgate_does_not_follow() {
    let standin = Standin::start();
    let gitea = &standin.gitea;
    gitea.rename("molecule-ai", "app", "evil-org", "app");
    gitea.add_commit("evil-org", "app", SHA);
    let v = judged(&standin.verify(&standin.subject("app"), &[]), 1);
    assert_eq!(
        (v["status"].as_str(), v["allowed"].as_bool()),
        (Some("rejected"), Some(false))
    );
    let resolves = finding(&v, "revision.resolves");
    assert_eq!(resolves["outcome"], "fail", "{resolves}");
    let message = resolves["message"].as_str().unwrap();
    assert!(
        message.contains("evil-org") && message.contains("not an allowed owner"),
        "{message}"
    );
    assert_eq!(request_paths(gitea), [commit_path("molecule-ai", "app")]);
}

#[test]
fn a_move_to_a_foreign_owner_is_denied_in_enforce_even_when_on_unavailable_is_allow() {
    // 0.1 answered a redirect "unavailable", which this policy lets through.
    let lenient = Standin::with_policy(|gitea, dir| {
        policy_with_settings(
            dir,
            "lenient",
            &json!({"gitea_base_url": gitea.base_url(), "allowed_owners": ["molecule-ai"], "on_unavailable": "allow"}),
        )
    });
    // The policy is lenient: a Gitea failure is indeterminate and allowed.
    let v = judged(&lenient.verify(&lenient.subject("e502"), &[]), 0);
    assert_eq!(
        (v["status"].as_str(), v["allowed"].as_bool()),
        (Some("indeterminate"), Some(true))
    );

    lenient.gitea.rename("molecule-ai", "app", "evil-org", "app");
    lenient.gitea.add_commit("evil-org", "app", SHA);
    let v = judged(&lenient.verify(&lenient.subject("app"), &[]), 1);
    assert_eq!(
        (v["status"].as_str(), v["allowed"].as_bool()),
        (Some("rejected"), Some(false))
    );
    assert_eq!(finding(&v, "revision.resolves")["outcome"], "fail");
}

#[test]
fn after_a_move_the_new_place_is_asked_only_once_gitea_has_answered_the_old_one() {
    let standin = Standin::start();
    let gitea = &standin.gitea;
    gitea.rename("molecule-ai", "app", "molecule-ai", "app-renamed");
    gitea.add_commit("molecule-ai", "app-renamed", SHA);
    // Each request stays in flight a while, so that asking both places at
    // once could not go unseen in max_in_flight.
    gitea.set_delay(std::time::Duration::from_millis(100));
    let record = standin.path("renamed.record.json");
    assert_exit(&standin.verify_recorded(&standin.subject("app"), &record), 0);
    // Old place first, then the new one, and never both in flight at once:
    // the second request arrived after the first was answered.
    assert_eq!(
        request_paths(gitea),
        [
            commit_path("molecule-ai", "app"),
            commit_path("molecule-ai", "app-renamed")
        ]
    );
    assert_eq!(gitea.max_in_flight(), 1);
    assert_eq!(gitea.answered(), 2);
    // Both are questions the guest asked (the host reported the move and
    // did not follow it), in that order.
    let asked: Vec<(Value, Value)> = record_at(&record)["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["repo"].clone(), a["answer"].clone()))
        .collect();
    assert_eq!(
        asked,
        [(json!("app"), json!("moved")), (json!("app-renamed"), json!("found"))]
    );
}

// decision records and `provgate replay`

fn is_rfc3339_nanos(text: &str) -> bool {
    // 2026-11-20T12:00:00.123456789Z
    let b = text.as_bytes();
    b.len() == 30
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            29 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn verify_record_writes_one_line_with_the_subject_the_clock_every_answer_and_the_verdict() {
    let standin = Standin::start();
    let gitea = &standin.gitea;
    gitea.add_commit("molecule-ai", "app", SHA);
    let subject = standin.subject("app");
    let record = standin.path("decision.json");
    let before = std::time::SystemTime::now();
    let o = standin.verify(
        &subject,
        &["--pin-source-sha", SHA, "--record", record.to_str().unwrap()],
    );
    let after = std::time::SystemTime::now();
    assert_exit(&o, 0);
    let r = record_at(&record);

    let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "answers", "at", "id", "mode", "now", "policy", "record", "subject", "verdict"
        ]
    );
    assert_eq!(r["record"], "provgate.decision/1");
    assert_eq!(r["mode"], "enforce");
    assert_eq!(r["policy"], verdict_json(&o)["policy"]);
    assert_eq!(r["verdict"], verdict_json(&o));
    let labels = &r["subject"]["labels"];
    assert_eq!(labels[REVISION], SHA);
    assert_eq!(labels[SOURCE], format!("{}/molecule-ai/app", gitea.base_url()));
    assert_eq!(labels.as_object().unwrap().len(), 4);
    assert_eq!(r["subject"]["reference"], verdict_json(&o)["subject"]["reference"]);
    assert_eq!(r["subject"]["digest"], DIGEST);
    assert_eq!(r["subject"]["pin"], json!({"source_sha": SHA}));
    assert_eq!(
        r["answers"],
        json!([{"owner": "molecule-ai", "repo": "app", "sha": SHA, "answer": "found"}])
    );

    // `now` is the real clock of the run, at full precision.
    let now = r["now"].as_str().unwrap();
    assert!(is_rfc3339_nanos(now), "{now}");
    let now = provgate::record::parse_now(now).unwrap();
    assert!(before <= now && now <= after, "{r}");
    assert!(is_rfc3339_nanos(r["at"].as_str().unwrap()), "{r}");

    // The id is the hash of what was decided, recomputable from the record.
    let parsed = provgate::record::from_value(r.clone()).unwrap();
    assert!(parsed.id.starts_with("sha256:"), "{}", parsed.id);
    assert_eq!(parsed.computed_id(), parsed.id);
}

#[test]
fn replay_of_unedited_records_exits_0_and_says_all_agree() {
    let standin = Standin::start();
    let gitea = &standin.gitea;
    gitea.add_commit("molecule-ai", "app", SHA);
    let found = standin.path("found.json");
    assert_eq!(code(&standin.verify_recorded(&standin.subject("app"), &found)), 0);
    let missing = standin.path("missing.json");
    assert_eq!(code(&standin.verify_recorded(&standin.subject("gone"), &missing)), 1);
    let both = records_file(
        standin.dir.path(),
        "both.jsonl",
        &[record_at(&found), record_at(&missing)],
    );
    let requests = gitea.requests().len();

    let o = standin.replay(&both);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "");
    assert_says(&o, "replayed 2 records");
    assert_says(&o, "2 agree, 0 differ");
    assert_eq!(gitea.requests().len(), requests, "replay touched the network");

    // From standard input too.
    let o = provgate(
        &["replay", "-", "--policy", &standin.policy],
        Some(&std::fs::read(&both).unwrap()),
    );
    assert_exit(&o, 0);
    assert_says(&o, "2 agree, 0 differ");
}

/// The verified example's record with its one answer turned into "not found".
fn edited_to_not_found(dir: &Path) -> (Value, String) {
    let mut r = record_at(VERIFIED_RECORD);
    assert_eq!(r["answers"][0]["answer"], "found", "{r}");
    r["answers"][0] = json!({"owner": "molecule-ai", "repo": "app", "sha": SHA,
                             "answer": "not_found", "reason": "Gitea answered 404"});
    let path = records_file(dir, "edited.jsonl", &[record_at(REJECTED_RECORD), r.clone()]);
    (r, path)
}

#[test]
fn replay_of_a_record_with_an_edited_answer_differs_naming_the_rule_that_changed() {
    let dir = tempfile::tempdir().unwrap();
    let (edited, path) = edited_to_not_found(dir.path());
    let o = replay(&path, &[]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let line = lines[0];
    let id = edited["id"].as_str().unwrap();
    assert!(line.starts_with("differs") && line.contains(id), "{line}");
    assert!(line.contains("revision.resolves pass → fail"), "{line}");
    assert!(
        line.contains("recorded verified") && line.contains("replayed rejected"),
        "{line}"
    );
    assert!(line.contains("edited"), "the edit is not pointed out: {line}");
    // Only the rule that changed is named.
    assert!(
        !line.contains("created.format") && !line.contains("source.trusted"),
        "{line}"
    );
    assert_says(&o, "1 agree, 1 differ");
}

#[test]
fn replay_format_json_prints_id_recorded_and_replayed_for_each_differing_record() {
    let dir = tempfile::tempdir().unwrap();
    let (edited, path) = edited_to_not_found(dir.path());
    let o = replay(&path, &["--format", "json"]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    let d: Value = serde_json::from_str(&out).unwrap();
    let mut keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["id", "recorded", "replayed"]);
    assert_eq!(d["id"], edited["id"]);
    assert_eq!(d["recorded"], edited["verdict"]);
    assert_eq!(d["replayed"]["status"], "rejected");
    assert_eq!(d["replayed"]["event"], "redeploy.verify.unresolved");
    let resolves = finding(&d["replayed"], "revision.resolves");
    assert!(
        resolves["message"].as_str().unwrap().contains("Gitea answered 404"),
        "{resolves}"
    );
}

#[test]
fn replay_with_another_policy_reports_only_the_records_it_would_decide_differently() {
    let dir = tempfile::tempdir().unwrap();
    // Rejected by the built-in policy: its owner is not allowed.
    let labs = inspect_with_labels(
        dir.path(),
        "labs",
        &[(SOURCE, "https://git.moleculesai.app/molecule-labs/app")],
    );
    let labs_record = dir.path().join("labs.record.json");
    let o = verify_replayed(&labs, RECORDING_01, &["--record", labs_record.to_str().unwrap()]);
    assert_exit(&o, 1);
    let labs_record = record_at(&labs_record);
    assert_eq!(labs_record["verdict"]["event"], "redeploy.verify.untrusted_source");
    let records = records_file(
        dir.path(),
        "two.jsonl",
        &[record_at(VERIFIED_RECORD), labs_record.clone()],
    );

    let wider = policy_with_settings(
        dir.path(),
        "wider",
        &json!({"gitea_base_url": GITEA, "allowed_owners": ["molecule-ai", "molecule-labs"]}),
    );
    let o = replay(&records, &["--policy", &wider]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].contains(labs_record["id"].as_str().unwrap()), "{out}");
    assert!(lines[0].contains("source.trusted fail → pass"), "{out}");
    let wider_digest = provgate::digest::sha256_digest(&std::fs::read(&wider).unwrap());
    assert_says(&o, &wider_digest);
    assert_says(&o, "1 agree, 1 differ");

    // Its own policy decides both as they were.
    assert_exit(&replay(&records, &[]), 0);
}

#[test]
fn replay_of_a_record_whose_policy_is_not_built_in_exits_3_naming_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let other = policy_with_settings(
        dir.path(),
        "other",
        &json!({"gitea_base_url": GITEA, "allowed_owners": ["molecule-ai"], "created_max_skew_seconds": 60}),
    );
    let record = dir.path().join("other.json");
    let o = verify_replayed(
        VERIFIED,
        VERIFIED_RECORD,
        &["--policy", &other, "--record", record.to_str().unwrap()],
    );
    assert_exit(&o, 0);
    let digest = record_at(&record)["policy"]["digest"].as_str().unwrap().to_string();
    assert_ne!(digest, provgate::policy::Artifact::builtin().digest);

    let o = replay(record.to_str().unwrap(), &[]);
    assert_exit(&o, 3);
    assert_says(&o, &digest);
    assert_says(&o, "--policy");
    assert_eq!(stdout(&o), "");

    assert_exit(&replay(record.to_str().unwrap(), &["--policy", &other]), 0);
}

#[test]
fn replay_of_a_file_that_holds_no_decision_records_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut future = record_at(VERIFIED_RECORD);
    future["record"] = json!("provgate.decision/9");
    let mut bad_now = record_at(VERIFIED_RECORD);
    bad_now["now"] = json!("yesterday");
    for (name, content) in [
        ("empty", String::new()),
        ("array", "[1,2]".to_string()),
        ("truncated", "{\"record\": ".to_string()),
        (
            "recording-0.1",
            std::fs::read_to_string(repo_root().join(RECORDING_01)).unwrap(),
        ),
        ("future-format", future.to_string()),
        ("bad-now", bad_now.to_string()),
        // one good record, then garbage: nothing is replayed
        ("good-then-bad", format!("{}\nnot json\n", record_at(VERIFIED_RECORD))),
    ] {
        let path = dir.path().join(format!("{name}.jsonl"));
        std::fs::write(&path, content).unwrap();
        let o = replay(path.to_str().unwrap(), &[]);
        assert_eq!(code(&o), 2, "{name}: {}\n{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains(name), "{name}: {}", stderr(&o));
        assert_eq!(stdout(&o), "", "{name}");
    }
    let o = replay("no/such/records.jsonl", &[]);
    assert_exit(&o, 2);
    assert_says(&o, "no/such/records.jsonl");
}

// `now` at full precision: the created.format skew boundary

/// The `created` label of the boundary tests; it has a fraction, so that a
/// `now` cut to whole seconds lands on the other side of the boundary.
const T: &str = "2026-11-20T12:05:00.5Z";
/// T − 300 s + 1 ms: `created` is 299.999 s ahead, within the default skew.
const WITHIN: &str = "2026-11-20T12:00:00.501000000Z";
/// T − 300 s − 1 ms: 300.001 s ahead, past it.
const PAST: &str = "2026-11-20T12:00:00.499000000Z";

/// A record of the subject created at [`T`], decided by `verify` at `now`.
fn record_made_at(dir: &Path, name: &str, now: &str) -> (Value, Output) {
    let subject = inspect_with_labels(dir, "created-at-t", &[(CREATED, T)]);
    let clock = recording_01_at(dir, name, now);
    let record = dir.join(format!("{name}.record.json"));
    let o = verify_json(&subject, &clock, &["--record", record.to_str().unwrap()]);
    (record_at(&record), o)
}

fn created_outcome(verdict: &Value) -> String {
    finding(verdict, "created.format")["outcome"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn created_one_millisecond_inside_or_outside_the_skew_is_decided_and_replayed_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (within, o) = record_made_at(dir.path(), "within", WITHIN);
    assert_exit(&o, 0);
    assert_eq!(within["now"], WITHIN, "the record's clock lost precision");
    assert_eq!(created_outcome(&within["verdict"]), "pass");

    let (past, o) = record_made_at(dir.path(), "past", PAST);
    assert_exit(&o, 1);
    assert_eq!(past["now"], PAST, "the record's clock lost precision");
    assert_eq!(created_outcome(&past["verdict"]), "fail");
    assert_eq!(past["verdict"]["event"], "redeploy.verify.malformed");

    // Each replays as it was decided.
    let both = records_file(dir.path(), "both.jsonl", &[within.clone(), past.clone()]);
    let o = replay(&both, &[]);
    assert_exit(&o, 0);
    assert_says(&o, "2 agree, 0 differ");
    // So does `verify --replay RECORD`, judging the record's own subject.
    for (record, exit) in [(&within, 0), (&past, 1)] {
        let path = records_file(dir.path(), "one.json", std::slice::from_ref(record));
        let o = provgate(&["verify", "--replay", &path, "--format", "json"], None);
        assert_eq!(judged(&o, exit), record["verdict"]);
    }
}

#[test]
fn moving_a_records_now_by_two_milliseconds_across_the_skew_boundary_changes_its_replay() {
    let dir = tempfile::tempdir().unwrap();
    for (made_at, edited_to, change) in [
        (WITHIN, PAST, "created.format pass → fail"),
        (PAST, WITHIN, "created.format fail → pass"),
    ] {
        let (mut record, _) = record_made_at(dir.path(), "made", made_at);
        record["now"] = json!(edited_to);
        let path = records_file(dir.path(), "edited.jsonl", &[record]);
        let o = replay(&path, &[]);
        assert_eq!(code(&o), 1, "{made_at} → {edited_to}: {}\n{}", stdout(&o), stderr(&o));
        let out = stdout(&o);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.starts_with("differs") && out.contains(change), "{out}");
    }
}

// the Gitea token

#[test]
fn no_part_of_the_token_reaches_a_record_stdout_or_stderr_even_when_gitea_echoes_it() {
    const SECRET: &str = "GtSecretZq8XvLp9WmRnK4";
    let standin = Standin::start();
    let gitea = &standin.gitea;
    gitea.add_token(SECRET);
    gitea.rename("molecule-ai", "renamed", "evil-org", "renamed");
    // `echo` quotes the Authorization header back as the commit's "sha";
    // `missing` is a 404 whose reason talks about the token; `renamed`
    // redirects, the Location built from the request.
    for repo in ["echo", "missing", "renamed"] {
        let subject = standin.subject(repo);
        let record = standin.path(&format!("{repo}.record.json"));
        let mut args = vec!["-vv"];
        args.extend([
            "verify",
            "--inspect",
            &subject,
            "--policy",
            &standin.policy,
            "--format",
            "json",
            "--record",
            record.to_str().unwrap(),
        ]);
        let o = provgate_env(&args, None, &[("GITEA_TOKEN", SECRET)]);
        assert_eq!(code(&o), 1, "{repo}: {}\n{}", stdout(&o), stderr(&o));
        let recorded = std::fs::read_to_string(&record).unwrap();
        for (what, text) in [("record", &recorded), ("stdout", &stdout(&o)), ("stderr", &stderr(&o))] {
            for part in SECRET.as_bytes().windows(6) {
                let part = std::str::from_utf8(part).unwrap();
                assert!(
                    !text.contains(part),
                    "{repo}: {part:?} of the token is in the {what}: {text}"
                );
            }
        }
        if repo == "echo" {
            // The echo did happen, and was scrubbed.
            let reason = record_at(&record)["answers"][0]["reason"].as_str().unwrap().to_string();
            assert!(reason.contains("token ***"), "{reason}");
        }
    }
    // The token was sent, in the header only.
    let requests = gitea.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    for r in &requests {
        assert_eq!(r.authorization.as_deref(), Some(format!("token {SECRET}").as_str()));
    }
}

#[test]
fn a_record_written_over_its_own_input_file_is_written_after_the_input_was_read() {
    // Output files are opened (so an unwritable path fails early) but
    // emptied only when the output is ready.
    let dir = tempfile::tempdir().unwrap();
    let both = dir.path().join("image-and-record.json");
    std::fs::copy(repo_root().join("docs/examples/verified.json"), &both).unwrap();
    let both = both.to_str().unwrap();
    let replay = repo_root().join("docs/examples/verified.record.json");
    let replay = replay.to_str().unwrap();
    let o = verify_replayed(both, replay, &["--record", both, "--format", "json"]);
    assert_eq!(judged(&o, 0)["status"], "verified");
    let record: Value = serde_json::from_str(&std::fs::read_to_string(both).unwrap()).unwrap();
    assert_eq!(record["record"], "provgate.decision/1");
    assert_eq!(record["verdict"]["status"], "verified");
}

// ---------------------------------------------------------------------------
// Flags that fail early: a malformed value is bad usage (exit 2) naming the
// flag, before any artifact is loaded or any registry is asked.
// ---------------------------------------------------------------------------

#[test]
fn a_policy_digest_that_is_empty_or_not_sha256_and_64_hex_is_exit_2_naming_the_flag() {
    let short = format!("sha256:{}", "0".repeat(63));
    let upper = format!("sha256:{}", "A".repeat(64));
    for bad in ["", "sha256:", "bogus", short.as_str(), upper.as_str()] {
        let o = verify_replayed(VERIFIED, VERIFIED_RECORD, &["--policy-digest", bad]);
        assert_exit(&o, 2);
        assert_says(&o, "--policy-digest");
        assert_says(&o, "64 lower-case hex");
        assert!(stdout(&o).is_empty(), "no verdict for a bad flag: {}", stdout(&o));
    }
    // The same check in every command that takes the flag.
    for command in [&["audit", "--pins", "-"][..], &["serve", "--listen", "127.0.0.1:0"]] {
        let mut args = command.to_vec();
        args.extend(["--policy-digest", ""]);
        let o = provgate(&args, None);
        assert_exit(&o, 2);
        assert_says(&o, "--policy-digest");
    }
}

#[test]
fn an_empty_pin_flag_from_an_unset_variable_is_exit_2_not_a_pass() {
    // The rules read a blank pin value as "none given": pin.consistent
    // would pass what the CI job meant to check.
    for flag in ["--pin-source-sha", "--pin-digest"] {
        for blank in ["", "  "] {
            let o = verify_replayed(VERIFIED, VERIFIED_RECORD, &[flag, blank]);
            assert_exit(&o, 2);
            assert_says(&o, flag);
            assert_says(&o, "unset variable");
            assert!(stdout(&o).is_empty(), "no verdict for a blank pin: {}", stdout(&o));
        }
    }
}

#[test]
fn an_insecure_registry_with_a_scheme_or_path_is_exit_2_naming_the_flag() {
    for bad in ["http://127.0.0.1:5000", "127.0.0.1:5000/v2", "user@127.0.0.1:5000"] {
        let o = provgate(
            &[
                "verify",
                "127.0.0.1:5000/molecule-ai/app:v1",
                "--insecure-registry",
                bad,
            ],
            None,
        );
        assert_exit(&o, 2);
        assert_says(&o, "--insecure-registry");
        assert_says(&o, "HOST:PORT");
    }
}

#[test]
fn time_outs_take_seconds_or_a_duration_with_a_unit() {
    for good in ["5s", "2m", "1.5", "1m30s"] {
        let o = verify_replayed(
            VERIFIED,
            VERIFIED_RECORD,
            &["--registry-timeout", good, "--gitea-timeout", good],
        );
        assert_exit(&o, 0);
    }
    for bad in ["0", "0s", "soon", "-1"] {
        let flag = format!("--gitea-timeout={bad}");
        let o = verify_replayed(VERIFIED, VERIFIED_RECORD, &[&flag]);
        assert_exit(&o, 2);
        assert_says(&o, "--gitea-timeout");
    }
}

#[test]
fn policy_build_refuses_a_settings_file_that_never_ends_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("policy.wasm");
    let o = provgate(
        &[
            "policy",
            "build",
            "--settings",
            "/dev/zero",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_exit(&o, 2);
    assert_says(&o, "/dev/zero");
    assert_says(&o, "larger than 64 KiB");
    assert!(!out.exists(), "an artifact was written");
}

// --format github in CI: step outputs, job summary, grouped findings, and an
// annotation for a run that ends in an error; and the CLI conventions
// (NO_COLOR, --log-format, help examples that can be copied).

/// The verdict's subject digest, from a JSON run of the same inputs.
fn subject_digest(inspect: &str, replay: &str, extra: &[&str]) -> String {
    let v = verdict_json(&verify_json(inspect, replay, extra));
    v["subject"]["digest"].as_str().unwrap().to_string()
}

#[test]
fn github_format_appends_step_outputs_and_a_job_summary_and_groups_the_findings() {
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("github_output");
    let summary = dir.path().join("step_summary");
    // Earlier steps' lines stay: the files are appended to, never truncated.
    std::fs::write(&outputs, "earlier=1\n").unwrap();
    std::fs::write(&summary, "# earlier step\n").unwrap();
    let o = provgate_env(
        &[
            "verify",
            "--inspect",
            REJECTED,
            "--replay",
            REJECTED_RECORD,
            "--format",
            "github",
        ],
        None,
        &[
            ("GITHUB_OUTPUT", outputs.to_str().unwrap()),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ],
    );
    assert_exit(&o, 1);
    let policy = provgate::policy::Artifact::builtin().digest;
    let digest = subject_digest(REJECTED, REJECTED_RECORD, &[]);
    assert_eq!(
        std::fs::read_to_string(&outputs).unwrap(),
        format!(
            "earlier=1\ndigest={digest}\nstatus=rejected\nallowed=false\n\
             event=redeploy.verify.unresolved\npolicy_digest={policy}\n"
        )
    );

    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("# earlier step\n### provgate: rejected — denied\n"),
        "{md}"
    );
    for line in [
        format!("| digest | {digest} |"),
        "| event | redeploy.verify.unresolved |".to_string(),
        "| mode | enforce |".to_string(),
        format!(
            "| policy | provgate-provenance {} {policy} |",
            env!("CARGO_PKG_VERSION")
        ),
        "| rule | outcome | message |".to_string(),
    ] {
        assert!(md.lines().any(|l| l == line), "no line {line:?} in:\n{md}");
    }
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| revision.resolves |")).collect();
    assert_eq!(rows.len(), 1, "{md}");
    assert!(rows[0].starts_with("| revision.resolves | fail | commit "), "{md}");
    // Only failing and indeterminate findings are listed.
    assert!(!md.contains("| labels.present |"), "{md}");

    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"::group::provgate findings"), "{out}");
    assert_eq!(lines[lines.len() - 2], "::endgroup::", "{out}");
    assert!(
        lines[1].starts_with("::error title=provgate revision.resolves::"),
        "{out}"
    );
    assert!(
        lines.last().unwrap().starts_with("::error title=provgate rejected::"),
        "{out}"
    );
}

#[test]
fn github_outputs_and_summary_cannot_be_forged_by_values_from_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let inspect = inspect_with_labels(
        dir.path(),
        "forged",
        &[("org.opencontainers.image.source", "https://evil.example/a|b`c`<img>")],
    );
    let outputs = dir.path().join("github_output");
    let summary = dir.path().join("step_summary");
    let o = provgate_env(
        &[
            "verify",
            "--inspect",
            &inspect,
            "--replay",
            VERIFIED_RECORD,
            "--digest",
            "sha256:x\nallowed=true",
            "--format",
            "github",
        ],
        None,
        &[
            ("GITHUB_OUTPUT", outputs.to_str().unwrap()),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ],
    );
    assert_exit(&o, 1);
    let text = std::fs::read_to_string(&outputs).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(lines[0], "digest=\"sha256:x\\nallowed=true\"", "{text}");
    assert_eq!(lines[2], "allowed=false", "{text}");

    let md = std::fs::read_to_string(&summary).unwrap();
    let row = md
        .lines()
        .find(|l| l.starts_with("| source.trusted | fail |"))
        .unwrap_or_else(|| panic!("no source.trusted row in:\n{md}"));
    // Five cells, so four inner `|` plus the two at the ends: every `|`
    // from the label is escaped, as are its backticks and its markup.
    assert_eq!(row.matches('|').count() - row.matches("\\|").count(), 4, "{row}");
    assert!(row.contains("a\\|b\\`c\\`&lt;img&gt;"), "{row}");
}

#[test]
fn github_format_annotates_a_run_that_ends_in_exit_2_3_or_4() {
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("github_output");
    let env = [("GITHUB_OUTPUT", outputs.to_str().unwrap())];
    let github = |args: &[&str]| {
        let mut args = args.to_vec();
        args.extend_from_slice(&["--format", "github"]);
        provgate_env(&args, None, &env)
    };
    let zeros = format!("sha256:{}", "0".repeat(64));
    let cases: [(Output, i32, &str, &str); 3] = [
        (
            github(&["verify", "--inspect", "no/such/file.json"]),
            2,
            "usage error",
            "no/such/file.json",
        ),
        (
            github(&[
                "verify",
                "--inspect",
                VERIFIED,
                "--replay",
                VERIFIED_RECORD,
                "--policy-digest",
                &zeros,
            ]),
            3,
            "policy error",
            &zeros,
        ),
        (
            github(&[
                "verify",
                "127.0.0.1:9/molecule-ai/app:1",
                "--insecure-registry",
                "127.0.0.1:9",
                "--registry-timeout",
                "10",
            ]),
            4,
            "fetch error",
            "127.0.0.1:9",
        ),
    ];
    for (o, expected, title, named) in &cases {
        assert_exit(o, *expected);
        let out = stdout(o);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "one annotation, nothing else: {out}");
        let prefix = format!("::error title=provgate {title}::");
        assert!(lines[0].starts_with(&prefix) && lines[0].contains(named), "{out}");
        // The same message as the error line on stderr.
        let message = &lines[0][prefix.len()..];
        assert_says(o, &format!("provgate: error: {message}"));
    }
    assert!(!outputs.exists(), "no step outputs without a verdict");
}

#[test]
fn the_text_header_of_a_subject_without_a_reference_says_so() {
    let digest = format!("sha256:{}", "a".repeat(64));
    let o = verify_replayed(&fixture("oci-config.json"), VERIFIED_RECORD, &["--digest", &digest]);
    let out = stdout(&o);
    let headline = out.lines().next().unwrap_or_default();
    assert!(headline.contains("  (no reference)  — "), "{out}");
}

#[test]
fn verify_help_describes_format() {
    let o = provgate(&["verify", "--help"], None);
    assert_exit(&o, 0);
    let help = stdout(&o);
    let at = help.find("--format <FORMAT>").expect("--format in the help");
    assert!(help[at..].contains("How to print the verdict"), "{help}");
    assert!(help[at..].contains("$GITHUB_OUTPUT"), "{help}");
}

/// `provgate ARGS` on a pseudo-terminal (util-linux `script`): what a
/// person at a terminal sees, stdout and stderr together.
fn on_a_terminal(args: &str, env: &[(&str, &str)]) -> String {
    let command = format!("{} {args}", provgate_bin().display());
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qefc", &command, "/dev/null"])
        .current_dir(repo_root())
        .env("PROVGATE_CACHE_DIR", cache_dir())
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    stdout(&cmd.output().expect("script (util-linux) runs"))
}

#[test]
fn no_color_turns_off_the_colour_of_the_parsers_messages_on_a_terminal() {
    // The control: on a terminal, clap colours its error.
    let coloured = on_a_terminal("verify --bogus", &[]);
    assert!(
        coloured.contains('\u{1b}'),
        "no colour even without NO_COLOR: {coloured:?}"
    );
    let plain = on_a_terminal("verify --bogus", &[("NO_COLOR", "1")]);
    assert!(plain.contains("--bogus"), "{plain:?}");
    assert!(!plain.contains('\u{1b}'), "colour despite NO_COLOR: {plain:?}");
}

#[test]
fn log_format_json_writes_each_log_line_as_one_json_object() {
    let o = provgate(
        &[
            "--log-format",
            "json",
            "-v",
            "verify",
            "--inspect",
            VERIFIED,
            "--replay",
            VERIFIED_RECORD,
        ],
        None,
    );
    assert_exit(&o, 0);
    let err = stderr(&o);
    assert!(!err.is_empty(), "-v logs something");
    for line in err.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(v["level"], "INFO", "{line}");
        assert!(v["message"].is_string() && v["timestamp"].is_string(), "{line}");
    }
    assert!(
        stdout(&o).starts_with("VERIFIED  "),
        "stdout is unchanged: {}",
        stdout(&o)
    );
    let o = provgate(&["--log-format", "yaml", "policy", "inspect"], None);
    assert_exit(&o, 2);
}

#[test]
fn every_help_example_is_a_whole_command_at_80_columns() {
    for command in [
        &["--help"][..],
        &["verify", "--help"],
        &["audit", "--help"],
        &["serve", "--help"],
    ] {
        let o = provgate_env(command, None, &[("COLUMNS", "80")]);
        assert_exit(&o, 0);
        let help = stdout(&o);
        let examples: Vec<&str> = help
            .lines()
            .skip_while(|l| *l != "Examples:")
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .collect();
        assert!(!examples.is_empty(), "no examples in {command:?}:\n{help}");
        let mut continued = false;
        for line in examples {
            if continued {
                assert!(
                    line.starts_with("    --") || line.starts_with("    provgate "),
                    "{line:?}"
                );
            } else {
                // A command starts at the example indent: `provgate …`, or
                // a variable or another command piped into provgate.
                let first = line.strip_prefix("  ").unwrap_or_else(|| panic!("{line:?}"));
                assert!(
                    first.starts_with("provgate ") || first.contains(" provgate ") || first.ends_with("| \\"),
                    "not the start of a command in {command:?}: {line:?}\n{help}"
                );
            }
            assert!(line.chars().count() <= 80, "{line:?}");
            // A quote opened on a line is closed on it.
            assert_eq!(line.matches('\'').count() % 2, 0, "{line:?}");
            continued = line.ends_with(" \\");
        }
        assert!(!continued, "the last example of {command:?} ends in a continuation");
    }
}

#[test]
fn version_names_the_built_in_artifacts_digest_as_policy_digest_prints_it() {
    let version = provgate(&["--version"], None);
    assert_exit(&version, 0);
    let digest = provgate(&["policy", "digest"], None);
    assert_exit(&digest, 0);
    let digest = stdout(&digest).trim().to_string();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{digest}");
    assert_eq!(
        stdout(&version).trim(),
        format!("provgate {} (policy {digest})", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_name_every_subcommand_and_refuse_an_unknown_shell() {
    let bash = provgate(&["completions", "bash"], None);
    assert_exit(&bash, 0);
    let script = stdout(&bash);
    assert!(script.contains("_provgate"), "{script}");
    for command in [
        "verify",
        "promote",
        "audit",
        "serve",
        "replay",
        "policy",
        "completions",
        "man",
    ] {
        assert!(script.contains(command), "{command} missing from:\n{script}");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let o = provgate(&["completions", shell], None);
        assert_exit(&o, 0);
        assert!(stdout(&o).contains("verify"), "{shell}: {}", stdout(&o));
    }
    let unknown = provgate(&["completions", "tcsh"], None);
    assert_exit(&unknown, 2);
    assert!(unknown.stdout.is_empty());
}

#[test]
fn man_prints_a_roff_page_or_writes_one_per_command() {
    let page = provgate(&["man"], None);
    assert_exit(&page, 0);
    let page = stdout(&page);
    assert!(page.starts_with(".TH"), "{page}");
    assert!(page.contains("verify"), "{page}");

    let dir = TempDir::new().unwrap();
    let out = dir.path().join("man1");
    let o = provgate(&["man", "--out", out.to_str().unwrap()], None);
    assert_exit(&o, 0);
    for name in ["provgate.1", "provgate-verify.1", "provgate-policy-inspect.1"] {
        let written = std::fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(written.starts_with(".TH"), "{name}: {written}");
    }

    // A file where the directory should be: the caller's to mend.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let refused = provgate(&["man", "--out", file.to_str().unwrap()], None);
    assert_exit(&refused, 2);
    assert_says(&refused, "--out");
}
