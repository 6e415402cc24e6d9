//! Credential helpers: `docker-credential-NAME get`, run as a child process
//! that dies with the caller's future, its answer read and its errors shown
//! without a secret (see the [module documentation](super)).

use std::io;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

use super::file::string_field;
use super::{AuthSources, CredentialError, Credentials, REDACTED};

/// A helper's answer is a small JSON object; more is refused.
pub const MAX_HELPER_STDOUT: usize = 64 << 10;
/// How much of a helper's stderr is kept (the rest is read and dropped).
const MAX_HELPER_STDERR: usize = 64 << 10;
/// How much of a helper's stderr an error shows, in characters.
const MAX_STDERR_SHOWN: usize = 400;
/// What a helper says when it has nothing for the server.
const NOT_FOUND: &str = "credentials not found";

/// Runs `docker-credential-NAME get` for `server`.
pub(super) async fn from_helper(
    name: &str,
    server: &str,
    sources: &AuthSources,
) -> Result<Credentials, CredentialError> {
    let helper = format!("docker-credential-{name}");
    let failed = |reason: String| CredentialError::Helper {
        helper: helper.clone(),
        reason,
    };
    let mut command = Command::new(&helper);
    command
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Its own group, so that whatever the helper starts (a shell script's
    // gcloud, say) is killed with it.
    #[cfg(unix)]
    command.process_group(0);
    if let Some(path) = &sources.path {
        command.env("PATH", path);
    }
    let mut running = Running(Some(spawn(&mut command).await.map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            CredentialError::HelperMissing { helper: helper.clone() }
        } else {
            failed(format!("it cannot be started ({e})"))
        }
    })?));
    let child = running.child();
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let (Some(mut stdin), Some(stdout), Some(stderr)) = (stdin, stdout, stderr) else {
        return Err(failed("its pipes were not set up".into()));
    };

    let write = async move {
        let wrote = stdin.write_all(server.as_bytes()).await;
        drop(stdin); // end of input: helpers read to EOF
        match wrote {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(format!("cannot write to it ({e})")),
            _ => Ok(()),
        }
    };
    // All three at once: a helper may fill one pipe before reading stdin.
    let (stdout, stderr) = match tokio::try_join!(write, read_stdout(stdout), read_stderr(stderr)) {
        Ok(((), stdout, stderr)) => (stdout, stderr),
        Err(reason) => return Err(failed(reason)),
    };
    let status = running
        .child()
        .wait()
        .await
        .map_err(|e| failed(format!("cannot wait for it ({e})")))?;

    if !status.success() {
        if mentions_not_found(&stdout) || mentions_not_found(&stderr) {
            return Ok(Credentials::Anonymous);
        }
        return Err(failed(with_stderr(
            format!("it exited with {status}"),
            &stderr,
            &stdout,
            server,
        )));
    }
    helper_answer(&stdout).ok_or_else(|| {
        failed(with_stderr(
            "its answer is not a JSON object with string Username and Secret".into(),
            &stderr,
            &stdout,
            server,
        ))
    })
}

/// Spawns, retrying briefly while the program is open for writing
/// (ETXTBSY: a helper being installed, or written by a test while another
/// thread forks).
async fn spawn(command: &mut Command) -> io::Result<Child> {
    let mut delay = Duration::from_millis(5);
    for _ in 0..5 {
        match command.spawn() {
            Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            result => return result,
        }
    }
    command.spawn()
}

/// A running helper. Dropped before it was reaped (the caller's time-out),
/// its process group is killed and a task reaps it; a helper that ran to
/// the end is left alone.
struct Running(Option<Child>);

impl Running {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("the child is only taken on drop")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(mut child) = self.0.take() else { return };
        // `id()` is `None` once the child was reaped; until then its pid,
        // and so its group id, cannot have been reused.
        let Some(pid) = child.id() else { return };
        kill_group(pid);
        let _ = child.start_kill();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = child.wait().await;
            });
        }
        // Otherwise (no runtime) `kill_on_drop` and tokio's orphan queue do it.
    }
}

#[cfg(unix)]
fn kill_group(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid)
        && pid > 0
    {
        // SAFETY: kill(2) takes no pointers. `-pid` is the process group the
        // unreaped helper leads (`process_group(0)`), so it is still ours.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

#[cfg(not(unix))]
fn kill_group(_pid: u32) {}

async fn read_stdout(mut stdout: ChildStdout) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    (&mut stdout)
        .take(MAX_HELPER_STDOUT as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| format!("cannot read its answer ({e})"))?;
    if bytes.len() > MAX_HELPER_STDOUT {
        return Err(format!("its answer is larger than {} KiB", MAX_HELPER_STDOUT >> 10));
    }
    Ok(bytes)
}

