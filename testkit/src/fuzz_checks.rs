//! The invariants the fuzz targets (host/fuzz) check, shared with the
//! regression test that replays their seeds and findings
//! (tests/integration/fuzz_regressions.rs). Each check takes the fuzzer's raw bytes,
//! runs one parser and panics when an invariant breaks; "no panic" alone is
//! not the bar.
//!
//! Input encodings (what a seed file under host/fuzz/seeds/<target>/ holds):
//!
//! - `inspect`: the `--inspect` JSON, optionally preceded by one header line
//!   `#PLATFORM|DIGEST|REFERENCE` (the `--platform`, `--digest` and
//!   `--reference` flags; a missing field is an absent flag, an empty
//!   platform is the default one). JSON never starts with `#`.
//! - `settings`: the settings JSON as is.
//! - `reference`: line 1 an image reference; line 2, if any, a revision label
//!   for the `tag.consistent` rule.
//! - `source_url`: line 1 a source label; line 2, if any, the Gitea base URL
//!   of the settings it is checked against.
//! - `evaluate`: lines, see [`evaluate`].
use provgate::input::inspect::{self, DEFAULT_PLATFORM, InspectOptions, Shape};
use provgate::input::registry::parse_reference;
use provgate_contract::labels;
use provgate_guest::model::{self, CommitAnswer, Event, Mode, Outcome, Provenance, Question, RuleId, Status, Verdict};
use provgate_guest::rules::RULE_IDS;
use provgate_guest::rules::consistency::{self, tag_of};
use provgate_guest::rules::source::{self, trusted_repo};
use provgate_guest::settings::{KEYS, OnUnavailable, Settings};
use provgate_guest::url::{Base, is_plain_name};
use serde_json::Value;

/// Longest error `inspect::parse` may return, apart from the `--platform`
/// value it echoes: 16 quoted platform keys of at most 80 characters each
/// (6 bytes for an escaped control character) and the fixed text.
pub const MAX_INSPECT_ERROR_BYTES: usize = 10 * 1024;
/// Longest settings error: a JSON error, or a field and two quoted values.
pub const MAX_SETTINGS_ERROR_BYTES: usize = 4 * 1024;
/// Longest message of one finding, or of a source-URL error.
pub const MAX_FINDING_BYTES: usize = 2 * 1024;

const SHA: &str = "36b68ae653f75d2ed731081e35541b6f6a0e7c0b";
const DIGEST: &str = "sha256:8cbffb2fd0364dd51e206a3ed61d584d5a7668fb71df7469702d24b6d2536d09";
const GITEA: &str = "https://git.moleculesai.app";
const OWNERS: [&str; 2] = ["molecule-ai", "Org.Two_3"];
const NOW_SECS: i64 = 1_795_428_000;

/// A message shown to a person: one line, no control characters (no
/// terminal escapes), and not longer than `max` bytes.
pub fn check_message(what: &str, message: &str, max: usize) {
    assert!(!message.is_empty(), "{what}: empty message");
    assert!(
        message.len() <= max,
        "{what}: message of {} bytes (limit {max}): {message:.300}",
        message.len()
    );
    assert!(
        !message.chars().any(char::is_control),
        "{what}: control character in message: {message:?}"
    );
}

/// The non-ASCII characters of the rules' own text: the `…` of a value
/// `show` cut short, and the `±` of "±hh:mm".
const OWN_NON_ASCII: [char; 2] = ['…', '±'];

/// A finding message: a checked message, and printable ASCII only (but for
/// the rules' own [`OWN_NON_ASCII`]), since every untrusted value in it
/// passes through `show` (non-ASCII look-alikes escaped).
fn check_finding_message(what: &str, message: &str) {
    check_message(what, message, MAX_FINDING_BYTES);
    assert!(
        message.chars().all(|c| c.is_ascii() || OWN_NON_ASCII.contains(&c)),
        "{what}: non-ASCII character in message: {message:?}"
    );
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && is_lower_hex(hex))
}

