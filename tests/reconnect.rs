//! Automatic reconnection through the C ABI, against loopback servers whose
//! every connection the test scripts: dropped, refused, closed with a code,
//! silent, or echoing. Each server counts the connections it accepted (and
//! when), so "no further attempt" is checked where it happens.
#![allow(clippy::result_large_err)]

mod common;

use std::ffi::{c_void, CStr, CString};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{open_with, send_text, wait_until, DEADLINE};
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::WebSocket;
use wsembed::ffi::*;

// ----- events -------------------------------------------------------------

#[derive(Debug, Clone)]
struct Event {
    kind: ws_event_kind,
    at: Instant,
    code: u16,
    reason: String,
    clean: bool,
    error: i32,
    attempt: u32,
    delay_ms: u32,
    len: usize,
    http_status: i32,
    data: Vec<u8>,
    thread: thread::ThreadId,
}

type Hook = Box<dyn Fn(ws_handle, &Event) + Send + Sync>;

/// Every event of one socket, with what it carried and when.
#[derive(Default)]
struct Log {
    events: Mutex<Vec<Event>>,
    changed: Condvar,
    /// Runs inside the `reconnecting` callback.
    on_reconnecting: Mutex<Option<Hook>>,
    finalized: AtomicUsize,
}

unsafe extern "C" fn log_event(h: ws_handle, e: *const ws_event, userdata: *mut c_void) {
    // SAFETY: userdata is the Arc<Log> leaked by `bind`; the event is valid
    // during the call.
    let (log, e) = unsafe { (&*(userdata as *const Log), &*e) };
    // SAFETY: reason is a NUL-terminated string valid during the call.
    let reason = unsafe { CStr::from_ptr(e.reason) }
        .to_string_lossy()
        .into_owned();
    let data = match e.kind {
        // SAFETY: a message's data has len bytes.
        WS_EVENT_MESSAGE => unsafe { std::slice::from_raw_parts(e.data, e.len) }.to_vec(),
        _ => Vec::new(),
    };
    let event = Event {
        kind: e.kind,
        at: Instant::now(),
        code: e.code,
        reason,
        clean: e.was_clean,
        error: e.error_code,
        attempt: e.attempt,
        delay_ms: e.delay_ms,
        len: e.len,
        http_status: e.http_status,
        data,
        thread: thread::current().id(),
    };
    if e.kind == WS_EVENT_RECONNECTING {
        if let Some(hook) = log.on_reconnecting.lock().unwrap().as_ref() {
            hook(h, &event);
        }
    }
    log.events.lock().unwrap().push(event);
    log.changed.notify_all();
}

unsafe extern "C" fn release(userdata: *mut c_void) {
    // SAFETY: userdata came from Arc::into_raw in `bind`.
    let log = unsafe { Arc::from_raw(userdata as *const Log) };
    log.finalized.fetch_add(1, Ordering::SeqCst);
}

const KINDS: [ws_event_kind; 5] = [
    WS_EVENT_OPEN,
    WS_EVENT_MESSAGE,
    WS_EVENT_ERROR,
    WS_EVENT_CLOSE,
    WS_EVENT_RECONNECTING,
];

impl Log {
    fn new() -> Arc<Log> {
        Arc::new(Log::default())
    }

    fn bind(self: &Arc<Self>, h: ws_handle) {
        for kind in KINDS {
            let ud = Arc::into_raw(self.clone()) as *mut c_void;
            assert_eq!(
                ws_bind_ex(h, kind, Some(log_event), ud, Some(release)),
                WS_OK
            );
        }
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    fn kinds(&self) -> Vec<ws_event_kind> {
        self.events().iter().map(|e| e.kind).collect()
    }

    fn count(&self, kind: ws_event_kind) -> usize {
        self.events().iter().filter(|e| e.kind == kind).count()
    }

    /// Waits until there are `n` events of `kind`; returns them.
    fn wait(&self, kind: ws_event_kind, n: usize) -> Vec<Event> {
        let end = Instant::now() + DEADLINE;
        let mut events = self.events.lock().unwrap();
        loop {
            let of_kind: Vec<Event> = events.iter().filter(|e| e.kind == kind).cloned().collect();
            if of_kind.len() >= n {
                return of_kind;
            }
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {n} events of kind {kind}: {:?}",
                events.iter().map(|e| e.kind).collect::<Vec<_>>()
            );
            events = self.changed.wait_timeout(events, left).unwrap().0;
        }
    }

