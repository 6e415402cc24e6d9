//! What provgate's tests and benches share: stand-ins for the peers a user
//! would have (Gitea, a lying registry, the control plane), the harness of
//! the real registry, WAT guests that misbehave, the fuzz targets'
//! invariants, and the helpers below — the built-in policy, good subjects,
//! scripted answers and the `provgate` binary run as a user runs it.

pub mod canned;
pub mod cp;
pub mod fuzz_checks;
pub mod gitea;
pub mod registry;
pub mod registry_liar;
pub mod serve;
pub mod tls;
pub mod wat_guest;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use provgate::judge::judge;
use provgate::lookup::{Answer, Answering, Answers, Question};
use provgate::policy::{Artifact, Limits, Policy, cache::CodeCache};
use provgate::subject::Subject;
use provgate::verdict::{Mode, Verdict};

pub use provgate_contract::labels::{CREATED, REVISION, RUN_ID, SOURCE};

pub const SHA: &str = "36b68ae653f75d2ed731081e35541b6f6a0e7c0b";
pub const DIGEST: &str = "sha256:8cbffb2fd0364dd51e206a3ed61d584d5a7668fb71df7469702d24b6d2536d09";
pub const GITEA: &str = "https://git.moleculesai.app";

/// The clock every rule test uses: 2026-11-23T10:00:00Z.
pub fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_428_000)
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Compiled code shared by every test process of this build.
pub fn cache_dir() -> PathBuf {
    repo_root().join("target").join("test-code-cache")
}

/// The built-in policy, compiled once per test binary.
pub fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        Policy::load(
            Artifact::builtin(),
            Limits::default(),
            Some(&CodeCache::new(cache_dir())),
        )
        .expect("built-in policy loads")
    })
}

/// A subject that passes every rule (with a lookup that finds the commit).
pub fn good_subject() -> Subject {
    let labels = BTreeMap::from([
        (SOURCE.to_string(), format!("{GITEA}/molecule-ai/app")),
        (REVISION.to_string(), SHA.to_string()),
        (CREATED.to_string(), "2026-11-01T10:00:00Z".to_string()),
        (RUN_ID.to_string(), "4242".to_string()),
    ]);
    Subject {
        reference: format!("git.moleculesai.app/molecule-ai/app:staging-{SHA}"),
        digest: DIGEST.to_string(),
        labels,
        pin: None,
        platform: None,
    }
}

/// Runs a future (the pipeline, say: `block_on(judge(…))`) to its end on
/// a runtime of its own.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

/// The built-in policy's verdict on `subject` at [`now`], in `mode`.
pub fn verdict_of(subject: &Subject, mode: Mode, answers: &dyn Answers) -> Verdict {
    block_on(judge(policy(), subject, mode, now(), answers))
        .expect("the built-in policy judges")
        .verdict
}

/// Answers that give one fixed answer and remember what they were asked.
/// At hand (like a cache hit) unless made `waited`.
pub struct Scripted {
    pub answer: Answer,
    pub asked: Mutex<Vec<(String, String, String)>>,
    pub at_hand: bool,
}

impl Scripted {
    pub fn new(answer: Answer) -> Arc<Scripted> {
        Arc::new(Scripted {
            answer,
            asked: Mutex::new(Vec::new()),
            at_hand: true,
        })
    }

    /// Answers that must be waited for: the pipeline frees the instance and
    /// starts another with the answer supplied.
    pub fn waited(answer: Answer) -> Arc<Scripted> {
        Arc::new(Scripted {
            answer,
            asked: Mutex::new(Vec::new()),
            at_hand: false,
        })
    }

    pub fn found() -> Arc<Scripted> {
        Scripted::new(Answer::Found)
    }

    pub fn asked(&self) -> Vec<(String, String, String)> {
        self.asked.lock().unwrap().clone()
    }
}

impl Scripted {
    fn give(&self, q: &Question) -> Answer {
        self.asked
            .lock()
            .unwrap()
            .push((q.owner.clone(), q.repo.clone(), q.sha.clone()));
        self.answer.clone()
    }
}

impl Answers for Scripted {
    fn at_hand(&self, q: &Question) -> Option<Answer> {
        self.at_hand.then(|| self.give(q))
    }

    fn answer<'a>(&'a self, q: &'a Question) -> Answering<'a> {
        Box::pin(std::future::ready(self.give(q)))
    }
}

/// Runs the real `provgate` binary with the shared code cache and no token.
pub fn provgate(args: &[&str], stdin: Option<&[u8]>) -> Output {
    provgate_env(args, stdin, &[])
}

