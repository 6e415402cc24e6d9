//! The machine-readable contract, checked against the real thing: every
//! answer a running `provgate serve` gives is declared in the OpenAPI
//! document it serves (status, content type, required headers) and its body
//! validates against the declared schema; every documented answer is
//! produced at least once; verdicts and decision records from `serve` and
//! `verify` validate against docs/schemas/, and mangled ones do not.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use boon::{Compiler, SchemaIndex, Schemas};
use provgate_contract::{Event, RuleId};
use provgate_testkit::gitea::GiteaStandIn;
use provgate_testkit::serve::{Served, command};
use provgate_testkit::*;
use serde_json::{Value, json};

use super::serve::{build_policy, labels};

/// Where the documents are registered with the validator; nothing is
/// fetched from it.
const BASE: &str = "http://provgate.test/";
const TOKEN: &str = "pg-schema-token-51c0";

/// Answers the document declares that this test does not produce, and
/// where each is checked instead.
const NOT_PRODUCED_HERE: &[(&str, &str, u16)] = &[
    // A policy that traps: host/src/commands/serve/tests.rs and
    // tests/integration/sandbox.rs (the body is the same `Error`).
    ("/v1/verify", "post", 500),
];

/// One answer as it came off the wire.
struct Answer {
    method: &'static str,
    path: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} {} {}: not JSON ({e})", self.method, self.path, self.status))
    }
}

/// A schema to check a body or a header against.
struct Declared {
    content: HashMap<String, SchemaIndex>,
    /// Required headers, with the schema of their value.
    headers: Vec<(String, SchemaIndex)>,
}

/// The served OpenAPI document, its response schemas compiled.
struct Api {
    paths: BTreeSet<String>,
    responses: HashMap<(String, String, u16), Declared>,
    /// For a method the document does not list on one of its paths.
    method_not_allowed: Declared,
    schemas: Schemas,
    error: SchemaIndex,
}

impl Api {
    fn compile(document: &Value) -> Api {
        assert_eq!(document["openapi"], "3.1.0", "{document}");
        let mut document = document.clone();
        // Each schema to compile is copied under one plain key, so that its
        // location is a simple pointer (media types hold `/`, `;` and
        // spaces) while its `#/components/…` references still resolve in
        // the same document.
        let mut checked: Vec<Value> = Vec::new();
        // (path, method, status), then (media type or header name, index
        // into `checked`) for the bodies and the required headers.
        type Named = Vec<(String, usize)>;
        let mut declared: Vec<((String, String, u16), Named, Named)> = Vec::new();
        let resolve = |value: &Value| -> Value {
            match value.get("$ref").and_then(Value::as_str) {
                Some(target) => document
                    .pointer(target.strip_prefix('#').expect("a local reference"))
                    .unwrap_or_else(|| panic!("{target} resolves"))
                    .clone(),
                None => value.clone(),
            }
        };
        let paths = document["paths"].as_object().expect("paths").clone();
        let other_method = json!({"*": {"*": {"responses": {
            "405": {"$ref": "#/components/responses/MethodNotAllowed"}
        }}}});
        let listed = paths.iter().chain(other_method.as_object().unwrap());
        for (path, operations) in listed {
            for (method, operation) in operations.as_object().expect("operations") {
                for (status, response) in operation["responses"].as_object().expect("responses") {
                    let response = resolve(response);
                    let status: u16 = status.parse().expect("a numeric status");
                    let mut content = Vec::new();
                    for (media, body) in response["content"].as_object().expect("every answer has a body") {
                        checked.push(body["schema"].clone());
                        content.push((media.clone(), checked.len() - 1));
                    }
                    let mut headers = Vec::new();
                    for (name, header) in response["headers"].as_object().into_iter().flatten() {
                        let header = resolve(header);
                        if header["required"] == true {
                            checked.push(header["schema"].clone());
                            headers.push((name.to_ascii_lowercase(), checked.len() - 1));
                        }
                    }
                    declared.push(((path.clone(), method.clone(), status), content, headers));
                }
            }
        }
        document["x-checked"] = Value::Array(checked);
        let url = format!("{BASE}openapi.json");
        let mut compiler = Compiler::new();
        compiler.add_resource(&url, document).expect("the document is JSON");
        let mut schemas = Schemas::new();
        let mut at = |pointer: &str| {
            compiler
                .compile(&format!("{url}#{pointer}"), &mut schemas)
                .unwrap_or_else(|e| panic!("{pointer}: {e:#}"))
        };
        let error = at("/components/schemas/Error");
        let mut responses = HashMap::new();
        let mut method_not_allowed = None;
        for (key, content, headers) in declared {
            let content = content
                .into_iter()
                .map(|(media, i)| (media, at(&format!("/x-checked/{i}"))))
                .collect();
            let headers = headers
                .into_iter()
                .map(|(name, i)| (name, at(&format!("/x-checked/{i}"))))
                .collect();
            let declared = Declared { content, headers };
            if key.0 == "*" {
                method_not_allowed = Some(declared);
            } else {
                responses.insert(key, declared);
            }
        }
        Api {
            paths: paths.keys().cloned().collect(),
            responses,
            method_not_allowed: method_not_allowed.expect("components.responses.MethodNotAllowed"),
            schemas,
            error,
        }
    }