    fn wait_close(&self) -> Event {
        self.wait(WS_EVENT_CLOSE, 1).remove(0)
    }
}

/// Open, message, reconnecting, error and close in the order the contract
/// gives: `(open, message*, reconnecting)*`, at most one error, exactly one
/// close, last.
fn assert_lifecycle(kinds: &[ws_event_kind]) {
    let (last, rest) = kinds.split_last().expect("no events");
    assert_eq!(*last, WS_EVENT_CLOSE, "close last: {kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == WS_EVENT_CLOSE).count(),
        1,
        "{kinds:?}"
    );
    let mut open = false;
    let mut errored = false;
    for k in rest {
        match *k {
            WS_EVENT_OPEN => {
                assert!(!open && !errored, "open twice in a row: {kinds:?}");
                open = true;
            }
            WS_EVENT_MESSAGE => assert!(open && !errored, "message outside open: {kinds:?}"),
            WS_EVENT_RECONNECTING => {
                assert!(!errored, "reconnecting after error: {kinds:?}");
                open = false;
            }
            WS_EVENT_ERROR => {
                assert!(!errored, "two errors: {kinds:?}");
                errored = true;
            }
            other => panic!("unexpected kind {other}: {kinds:?}"),
        }
    }
}

// ----- servers --------------------------------------------------------------

/// What a scripted server does with its n-th connection (from 0).
type Script = dyn Fn(usize, TcpStream) + Send + Sync;

struct Scripted {
    port: u16,
    accepted: Arc<Mutex<Vec<Instant>>>,
}

impl Scripted {
    fn start(script: impl Fn(usize, TcpStream) + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let seen = accepted.clone();
        let script: Arc<Script> = Arc::new(script);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let n = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(Instant::now());
                    seen.len() - 1
                };
                let script = script.clone();
                thread::spawn(move || script(n, stream));
            }
        });
        Scripted { port, accepted }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    fn count(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }

    fn times(&self) -> Vec<Instant> {
        self.accepted.lock().unwrap().clone()
    }
}

fn accept(stream: TcpStream) -> Option<WebSocket<TcpStream>> {
    tungstenite::accept(stream).ok()
}

fn echo(mut ws: WebSocket<TcpStream>) {
    while let Ok(m) = ws.read() {
        if (m.is_text() || m.is_binary()) && ws.send(m).is_err() {
            return;
        }
    }
}

/// Closes with `code` at once, then waits for the client's answer.
fn close_with(mut ws: WebSocket<TcpStream>, code: u16) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: "bye".into(),
    };
    let _ = ws.close(Some(frame));
    while ws.read().is_ok() {}
}

/// Answers the upgrade with an HTTP refusal.
fn refuse(mut stream: TcpStream, status: &str, headers: &str) {
    let _ = common::read_request(&mut stream);
    let body = "come back later";
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A URL on whose port nothing listens.
fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("ws://127.0.0.1:{}/", listener.local_addr().unwrap().port())
}

// ----- options ------------------------------------------------------------

struct Policy {
    initial_ms: u32,
    max_ms: u32,
    multiplier: f64,
    jitter: f64,
    max_attempts: u32,
    stable_ms: u32,
}

/// A minute before the first retry: the test acts during the wait.
const SLOW: Policy = Policy {
    initial_ms: 60_000,
    max_ms: 60_000,
    ..FAST
};

const FAST: Policy = Policy {
    initial_ms: 50,
    max_ms: 400,
    multiplier: 2.0,
    jitter: 0.0,
    max_attempts: 0,
    stable_ms: 5000,
};

