//! The log: `tracing` events on stderr, one line each whatever they carry.
//!
//! Log fields hold values from outside (references, registry names, error
//! text of servers and libraries). Each call site quotes what it knows to
//! be foreign, and this writer is the net under them: every event passes
//! through [`crate::text::one_line`], so no value can end a line and forge
//! the next (`… INFO request status=200 …`, or a `::error::` workflow
//! command that GitHub's and Gitea's runners parse on stderr too), colour
//! a terminal, or show a secret. Terminal colours are off for the same
//! reason: they would be escapes inside the line.

use std::io::{self, Write};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How each log line is written: `text` for people, `json` for a log
/// pipeline (one JSON object per line: `timestamp`, `level`, `target`,
/// `message` and the event's fields at the top level).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the subscriber: `default_level` unless `RUST_LOG` says otherwise.
pub fn init(default_level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(OneLine { format })
        .with_ansi(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

/// Makes one [`EventWriter`] per event.
struct OneLine {
    format: LogFormat,
}

impl<'a> MakeWriter<'a> for OneLine {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> EventWriter {
        EventWriter(Vec::with_capacity(256), self.format)
    }
}

/// Collects one formatted event, and writes it as one line when dropped.
struct EventWriter(Vec<u8>, LogFormat);

impl Write for EventWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.0);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let line = match self.1 {
            LogFormat::Text => crate::text::one_line(text),
            LogFormat::Json => json_line(text),
        };
        // A closed stderr is no reason to fail a request.
        let _ = writeln!(io::stderr().lock(), "{line}");
    }
}

/// A JSON log line made one line as [`crate::text::one_line`] makes text,
/// but still JSON: serde_json already escapes what would end the line
/// (C0 controls), and every other character `one_line` would escape (C1
/// controls, bidi and zero-width characters) becomes a JSON `\uXXXX`
/// escape, not Rust's `\u{…}`, which no JSON parser reads.
fn json_line(text: &str) -> String {
    let scrubbed = crate::secrets::scrub(text);
    let mut out = String::with_capacity(scrubbed.len());
    let mut one = [0u8; 4];
    for c in scrubbed.chars() {
        let plain = (c.is_ascii() && !c.is_ascii_control()) || {
            let s: &str = c.encode_utf8(&mut one);
            crate::text::one_line(s) == s
        };
        if plain {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// `line`, as [`crate::text::one_line`] makes it, on stderr: for the few
/// messages written without `tracing` (the final error, serve's address).
pub fn say(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{}", crate::text::one_line(line));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_writer_collects_partial_writes_into_one_buffer() {
        let mut w = OneLine {
            format: LogFormat::Text,
        }
        .make_writer();
        w.write_all(b"INFO a=\"x").unwrap();
        w.write_all(b"\ny\"\n").unwrap();
        assert_eq!(w.0, b"INFO a=\"x\ny\"\n");
        let text = String::from_utf8_lossy(&w.0).into_owned();
        assert_eq!(
            crate::text::one_line(text.strip_suffix('\n').unwrap()),
            "INFO a=\"x\\ny\""
        );
        w.0.clear();
    }

    #[test]
    fn a_json_line_stays_one_line_of_valid_json() {
        let raw = serde_json::json!({"message": "a\u{202e}b\u{85}c\nd\u{1b}[2K"}).to_string();
        let line = json_line(&raw);
        assert!(!line.contains(['\n', '\u{202e}', '\u{85}', '\u{1b}']), "{line}");
        let back: serde_json::Value = serde_json::from_str(&line).expect("still JSON");
        assert_eq!(back["message"], "a\u{202e}b\u{85}c\nd\u{1b}[2K");
        assert_eq!(json_line("{\"m\":\"→ ✓\"}"), "{\"m\":\"→ ✓\"}");
    }
}