    /// Panics, naming the answer, unless the document declares it exactly.
    fn check(&self, answer: &Answer) {
        let what = format!("{} {} → {}", answer.method, answer.path, answer.status);
        let method = answer.method.to_ascii_lowercase();
        let listed = self.responses.keys().any(|(p, m, _)| *p == answer.path && *m == method);
        let declared = if listed {
            self.responses.get(&(answer.path.clone(), method, answer.status))
        } else if self.paths.contains(&answer.path) && answer.status == 405 {
            Some(&self.method_not_allowed)
        } else {
            None
        };
        let declared = declared.unwrap_or_else(|| panic!("{what} is not in the OpenAPI document"));
        let media = answer
            .header("content-type")
            .unwrap_or_else(|| panic!("{what}: no content type"));
        let schema = declared
            .content
            .get(media)
            .unwrap_or_else(|| panic!("{what}: content type {media:?} is not declared"));
        let body = if media.starts_with("application/json") {
            answer.json()
        } else {
            Value::String(String::from_utf8(answer.body.clone()).expect("a text body"))
        };
        if let Err(e) = self.schemas.validate(&body, *schema) {
            panic!("{what}: the body does not match its schema: {e:#}\n{body}");
        }
        for (name, schema) in &declared.headers {
            let value = answer
                .header(name)
                .unwrap_or_else(|| panic!("{what}: the required header {name} is missing"));
            if let Err(e) = self.schemas.validate(&Value::from(value), *schema) {
                panic!("{what}: header {name}: {value:?} does not match: {e:#}");
            }
        }
    }
}

/// A request's body: these bytes, or only a `Content-Length` that says so
/// many are coming (and none do).
enum Body<'a> {
    Sent(&'a [u8]),
    Promised(usize),
}

/// Sends one request on a fresh connection and reads the whole answer.
fn exchange(addr: &str, method: &'static str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    exchange_raw(addr, method, path, headers, Body::Sent(body))
}

fn exchange_raw(addr: &str, method: &'static str, path: &str, headers: &[(&str, &str)], body: Body) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("the server accepts");
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let (length, bytes) = match body {
        Body::Sent(bytes) => (bytes.len(), bytes),
        Body::Promised(length) => (length, &b""[..]),
    };
    request.push_str(&format!("content-length: {length}\r\n\r\n"));
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(bytes).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) if !raw.is_empty() => break,
            Err(e) => panic!("{method} {path}: no answer: {e}"),
        }
    }
    parse_answer(method, path, &raw)
}

