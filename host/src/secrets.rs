//! Every secret the process holds (Gitea and control-plane tokens,
//! registry passwords and tokens, serve's bearer token), so that text from
//! outside can be scrubbed of them before anyone quotes, cuts or logs it.
//!
//! A hostile server can echo a request's `Authorization` header anywhere in
//! its answer: in a body, a header, a JSON field provgate quotes. Scrubbing
//! at each call site missed some, and scrubbing after a cut missed the part
//! of a secret that straddles it. So every secret is registered here where
//! it is read, and [`crate::text`] and the log writer scrub every value with
//! [`scrub`] first: whole occurrences of a secret and of its base64 forms
//! (`Authorization: Basic` is `base64(user:password)`), and any run of
//! [`FRAGMENT`] or more characters of a secret, so that an echo that is
//! itself cut or split shows no part of it either.

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// What a scrubbed secret is replaced with.
pub const MASK: &str = "***";

/// The shortest run of a secret's characters that counts as part of it.
/// Shorter runs are too common in ordinary text to mask (a password
/// `admin` would mask the word everywhere); whole secrets of any length
/// from [`MIN_WHOLE`] up are masked.
pub const FRAGMENT: usize = 8;

/// Shorter values are not treated as secrets at all: masking every `ab`
/// would garble messages and hide nothing worth hiding.
pub const MIN_WHOLE: usize = 4;

/// At most this many secrets are remembered; the oldest goes first. The
/// secrets are the operator's (environment, credential files, helpers), a
/// handful per process; the bound keeps a helper that answers a new secret
/// for every fetch from growing a long-running `serve`.
pub const MAX_SECRETS: usize = 64;

/// One secret: the forms masked whole, and every [`FRAGMENT`]-byte window
/// of each of them, so that a cut or sliced echo of any form shows nothing.
struct Secret {
    forms: Vec<String>,
    windows: HashSet<[u8; FRAGMENT]>,
}

/// A set of secrets and what [`scrub`] does with them: the process-wide
/// one behind [`register`], or one of its own for a single scope (a
/// credential helper's answer, which is known only to that run).
#[derive(Default)]
pub struct Known(VecDeque<Secret>);

static KNOWN: RwLock<Known> = RwLock::new(Known(VecDeque::new()));
/// Set once anything is registered: most runs of `verify` hold no secret,
/// and then scrubbing costs one atomic load.
static ANY: AtomicBool = AtomicBool::new(false);

/// Remembers `secret` (and its base64 forms) for [`scrub`].
pub fn register(secret: &str) {
    KNOWN.write().unwrap_or_else(|e| e.into_inner()).add_secret(secret);
    ANY.store(true, Ordering::Release);
}

/// Remembers a user name and password pair: the password, and
/// `base64(user:password)` as an `Authorization: Basic` header carries it.
pub fn register_basic(user: &str, password: &str) {
    KNOWN
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .add_basic(user, password);
    ANY.store(true, Ordering::Release);
}

/// The base64 spellings a header or a config file would carry.
fn encodings(text: &str) -> Vec<String> {
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .map(|engine| engine.encode(text))
        .collect()
}

/// `text` with every registered secret, its base64 forms and any run of
/// [`FRAGMENT`] or more of their characters replaced by [`MASK`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    if !ANY.load(Ordering::Acquire) || text.len() < MIN_WHOLE {
        return Cow::Borrowed(text);
    }
    KNOWN.read().unwrap_or_else(|e| e.into_inner()).scrub(text)
}

impl Known {
    /// `secret` as [`register`] takes it, into this set only.
    pub fn add_secret(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.len() >= MIN_WHOLE {
            let mut forms = vec![secret.to_owned()];
            forms.extend(encodings(secret));
            self.add(forms);
        }
    }

    /// A user name and password as [`register_basic`] takes them, into
    /// this set only.
    pub fn add_basic(&mut self, user: &str, password: &str) {
        self.add_secret(password);
        if password.len() >= MIN_WHOLE {
            self.add(encodings(&format!("{user}:{password}")));
        }
    }

    fn add(&mut self, mut forms: Vec<String>) {
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        let known = &mut self.0;
        if known.iter().any(|s| s.forms == forms) {
            return;
        }
        let windows = forms
            .iter()
            .flat_map(|form| form.as_bytes().windows(FRAGMENT))
            .filter_map(|w| <[u8; FRAGMENT]>::try_from(w).ok())
            .collect();
        if known.len() == MAX_SECRETS {
            known.pop_front();
        }
        known.push_back(Secret { forms, windows });
    }

