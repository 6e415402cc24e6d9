//! The component glue: WIT types in and out, settings read from the slot
//! that `provgate policy build` fills in.

use crate::model::{self, CommitAnswer};
use crate::settings::{OnUnavailable, Settings};

wit_bindgen::generate!({
    world: "provgate",
    path: "../wit",
});

use exports::provgate::policy::rules as wit;
use provgate::policy::lookup;

/// The settings slot: a marker, the settings' length (u32, little-endian),
/// then the settings JSON padded with spaces. The host finds the marker in
/// the component and writes the settings after it; the layout must match
/// `host/src/policy/slot.rs`. The length saves scanning the padding on
/// every evaluation.
const SLOT_MAGIC: [u8; 32] = *b"provgate:settings-slot:v2\0\0\0\0\0\0\0";
const SLOT_CAPACITY: usize = 4096;
const SLOT_LEN: usize = 32 + 4 + SLOT_CAPACITY;

static SETTINGS_SLOT: [u8; SLOT_LEN] = {
    let mut slot = [b' '; SLOT_LEN];
    let mut i = 0;
    while i < SLOT_MAGIC.len() {
        slot[i] = SLOT_MAGIC[i];
        i += 1;
    }
    while i < SLOT_MAGIC.len() + 4 {
        slot[i] = 0;
        i += 1;
    }
    slot
};

/// The settings, read once per instance: they cannot change under it.
fn settings() -> Result<&'static Settings, String> {
    static PARSED: std::sync::OnceLock<Result<Settings, String>> = std::sync::OnceLock::new();
    PARSED
        .get_or_init(|| crate::ALLOCATOR.keep(read_settings))
        .as_ref()
        .map_err(Clone::clone)
}

fn read_settings() -> Result<Settings, String> {
    // black_box: the compiler must read the bytes at run time, since the
    // artifact builder rewrites them after compilation.
    let slot: &[u8; SLOT_LEN] = core::hint::black_box(&SETTINGS_SLOT);
    let len = u32::from_le_bytes([slot[32], slot[33], slot[34], slot[35]]) as usize;
    let json = &slot[36..36 + len.min(SLOT_CAPACITY)];
    if json.is_empty() {
        return Err("this artifact has no settings: build one with `provgate policy build`".into());
    }
    Settings::parse(json)
}

struct Policy;

impl wit::Guest for Policy {
    fn describe() -> Result<wit::Description, String> {
        let s = settings()?;
        Ok(wit::Description {
            name: crate::NAME.into(),
            version: crate::VERSION.into(),
            rules: crate::rules::RULE_IDS.iter().map(|r| (*r).into()).collect(),
            settings: wit::Settings {
                gitea_base_url: s.base.to_string(),
                allowed_owners: s.allowed_owners.clone(),
                created_max_skew_seconds: s.created_max_skew_seconds,
                on_unavailable: match s.on_unavailable {
                    OnUnavailable::Deny => wit::OnUnavailable::Deny,
                    OnUnavailable::Allow => wit::OnUnavailable::Allow,
                },
            },
        })
    }

    fn evaluate(subject: wit::Subject, mode: wit::Mode) -> Result<wit::Verdict, String> {
        let settings = settings()?;
        let subject = model::Subject {
            reference: subject.reference,
            digest: subject.digest,
            labels: subject.labels,
            pin: subject.pin.map(|p| model::Pin {
                runtime: p.runtime,
                digest: p.digest,
                source_sha: p.source_sha,
            }),
            now: model::Instant {
                seconds: subject.now.seconds,
                nanoseconds: subject.now.nanoseconds,
            },
        };
        let mode = match mode {
            wit::Mode::Enforce => model::Mode::Enforce,
            wit::Mode::LogOnly => model::Mode::LogOnly,
        };
        let verdict = crate::evaluate(
            settings,
            &subject,
            mode,
            &mut |owner, repo, sha| match lookup::commit_exists(owner, repo, sha) {
                lookup::CommitAnswer::Found => CommitAnswer::Found,
                lookup::CommitAnswer::NotFound(why) => CommitAnswer::NotFound(why),
                lookup::CommitAnswer::Unavailable(why) => CommitAnswer::Unavailable(why),
            },
        );
        Ok(wit::Verdict {
            status: match verdict.status {
                model::Status::Verified => wit::Status::Verified,
                model::Status::Rejected => wit::Status::Rejected,
                model::Status::Indeterminate => wit::Status::Indeterminate,
            },
            allowed: verdict.allowed,
            event: verdict.event.into(),
            findings: verdict
                .findings
                .into_iter()
                .map(|f| wit::Finding {
                    rule: f.rule.into(),
                    outcome: match f.outcome {
                        model::Outcome::Pass => wit::Outcome::Pass,
                        model::Outcome::Fail => wit::Outcome::Fail,
                        model::Outcome::Indeterminate => wit::Outcome::Indeterminate,
                        model::Outcome::Skipped => wit::Outcome::Skipped,
                    },
                    message: f.message,
                })
                .collect(),
        })
    }
}

export!(Policy);