fn parse_answer(method: &'static str, path: &str, raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).expect("ASCII headers");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(n, v)| n == "transfer-encoding" && v == "chunked") {
        body = dechunk(&body);
    }
    Answer {
        method,
        path: path.to_string(),
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let end = raw.windows(2).position(|w| w == b"\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 2 + size + 2..];
    }
}

fn serve(args: &[&str]) -> Served {
    Served::start(command(args, &[("PROVGATE_TEST_TOKEN", TOKEN)]))
}

fn subject(gitea: &GiteaStandIn, mode: &str, repo: &str) -> Vec<u8> {
    json!({
        "mode": mode,
        "subject": {
            "reference": format!("registry.example/molecule-ai/{repo}:staging-{SHA}"),
            "digest": DIGEST,
            "labels": labels(gitea, repo, SHA),
        }
    })
    .to_string()
    .into_bytes()
}

#[test]
fn every_answer_of_serve_is_declared_in_its_openapi_document_and_every_declared_answer_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let gitea = GiteaStandIn::start();
    gitea.add_commit("molecule-ai", "app", SHA);
    gitea.add_commit("molecule-ai", "app-new", SHA);
    gitea.rename("molecule-ai", "app-old", "molecule-ai", "app-new");
    let policy = build_policy(&gitea, dir.path(), "schemas", 300);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let server = serve(&[
        "--policy",
        policy.to_str().unwrap(),
        "--auth-token-env",
        "PROVGATE_TEST_TOKEN",
        "--allow-registry",
        &closed,
        "--insecure-registry",
        &closed,
        "--registry-timeout",
        "5",
        "--body-timeout",
        "1",
        "--decision-log",
        "-",
    ]);
    let addr = server.addr.as_str();
    let bearer = format!("Bearer {TOKEN}");
    let auth: &[(&str, &str)] = &[("authorization", &bearer)];

    let document = exchange(addr, "GET", "/openapi.json", &[], b"");
    assert_eq!(document.status, 200);
    let api = Api::compile(&document.json());

    let verify = |body: &[u8]| exchange(addr, "POST", "/v1/verify", auth, body);
    let mut answers = vec![
        document,
        exchange(addr, "GET", "/healthz", &[], b""),
        exchange(addr, "GET", "/readyz", &[("x-request-id", "ready-1")], b""),
        exchange(addr, "GET", "/metrics", auth, b""),
        exchange(addr, "GET", "/metrics", &[], b""),
        verify(&subject(&gitea, "enforce", "app")),
        verify(&subject(&gitea, "enforce", "app-old")),
        verify(&subject(&gitea, "log-only", "e500")),
        verify(
            br#"{"mode": "enforce", "subject": {"reference": "r.example/a:b", "digest": "sha256:00", "labels": null}}"#,
        ),
        verify(b"{"),
        verify(br#"{"mode": "enforce", "image": "r.example/a:b", "pinn": {}}"#),
        verify(br#"{"mode": "enforce", "image": "nginx:latest"}"#),
        verify(format!(r#"{{"mode": "enforce", "image": "{closed}/molecule-ai/app:latest"}}"#).as_bytes()),
        exchange_raw(addr, "POST", "/v1/verify", auth, Body::Promised(65 * 1024)),
        exchange(addr, "POST", "/v1/verify", &[], b"{}"),
        exchange(addr, "GET", "/v1/verify", auth, b""),
        exchange(addr, "POST", "/healthz", &[], b""),
        exchange(addr, "DELETE", "/readyz", &[], b""),
        exchange(addr, "PUT", "/metrics", auth, b""),
        exchange(addr, "POST", "/openapi.json", &[], b""),
        exchange_raw(addr, "POST", "/v1/verify", auth, Body::Promised(10)),
    ];

    // 503: the one connection a `--max-connections 1` server takes is held.
    let capped = serve(&["--max-connections", "1"]);
    let held = TcpStream::connect(&capped.addr).unwrap();
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        let shed = exchange(&capped.addr, "GET", path, &[], b"");
        assert_eq!(shed.status, 503, "{path}: {}", String::from_utf8_lossy(&shed.body));
        answers.push(shed);
    }
    for (method, path) in [("POST", "/v1/verify"), ("GET", "/metrics")] {
        answers.push(exchange(&capped.addr, method, path, &[], b""));
    }
    drop(held);

    let mut seen = BTreeSet::new();
    for answer in &answers {
        api.check(answer);
        seen.insert((answer.path.clone(), answer.method.to_ascii_lowercase(), answer.status));
    }
    let statuses: Vec<Value> = answers[5..9].iter().map(|a| a.json()["status"].clone()).collect();
    assert_eq!(
        statuses,
        [
            json!("verified"),
            json!("verified"),
            json!("indeterminate"),
            json!("rejected")
        ],
        "the verdicts checked cover every status"
    );
    for (path, method, status) in api.responses.keys() {
        let key = (path.clone(), method.clone(), *status);
        let excused = NOT_PRODUCED_HERE.contains(&(path.as_str(), method.as_str(), *status));
        assert!(
            seen.contains(&key) || excused,
            "the document declares {method} {path} → {status}, which no request here produced"
        );
    }

    // A path the document does not have is a 404 with the same error body,
    // and the 404 names exactly the documented routes.
    let missing = exchange(addr, "GET", "/v2/verify", &[], b"");
    assert_eq!(missing.status, 404);
    let error = missing.json();
    assert!(api.schemas.validate(&error, api.error).is_ok(), "{error}");
    let message = error["error"].as_str().unwrap();
    let named: BTreeSet<String> = message
        .split_once("serves ")
        .map(|(_, list)| {
            list.split(", ")
                .filter_map(|r| r.split(' ').nth(1))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        named, api.paths,
        "the 404 message and the document list the same routes: {message}"
    );

    // The decision log has one record per verdict, each valid.
    let records = Records::compile();
    let log = server.stdout();
    let logged: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(logged.len(), 4, "{log}");
    for record in &logged {
        records.check_record(record);
    }
    let kinds: BTreeSet<&str> = logged
        .iter()
        .flat_map(|r| r["answers"].as_array().unwrap())
        .map(|a| a["answer"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, BTreeSet::from(["found", "moved", "unavailable"]), "{log}");
}

/// docs/schemas/, as a reader of the repository finds them.
struct Records {
    schemas: Schemas,
    verdict: SchemaIndex,
    record: SchemaIndex,
}

impl Records {
    fn compile() -> Records {
        let mut compiler = Compiler::new();
        for name in ["verdict.schema.json", "decision-record.schema.json"] {
            let path = repo_root().join("docs/schemas").join(name);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            compiler.add_resource(&format!("{BASE}schemas/{name}"), value).unwrap();
        }
        let mut schemas = Schemas::new();
        let mut at = |name: &str| {
            compiler
                .compile(&format!("{BASE}schemas/{name}"), &mut schemas)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"))
        };
        let verdict = at("verdict.schema.json");
        let record = at("decision-record.schema.json");
        Records {
            schemas,
            verdict,
            record,
        }
    }

    fn valid(&self, value: &Value, schema: SchemaIndex) -> Result<(), String> {
        self.schemas.validate(value, schema).map_err(|e| format!("{e:#}"))
    }

    fn check_verdict(&self, verdict: &Value) {
        if let Err(e) = self.valid(verdict, self.verdict) {
            panic!("the verdict does not match docs/schemas/verdict.schema.json: {e}\n{verdict}");
        }
    }

    fn check_record(&self, record: &Value) {
        if let Err(e) = self.valid(record, self.record) {
            panic!("the record does not match docs/schemas/decision-record.schema.json: {e}\n{record}");
        }
    }
}

#[test]
fn verify_verdicts_and_records_match_their_json_schemas_and_mangled_ones_do_not() {
    let schemas = Records::compile();
    let dir = tempfile::tempdir().unwrap();
    let answered = "docs/examples/lookups.replay.json".to_string();
    // No answers: every look-up is unavailable, the verdict indeterminate.
    let unanswered = dir.path().join("unanswered.json");
    std::fs::write(&unanswered, r#"{"now": "2026-11-20T12:00:00Z", "lookups": []}"#).unwrap();
    let unanswered = unanswered.to_str().unwrap().to_string();
    let mut verdicts = Vec::new();
    let mut records = Vec::new();
    let samples = [
        ("docs/examples/verified.json", &answered),
        ("docs/examples/rejected.json", &answered),
        ("docs/examples/verified.json", &unanswered),
        ("tests/data/inspect/buildx-index.json", &answered),
        ("tests/data/inspect/skopeo.json", &answered),
        ("tests/data/inspect/docker-inspect.json", &unanswered),
        ("tests/data/inspect/buildx-single-attested.json", &answered),
    ];
    for (i, (sample, replay)) in samples.into_iter().enumerate() {
        let record = dir.path().join(format!("{i}.record.json"));
        let out = provgate(
            &[
                "verify",
                "--inspect",
                sample,
                "--replay",
                replay,
                "--format",
                "json",
                "--record",
                record.to_str().unwrap(),
            ],
            None,
        );
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{sample}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let verdict: Value = serde_json::from_slice(&out.stdout).expect("a JSON verdict");
        schemas.check_verdict(&verdict);
        let record: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
        schemas.check_record(&record);
        verdicts.push(verdict);
        records.push(record);
    }
    for example in [
        "docs/examples/verified.record.json",
        "docs/examples/rejected.record.json",
    ] {
        let text = std::fs::read_to_string(repo_root().join(example)).unwrap();
        schemas.check_record(&serde_json::from_str(&text).unwrap());
    }
    let statuses: BTreeSet<&str> = verdicts.iter().map(|v| v["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.len(), 3, "every status was checked: {statuses:?}");
    assert!(
        verdicts.iter().any(|v| v["subject"].get("platform").is_some()),
        "a platform of an index was checked"
    );

    let mangle = |value: &Value, pointer: &str, to: Option<Value>| {
        let mut value = value.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let parent = value.pointer_mut(parent).unwrap_or_else(|| panic!("{pointer}"));
        match (to, parent) {
            (Some(to), Value::Object(o)) => drop(o.insert(key.to_string(), to)),
            (None, Value::Object(o)) => drop(o.remove(key)),
            (Some(to), Value::Array(a)) => a[key.parse::<usize>().unwrap()] = to,
            other => panic!("{pointer}: {other:?}"),
        }
        value
    };
    let verdict = &verdicts[0];
    for (pointer, to) in [
        ("/status", Some(json!("ok"))),
        ("/allowed", Some(json!("true"))),
        ("/event", Some(json!("redeploy.verify.fine"))),
        ("/event", None),
        ("/mode", Some(json!("audit"))),
        ("/policy/digest", Some(json!("sha256:ABC"))),
        ("/subject/reference", None),
        ("/findings/0/rule", Some(json!("labels.exist"))),
        ("/findings/0/outcome", Some(json!("passed"))),
        ("/findings/1/message", None),
    ] {
        let bad = mangle(verdict, pointer, to.clone());
        assert!(
            schemas.valid(&bad, schemas.verdict).is_err(),
            "a verdict with {pointer} = {to:?} passed the schema"
        );
    }
    let record = records
        .iter()
        .find(|r| !r["answers"].as_array().unwrap().is_empty())
        .expect("a look-up");
    for (pointer, to) in [
        ("/record", Some(json!("provgate.decision/2"))),
        ("/id", Some(json!("sha256:1234"))),
        ("/now", Some(json!("2026-12-01T16:00:00Z"))),
        ("/subject/labels", None),
        ("/subject/colour", Some(json!("blue"))),
        ("/answers/0/answer", Some(json!("maybe"))),
        (
            "/answers/0",
            Some(json!({"owner": "o", "repo": "r", "sha": SHA, "answer": "unavailable"})),
        ),
        (
            "/answers/0",
            Some(json!({"owner": "o", "repo": "r", "sha": SHA, "answer": "moved"})),
        ),
        ("/verdict/status", Some(json!("maybe"))),
    ] {
        let bad = mangle(record, pointer, to.clone());
        assert!(
            schemas.valid(&bad, schemas.record).is_err(),
            "a record with {pointer} = {to:?} passed the schema"
        );
    }
}

#[test]
fn the_verdict_schema_names_exactly_the_rules_and_events_of_the_contract() {
    let path = repo_root().join("docs/schemas/verdict.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let listed = |pointer: &str| -> Vec<String> {
        schema
            .pointer(pointer)
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{pointer}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let rules: Vec<String> = RuleId::ALL.iter().map(|r| r.as_str().to_string()).collect();
    let events: Vec<String> = Event::ALL.iter().map(|e| e.as_str().to_string()).collect();
    assert_eq!(listed("/properties/findings/items/properties/rule/enum"), rules);
    assert_eq!(listed("/properties/event/enum"), events);
}

#[test]
fn the_documents_in_the_repository_are_valid_json_schema_and_openapi_json() {
    let mut compiler = Compiler::new();
    let mut schemas = Schemas::new();
    // Compiling checks each against its draft's meta-schema.
    for name in ["verdict.schema.json", "decision-record.schema.json"] {
        let path = repo_root().join("docs/schemas").join(name);
        compiler
            .compile(path.to_str().unwrap(), &mut schemas)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    }
    let openapi: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("docs/openapi.json")).unwrap()).unwrap();
    assert_eq!(
        openapi["components"]["schemas"]["Verdict"]["$ref"],
        "schemas/verdict.schema.json"
    );
    assert!(Path::new(&repo_root().join("docs/schemas/verdict.schema.json")).is_file());
}

/// The schemathesis release this suite was last run with; pinned so that
/// a new release's new checks arrive as a change of this line.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// `st` in a virtual environment under the target directory, installed
/// from PyPI on first use.
fn schemathesis() -> std::path::PathBuf {
    let venv = target_dir().join("schemathesis");
    let st = venv.join("bin/st");
    let pinned = venv.join("pinned");
    if std::fs::read_to_string(&pinned).ok().as_deref() == Some(SCHEMATHESIS) && st.is_file() {
        return st;
    }
    let run = |program: &Path, args: &[&str]| {
        let out = std::process::Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{} cannot run: {e}", program.display()));
        assert!(
            out.status.success(),
            "{} {args:?} failed:\n{}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Path::new("python3"), &["-m", "venv", venv.to_str().unwrap()]);
    run(
        &venv.join("bin/pip"),
        &["install", "--quiet", "--disable-pip-version-check", SCHEMATHESIS],
    );
    std::fs::write(&pinned, SCHEMATHESIS).unwrap();
    st
}

/// A client that reads the document and makes up its own requests — ones
/// the schemas allow, and ones they forbid — and checks that the server
/// takes the first, refuses the second, and answers both as declared.
#[test]
fn schemathesis_finds_no_answer_that_contradicts_the_served_openapi_document() {
    let st = schemathesis();
    let server = serve(&[]);
    let url = format!("http://{}/openapi.json", server.addr);
    let out = std::process::Command::new(&st)
        .args(["run", &url, "--checks", "all", "--max-examples", "150", "--seed", "17"])
        .args(["--workers", "1", "--no-color"])
        .current_dir(target_dir())
        .output()
        .expect("st runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found answers that contradict the document:\n{report}"
    );
    assert!(report.contains("No issues found"), "{report}");
    let generated = report
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_suffix(" passed")?
                .split(" generated, ")
                .next()?
                .parse::<u32>()
                .ok()
        })
        .unwrap_or(0);
    assert!(generated >= 100, "schemathesis sent requests: {report}");
}
