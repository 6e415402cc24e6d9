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

/// Installs the subscriber: `default_level` unless `RUST_LOG` says otherwise.
pub fn init(default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(OneLine)
        .with_ansi(false)
        .init();
}

/// Makes one [`EventWriter`] per event.
struct OneLine;

impl<'a> MakeWriter<'a> for OneLine {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> EventWriter {
        EventWriter(Vec::with_capacity(256))
    }
}

/// Collects one formatted event, and writes it as one line when dropped.
struct EventWriter(Vec<u8>);

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
        let line = crate::text::one_line(text.strip_suffix('\n').unwrap_or(&text));
        // A closed stderr is no reason to fail a request.
        let _ = writeln!(io::stderr().lock(), "{line}");
    }
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
        let mut w = OneLine.make_writer();
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
}
