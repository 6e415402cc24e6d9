//! `provgate serve` as a process for the tests: started on `127.0.0.1:0`
//! with the tests' environment ([`crate::provgate_command`]), its stderr
//! (the log) and stdout kept, and its address read from the `listening on
//! http://ADDR` line. Killed and reaped when dropped.

use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a server may take to print its address: the first start in a
/// fresh checkout compiles the policy.
pub const START_DEADLINE: Duration = Duration::from_secs(120);

pub struct Served {
    pub child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    log: Arc<Mutex<Vec<String>>>,
    out: Arc<Mutex<Vec<String>>>,
}

/// The command: `provgate serve --listen 127.0.0.1:0 ARGS`, with `env`.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    crate::provgate_command(&all, env)
}

/// `127.0.0.1:PORT` from the `listening on http://127.0.0.1:PORT …` line.
pub fn listening_address(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("listening on http://")?;
    Some(rest.split_whitespace().next()?.to_string())
}

/// The value of one sample of a `/metrics` text (`name{labels}` as
/// printed), or `None` when the text has no such sample.
pub fn metric(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.trim().parse().ok())
}

impl Served {
    /// Spawns `cmd` (from [`command`]) and waits for its address; panics
    /// with the log if it exits first or does not listen in time.
    pub fn start(mut cmd: Command) -> Served {
        let mut child = cmd.spawn().expect("provgate serve starts");
        let stderr = child.stderr.take().expect("serve's stderr is piped");
        let (log, rx) = crate::watch_stderr(stderr, listening_address);
        let out = Arc::new(Mutex::new(Vec::new()));
        if let Some(stdout) = child.stdout.take() {
            let kept = Arc::clone(&out);
            // Read for the child's whole life: a full pipe would block it.
            std::thread::spawn(move || {
                for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                    let Ok(line) = line else { break };
                    kept.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        let deadline = Instant::now() + START_DEADLINE;
        let addr = loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(100)) {
                break addr;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "provgate serve exited ({status}) before listening:\n{}",
                    log.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("provgate serve did not listen within {START_DEADLINE:?}");
            }
        };
        Served { child, addr, log, out }
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
    }

    /// What the server has written to stdout so far.
    pub fn stdout(&self) -> String {
        self.out.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
