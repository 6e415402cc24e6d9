//! `provgate serve`'s connection hygiene, against the real binary on
//! loopback with raw sockets: a slowloris connection is closed by the header
//! time-out, a body that dribbles is answered 408 (or the connection
//! closed), a `Content-Length` over the limit is 413 before the body is
//! read, connections above `--max-connections` are shed with a 503 while
//! the listener goes on accepting, running out of file descriptors neither
//! ends nor stalls the accept loop, and the soft open-file limit is raised
//! to the hard one.
//!
//! Time-outs are set to a second or two so the tests are quick; what is
//! asserted is the order of events and their outcomes, never a duration.
//! The deadlines below are hang guards for a loaded 2-core machine.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use provgate_testkit::serve::Served;

/// Upper bound for anything that should happen "soon".
const SOON: Duration = Duration::from_secs(30);

/// A running `provgate serve --listen 127.0.0.1:0 …`, killed when dropped.
struct Serve {
    served: Served,
    addr: String,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        Serve::start_limited(args, None)
    }

    /// With `open_files = Some((soft, hard))`, the server starts under that
    /// RLIMIT_NOFILE (as a service manager or a shell's `ulimit` would set it).
    fn start_limited(args: &[&str], open_files: Option<(u64, u64)>) -> Serve {
        let mut cmd = provgate_testkit::serve::command(args, &[]);
        cmd.stdout(Stdio::null());
        if let Some((soft, hard)) = open_files {
            // SAFETY: only setrlimit, which is async-signal-safe, runs
            // between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: soft,
                        rlim_max: hard,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let served = Served::start(cmd);
        Serve {
            addr: served.addr.clone(),
            served,
        }
    }

    fn log(&self) -> String {
        self.served.log()
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).expect("connect to provgate serve");
        stream.set_read_timeout(Some(SOON)).unwrap();
        stream.set_write_timeout(Some(SOON)).unwrap();
        stream
    }

    /// One request on a connection of its own (`Connection: close`): what
    /// came back until the server closed, or the error that ended it.
    fn exchange(&self, request: &[u8]) -> Result<String, std::io::Error> {
        let mut stream = self.connect();
        stream.write_all(request)?;
        read_until_closed(&mut stream)
    }

    fn get(&self, path: &str) -> Result<String, std::io::Error> {
        self.exchange(format!("GET {path} HTTP/1.1\r\nhost: provgate\r\nconnection: close\r\n\r\n").as_bytes())
    }

    /// `/healthz` answered 200, waiting (a bounded while) until it is.
    fn wait_healthy(&self) {
        let deadline = Instant::now() + SOON;
        loop {
            match self.get("/healthz") {
                Ok(answer) if status(&answer) == Some(200) => return,
                other => assert!(
                    Instant::now() < deadline,
                    "/healthz did not answer 200 within {SOON:?}: {other:?}\n{}",
                    self.log()
                ),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The value of one sample line of `/metrics`, 0 when it is not there yet.
    fn metric(&self, sample: &str) -> f64 {
        let answer = self.get("/metrics").expect("/metrics answers");
        assert_eq!(status(&answer), Some(200), "{answer}");
        provgate_testkit::serve::metric(&answer, sample).unwrap_or(0.0)
    }
}

/// Reads until the peer closes. A reset after some bytes still counts as
/// an answer; a reset before any is the error.
fn read_until_closed(stream: &mut TcpStream) -> Result<String, std::io::Error> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if bytes.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The status of an HTTP/1.1 answer.
fn status(answer: &str) -> Option<u16> {
    answer.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// The JSON body of an answer.
fn body(answer: &str) -> serde_json::Value {
    let (_, body) = answer.split_once("\r\n\r\n").unwrap_or(("", ""));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {answer:?}"))
}

/// Whether the server has closed `stream` (EOF or a reset), reading what
/// it may have sent first. Waits at most [`SOON`] (the socket's time-out).
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return false,
            Err(_) => return true,
        }
    }
}

/// Sends `head`, then `drip` one byte at a time, a pause between bytes,
/// on a thread of its own, until the server closes the connection or the
/// bytes run out; the thread reports what the server answered (if anything)
/// and whether the bytes ran out first.
fn dribble(serve: &Serve, head: &[u8], drip: Vec<u8>, pause: Duration) -> mpsc::Receiver<(String, bool)> {
    let mut writer = serve.connect();
    writer.write_all(head).expect("send the head");
    let mut reader = writer.try_clone().unwrap();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let answer = read_until_closed(&mut reader).unwrap_or_default();
        let _ = done_tx.send(());
        let _ = tx.send(answer);
    });
    let (result_tx, result_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut ran_out = true;
        for byte in drip {
            if done_rx.recv_timeout(pause).is_ok() || writer.write_all(&[byte]).is_err() {
                ran_out = false;
                break;
            }
        }
        let answer = rx.recv_timeout(SOON).unwrap_or_default();
        let _ = result_tx.send((answer, ran_out));
    });
    result_rx
}

#[test]
fn a_slowloris_connection_is_closed_by_the_header_timeout_while_healthz_answers() {
    let serve = Serve::start(&["--header-timeout", "1"]);
    // One header byte every 200 ms, for far longer than the time-out.
    let slow = dribble(
        &serve,
        b"GET /healthz HTTP/1.1\r\nhost: provgate\r\nx-slow: ",
        vec![b'a'; 300],
        Duration::from_millis(200),
    );
    // The server answers others while the slow one is still sending.
    serve.wait_healthy();
    let (answer, ran_out) = slow.recv_timeout(2 * SOON).expect("the slow sender ends");
    assert!(
        !ran_out,
        "the server never closed the slowloris connection:\n{}",
        serve.log()
    );
    assert_eq!(answer, "", "a slowloris connection is closed, not answered");
    assert!(serve.metric("provgate_connection_timeouts_total{timeout=\"header\"}") >= 1.0);
    serve.wait_healthy();

    // A connection that never sends a byte is closed the same way.
    let mut idle = serve.connect();
    assert!(closed_by_server(&mut idle), "an idle new connection was kept open");
}