fn is_full_sha(s: &str) -> bool {
    s.len() == 40 && is_lower_hex(s)
}

// ---------------------------------------------------------------- inspect

/// The flags and the JSON an `inspect` input encodes.
pub struct InspectCase<'a> {
    pub platform: String,
    pub digest: Option<String>,
    pub reference: Option<String>,
    pub json: &'a [u8],
}

pub fn decode_inspect(data: &[u8]) -> InspectCase<'_> {
    let Some(rest) = data.strip_prefix(b"#") else {
        return InspectCase {
            platform: DEFAULT_PLATFORM.to_owned(),
            digest: None,
            reference: None,
            json: data,
        };
    };
    let (header, json) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let header = String::from_utf8_lossy(header);
    let mut fields = header.split('|');
    let platform = fields.next().filter(|p| !p.is_empty()).unwrap_or(DEFAULT_PLATFORM);
    InspectCase {
        platform: platform.to_owned(),
        digest: fields.next().map(str::to_owned),
        reference: fields.next().map(str::to_owned),
        json,
    }
}

/// `inspect::parse`: a subject that keeps what the flags say and survives a
/// round trip, or an error that is short, one line and free of terminal
/// escapes whatever the JSON holds.
pub fn inspect(data: &[u8]) {
    let case = decode_inspect(data);
    let opts = InspectOptions {
        platform: &case.platform,
        digest: case.digest.as_deref(),
        reference: case.reference.as_deref(),
    };
    let result = inspect::parse(case.json, &opts);
    let again = inspect::parse(case.json, &opts);
    let json = case.json.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(case.json);
    match result {
        Ok(got) => {
            assert_eq!(again.as_ref().ok(), Some(&got), "parse is not deterministic");
            assert!(
                serde_json::from_slice::<Value>(json).is_ok(),
                "a subject from input that is not JSON"
            );
            let subject = &got.subject;
            match opts.digest {
                Some(digest) => assert_eq!(subject.digest, digest, "--digest must win"),
                None => assert!(!subject.digest.is_empty(), "empty digest without --digest"),
            }
            if let Some(reference) = opts.reference {
                assert_eq!(subject.reference, reference, "--reference must win");
            }
            assert!(subject.pin.is_none(), "inspect JSON never supplies a pin");
            if got.shape == Shape::OciConfig {
                assert!(opts.digest.is_some(), "a bare OCI config needs --digest");
            }
            assert_eq!(
                subject.platform.as_ref().map(|p| p.name.as_str()),
                got.platform.as_deref(),
                "the subject does not name the platform its labels came from"
            );
            if let Some(platform) = &got.platform {
                assert_eq!(got.shape, Shape::BuildxImagetools, "a platform outside buildx output");
                assert!(
                    platform == opts.platform || platform.contains('/'),
                    "platform {platform:?} is neither the one asked for nor a platform key"
                );
            }
            // The subject as `--inspect` skopeo JSON (which names no
            // platform) reads back the same...
            if !subject.digest.is_empty() {
                let skopeo = serde_json::json!({
                    "Name": subject.reference,
                    "Digest": subject.digest,
                    "Labels": subject.labels,
                });
                let bytes = serde_json::to_vec(&skopeo).expect("serialise");
                let back = inspect::parse(&bytes, &InspectOptions::default()).expect("skopeo round trip");
                assert_eq!(back.shape, Shape::SkopeoInspect);
                let unplatformed = provgate::subject::Subject {
                    platform: None,
                    ..subject.clone()
                };
                assert_eq!(back.subject, unplatformed, "skopeo round trip");
            }
            // ...and so does its serde form (what `verify` hands on).
            let text = serde_json::to_string(subject).expect("serialise subject");
            let back: provgate::subject::Subject = serde_json::from_str(&text).expect("deserialise subject");
            assert_eq!(&back, subject, "serde round trip");
        }
        Err(e) => {
            let message = e.to_string();
            assert_eq!(
                again.err().map(|e| e.to_string()).as_deref(),
                Some(message.as_str()),
                "parse is not deterministic"
            );
            if matches!(e, inspect::InspectError::Json(_)) {
                assert!(
                    serde_json::from_slice::<Value>(json).is_err(),
                    "valid JSON called invalid"
                );
            }
            // The one value echoed whole is the caller's own --platform.
            let platform_is_clean = !opts.platform.chars().any(char::is_control);
            let max = MAX_INSPECT_ERROR_BYTES + opts.platform.len();
            if platform_is_clean {
                check_message("inspect error", &message, max);
            } else {
                assert!(message.len() <= max, "inspect error of {} bytes", message.len());
            }
        }
    }
}

