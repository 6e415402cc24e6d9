//! End to end: the real `provgate` binary on every input shape, output
//! format and exit code of SPEC §5.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::gitea::GiteaStandIn;
use support::*;

const INDEX_ARM64_SHA: &str = "5d9ee30983e84f6012f39a955c89feab135942df";
const LOCAL_SHA: &str = "d59ef4645ec16653e575fc13ebf5d364f53f841a";

fn fixture(name: &str) -> String {
    format!("tests/data/inspect/{name}")
}

/// A recording in which every fixture commit exists.
fn replay_all_found(dir: &Path) -> PathBuf {
    let lookups: Vec<Value> = [SHA, INDEX_ARM64_SHA, LOCAL_SHA]
        .iter()
        .map(|sha| json!({"owner": "molecule-ai", "repo": "app", "sha": sha, "answer": "found"}))
        .collect();
    let path = dir.join("found.replay.json");
    std::fs::write(
        &path,
        json!({"now": "2026-11-20T12:00:00Z", "lookups": lookups}).to_string(),
    )
    .unwrap();
    path
}

fn verdict_json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("stdout is not a verdict ({e}): {}", stdout(o)))
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

#[test]
fn quick_start_verified_example_exits_0() {
    let o = provgate(
        &[
            "verify",
            "--inspect",
            "docs/examples/verified.json",
            "--replay",
            "docs/examples/lookups.replay.json",
        ],
        None,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("VERIFIED"), "{out}");
    assert!(out.contains("redeploy.verify.reachable"), "{out}");
}

#[test]
fn quick_start_rejected_example_exits_1_with_the_failing_rule_first() {
    let o = provgate(
        &[
            "verify",
            "--inspect",
            "docs/examples/rejected.json",
            "--replay",
            "docs/examples/lookups.replay.json",
        ],
        None,
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
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
fn every_inspect_shape_of_the_same_image_gives_the_same_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let replay = replay_all_found(dir.path());
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
        let path = fixture(file);
        let mut args = vec!["verify", "--inspect", &path, "--replay", replay, "--format", "json"];
        args.extend(extra);
        let o = provgate(&args, None);
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
    let dir = tempfile::tempdir().unwrap();
    let replay = replay_all_found(dir.path());
    let index = fixture("buildx-index.json");
    let args = |platform: &'static str| {
        vec![
            "verify".to_string(),
            "--inspect".into(),
            index.clone(),
            "--replay".into(),
            replay.to_str().unwrap().into(),
            "--format".into(),
            "json".into(),
            "--platform".into(),
            platform.into(),
        ]
    };
    let run = |platform| {
        let a = args(platform);
        provgate(&a.iter().map(String::as_str).collect::<Vec<_>>(), None)
    };
    let amd = run("linux/amd64");
    assert_eq!(code(&amd), 0, "{}", stderr(&amd));
    assert_eq!(verdict_json(&amd)["subject"]["platform"], "linux/amd64");

    // The arm64 image carries another revision than the tag names.
    let arm = run("linux/arm64");
    assert_eq!(code(&arm), 1, "{}", stderr(&arm));
    let v = verdict_json(&arm);
    assert_eq!(v["subject"]["platform"], "linux/arm64");
    assert_eq!(v["event"], "redeploy.verify.pin_mismatch");
    assert_eq!(
        v["subject"]["digest"],
        verdict_json(&amd)["subject"]["digest"],
        "the index digest is the subject"
    );

    let missing = run("linux/s390x");
    assert_eq!(code(&missing), 2);
    assert!(stderr(&missing).contains("linux/s390x"), "{}", stderr(&missing));
}

#[test]
fn stdin_dash_reads_the_json_from_standard_input() {
    let skopeo = std::fs::read(repo_root().join(fixture("skopeo.json"))).unwrap();
    let o = provgate(
        &[
            "verify",
            "--inspect",
            "-",
            "--replay",
            "docs/examples/lookups.replay.json",
            "--format",
            "json",
        ],
        Some(&skopeo),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        verdict_json(&o)["subject"]["reference"],
        "git.moleculesai.app/molecule-ai/app"
    );
}