#[test]
fn a_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let serve = Serve::start(&["--idle-timeout", "1"]);
    let mut stream = serve.connect();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: provgate\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).expect("an answer");
    let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert_eq!(status(&answer), Some(200), "{answer}");
    assert!(!answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    // Kept alive, then closed by the server once idle.
    assert!(closed_by_server(&mut stream), "the idle connection was kept open");
    assert!(serve.metric("provgate_connection_timeouts_total{timeout=\"idle\"}") >= 1.0);
}

#[test]
fn a_declared_oversize_body_is_413_before_it_is_sent() {
    let serve = Serve::start(&[]);
    let mut stream = serve.connect();
    stream
        .write_all(
            b"POST /v1/verify HTTP/1.1\r\nhost: provgate\r\ncontent-type: application/json\r\n\
              content-length: 100000000\r\n\r\n{\"m",
        )
        .unwrap();
    // Nothing more is sent: the answer comes anyway.
    let answer = read_until_closed(&mut stream).expect("an answer");
    assert_eq!(status(&answer), Some(413), "{answer}");
    assert_eq!(
        body(&answer),
        serde_json::json!({"error": "the body is larger than 64 KiB"})
    );

    // A body without a length that grows past the limit is 413 too.
    let mut stream = serve.connect();
    stream
        .write_all(b"POST /v1/verify HTTP/1.1\r\nhost: provgate\r\ntransfer-encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = vec![b' '; 16 * 1024];
    for _ in 0..8 {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        if stream.write_all(&framed).is_err() {
            break;
        }
    }
    let answer = read_until_closed(&mut stream).expect("an answer to the chunked body");
    assert_eq!(status(&answer), Some(413), "{answer}");
    serve.wait_healthy();
}

#[test]
fn a_dribbling_body_is_408_or_closed() {
    let serve = Serve::start(&["--body-timeout", "1"]);
    let slow = dribble(
        &serve,
        b"POST /v1/verify HTTP/1.1\r\nhost: provgate\r\ncontent-type: application/json\r\ncontent-length: 300\r\n\r\n",
        vec![b' '; 300],
        Duration::from_millis(200),
    );
    serve.wait_healthy();
    let (answer, ran_out) = slow.recv_timeout(2 * SOON).expect("the slow sender ends");
    assert!(
        !ran_out,
        "the whole body was sent: the server waited for it:\n{}",
        serve.log()
    );
    if !answer.is_empty() {
        assert_eq!(status(&answer), Some(408), "{answer}");
        let error = body(&answer)["error"].as_str().unwrap().to_string();
        assert!(error.contains("--body-timeout"), "{error}");
    }
    serve.wait_healthy();
}

#[test]
fn connections_above_max_connections_are_shed_with_503_and_healthz_answers_once_they_go() {
    // Nothing has connected yet: no earlier connection still holds a slot.
    let serve = Serve::start(&["--max-connections", "4"]);
    // Four idle connections take every slot (the header time-out is 10 s).
    let held: Vec<TcpStream> = (0..4).map(|_| serve.connect()).collect();
    // Every connection beyond is answered 503 at once and closed, the
    // listener still accepting: nothing is sent, so nothing is read first.
    for _ in 0..6 {
        let mut extra = serve.connect();
        let answer = read_until_closed(&mut extra).expect("a 503");
        assert_eq!(status(&answer), Some(503), "{answer}");
        assert!(
            body(&answer)["error"].as_str().unwrap().contains("--max-connections"),
            "{answer}"
        );
    }
    // So is a health check, answered rather than left hanging.
    let answer = serve.get("/healthz").expect("an answer");
    assert_eq!(status(&answer), Some(503), "{answer}");

    // Once the load goes, /healthz answers again, and the shed were counted.
    drop(held);
    serve.wait_healthy();
    assert!(
        serve.metric("provgate_connections_shed_total") >= 7.0,
        "{}",
        serve.log()
    );
}

#[test]
fn running_out_of_file_descriptors_neither_ends_nor_stalls_the_accept_loop() {
    // 128 descriptors in all, and no cap below that: accept itself fails.
    let serve = Serve::start_limited(&["--max-connections", "100000"], Some((128, 128)));
    serve.wait_healthy();
    let held: Vec<TcpStream> = (0..300).map(|_| serve.connect()).collect();
    // Connections beyond the descriptors are accepted and shed, not left
    // waiting in the backlog.
    let mut shed = serve.connect();
    let answer = read_until_closed(&mut shed).unwrap_or_default();
    assert!(answer.is_empty() || status(&answer) == Some(503), "{answer}");
    drop(held);
    serve.wait_healthy();
    assert!(serve.metric("provgate_accept_errors_total") >= 1.0, "{}", serve.log());
    assert!(
        serve.metric("provgate_connections_shed_total") >= 1.0,
        "{}",
        serve.log()
    );
    assert!(serve.log().contains("Too many open files"), "{}", serve.log());
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_limit() {
    let serve = Serve::start_limited(&[], Some((256, 512)));
    let limits =
        std::fs::read_to_string(format!("/proc/{}/limits", serve.served.child.id())).expect("/proc/PID/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["512", "512"], "{line}");
    assert!(
        serve.log().contains("open-file limit raised from 256 to 512"),
        "{}",
        serve.log()
    );
    serve.wait_healthy();
}