// --------------------------------------------------------------- settings

/// `Settings::parse`: accepted settings meet every documented constraint and
/// survive a round trip; every error starts with `settings` and names the
/// field (a known key, or the unknown key found in the input).
pub fn settings(data: &[u8]) {
    // The canonical fast path only ever agrees with the reference reading.
    if let Some(fast) = Settings::parse_canonical(data) {
        assert_eq!(
            Settings::parse_strict(data),
            Ok(fast),
            "the canonical fast path disagrees"
        );
    }
    let input_keys: Vec<String> = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    };
    match Settings::parse(data) {
        Ok(s) => {
            assert!(!input_keys.is_empty(), "settings from input that is not a JSON object");
            assert!(
                input_keys.iter().all(|k| KEYS.contains(&k.as_str())),
                "unknown key accepted"
            );
            check_base(&s.base);
            assert!(!s.allowed_owners.is_empty(), "no allowed owner");
            for owner in &s.allowed_owners {
                assert!(is_plain_name(owner), "owner {owner:?} is not a plain name");
            }
            let json = serde_json::json!({
                "gitea_base_url": s.base.to_string(),
                "allowed_owners": s.allowed_owners,
                "created_max_skew_seconds": s.created_max_skew_seconds,
                "on_unavailable": match s.on_unavailable {
                    OnUnavailable::Deny => "deny",
                    OnUnavailable::Allow => "allow",
                },
            });
            let back = Settings::parse(json.to_string().as_bytes()).expect("settings round trip");
            assert_eq!(back, s, "settings round trip");
            assert_eq!(
                Settings::parse_canonical(json.to_string().as_bytes()),
                Some(s),
                "the canonical spelling of accepted settings misses the fast path"
            );
        }
        Err(e) => {
            check_message("settings error", &e, MAX_SETTINGS_ERROR_BYTES);
            if let Some(rest) = e.strip_prefix("settings.") {
                let field = rest.split([':', '[']).next().unwrap_or_default();
                assert!(
                    KEYS.contains(&field) || input_keys.iter().any(|k| k == field),
                    "error names {field:?}, which is neither a setting nor a key of the input: {e}"
                );
            } else {
                assert!(
                    e.starts_with("settings: ") || e.starts_with("settings[\""),
                    "error does not start with the field: {e}"
                );
            }
        }
    }
}

/// A parsed base: http(s), a lower-case host name, a port, and a Display
/// form that parses back to the same base.
fn check_base(base: &Base) {
    assert!(
        matches!(base.scheme.as_str(), "http" | "https"),
        "scheme {:?}",
        base.scheme
    );
    assert!(base.port > 0, "port 0");
    let host = &base.host;
    assert!(!host.is_empty() && host.len() <= 253, "host {host:?}");
    assert!(
        host.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'),
        "host {host:?} is not a lower-case host name"
    );
    assert_eq!(Base::parse(&base.to_string()).as_ref(), Ok(base), "Display round trip");
}

// -------------------------------------------------------------- reference