#[test]
fn docker_inspect_of_a_local_image_needs_digest() {
    let dir = tempfile::tempdir().unwrap();
    let replay = replay_all_found(dir.path());
    let local = fixture("docker-inspect-local.json");
    let o = provgate(
        &["verify", "--inspect", &local, "--replay", replay.to_str().unwrap()],
        None,
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--digest"), "{}", stderr(&o));
    let o = provgate(
        &[
            "verify",
            "--inspect",
            &local,
            "--replay",
            replay.to_str().unwrap(),
            "--digest",
            DIGEST,
        ],
        None,
    );
    assert_ne!(code(&o), 2, "{}", stderr(&o));
}

#[test]
fn json_verdict_has_exactly_the_fields_of_spec_section_4() {
    let o = provgate(
        &[
            "verify",
            "--inspect",
            "docs/examples/verified.json",
            "--replay",
            "docs/examples/lookups.replay.json",
            "--format",
            "json",
        ],
        None,
    );
    let v = verdict_json(&o);
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
    let o = provgate(
        &[
            "verify",
            "--inspect",
            "docs/examples/rejected.json",
            "--replay",
            "docs/examples/lookups.replay.json",
            "--mode",
            "log-only",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = verdict_json(&o);
    assert_eq!(
        (v["status"].as_str(), v["allowed"].as_bool(), v["mode"].as_str()),
        (Some("rejected"), Some(true), Some("log-only"))
    );
}

#[test]
fn github_format_prints_workflow_commands() {
    let o = provgate(
        &[
            "verify",
            "--inspect",
            "docs/examples/rejected.json",
            "--replay",
            "docs/examples/lookups.replay.json",
            "--format",
            "github",
        ],
        None,
    );
    assert_eq!(code(&o), 1);
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

#[test]
fn pin_flags_feed_pin_consistent() {
    let base = [
        "verify",
        "--inspect",
        "docs/examples/verified.json",
        "--replay",
        "docs/examples/lookups.replay.json",
        "--format",
        "json",
    ];
    let other = format!("sha256:{}", "0".repeat(64));
    let mut args = base.to_vec();
    args.extend([
        "--pin-digest",
        &other,
        "--pin-source-sha",
        SHA,
        "--pin-runtime",
        "python",
    ]);
    let o = provgate(&args, None);
    assert_eq!(code(&o), 1);
    assert_eq!(verdict_json(&o)["event"], "redeploy.verify.pin_mismatch");

    let mut args = base.to_vec();
    args.extend(["--pin-digest", DIGEST, "--pin-source-sha", SHA]);
    let o = provgate(&args, None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let mut args = base.to_vec();
    args.extend(["--pin-source-sha", SHA]);
    assert_eq!(code(&provgate(&args, None)), 2, "--pin-source-sha needs --pin-digest");
}

// exit code 2: bad usage or bad input

#[test]
fn malformed_json_exits_2_and_names_the_input() {
    let o = provgate(&["verify", "--inspect", "-"], Some(b"{\"Name\": "));
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("--inspect -") && stderr(&o).contains("line 1"),
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
    let o = provgate(
        &[
            "verify",
            "--inspect",
            "docs/examples/verified.json",
            "--replay",
            bad.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("bad.json"), "{}", stderr(&o));
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
    let o = provgate(
        &[
            "verify",
            "--inspect",
            "docs/examples/verified.json",
            "--replay",
            "docs/examples/lookups.replay.json",
            "--policy",
            bogus.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("policy.wasm"), "{}", stderr(&o));
}

#[test]
fn the_builtin_digest_satisfies_policy_digest() {
    let digest = provgate::policy::Artifact::builtin().digest;
    let o = provgate(
        &[
            "verify",
            "--inspect",
            "docs/examples/verified.json",
            "--replay",
            "docs/examples/lookups.replay.json",
            "--policy-digest",
            &digest,
        ],
        None,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
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
        provgate::policy::artifact::sha256_digest(&built),
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
fn policy_inspect_prints_name_digest_world_rules_and_settings() {
    let o = provgate(&["policy", "inspect", "--format", "json"], None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["name"], "provgate-provenance");
    assert_eq!(d["world"], "provgate:policy/provgate@0.1.0");
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

/// The verified example with its source moved to the stand-in's host.
fn subject_on(gitea: &GiteaStandIn, dir: &Path, repo: &str) -> String {
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(repo_root().join("docs/examples/verified.json")).unwrap()).unwrap();
    v["image"]["config"]["Labels"][SOURCE] = json!(format!("{}/molecule-ai/{repo}", gitea.base_url()));
    let path = dir.join(format!("{repo}.json"));
    std::fs::write(&path, v.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn record_then_replay_reproduces_the_decision_and_never_leaks_the_token() {
    let gitea = GiteaStandIn::start();
    let token = "pg-test-token-4b1d9c";
    gitea.add_private_commit("molecule-ai", "app", SHA, token);
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_for(&gitea.base_url(), dir.path());
    let subject = subject_on(&gitea, dir.path(), "app");
    let record = dir.path().join("run.replay.json");

    let o = provgate_env(
        &[
            "verify",
            "--inspect",
            &subject,
            "--policy",
            &policy,
            "--format",
            "json",
            "--record",
            record.to_str().unwrap(),
            "-vv",
        ],
        None,
        &[("GITEA_TOKEN", token)],
    );
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let recorded = std::fs::read_to_string(&record).unwrap();
    for text in [stdout(&o), stderr(&o), recorded.clone()] {
        assert!(!text.contains(token), "the token leaked: {text}");
    }
    assert_eq!(gitea.hits("/git/commits/"), 1);
    assert_eq!(
        gitea.requests()[0].authorization.as_deref(),
        Some(format!("token {token}").as_str())
    );

    let replayed = provgate(
        &[
            "verify",
            "--inspect",
            &subject,
            "--policy",
            &policy,
            "--format",
            "json",
            "--replay",
            record.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code(&replayed), 0, "{}", stderr(&replayed));
    assert_eq!(verdict_json(&replayed), verdict_json(&o));
    assert_eq!(gitea.hits("/git/commits/"), 1, "replay touched the network");
}

#[test]
fn private_repo_without_token_is_rejected_with_a_hint_about_the_token() {
    let gitea = GiteaStandIn::start();
    gitea.add_private_commit("molecule-ai", "app", SHA, "some-token");
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_for(&gitea.base_url(), dir.path());
    let subject = subject_on(&gitea, dir.path(), "app");
    let o = provgate(
        &["verify", "--inspect", &subject, "--policy", &policy, "--format", "json"],
        None,
    );
    assert_eq!(code(&o), 1);
    let v = verdict_json(&o);
    assert_eq!(v["event"], "redeploy.verify.unresolved");
    let resolves = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "revision.resolves")
        .unwrap();
    assert!(
        resolves["message"].as_str().unwrap().contains("GITEA_TOKEN"),
        "{resolves}"
    );
}

#[test]
fn hanging_gitea_gives_an_indeterminate_denial_after_the_timeout() {
    let gitea = GiteaStandIn::start();
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_for(&gitea.base_url(), dir.path());
    let subject = subject_on(&gitea, dir.path(), "hang");
    let o = provgate(
        &[
            "verify",
            "--inspect",
            &subject,
            "--policy",
            &policy,
            "--format",
            "json",
            "--gitea-timeout",
            "0.5",
        ],
        None,
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = verdict_json(&o);
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
    let args = [
        "verify",
        "--inspect",
        "docs/examples/verified.json",
        "--replay",
        "docs/examples/lookups.replay.json",
    ];
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
