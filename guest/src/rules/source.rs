//! `source.trusted`: the source label must name a repository on the one
//! configured Gitea, under an allowed owner, in the one canonical spelling
//! ([`crate::url`]).

use crate::model::{Finding, Outcome, Provenance, RuleId};
use crate::settings::Settings;
use crate::show::show;
use crate::url::{default_port, is_plain_name, split_host_port, split_scheme};

/// The repository a trusted source label names.
#[derive(Debug, PartialEq, Eq)]
pub struct Repo<'a> {
    pub owner: &'a str,
    pub name: &'a str,
}

/// Characters a source label may not contain, in the order they are
/// reported; bit 0 of [`refusal`] is white space and control characters.
const REFUSED_CHARACTERS: [(char, &str); 4] = [
    ('%', "percent-encoding"),
    ('?', "a query"),
    ('#', "a fragment"),
    ('\\', "a backslash"),
];

/// The bit of `b`'s reason to refuse a source, or 0.
fn refusal(b: u8) -> u8 {
    match b {
        _ if b.is_ascii_whitespace() || b.is_ascii_control() => 1,
        b'%' => 1 << 1,
        b'?' => 1 << 2,
        b'#' => 1 << 3,
        b'\\' => 1 << 4,
        _ => 0,
    }
}

/// Checks a source label against the settings; the error says what is wrong.
pub fn trusted_repo<'a>(source: &'a str, settings: &Settings) -> Result<Repo<'a>, String> {
    let base = &settings.base;
    if !source.is_ascii()
        && let Some(c) = source.chars().find(|c| !c.is_ascii())
    {
        // Escaped like every other untrusted value: `{:?}` would print a
        // look-alike such as U+0456 as itself.
        return Err(format!(
            "contains the non-ASCII character {} (look-alike host or path?)",
            show(c.encode_utf8(&mut [0; 4]))
        ));
    }
    // One pass for every refused byte (a scan per class cost more than the
    // rest of the rule); the first problem in this order is the one reported.
    let refused = source.bytes().fold(0u8, |seen, b| seen | refusal(b));
    if refused != 0 {
        return Err(match refused.trailing_zeros() {
            0 => "contains white space or control characters".into(),
            bit => {
                let (c, what) = REFUSED_CHARACTERS[bit as usize - 1];
                format!("contains {what} ('{c}'), which is not allowed")
            }
        });
    }
    let (scheme, rest) = split_scheme(source).ok_or("is not a URL (no scheme://)")?;
    if scheme != base.scheme {
        return Err(format!("uses scheme {}, expected {}", show(scheme), base.scheme));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err("has user-info before the host ('@'), which is not allowed".into());
    }
    let (host, port) = split_host_port(authority)?;
    let port = port.or(default_port(scheme));
    if !host.eq_ignore_ascii_case(&base.host) {
        return Err(format!("is on host {}, expected {}", show(host), base.host));
    }
    if port != Some(base.port) {
        return Err(format!(
            "is on port {}, expected {}",
            port.map_or(0, u32::from),
            base.port
        ));
    }
    let path = path
        .strip_suffix(".git")
        .or_else(|| path.strip_suffix('/'))
        .unwrap_or(path);
    let Some((owner, name)) = path
        .strip_prefix('/')
        .unwrap_or(path)
        .split_once('/')
        .filter(|(_, name)| !name.contains('/'))
    else {
        return Err(format!("path {} is not /<owner>/<repo>", show(path)));
    };
    for part in [owner, name] {
        if !is_plain_name(part) || part.ends_with(".git") {
            return Err(format!(
                "path segment {} is not a plain owner or repository name",
                show(part)
            ));
        }
    }
    if !settings.allowed_owners.iter().any(|o| o == owner) {
        return Err(format!(
            "owner {} is not an allowed owner ({})",
            show(owner),
            settings.allowed_owners.join(", ")
        ));
    }
    Ok(Repo { owner, name })
}

/// The rule, and the repository to look the revision up in when it passes.
pub fn check<'a>(labels: &Provenance<'a>, settings: &Settings) -> (Finding, Option<Repo<'a>>) {
    let Some(source) = labels.source else {
        return (
            Finding::new(
                RuleId::SourceTrusted,
                Outcome::Skipped,
                "no source label (see labels.present)",
            ),
            None,
        );
    };
    match trusted_repo(source, settings) {
        Ok(repo) => {
            // Messages on the passing path are joined, not formatted:
            // `core::fmt` was a large share of the rules' time in the guest.
            let msg = [
                "source is ",
                settings.base.as_str(),
                "/",
                repo.owner,
                "/",
                repo.name,
                " on the trusted Gitea",
            ]
            .concat();
            (Finding::new(RuleId::SourceTrusted, Outcome::Pass, msg), Some(repo))
        }
        Err(why) => {
            let msg = format!(
                "source {} {why}; expected {}/<owner>/<repo>",
                show(source),
                settings.base
            );
            (Finding::new(RuleId::SourceTrusted, Outcome::Fail, msg), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_refused_character_class_is_the_one_reported() {
        let settings = Settings::parse(br#"{"gitea_base_url":"https://g","allowed_owners":["o"]}"#).unwrap();
        for (source, reason) in [
            ("https://g/o/r#x%20", "percent-encoding ('%')"),
            ("https://g/o/r\\#?", "a query ('?')"),
            ("https://g/o/r\\#", "a fragment ('#')"),
            ("https://g/o/r\\", "a backslash ('\\')"),
            ("https://g/o/r%\t", "white space or control characters"),
        ] {
            let err = trusted_repo(source, &settings).expect_err(source);
            assert!(err.contains(reason), "{source:?}: {err}");
        }
    }
}