/// The host's `parse_reference` and the guest's `tag_of` and
/// `tag.consistent` on one reference (line 1), with the revision of line 2,
/// one derived from the tag, and a fixed one.
pub fn reference(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (reference, revision) = match text.split_once('\n') {
        Some((reference, revision)) => (reference, Some(revision)),
        None => (&*text, None),
    };
    let tag = check_tag_of(reference);

    match parse_reference(reference) {
        Ok(parsed) => {
            let repository = parsed.repository();
            assert!(!repository.is_empty() && repository.len() <= 255, "{repository:?}");
            assert!(
                !repository.bytes().any(|b| b.is_ascii_uppercase()),
                "upper case in repository {repository:?}"
            );
            assert!(!parsed.registry().is_empty());
            if let Some(host_tag) = parsed.tag() {
                assert!(!host_tag.contains(['/', ':', '@']), "tag {host_tag:?}");
                assert!(host_tag.chars().count() <= 128, "tag {host_tag:?}");
            }
            if let Some(digest) = parsed.digest() {
                assert!(reference.ends_with(&format!("@{digest}")), "digest {digest:?}");
            }
            // The guest reads the same tag the host fetched by ("latest"
            // when the reference names none).
            let defaulted = tag.is_none() && parsed.digest().is_none() && parsed.tag() == Some("latest");
            assert!(
                defaulted || tag == parsed.tag(),
                "guest tag {tag:?}, host tag {:?}",
                parsed.tag()
            );
            let again = parse_reference(&parsed.whole()).expect("whole() parses");
            assert_eq!(again, parsed, "whole() round trip");
        }
        Err(e) => {
            let message = e.to_string();
            assert!(e.is_input_error(), "a bad reference is the caller's error");
            check_message("reference error", &message, 256 + 12 * reference.chars().count());
        }
    }

    let derived = tag
        .and_then(embedded_sha)
        .map(|hex| format!("{hex:0<40}"))
        .unwrap_or_default();
    for revision in [revision, Some(derived.as_str()), Some(SHA), None] {
        check_tag_rule(reference, revision);
    }
}

/// `tag_of`: the part after the last `:` of the last path component, once
/// the `@digest` is cut; never holds `/`, `:` or `@`.
fn check_tag_of(reference: &str) -> Option<&str> {
    let tag = tag_of(reference);
    let name = reference.split('@').next().unwrap_or_default();
    let last = name.rsplit('/').next().unwrap_or_default();
    match tag {
        Some(tag) => {
            assert!(!tag.contains(['/', ':', '@']), "tag {tag:?} of {reference:?}");
            assert!(
                last.ends_with(&format!(":{tag}")),
                "tag {tag:?} is not the end of {last:?}"
            );
        }
        None => assert!(!last.contains(':'), "no tag found in {last:?}"),
    }
    tag
}

/// The commit SHA a tag embeds, as docs/reference.md §3 words it: `staging-` or `sha-`
/// and 7 to 40 lower-case hex characters.
fn embedded_sha(tag: &str) -> Option<&str> {
    let hex = tag.strip_prefix("staging-").or_else(|| tag.strip_prefix("sha-"))?;
    ((7..=40).contains(&hex.len()) && is_lower_hex(hex)).then_some(hex)
}

/// `tag.consistent` against the oracle above.
fn check_tag_rule(reference: &str, revision: Option<&str>) {
    let subject = native_subject(reference, DIGEST, revision.map(|r| (labels::REVISION, r)));
    let labels = provenance(&subject);
    let finding = consistency::tag(&subject, &labels);
    let expected = match tag_of(reference).and_then(embedded_sha) {
        None => Outcome::Skipped,
        Some(hex) => match labels.revision.filter(|r| is_full_sha(r)) {
            None => Outcome::Skipped,
            Some(rev) if rev.starts_with(hex) => Outcome::Pass,
            Some(_) => Outcome::Fail,
        },
    };
    assert_eq!(finding.rule, RuleId::TagConsistent);
    assert_eq!(
        finding.outcome, expected,
        "{reference:?} with revision {revision:?}: {}",
        finding.message
    );
    check_finding_message("tag.consistent", &finding.message);
}