/// The first [`MAX_HELPER_STDERR`] bytes; the rest is read and dropped, so
/// that a chatty helper does not block on a full pipe.
async fn read_stderr(mut stderr: ChildStderr) -> Result<Vec<u8>, String> {
    let mut kept = Vec::new();
    let read = async {
        (&mut stderr)
            .take(MAX_HELPER_STDERR as u64)
            .read_to_end(&mut kept)
            .await?;
        tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await
    };
    read.await.map_err(|e| format!("cannot read its stderr ({e})"))?;
    Ok(kept)
}

fn mentions_not_found(output: &[u8]) -> bool {
    String::from_utf8_lossy(output).to_ascii_lowercase().contains(NOT_FOUND)
}

/// A helper's answer, read as docker's `client.Get` does: the first JSON
/// value; `null` or empty strings are anonymous.
fn helper_answer(stdout: &[u8]) -> Option<Credentials> {
    let answer = serde_json::Deserializer::from_slice(stdout)
        .into_iter::<Value>()
        .next()?
        .ok()?;
    let answer = match answer {
        Value::Null => return Some(Credentials::Anonymous),
        Value::Object(answer) => answer,
        _ => return None,
    };
    let username = string_field(&answer, "Username", String::new).ok()?;
    let secret = string_field(&answer, "Secret", String::new).ok()?;
    Some(match username.as_str() {
        "<token>" if secret.is_empty() => Credentials::Anonymous,
        "<token>" => Credentials::IdentityToken(secret),
        _ => Credentials::basic(username, secret),
    })
}

/// `what`, then the helper's stderr: with anything from its stdout or its
/// stdin replaced, control characters escaped, and cut short.
fn with_stderr(what: String, stderr: &[u8], stdout: &[u8], stdin: &str) -> String {
    let text = redact(&String::from_utf8_lossy(stderr), stdout, stdin);
    let shown = escape_and_truncate(text.trim(), MAX_STDERR_SHOWN);
    let hidden = if stdout.iter().any(|b| !b.is_ascii_whitespace()) {
        " (its stdout is not shown, as it may hold secrets)"
    } else {
        ""
    };
    if shown.is_empty() {
        format!("{what}, with nothing on stderr{hidden}")
    } else {
        format!("{what}{hidden}: {shown}")
    }
}

/// `text` with every string the helper was given or answered cut out: the
/// stdin, the stdout as a whole, each of its JSON strings and each of its
/// words of six or more characters, and any 8 characters of one of them.
fn redact(text: &str, stdout: &[u8], stdin: &str) -> String {
    let stdout_text = String::from_utf8_lossy(stdout);
    let mut secrets: Vec<String> = vec![stdin.to_string(), stdout_text.trim().to_string()];
    for value in serde_json::Deserializer::from_slice(stdout).into_iter::<Value>() {
        let Ok(value) = value else { break };
        collect_strings(&value, &mut secrets);
    }
    secrets.extend(
        stdout_text
            .split(|c: char| c.is_whitespace() || "\"',:;{}[]()=".contains(c))
            .filter(|word| word.chars().count() >= 6)
            .map(str::to_string),
    );
    secrets.retain(|s| !s.is_empty());
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    let mut text = text.to_string();
    for secret in &secrets {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), REDACTED);
        }
    }
    // A part of a secret (a helper that prints the first characters of
    // what it answers) is masked too: any 8 characters of one.
    let mut parts = crate::secrets::Known::default();
    for secret in &secrets {
        parts.add_secret(secret);
    }
    parts.scrub(&text).into_owned()
}

fn collect_strings(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::String(s) => into.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, into)),
        Value::Object(members) => members.iter().for_each(|(k, v)| {
            into.push(k.clone());
            collect_strings(v, into);
        }),
        _ => {}
    }
}

/// At most `max` characters, control and bidi characters escaped (`\n`,
/// `\u{1b}`), with a note of how much was left off.
fn escape_and_truncate(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (shown, (at, c)) in text.char_indices().enumerate() {
        if shown == max {
            out.push_str(&format!("… ({} more bytes)", text.len() - at));
            break;
        }
        if c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_is_escaped_and_cut() {
        let long = "é".repeat(MAX_STDERR_SHOWN + 10);
        let shown = escape_and_truncate(&long, MAX_STDERR_SHOWN);
        assert!(shown.ends_with("… (20 more bytes)"), "{shown}");
        assert_eq!(
            escape_and_truncate("a\tb\u{202e}c\u{7f}", 100),
            "a\\tb\\u{202e}c\\u{7f}"
        );
    }

    #[test]
    fn a_prefix_of_the_answered_secret_on_stderr_is_masked() {
        // Truncated JSON: the answer never parses, so only redaction hides it.
        let stdout = br#"{"Username":"robot","Secret":"Pa55w0rd-SECRET-77aa99"#;
        let shown = redact("helper: bad answer for secret Pa55w0rd-SECRE", stdout, "reg.example");
        assert!(!shown.contains("Pa55w0rd"), "{shown}");
        assert!(shown.starts_with("helper: bad answer for secret "), "{shown}");
    }
}