fn options(p: &Policy) -> *mut ws_options {
    let o = ws_options_new();
    assert_eq!(ws_options_set_reconnect(o, true), WS_OK);
    assert_eq!(
        ws_options_set_reconnect_delay(o, p.initial_ms, p.max_ms),
        WS_OK
    );
    assert_eq!(
        ws_options_set_reconnect_backoff(o, p.multiplier, p.jitter),
        WS_OK
    );
    assert_eq!(
        ws_options_set_reconnect_max_attempts(o, p.max_attempts),
        WS_OK
    );
    assert_eq!(ws_options_set_reconnect_stable_ms(o, p.stable_ms), WS_OK);
    o
}

fn open_logged(url: &str, o: *mut ws_options) -> (ws_handle, Arc<Log>) {
    let h = open_with(url, o);
    ws_options_free(o);
    let log = Log::new();
    log.bind(h);
    (h, log)
}

// ----- tests ----------------------------------------------------------------

#[test]
fn an_abrupt_drop_reconnects_on_the_same_handle() {
    let server = Scripted::start(|n, stream| {
        let Some(ws) = accept(stream) else { return };
        if n == 0 {
            // Gone without a close frame.
            drop(ws);
            return;
        }
        echo(ws);
    });
    let policy = Policy {
        initial_ms: 100,
        jitter: 0.2,
        ..FAST
    };
    let (h, log) = open_logged(&server.url(), options(&policy));
    let opens = log.wait(WS_EVENT_OPEN, 2);
    assert_eq!((opens[0].attempt, opens[1].attempt), (0, 1));
    let r = &log.wait(WS_EVENT_RECONNECTING, 1)[0];
    assert_eq!(r.code, 1006);
    assert!(!r.clean);
    assert_eq!(r.attempt, 1);
    assert!((80..=120).contains(&r.delay_ms), "{}", r.delay_ms);
    assert!(opens[1].at.duration_since(r.at) >= Duration::from_millis(75));
    assert_eq!(ws_ready_state(h), WS_OPEN);
    assert_eq!(send_text(h, "again"), WS_OK);
    let message = log.wait(WS_EVENT_MESSAGE, 1).remove(0);
    assert_eq!(message.data, b"again");
    assert_eq!(log.count(WS_EVENT_CLOSE), 0, "no close until ws_close");
    assert_eq!(ws_close(h), WS_OK);
    let close = log.wait_close();
    assert_eq!((close.code, close.clean), (1005, true));
    assert_lifecycle(&log.kinds());
    assert_eq!(server.count(), 2);
    ws_free(h);
    assert_eq!(log.finalized.load(Ordering::SeqCst), KINDS.len());
}

#[test]
fn delays_grow_by_the_multiplier_and_stop_at_the_cap() {
    // Accepts TCP and hangs up: each attempt fails in its handshake.
    let server = Scripted::start(|_, stream| drop(stream));
    let policy = Policy {
        initial_ms: 20,
        max_ms: 160,
        ..FAST
    };
    let (h, log) = open_logged(&server.url(), options(&policy));
    let retries = log.wait(WS_EVENT_RECONNECTING, 6);
    let delays: Vec<u32> = retries.iter().map(|r| r.delay_ms).collect();
    assert_eq!(delays[..6], [20, 40, 80, 160, 160, 160]);
    let attempts: Vec<u32> = retries.iter().map(|r| r.attempt).collect();
    assert_eq!(attempts[..6], [1, 2, 3, 4, 5, 6]);
    // A hang-up before the answer: a closed handshake, or a reset.
    assert!(retries
        .iter()
        .all(|r| [WS_ERR_HANDSHAKE, WS_ERR_IO].contains(&r.error)));
    wait_until("the 7th attempt", || server.count() >= 7);
    let times = server.times();
    for (i, delay) in delays.iter().enumerate().take(6) {
        let gap = times[i + 1].duration_since(times[i]);
        assert!(
            gap >= Duration::from_millis(u64::from(*delay)),
            "attempt {} came {gap:?} after the one before, under its delay {delay} ms",
            i + 2
        );
    }
    assert_eq!(ws_ready_state(h), WS_CONNECTING);
    ws_free(h);
}

