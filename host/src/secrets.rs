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
use std::collections::HashSet;
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

#[derive(Default)]
struct Known {
    /// Whole forms to mask: each secret and its base64 encodings, longest first.
    whole: Vec<String>,
    /// Every `FRAGMENT`-byte window of every secret.
    windows: HashSet<Vec<u8>>,
}

static KNOWN: RwLock<Option<Known>> = RwLock::new(None);
/// Set once anything is registered: most runs of `verify` hold no secret,
/// and then scrubbing costs one atomic load.
static ANY: AtomicBool = AtomicBool::new(false);

/// Remembers `secret` (and its base64 forms) for [`scrub`].
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_WHOLE {
        return;
    }
    let mut forms = vec![secret.to_owned()];
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret));
    }
    add(forms, secret);
}

/// Remembers a user name and password pair: the password, and
/// `base64(user:password)` as an `Authorization: Basic` header carries it.
pub fn register_basic(user: &str, password: &str) {
    register(password);
    let pair = format!("{user}:{password}");
    if password.len() >= MIN_WHOLE {
        let forms = [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
            .iter()
            .map(|engine| engine.encode(&pair))
            .collect();
        add(forms, &pair);
    }
}

fn add(forms: Vec<String>, secret: &str) {
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    let known = known.get_or_insert_with(Known::default);
    for form in forms {
        if !known.whole.contains(&form) {
            known.whole.push(form);
        }
    }
    known.whole.sort_by_key(|f| std::cmp::Reverse(f.len()));
    for window in secret.as_bytes().windows(FRAGMENT) {
        known.windows.insert(window.to_vec());
    }
    ANY.store(true, Ordering::Release);
}

/// `text` with every registered secret, its base64 forms and any run of
/// [`FRAGMENT`] or more of its characters replaced by [`MASK`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    if !ANY.load(Ordering::Acquire) || text.len() < MIN_WHOLE {
        return Cow::Borrowed(text);
    }
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    let Some(known) = known.as_ref() else {
        return Cow::Borrowed(text);
    };
    let mut masked = vec![false; text.len()];
    let mut any = false;
    for form in &known.whole {
        for (at, _) in text.match_indices(form.as_str()) {
            masked[at..at + form.len()].iter_mut().for_each(|m| *m = true);
            any = true;
        }
    }
    for (at, window) in text.as_bytes().windows(FRAGMENT).enumerate() {
        if known.windows.contains(window) {
            masked[at..at + FRAGMENT].iter_mut().for_each(|m| *m = true);
            any = true;
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
    fn short_values_are_not_secrets() {
        register("ab");
        assert_eq!(scrub("ab ab"), "ab ab");
    }
}