fn native_subject<'a>(
    reference: &str,
    digest: &str,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> model::Subject {
    model::Subject {
        reference: reference.to_owned(),
        digest: digest.to_owned(),
        labels: labels.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        pin: None,
        now: model::Instant {
            seconds: NOW_SECS,
            nanoseconds: 0,
        },
    }
}

fn provenance(subject: &model::Subject) -> Provenance<'_> {
    Provenance {
        source: subject.label(labels::SOURCE),
        revision: subject.label(labels::REVISION),
        created: subject.label(labels::CREATED),
        run_id: subject.label(labels::RUN_ID),
    }
}

// ------------------------------------------------------------- source_url

fn settings_with(base: Base) -> Settings {
    Settings {
        base,
        allowed_owners: OWNERS.iter().map(|o| (*o).to_owned()).collect(),
        created_max_skew_seconds: 300,
        on_unavailable: OnUnavailable::Deny,
    }
}

fn check_base_parse(url: &str) -> Option<Base> {
    match Base::parse(url) {
        Ok(base) => {
            check_base(&base);
            Some(base)
        }
        Err(e) => {
            check_finding_message("base URL error", &e);
            None
        }
    }
}

/// `Base::parse` on both lines, and `trusted_repo` (and the `source.trusted`
/// rule) on line 1 against the base of line 2 or the project's Gitea: a
/// trusted source is exactly `<base>/<owner>/<repo>[.git|/]` with an allowed
/// owner, the host in any case and the port explicit or not.
pub fn source_url(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (source, base_line) = match text.split_once('\n') {
        Some((source, base)) => (source, Some(base)),
        None => (&*text, None),
    };
    check_base_parse(source);
    let base = base_line
        .and_then(check_base_parse)
        .unwrap_or_else(|| Base::parse(GITEA).expect("the project's Gitea"));
    let settings = settings_with(base);

    let trusted = trusted_repo(source, &settings);
    match &trusted {
        Ok(repo) => {
            assert!(settings.allowed_owners.iter().any(|o| o == repo.owner), "{repo:?}");
            assert!(is_plain_name(repo.name) && !repo.name.ends_with(".git"), "{repo:?}");
            assert!(source.is_ascii(), "non-ASCII source trusted");
            assert!(
                !source.contains(|c: char| c.is_ascii_whitespace() || c.is_ascii_control() || "%?#\\@".contains(c)),
                "{source:?} trusted"
            );
            let tail = format!("/{}/{}", repo.owner, repo.name);
            let prefix = [String::new(), ".git".to_owned(), "/".to_owned()]
                .iter()
                .find_map(|suffix| source.strip_suffix(&format!("{tail}{suffix}")))
                .unwrap_or_else(|| panic!("{source:?} does not end in {tail}[.git|/]"));
            let named = Base::parse(prefix).unwrap_or_else(|e| panic!("{prefix:?}: {e}"));
            let base = &settings.base;
            assert_eq!(
                (&named.scheme, &named.host, named.port),
                (&base.scheme, &base.host, base.port),
                "{source:?} is not on {base}"
            );
        }
        Err(e) => check_finding_message("trusted_repo error", e),
    }

    let subject = native_subject("r/a:1", DIGEST, [(labels::SOURCE, source)]);
    let (finding, repo) = source::check(&provenance(&subject), &settings);
    check_finding_message("source.trusted", &finding.message);
    let expected = match (subject.label(labels::SOURCE), &trusted) {
        (None, _) => Outcome::Skipped,
        (Some(_), Ok(_)) => Outcome::Pass,
        (Some(_), Err(_)) => Outcome::Fail,
    };
    assert_eq!(finding.outcome, expected, "{}", finding.message);
    assert_eq!(repo.is_some(), expected == Outcome::Pass);
}

// --------------------------------------------------------------- evaluate

/// What the control line (line 0) of an `evaluate` input asks for.
pub struct Control {
    /// The answer to the n-th question the rules ask; [`CommitAnswer::Found`]
    /// past the end.
    pub answers: Vec<CommitAnswer>,
    pub mode: Mode,
    pub on_unavailable: OnUnavailable,
    pub skew: u32,
    /// Whether the pin of lines 7 and 8 has a digest.
    pub pin_digest: bool,
}