#[test]
fn giving_up_after_max_attempts_is_an_error_then_a_close() {
    let server = Scripted::start(|_, stream| drop(stream));
    let policy = Policy {
        initial_ms: 20,
        max_ms: 40,
        max_attempts: 3,
        ..FAST
    };
    let (h, log) = open_logged(&server.url(), options(&policy));
    let close = log.wait_close();
    assert_eq!((close.code, close.clean), (1006, false));
    let kinds = log.kinds();
    assert_eq!(
        kinds,
        [
            WS_EVENT_RECONNECTING,
            WS_EVENT_RECONNECTING,
            WS_EVENT_ERROR,
            WS_EVENT_CLOSE
        ]
    );
    let error = log.wait(WS_EVENT_ERROR, 1).remove(0);
    assert!([WS_ERR_HANDSHAKE, WS_ERR_IO].contains(&error.error));
    assert!(
        error.reason.starts_with("gave up after 3 attempts: "),
        "{}",
        error.reason
    );
    assert_eq!(server.count(), 3);
    thread::sleep(Duration::from_millis(2 * 40 + 100));
    assert_eq!(server.count(), 3, "no attempt after giving up");
    assert_eq!(ws_ready_state(h), WS_CLOSED);
    ws_free(h);
}

#[test]
fn jitter_spreads_sockets_dropped_together() {
    let url = dead_url();
    let policy = Policy {
        initial_ms: 1000,
        max_ms: 30_000,
        jitter: 0.2,
        ..FAST
    };
    let sockets: Vec<_> = (0..50)
        .map(|_| open_logged(&url, options(&policy)))
        .collect();
    let delays: Vec<u32> = sockets
        .iter()
        .map(|(_, log)| {
            let r = log.wait(WS_EVENT_RECONNECTING, 1).remove(0);
            assert_eq!(r.error, WS_ERR_CONNECT);
            r.delay_ms
        })
        .collect();
    assert!(
        delays.iter().all(|d| (800..=1200).contains(d)),
        "{delays:?}"
    );
    let spread = delays.iter().max().unwrap() - delays.iter().min().unwrap();
    assert!(spread > 50, "delays not spread: {delays:?}");
    for (h, _) in sockets {
        ws_free(h);
    }
}

#[test]
fn a_refusal_that_would_recur_is_not_retried() {
    let server = Scripted::start(|_, stream| refuse(stream, "403 Forbidden", ""));
    let (h, log) = open_logged(&server.url(), options(&FAST));
    let close = log.wait_close();
    assert_eq!(close.code, 1006);
    assert_eq!(log.kinds(), [WS_EVENT_ERROR, WS_EVENT_CLOSE]);
    let error = log.wait(WS_EVENT_ERROR, 1).remove(0);
    assert_eq!((error.error, error.http_status), (WS_ERR_HANDSHAKE, 403));
    thread::sleep(Duration::from_millis(3 * FAST.initial_ms as u64));
    assert_eq!(server.count(), 1, "one attempt only");
    ws_free(h);
}

#[test]
fn a_429_with_retry_after_waits_at_least_that_long() {
    let server = Scripted::start(|n, stream| match n {
        0 => refuse(stream, "429 Too Many Requests", "Retry-After: 1\r\n"),
        _ => {
            if let Some(ws) = accept(stream) {
                echo(ws)
            }
        }
    });
    let (h, log) = open_logged(&server.url(), options(&FAST));
    let r = log.wait(WS_EVENT_RECONNECTING, 1).remove(0);
    assert_eq!((r.error, r.http_status), (WS_ERR_HANDSHAKE, 429));
    assert_eq!(r.delay_ms, 1000, "Retry-After is the least delay");
    let open = log.wait(WS_EVENT_OPEN, 1).remove(0);
    assert_eq!(open.attempt, 0, "the first open, after a failed attempt");
    let times = server.times();
    assert!(times[1].duration_since(times[0]) >= Duration::from_secs(1));
    ws_free(h);
}

