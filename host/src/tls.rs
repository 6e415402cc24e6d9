//! Whom provgate's HTTPS clients trust, and what a failed handshake means.
//!
//! Every client verifies servers with the system's trust store (on Linux
//! the usual bundle, or `SSL_CERT_FILE` / `SSL_CERT_DIR` in its place, as
//! OpenSSL-based tools read them) plus the CA certificates of `--ca-file`,
//! which are added once at start, before any client is built, so the
//! registry, Gitea, the pins URL and the control plane all trust the same.
//!
//! rustls says why a certificate failed in its own words (`UnknownIssuer`,
//! `NotValidForName`, `Expired`, "received corrupt message of type
//! InvalidContentType"); [`explain`] turns them into a sentence that names
//! the host and what to do.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::usage::UsageError;

static EXTRA: OnceLock<Vec<reqwest::Certificate>> = OnceLock::new();

/// A `--ca-file` holds at most this much: a bundle of a few hundred CAs.
const MAX_CA_FILE_BYTES: u64 = 4 << 20;

/// Adds the CA certificates in the PEM files `paths` to what every client
/// trusts from now on. A file that cannot be read or holds no certificate
/// is exit 2, naming it. Only the first call counts.
pub fn add_ca_files(paths: &[PathBuf]) -> Result<(), UsageError> {
    check_ssl_cert_file()?;
    let mut certificates = Vec::new();
    for path in paths {
        certificates.extend(read_ca_file(path)?);
    }
    let _ = EXTRA.set(certificates);
    Ok(())
}

fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, UsageError> {
    let shown = crate::text::quote(&path.display().to_string());
    let fail = |why: String| UsageError::msg(format!("--ca-file {shown}: {why}"));
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_CA_FILE_BYTES + 1), &mut bytes))
        .map_err(|e| fail(format!("cannot read it ({e})")))?;
    if bytes.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(fail(format!(
            "larger than the {} MiB a CA bundle may be",
            MAX_CA_FILE_BYTES >> 20
        )));
    }
    let certificates =
        reqwest::Certificate::from_pem_bundle(&bytes).map_err(|e| fail(format!("not PEM certificates ({e})")))?;
    if certificates.is_empty() {
        return Err(fail("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
    }
    Ok(certificates)
}

/// `SSL_CERT_FILE`, when set, must be a regular file no larger than a CA
/// bundle: the trust store reads it whole, so `/dev/zero` or a FIFO there
/// would fill memory or hang every HTTPS client. Exit 2, naming it.
fn check_ssl_cert_file() -> Result<(), UsageError> {
    let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let shown = crate::text::quote(&path.to_string_lossy());
    let fail = |why: String| UsageError::msg(format!("SSL_CERT_FILE {shown}: {why}"));
    let meta = std::fs::metadata(&path).map_err(|e| fail(format!("cannot read it ({e})")))?;
    if !meta.is_file() {
        return Err(fail("is not a regular file".into()));
    }
    if meta.len() > MAX_CA_FILE_BYTES {
        return Err(fail(format!(
            "larger than the {} MiB a CA bundle may be",
            MAX_CA_FILE_BYTES >> 20
        )));
    }
    Ok(())
}

/// The `--ca-file` certificates, for a client being built.
pub fn extra_roots() -> Vec<reqwest::Certificate> {
    EXTRA.get().cloned().unwrap_or_default()
}

/// A sentence for a failed connection to `host` whose error chain is
/// `chain`, when it is a TLS failure provgate can name; `insecure_flag` is
/// the flag that allows plain HTTP to that host, if there is one.
pub fn explain(chain: &str, host: &str, insecure_flag: Option<&str>) -> Option<String> {
    let certificate = |what: &str, fix: &str| Some(format!("the TLS certificate of {host} {what}; {fix}"));
    if chain.contains("UnknownIssuer") || chain.contains("unknown issuer") {
        return certificate(
            "is signed by an issuer this machine does not trust",
            "if it is your organisation's CA, add it with --ca-file PEM (or SSL_CERT_FILE)",
        );
    }
    if chain.contains("NotValidForName") || chain.contains("not valid for name") {
        return certificate(
            "is not valid for that name",
            "use the name the certificate was issued for, or have it reissued",
        );
    }
    if chain.contains("Expired") || chain.contains("expired") {
        return certificate("has expired (or this machine's clock is wrong)", "have it renewed");
    }
    if chain.contains("NotValidYet") {
        return certificate("is not valid yet (or this machine's clock is wrong)", "check the clock");
    }
    if chain.contains("InvalidContentType")
        || chain.contains("corrupt message")
        || chain.contains("wrong version number")
    {
        let allow = match insecure_flag {
            Some(flag) => format!("; if it really speaks plain HTTP, allow that with {flag} {host}"),
            None => "; if it really speaks plain HTTP, give an http:// URL".into(),
        };
        return Some(format!(
            "{host} did not answer the TLS handshake with TLS: it seems to speak plain HTTP on that port{allow}"
        ));
    }
    None
}

/// A sentence for an HTTP answer to a plain-HTTP request that a TLS server
/// gives (Go's "Client sent an HTTP request to an HTTPS server", nginx's
/// "The plain HTTP request was sent to HTTPS port").
pub fn explain_plain_to_tls(body: &str, host: &str) -> Option<String> {
    let said_so =
        body.contains("HTTP request to an HTTPS server") || body.contains("plain HTTP request was sent to HTTPS port");
    said_so.then(|| {
        format!("{host} speaks HTTPS on that port, not plain HTTP; use https (drop --insecure-registry for it)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_certificate_failure_is_named_with_its_host() {
        let unknown = explain("invalid peer certificate: UnknownIssuer", "reg.example:443", None).unwrap();
        assert!(
            unknown.contains("reg.example:443") && unknown.contains("--ca-file"),
            "{unknown}"
        );
        let name = explain("invalid peer certificate: NotValidForName", "h", None).unwrap();
        assert!(name.contains("not valid for that name"), "{name}");
        let expired = explain("invalid peer certificate: Expired", "h", None).unwrap();
        assert!(expired.contains("expired"), "{expired}");
        let plain = explain(
            "received corrupt message of type InvalidContentType",
            "127.0.0.1:5000",
            Some("--insecure-registry"),
        )
        .unwrap();
        assert!(
            plain.contains("plain HTTP") && plain.contains("--insecure-registry 127.0.0.1:5000"),
            "{plain}"
        );
        assert_eq!(explain("connection refused", "h", None), None);
    }

    #[test]
    fn a_tls_servers_answer_to_plain_http_is_recognised() {
        let hint = explain_plain_to_tls("Client sent an HTTP request to an HTTPS server.\n", "127.0.0.1:5000").unwrap();
        assert!(hint.contains("speaks HTTPS"), "{hint}");
        assert_eq!(explain_plain_to_tls("404 page not found", "h"), None);
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = read_ca_file(&path).unwrap_err().to_string();
        assert!(e.contains("--ca-file") && e.contains("empty.pem"), "{e}");
        let missing = read_ca_file(&dir.path().join("absent.pem")).unwrap_err().to_string();
        assert!(missing.contains("absent.pem"), "{missing}");
    }
}