/// The `provgate` command the tests run: the shared code cache, no token,
/// no log filter from the caller's environment, output piped, `env` added.
pub fn provgate_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(provgate_bin());
    cmd.args(args)
        .current_dir(repo_root())
        .env("PROVGATE_CACHE_DIR", cache_dir())
        // The caller's own registry credentials never reach a test: no
        // auth file, and a docker config directory without a config.json,
        // unless the test names its own below.
        .env_remove("REGISTRY_AUTH_FILE")
        .env("DOCKER_CONFIG", empty_docker_config())
        .env_remove("GITEA_TOKEN")
        .env_remove("RUST_LOG")
        // Run inside a real Actions job, `--format github` tests would
        // append to the job's own outputs and summary.
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The cargo target directory of the build these tests belong to: test
/// executables live in `<target>/<profile>/deps`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.ancestors()
        .nth(3)
        .expect("test executables live in <target>/<profile>/deps")
        .to_path_buf()
}

/// The `provgate` binary of the build these tests belong to: cargo builds
/// it next to the directory that holds the test executables.
pub fn provgate_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executables live in <target>/<profile>/deps");
    profile_dir.join(format!("provgate{}", std::env::consts::EXE_SUFFIX))
}

/// Lines a child process writes to `stderr`, kept for the test to read,
/// and the first address `listening` finds in one of them, sent once. The
/// pipe is read for the child's whole life: a full pipe would block it.
pub fn watch_stderr(
    stderr: std::process::ChildStderr,
    listening: fn(&str) -> Option<String>,
) -> (Arc<Mutex<Vec<String>>>, std::sync::mpsc::Receiver<String>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let kept = Arc::clone(&log);
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            if let Some(addr) = listening(&line)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(addr);
            }
            kept.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });
    (log, rx)
}

/// A docker config directory with no `config.json` in it.
pub fn empty_docker_config() -> PathBuf {
    let dir = repo_root().join("target").join("test-empty-docker-config");
    std::fs::create_dir_all(&dir).expect("create the empty docker config directory");
    dir
}

/// The labels a good build of `revision` carries.
pub fn good_labels(revision: &str) -> Vec<(&'static str, &str)> {
    vec![
        (SOURCE, "https://git.moleculesai.app/molecule-ai/app"),
        (REVISION, revision),
        (CREATED, "2026-11-01T10:00:00Z"),
        (RUN_ID, "4242"),
    ]
}

pub fn provgate_env(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
    let mut cmd = provgate_command(args, env);
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("provgate starts");
    let writer = stdin.map(|input| {
        let mut pipe = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        // provgate may stop reading early (an oversized input): ignore EPIPE.
        std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut pipe, &input);
        })
    });
    let output = child.wait_with_output().expect("provgate runs");
    if let Some(writer) = writer {
        writer.join().expect("stdin writer");
    }
    output
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The process's exit code (it must have exited, not been killed).
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

/// `provgate policy build` with the given settings JSON into `dir`; the
/// artifact's path. Panics with provgate's stderr if the build fails.
pub fn policy_with_settings(dir: &std::path::Path, name: &str, settings: &serde_json::Value) -> String {
    let settings_path = dir.join(format!("{name}.settings.json"));
    std::fs::write(&settings_path, settings.to_string()).expect("write the settings");
    let out = dir.join(format!("{name}.wasm"));
    let o = provgate(
        &[
            "policy",
            "build",
            "--settings",
            settings_path.to_str().expect("utf-8 path"),
            "--out",
            out.to_str().expect("utf-8 path"),
        ],
        None,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    out.to_str().expect("utf-8 path").to_string()
}

/// A policy whose Gitea is the stand-in at `gitea_base_url`, trusting `molecule-ai`.
pub fn policy_for(gitea_base_url: &str, dir: &std::path::Path) -> String {
    policy_with_settings(
        dir,
        "standin",
        &serde_json::json!({"gitea_base_url": gitea_base_url, "allowed_owners": ["molecule-ai"]}),
    )
}

/// The kind of every answer (`found`, `not_found`, …) each decision record
/// holds, record by record.
pub fn answer_kinds(records: &[serde_json::Value]) -> Vec<Vec<&str>> {
    records
        .iter()
        .map(|r| {
            r["answers"]
                .as_array()
                .expect("a record's answers")
                .iter()
                .map(|a| a["answer"].as_str().expect("an answer's kind"))
                .collect()
        })
        .collect()
}