#[test]
fn a_server_close_1000_ends_the_socket_and_1012_reconnects() {
    let ending = Scripted::start(|_, stream| {
        if let Some(ws) = accept(stream) {
            close_with(ws, 1000)
        }
    });
    let (h, log) = open_logged(&ending.url(), options(&FAST));
    let close = log.wait_close();
    assert_eq!((close.code, close.clean), (1000, true));
    assert_eq!(log.kinds(), [WS_EVENT_OPEN, WS_EVENT_CLOSE]);
    thread::sleep(Duration::from_millis(3 * FAST.initial_ms as u64));
    assert_eq!(ending.count(), 1);
    ws_free(h);

    let restarting = Scripted::start(|n, stream| {
        let Some(ws) = accept(stream) else { return };
        match n {
            0 => close_with(ws, 1012),
            _ => echo(ws),
        }
    });
    let (h, log) = open_logged(&restarting.url(), options(&FAST));
    log.wait(WS_EVENT_OPEN, 2);
    let r = log.wait(WS_EVENT_RECONNECTING, 1).remove(0);
    assert_eq!((r.code, r.clean, r.error), (1012, true, 0));
    assert_eq!(r.reason, "bye");
    ws_free(h);
}

#[test]
fn closing_inside_reconnecting_vetoes_the_retry() {
    let server = Scripted::start(|_, stream| {
        if let Some(ws) = accept(stream) {
            close_with(ws, 4001)
        }
    });
    let o = options(&FAST);
    let h = open_with(&server.url(), o);
    ws_options_free(o);
    let log = Log::new();
    *log.on_reconnecting.lock().unwrap() = Some(Box::new(|h, e| {
        // An application-defined "unauthorized": stop here.
        if e.code == 4001 {
            assert_eq!(ws_close(h), WS_OK);
        }
    }));
    log.bind(h);
    let close = log.wait_close();
    assert_eq!((close.code, close.clean), (1006, false));
    assert_eq!(
        log.kinds(),
        [WS_EVENT_OPEN, WS_EVENT_RECONNECTING, WS_EVENT_CLOSE]
    );
    thread::sleep(Duration::from_millis(3 * FAST.initial_ms as u64));
    assert_eq!(server.count(), 1, "no attempt after the veto");
    ws_free(h);
}

#[test]
fn close_and_free_during_the_wait_end_it_at_once() {
    let url = dead_url();
    let (h, log) = open_logged(&url, options(&SLOW));
    let r = log.wait(WS_EVENT_RECONNECTING, 1).remove(0);
    assert_eq!(r.delay_ms, 60_000);
    assert_eq!(ws_ready_state(h), WS_CONNECTING);
    assert_eq!(ws_close(h), WS_OK);
    // Well before the minute the timer would take.
    let close = log.wait_close();
    assert_eq!((close.code, close.clean), (1006, false));
    assert_eq!(log.kinds(), [WS_EVENT_RECONNECTING, WS_EVENT_CLOSE]);
    ws_free(h);

    let (h, log) = open_logged(&url, options(&SLOW));
    log.wait(WS_EVENT_RECONNECTING, 1);
    assert_eq!(ws_free(h), WS_OK);
    assert_eq!(
        log.finalized.load(Ordering::SeqCst),
        KINDS.len(),
        "every finalizer ran, once, inside ws_free"
    );
    thread::sleep(Duration::from_millis(100));
    assert_eq!(log.kinds(), [WS_EVENT_RECONNECTING], "nothing after free");
}