impl Control {
    pub fn answer(&self, n: usize) -> CommitAnswer {
        self.answers.get(n).cloned().unwrap_or(CommitAnswer::Found)
    }
}

/// One answer code: `0` (or anything else) found, `1` not found, `2`
/// unavailable, `3` moved, to the next place of `moves`.
fn answer_of<'a>(code: u8, moves: &mut impl Iterator<Item = &'a str>) -> CommitAnswer {
    match code {
        b'1' => CommitAnswer::NotFound("no such commit".into()),
        b'2' => CommitAnswer::Unavailable("timed out".into()),
        b'3' => {
            let to = moves.next().unwrap_or_default();
            let (owner, repo) = to.split_once('/').unwrap_or((to, ""));
            CommitAnswer::Moved {
                owner: owner.to_owned(),
                repo: repo.to_owned(),
            }
        }
        _ => CommitAnswer::Found,
    }
}

/// Reads the control line of an `evaluate` input (see [`evaluate`]).
pub fn decode_control(line: &str) -> Control {
    let mut fields = line.split('|');
    let first = fields.next().unwrap_or_default().as_bytes();
    let mut moves = Vec::new();
    let mut then = "";
    let mut pin_digest = true;
    for field in fields {
        if let Some(to) = field.strip_prefix("moved=") {
            moves.push(to);
        } else if let Some(codes) = field.strip_prefix("then=") {
            then = codes;
        } else if field == "no-pin-digest" {
            pin_digest = false;
        }
    }
    let mut moves = moves.into_iter();
    let answers = first
        .first()
        .copied()
        .into_iter()
        .chain(then.bytes())
        .map(|code| answer_of(code, &mut moves))
        .collect();
    Control {
        answers,
        mode: match first.get(1) {
            Some(b'l') => Mode::LogOnly,
            _ => Mode::Enforce,
        },
        on_unavailable: match first.get(2) {
            Some(b'a') => OnUnavailable::Allow,
            _ => OnUnavailable::Deny,
        },
        skew: first
            .get(3..)
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(300),
        pin_digest,
    }
}

/// The move the rules follow: to plain names under an allowed owner.
pub fn followable(answer: &CommitAnswer) -> Option<(&str, &str)> {
    match answer {
        CommitAnswer::Moved { owner, repo }
            if is_plain_name(owner) && is_plain_name(repo) && OWNERS.contains(&owner.as_str()) =>
        {
            Some((owner, repo))
        }
        _ => None,
    }
}

/// What an answer makes of `revision.resolves` when it is the last one.
fn resolved(answer: &CommitAnswer) -> Outcome {
    match answer {
        CommitAnswer::Found => Outcome::Pass,
        CommitAnswer::NotFound(_) => Outcome::Fail,
        CommitAnswer::Unavailable(_) => Outcome::Indeterminate,
        // A move not followed (or a second one) leaves nothing to check.
        CommitAnswer::Moved { .. } => Outcome::Fail,
    }
}

/// An `evaluate` input, decoded.
pub struct EvaluateCase {
    pub control: Control,
    pub settings: Settings,
    pub subject: model::Subject,
}

/// Reads an `evaluate` input (see [`evaluate`]).
pub fn decode_evaluate(data: &[u8]) -> EvaluateCase {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.split('\n').collect();
    let line = |i: usize| lines.get(i).copied();
    let control = decode_control(line(0).unwrap_or_default());
    let settings = Settings {
        on_unavailable: control.on_unavailable,
        created_max_skew_seconds: control.skew,
        ..settings_with(Base::parse(GITEA).expect("the project's Gitea"))
    };

    let mut labels = Vec::new();
    for (i, key) in [
        (3, labels::SOURCE),
        (4, labels::REVISION),
        (5, labels::CREATED),
        (6, labels::RUN_ID),
    ] {
        if let Some(value) = line(i) {
            labels.push((key, value));
        }
    }
    for extra in lines.iter().skip(9) {
        labels.push(extra.split_once('=').unwrap_or((extra, "")));
    }
    let mut subject = native_subject(line(1).unwrap_or_default(), line(2).unwrap_or_default(), labels);
    subject.pin = line(7)
        .map(|digest| model::Pin {
            runtime: None,
            digest: control.pin_digest.then(|| digest.to_owned()),
            source_sha: line(8).map(str::to_owned),
        })
        .filter(|pin| pin.digest.is_some() || pin.source_sha.is_some());
    EvaluateCase {
        control,
        settings,
        subject,
    }
}

