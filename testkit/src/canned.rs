//! An HTTP server of canned answers on a raw socket: the bytes reach the
//! client exactly as written (hostile headers, forged lines), one scripted
//! answer per request in turn, and it counts what it was asked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Canned {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    asked: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Canned {
    /// Answers every request with `response`.
    pub fn start(response: Vec<u8>) -> Canned {
        Canned::script(vec![response])
    }

    /// Answers request `n` (from 0) with `responses[n]`, and every request
    /// after the last with the last. An empty response closes the
    /// connection without a byte, as a server that crashed mid-request.
    pub fn script(responses: Vec<Vec<u8>>) -> Canned {
        assert!(!responses.is_empty(), "at least one response");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (asked, heads) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
        let (count, kept) = (asked.clone(), heads.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut head = String::new();
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    head.push_str(&line);
                    line.clear();
                }
                let n = count.fetch_add(1, Ordering::SeqCst);
                kept.lock().unwrap_or_else(|e| e.into_inner()).push(head);
                let response = &responses[n.min(responses.len() - 1)];
                if response.is_empty() {
                    drop(reader);
                    drop(stream);
                    continue;
                }
                let _ = stream.write_all(response);
                let _ = stream.flush();
                let _ = stream.shutdown(std::net::Shutdown::Write);
                let _ = reader.read_to_end(&mut Vec::new());
            }
        });
        Canned { base, asked, heads }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// `provgate verify HOST/REPO_TAG --insecure-registry HOST -v`: this
    /// server as a plain-HTTP registry.
    pub fn verify_from(&self, repo_tag: &str) -> std::process::Output {
        let reference = format!("{}/{repo_tag}", self.host());
        crate::provgate_env(
            &["verify", &reference, "--insecure-registry", self.host(), "-v"],
            None,
            &[],
        )
    }

    /// Requests read so far.
    pub fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }

    /// The request heads read so far, in order.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// An HTTP/1.1 answer: `status` (`"200 OK"`), `headers`, `body`, and
/// `Connection: close`.
pub fn http(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}