#[test]
fn a_flapping_server_keeps_the_delays_growing_and_a_stable_one_resets_them() {
    // Connections 0-2 close right after the 101; connection 3 stays up
    // past the stable time, then drops; connection 4 echoes.
    let server = Scripted::start(|n, stream| {
        let Some(ws) = accept(stream) else { return };
        match n {
            0..=2 => close_with(ws, 1011),
            3 => {
                thread::sleep(Duration::from_millis(600));
                close_with(ws, 1011)
            }
            _ => echo(ws),
        }
    });
    let policy = Policy {
        initial_ms: 20,
        max_ms: 1000,
        stable_ms: 300,
        ..FAST
    };
    let (h, log) = open_logged(&server.url(), options(&policy));
    log.wait(WS_EVENT_OPEN, 5);
    let retries = log.wait(WS_EVENT_RECONNECTING, 4);
    let delays: Vec<u32> = retries.iter().map(|r| r.delay_ms).collect();
    assert_eq!(
        delays,
        [20, 40, 80, 20],
        "opens alone do not reset the count"
    );
    let opens: Vec<u32> = log
        .wait(WS_EVENT_OPEN, 5)
        .iter()
        .map(|o| o.attempt)
        .collect();
    assert_eq!(opens, [0, 1, 2, 3, 4]);
    ws_free(h);
}

#[test]
fn a_missing_pong_reconnects_with_a_timeout() {
    let server = Scripted::start(|n, stream| {
        let Some(ws) = accept(stream) else { return };
        match n {
            // Never reads, so never answers a ping.
            0 => {
                thread::sleep(Duration::from_secs(3));
                drop(ws)
            }
            _ => echo(ws),
        }
    });
    let o = options(&FAST);
    assert_eq!(ws_options_set_ping_interval_ms(o, 100), WS_OK);
    assert_eq!(ws_options_set_pong_timeout_ms(o, 300), WS_OK);
    let (h, log) = open_logged(&server.url(), o);
    let r = log.wait(WS_EVENT_RECONNECTING, 1).remove(0);
    assert_eq!((r.error, r.code), (WS_ERR_TIMEOUT, 1006));
    assert!(r.reason.contains("no pong"), "{}", r.reason);
    log.wait(WS_EVENT_OPEN, 2);
    assert_eq!(
        log.count(WS_EVENT_ERROR),
        0,
        "the failure rides on reconnecting"
    );
    ws_free(h);
}

#[test]
fn a_header_set_while_reconnecting_reaches_the_next_handshake() {
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let record = seen.clone();
    let server = Scripted::start(move |n, stream| {
        let record = record.clone();
        let callback = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            let auth = req
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned());
            record.lock().unwrap().push(auth);
            Ok(resp)
        };
        let Ok(ws) = tungstenite::accept_hdr(stream, callback) else {
            return;
        };
        match n {
            0 => drop(ws),
            _ => echo(ws),
        }
    });
    let o = options(&FAST);
    let (name, first) = (
        CString::new("Authorization").unwrap(),
        CString::new("Bearer 1").unwrap(),
    );
    assert_eq!(
        ws_options_add_header(o, name.as_ptr(), first.as_ptr()),
        WS_OK
    );
    let h = open_with(&server.url(), o);
    ws_options_free(o);
    let log = Log::new();
    let once = std::sync::atomic::AtomicBool::new(false);
    *log.on_reconnecting.lock().unwrap() = Some(Box::new(move |h, _| {
        if once.swap(true, Ordering::SeqCst) {
            return;
        }
        let (name, value) = (c"authorization", c"Bearer 2");
        assert_eq!(ws_set_header(h, name.as_ptr(), value.as_ptr()), WS_OK);
    }));
    log.bind(h);
    log.wait(WS_EVENT_OPEN, 2);
    assert_eq!(
        *seen.lock().unwrap(),
        [Some("Bearer 1".to_owned()), Some("Bearer 2".to_owned())]
    );
    // NULL removes it; bad names and values are refused.
    assert_eq!(ws_set_header(h, name.as_ptr(), std::ptr::null()), WS_OK);
    assert_eq!(ws_reconnect(h), WS_OK);
    log.wait(WS_EVENT_OPEN, 3);
    assert_eq!(seen.lock().unwrap()[2], None);
    let bad = [
        (c"Sec-WebSocket-Key", c"x"),
        (c"Bad Name", c"x"),
        (c"X-Ok", c"line\r\nbreak"),
    ];
    for (n, v) in bad {
        assert_eq!(
            ws_set_header(h, n.as_ptr(), v.as_ptr()),
            WS_ERR_INVALID_ARGUMENT
        );
    }
    assert_eq!(
        ws_set_header(h, std::ptr::null(), first.as_ptr()),
        WS_ERR_INVALID_ARGUMENT
    );
    ws_free(h);
    assert_eq!(
        ws_set_header(h, name.as_ptr(), first.as_ptr()),
        WS_ERR_INVALID_HANDLE
    );
}