/// The native verdict, the n-th question answered with the control line's
/// n-th answer, and the questions in the order asked.
pub fn judge_natively(control: &Control, settings: &Settings, subject: &model::Subject) -> (Verdict, Vec<Question>) {
    let mut asked: Vec<Question> = Vec::new();
    let verdict = provgate_guest::evaluate(settings, subject, control.mode, &mut |q: &Question| {
        let answer = control.answer(asked.len());
        asked.push(q.clone());
        answer
    });
    (verdict, asked)
}

/// The whole native rule set. Lines of the input:
///
/// 0. control: `|`-separated fields. The first: character 1 the answer to
///    the first question (`0` found, `1` not found, `2` unavailable, `3`
///    moved), 2 the mode (`l` log-only, else enforce), 3 on_unavailable (`a`
///    allow, else deny), the rest the skew in seconds. Then, in any order:
///    `moved=OWNER/REPO`, where the n-th `3` answer says the repository went
///    (missing: empty names); `then=CODES`, the answers to the second, third…
///    questions, one character each as above (missing: found); and
///    `no-pin-digest`, the pin of lines 7 and 8 has no digest.
/// 1. reference; 2. digest; 3-6. the source, revision, created and run-id
///    labels (a missing line is a missing label); 7. a pin digest and 8. its
///    source_sha (a missing line 7: no pin; a missing line 8: no
///    source_sha; with `no-pin-digest` and no line 8 either: no pin, as a
///    pin names a digest, a source_sha or both); 9 on: extra labels as
///    `key=value` (duplicates included: the first one counts).
///
/// The n-th question gets the n-th answer, wherever it is asked; the check
/// asserts that the rules ask again only at the place a followable move
/// named.
pub fn evaluate(data: &[u8]) {
    let EvaluateCase {
        control,
        settings,
        subject,
    } = decode_evaluate(data);
    let (mode, on_unavailable) = (control.mode, settings.on_unavailable);
    let (verdict, asked) = judge_natively(&control, &settings, &subject);
    let (again, _) = judge_natively(&control, &settings, &subject);
    assert_eq!(again, verdict, "evaluate is not deterministic");

    let ids: Vec<RuleId> = verdict.findings.iter().map(|f| f.rule).collect();
    assert_eq!(ids, RULE_IDS, "one finding per rule, in order");
    for finding in &verdict.findings {
        check_finding_message(finding.rule.as_str(), &finding.message);
    }
    let finding = |id: RuleId| verdict.findings.iter().find(|f| f.rule == id);
    let outcome = |id: RuleId| finding(id).map(|f| f.outcome);
    let labels = provenance(&subject);

    // The look-up: only for a trusted source and a full SHA, and once more
    // only where a followable move of the first answer points.
    let trusted = labels.source.map(|s| trusted_repo(s, &settings));
    let revision_ok = labels.revision.is_some_and(is_full_sha);
    let should_ask = revision_ok && matches!(trusted, Some(Ok(_)));
    let first = control.answer(0);
    let moved_to = followable(&first).filter(|_| should_ask);
    assert_eq!(
        asked.len(),
        usize::from(should_ask) + usize::from(moved_to.is_some()),
        "look-ups made: {asked:?}, first answer {first:?}"
    );
    if let Some(q) = asked.first() {
        assert_eq!(Some(q.sha.as_str()), labels.revision);
        assert!(
            OWNERS.contains(&q.owner.as_str()) && is_plain_name(&q.repo),
            "{}/{}",
            q.owner,
            q.repo
        );
    }
    if let ([from, to], Some((owner, repo))) = (&asked[..], moved_to) {
        assert_eq!(
            (to.owner.as_str(), to.repo.as_str(), to.sha.as_str()),
            (owner, repo, from.sha.as_str()),
            "asked again elsewhere than the repository moved to"
        );
        // A verdict after a rename names both places.
        let message = &finding(RuleId::RevisionResolves).expect("revision.resolves").message;
        for place in [format!("{owner}/{repo}"), format!("{}/{}", from.owner, from.repo)] {
            assert!(message.contains(&place), "{place} not named in {message:?}");
        }
    }
    let resolves = match (should_ask, moved_to) {
        (false, _) => Outcome::Skipped,
        (true, None) => resolved(&first),
        (true, Some(_)) => resolved(&control.answer(1)),
    };
    assert_eq!(outcome(RuleId::RevisionResolves), Some(resolves));

    // The rules whose outcome follows from the labels alone.
    let all_present = [labels.source, labels.revision, labels.created, labels.run_id]
        .iter()
        .all(Option::is_some);
    let present = if all_present { Outcome::Pass } else { Outcome::Fail };
    assert_eq!(outcome(RuleId::LabelsPresent), Some(present));
    let revision = match labels.revision {
        None => Outcome::Skipped,
        Some(_) if revision_ok => Outcome::Pass,
        Some(_) => Outcome::Fail,
    };
    assert_eq!(outcome(RuleId::RevisionFormat), Some(revision));
    let digests_ok = is_sha256_digest(&subject.digest)
        && subject
            .pin
            .as_ref()
            .and_then(|p| p.digest.as_deref())
            .is_none_or(is_sha256_digest);
    let digest = if digests_ok { Outcome::Pass } else { Outcome::Fail };
    assert_eq!(outcome(RuleId::DigestFormat), Some(digest));
    let source = match trusted {
        None => Outcome::Skipped,
        Some(Ok(_)) => Outcome::Pass,
        Some(Err(_)) => Outcome::Fail,
    };
    assert_eq!(outcome(RuleId::SourceTrusted), Some(source));
    let run_id = match labels.run_id {
        None => Outcome::Skipped,
        Some(id) if id.bytes().all(|b| b.is_ascii_digit()) && !id.starts_with('0') && id.parse::<i64>().is_ok() => {
            Outcome::Pass
        }
        Some(_) => Outcome::Fail,
    };
    assert_eq!(outcome(RuleId::RunIdFormat), Some(run_id));
    if subject.pin.is_none() {
        assert_eq!(outcome(RuleId::PinConsistent), Some(Outcome::Skipped));
    }
    let tag = consistency::tag(&subject, &labels);
    assert_eq!(outcome(RuleId::TagConsistent), Some(tag.outcome));
    check_tag_rule(&subject.reference, labels.revision);

    // docs/reference.md §4: status, allowed, event.
    let has = |o: Outcome| verdict.findings.iter().any(|f| f.outcome == o);
    let status = if has(Outcome::Fail) {
        Status::Rejected
    } else if has(Outcome::Indeterminate) {
        Status::Indeterminate
    } else {
        Status::Verified
    };
    assert_eq!(verdict.status, status);
    let allowed = match (mode, status) {
        (Mode::LogOnly, _) | (Mode::Enforce, Status::Verified) => true,
        (Mode::Enforce, Status::Indeterminate) => on_unavailable == OnUnavailable::Allow,
        (Mode::Enforce, Status::Rejected) => false,
    };
    assert_eq!(verdict.allowed, allowed);
    let event = verdict.event.as_str();
    assert!(event.starts_with("redeploy.verify."), "{event}");
    assert_eq!(
        verdict.event == Event::Reachable,
        status == Status::Verified,
        "event {event} for {status:?}"
    );
}
