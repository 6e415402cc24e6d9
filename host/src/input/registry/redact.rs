//! The credentials of one fetch, kept out of everything it shows: a
//! hostile registry or token service can echo the `Authorization` header
//! it was sent in an error body, a header or a redirect URL, and provgate
//! quotes such text in its errors. Every outside text a fetch shows goes
//! through [`Secrets::show`]: each known secret (a password, the base64 of
//! `user:password`, an identity token, a token fetched for the registry)
//! and whatever follows `Basic ` or `Bearer ` is masked before
//! [`crate::text::quote`] escapes and cuts it.

use std::sync::Mutex;

use crate::input::credentials::Credentials;
use crate::secrets::{Known, MASK};

/// The secrets one fetch holds: the process-wide registry's rules
/// ([`crate::secrets::Known`]: base64 forms, any 8 characters of a form),
/// for this fetch's credentials and the tokens it was handed.
#[derive(Default)]
pub(super) struct Secrets {
    known: Mutex<Known>,
}

impl Secrets {
    /// The secrets in `credentials`: a password and every base64 form of
    /// `user:password`, or an identity token.
    pub(super) fn of(credentials: &Credentials) -> Secrets {
        let mut known = Known::default();
        match credentials {
            Credentials::Anonymous => {}
            Credentials::Basic { username, password } => known.add_basic(username, password),
            Credentials::IdentityToken(token) => known.add_secret(token),
        }
        Secrets {
            known: Mutex::new(known),
        }
    }

    /// Remembers one more secret (a token fetched during the fetch).
    pub(super) fn add(&self, secret: &str) {
        self.known.lock().unwrap_or_else(|e| e.into_inner()).add_secret(secret);
    }

    /// `text` with every known secret and every `Basic …`/`Bearer …`
    /// credential masked.
    pub(super) fn scrub(&self, text: &str) -> String {
        let scrubbed = self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .scrub(text)
            .into_owned();
        mask_schemes(&scrubbed)
    }

    /// Outside text as an error shows it: scrubbed, then quoted (escaped
    /// and cut by [`crate::text::quote`]).
    pub(super) fn show(&self, text: &str) -> String {
        crate::text::quote(&self.scrub(text))
    }
}

/// `text` with the credential after every `Basic` or `Bearer` (any case,
/// then spaces) masked when it looks like one: an echoed `Authorization` header shows no part of
/// what it carried, whoever's it was.
fn mask_schemes(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let found = ["basic", "bearer"]
            .iter()
            .filter_map(|scheme| lower[at..].find(scheme).map(|i| (at + i, scheme.len())))
            .min();
        let Some((start, len)) = found else { break };
        let after_scheme = start + len;
        let spaces = text[after_scheme..]
            .bytes()
            .take_while(|b| *b == b' ' || *b == b'\t')
            .count();
        let credential_start = after_scheme + spaces;
        let credential_len = text[credential_start..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'.' | b'_' | b'~'))
            .count();
        out.push_str(&text[at..credential_start]);
        if spaces > 0 && looks_like_a_credential(&text[credential_start..credential_start + credential_len]) {
            out.push_str(MASK);
        } else {
            out.push_str(&text[credential_start..credential_start + credential_len]);
        }
        at = credential_start + credential_len;
    }
    out.push_str(&text[at.min(text.len())..]);
    out
}

/// A word after `Basic`/`Bearer` that is a credential rather than prose
/// ("basic authentication required"): long, and with a digit, a symbol of
/// base64 or a token, or letters of both cases.
fn looks_like_a_credential(word: &str) -> bool {
    let has = |f: fn(&u8) -> bool| word.as_bytes().iter().any(f);
    word.len() >= 8
        && (has(u8::is_ascii_digit)
            || has(|b| matches!(b, b'+' | b'/' | b'=' | b'-' | b'.' | b'_' | b'~'))
            || (has(u8::is_ascii_uppercase) && has(u8::is_ascii_lowercase)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn passwords_their_base64_pairs_and_tokens_are_masked() {
        let secrets = Secrets::of(&Credentials::Basic {
            username: "ci-bot".into(),
            password: "s3cret-Pa55word".into(),
        });
        let b64 = STANDARD.encode("ci-bot:s3cret-Pa55word");
        let shown = secrets.scrub(&format!("pw s3cret-Pa55word, pair {b64}; pair again {b64}"));
        assert!(!shown.contains("s3cret") && !shown.contains(&b64[..12]), "{shown}");
        secrets.add("fetched-token-123");
        assert_eq!(secrets.scrub("t=fetched-token-123"), "t=***");
        let identity = Secrets::of(&Credentials::IdentityToken("refresh-me-42".into()));
        assert_eq!(identity.scrub("refresh_token=refresh-me-42&x"), "refresh_token=***&x");
    }

    #[test]
    fn whatever_follows_basic_or_bearer_is_masked() {
        let none = Secrets::default();
        assert_eq!(
            none.scrub("you sent Authorization: Basic Y2k6cHc= and bearer  abc.def-1"),
            "you sent Authorization: Basic *** and bearer  ***"
        );
        assert_eq!(
            none.scrub("basic authentication required"),
            "basic authentication required"
        );
        assert_eq!(none.scrub("Bearer eyJhbGciOi.x.y"), "Bearer ***");
        assert_eq!(none.scrub("Basic, Bearer"), "Basic, Bearer");
        assert_eq!(none.scrub("plain text"), "plain text");
        assert_eq!(none.scrub("ends with Bearer"), "ends with Bearer");
    }

    #[test]
    fn shown_text_is_scrubbed_then_quoted() {
        let secrets = Secrets::of(&Credentials::IdentityToken("id-token-77".into()));
        assert_eq!(secrets.show("x\nid-token-77"), "\"x\\n***\"");
    }
}