#[test]
fn sends_while_down_are_refused_and_nothing_stays_queued() {
    let url = dead_url();
    let (h, log) = open_logged(&url, options(&SLOW));
    log.wait(WS_EVENT_RECONNECTING, 1);
    assert_eq!(send_text(h, "lost"), WS_ERR_INVALID_STATE);
    assert_eq!(ws_buffered_amount(h), 0);
    ws_free(h);
}

#[test]
fn what_was_queued_when_the_connection_dropped_is_counted_and_dropped() {
    let (hang_up, told) = std::sync::mpsc::channel::<()>();
    let told = Mutex::new(told);
    // Connection 0 reads nothing until told, then drops.
    let server = Scripted::start(move |n, stream| {
        let Some(ws) = accept(stream) else { return };
        match n {
            0 => {
                let _ = told.lock().unwrap().recv();
                drop(ws)
            }
            _ => echo(ws),
        }
    });
    let (h, log) = open_logged(&server.url(), options(&SLOW));
    log.wait(WS_EVENT_OPEN, 1);
    let chunk = vec![7u8; 256 << 10];
    let mut sent = 0;
    for _ in 0..64 {
        assert_eq!(ws_send_binary(h, chunk.as_ptr().cast(), chunk.len()), WS_OK);
        sent += chunk.len();
    }
    // The kernel's buffers take a few MiB; the rest waits in the queue.
    thread::sleep(Duration::from_millis(200));
    let queued = ws_buffered_amount(h);
    assert!(queued > 0 && queued <= sent, "{queued}");
    hang_up.send(()).unwrap();
    let r = log.wait(WS_EVENT_RECONNECTING, 1).remove(0);
    assert!(
        r.len > 0 && r.len <= queued,
        "dropped {} of {queued}",
        r.len
    );
    assert_eq!(ws_buffered_amount(h), 0);
    ws_free(h);
}

#[test]
fn ws_reconnect_closes_with_1000_and_comes_back_at_once() {
    let server = Scripted::start(|_, stream| {
        if let Some(ws) = accept(stream) {
            echo(ws)
        }
    });
    let (h, log) = open_logged(&server.url(), options(&FAST));
    log.wait(WS_EVENT_OPEN, 1);
    assert_eq!(ws_reconnect(h), WS_OK);
    let r = log.wait(WS_EVENT_RECONNECTING, 1).remove(0);
    assert_eq!((r.code, r.clean, r.error), (1000, true, 0));
    assert_eq!((r.attempt, r.delay_ms), (1, 0));
    let open = log.wait(WS_EVENT_OPEN, 2).remove(1);
    assert_eq!(open.attempt, 1);
    assert_eq!(server.count(), 2);
    assert_eq!(ws_close(h), WS_OK);
    assert_eq!(ws_reconnect(h), WS_ERR_INVALID_STATE, "closed by request");
    log.wait_close();
    ws_free(h);

    // Without reconnection there is nothing to come back.
    let plain = common::open(&server.url());
    assert_eq!(ws_reconnect(plain), WS_ERR_INVALID_STATE);
    ws_free(plain);
    assert_eq!(ws_reconnect(plain), WS_ERR_INVALID_HANDLE);
}

#[test]
fn the_first_connect_is_retried_too() {
    let server = Scripted::start(|n, stream| match n {
        0 => drop(stream),
        _ => {
            if let Some(ws) = accept(stream) {
                echo(ws)
            }
        }
    });
    let (h, log) = open_logged(&server.url(), options(&FAST));
    let open = log.wait(WS_EVENT_OPEN, 1).remove(0);
    assert_eq!(open.attempt, 0);
    assert_eq!(log.kinds()[..2], [WS_EVENT_RECONNECTING, WS_EVENT_OPEN]);
    ws_free(h);
}