    /// [`scrub`] with this set's secrets.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let known = &self.0;
        let mut masked = vec![false; text.len()];
        let mut any = false;
        for secret in known.iter() {
            for form in &secret.forms {
                for (at, _) in text.match_indices(form.as_str()) {
                    masked[at..at + form.len()].iter_mut().for_each(|m| *m = true);
                    any = true;
                }
            }
            for (at, window) in text.as_bytes().windows(FRAGMENT).enumerate() {
                if let Ok(window) = <[u8; FRAGMENT]>::try_from(window)
                    && secret.windows.contains(&window)
                {
                    masked[at..at + FRAGMENT].iter_mut().for_each(|m| *m = true);
                    any = true;
                }
            }
        }
        if !any {
            return Cow::Borrowed(text);
        }
        // Masked byte ranges may start or end inside a multi-byte character:
        // widen each to whole characters, then write one mask per range.
        let mut out = String::with_capacity(text.len());
        let mut in_mask = false;
        for (at, c) in text.char_indices() {
            if masked[at..at + c.len_utf8()].iter().any(|m| *m) {
                if !in_mask {
                    out.push_str(MASK);
                    in_mask = true;
                }
            } else {
                out.push(c);
                in_mask = false;
            }
        }
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The registry is process-wide; each test uses secrets of its own.

    #[test]
    fn a_whole_secret_and_its_base64_forms_are_masked() {
        register("tok-whole-5f3a9c");
        let b64 = STANDARD.encode("tok-whole-5f3a9c");
        let text = format!("echo token tok-whole-5f3a9c and Basic {b64}.");
        let scrubbed = scrub(&text);
        assert!(!scrubbed.contains("tok-whole"), "{scrubbed}");
        assert!(!scrubbed.contains(&b64[..8]), "{scrubbed}");
        assert!(scrubbed.starts_with("echo token ***"), "{scrubbed}");
    }

    #[test]
    fn a_user_password_pair_is_masked_as_basic_auth_carries_it() {
        register_basic("robot", "pw-basic-77e1");
        let header = STANDARD.encode("robot:pw-basic-77e1");
        let line = format!("Authorization: Basic {header}");
        let scrubbed = scrub(&line);
        assert_eq!(scrubbed, "Authorization: Basic ***");
    }

    #[test]
    fn any_run_of_eight_characters_of_a_secret_is_masked() {
        register("q9Zx-FRAG-7Wv2-kLp0");
        // An echo that was itself cut: the first 12 characters only.
        let scrubbed = scrub("sha=\"q9Zx-FRAG-7W\"");
        assert_eq!(scrubbed, "sha=\"***\"");
        // Seven characters are ordinary text.
        assert_eq!(scrub("xq9Zx-FRx"), "xq9Zx-FRx");
    }

    #[test]
    fn text_without_secrets_is_returned_as_it_is() {
        register("unrelated-secret-93");
        assert!(matches!(scrub("plain text → ok"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_mask_inside_a_multi_byte_character_widens_to_the_character() {
        register("é-secret-é-99");
        let scrubbed = scrub("[é-secret-é-99]");
        assert_eq!(scrubbed, "[***]");
    }

    #[test]
    fn a_cut_slice_of_the_base64_pair_shows_nothing_of_the_password() {
        register_basic("robot", "Pa55w0rd-SECRET-77aa99");
        let header = STANDARD.encode("robot:Pa55w0rd-SECRET-77aa99");
        for slice in [&header[0..30], &header[4..26], &header[10..]] {
            let echoed = format!("HTTP 418: \"{slice}\"");
            let scrubbed = scrub(&echoed);
            assert_eq!(scrubbed, "HTTP 418: \"***\"", "{slice}");
        }
    }

    #[test]
    fn the_oldest_secret_goes_once_the_bound_is_reached() {
        // A registry of its own: the process-wide one is shared by tests.
        let mut known = Known::default();
        known.add(vec!["first-of-many-secrets-0001".into()]);
        for n in 0..MAX_SECRETS {
            known.add(vec![format!("bulk-secret-{n:04}-zzzz")]);
        }
        assert_eq!(known.0.len(), MAX_SECRETS);
        assert_eq!(known.scrub("first-of-many-secrets-0001"), "first-of-many-secrets-0001");
        assert_eq!(known.scrub(&format!("bulk-secret-{:04}-zzzz", MAX_SECRETS - 1)), "***");
    }

    #[test]
    fn short_values_are_not_secrets() {
        register("ab");
        assert_eq!(scrub("ab ab"), "ab ab");
    }
}