#[test]
fn reconnecting_travels_through_a_dispatcher_in_order() {
    let server = Scripted::start(|n, stream| {
        let Some(ws) = accept(stream) else { return };
        match n {
            0 => close_with(ws, 1001),
            _ => close_with(ws, 1000),
        }
    });
    let d = ws_dispatcher_new();
    assert_ne!(d, 0);
    let o = options(&FAST);
    assert_eq!(ws_options_set_dispatcher(o, d), WS_OK);
    let (h, log) = open_logged(&server.url(), o);
    let end = Instant::now() + DEADLINE;
    while log.count(WS_EVENT_CLOSE) == 0 {
        assert!(Instant::now() < end, "no close: {:?}", log.kinds());
        assert!(ws_dispatch(d, 20, 0) >= 0);
    }
    assert_eq!(
        log.kinds(),
        [
            WS_EVENT_OPEN,
            WS_EVENT_RECONNECTING,
            WS_EVENT_OPEN,
            WS_EVENT_CLOSE
        ]
    );
    let me = thread::current().id();
    assert!(
        log.events().iter().all(|e| e.thread == me),
        "all on this thread"
    );
    ws_free(h);
    assert_eq!(ws_dispatcher_free(d), WS_OK);
}

#[test]
fn random_close_free_and_reconnect_from_four_threads_leave_nothing_behind() {
    // Counted by port, not by descriptor: the other tests of this binary
    // may run at the same time (`cargo test`) and open their own.
    fn sockets_to(port: u16) -> usize {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        table
            .lines()
            .skip(1)
            .filter(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // rem_address is "IP:PORT" in hex; inode 0 is a socket no
                // process owns any more (TIME_WAIT).
                fields.len() > 9
                    && fields[2]
                        .rsplit(':')
                        .next()
                        .and_then(|p| u16::from_str_radix(p, 16).ok())
                        == Some(port)
                    && fields[9] != "0"
            })
            .count()
    }
    // Echoes for a few milliseconds, then drops: reconnect cycles all along.
    let server = Scripted::start(|n, stream| {
        let Some(mut ws) = accept(stream) else { return };
        let _ = ws
            .get_mut()
            .set_read_timeout(Some(Duration::from_millis(1 + (n % 7) as u64)));
        while let Ok(m) = ws.read() {
            if m.is_text() && ws.send(m).is_err() {
                break;
            }
        }
    });
    let policy = Policy {
        initial_ms: 1,
        max_ms: 20,
        jitter: 0.5,
        ..FAST
    };

    let handles: Arc<Vec<(ws_handle, Arc<Log>)>> = Arc::new(
        (0..16)
            .map(|_| open_logged(&server.url(), options(&policy)))
            .collect(),
    );
    let workers: Vec<_> = (0..4u64)
        .map(|t| {
            let handles = handles.clone();
            thread::spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                for _ in 0..250 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (h, _) = &handles[(x % 16) as usize];
                    let rc = match (x >> 8) % 10 {
                        0 => ws_close(*h),
                        1 => ws_free(*h),
                        2..=4 => ws_reconnect(*h),
                        _ => send_text(*h, "x"),
                    };
                    assert!(
                        [WS_OK, WS_ERR_INVALID_STATE, WS_ERR_INVALID_HANDLE].contains(&rc),
                        "{rc}"
                    );
                    thread::sleep(Duration::from_micros(x % 2000));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    for (h, log) in handles.iter() {
        let _ = ws_free(*h);
        assert_eq!(log.finalized.load(Ordering::SeqCst), KINDS.len());
        let kinds = log.kinds();
        assert!(
            kinds.iter().filter(|k| **k == WS_EVENT_CLOSE).count() <= 1,
            "{kinds:?}"
        );
        if kinds.contains(&WS_EVENT_CLOSE) {
            assert_lifecycle(&kinds);
        }
    }
    wait_until("every socket to the server closed", || {
        sockets_to(server.port) == 0
    });
}
