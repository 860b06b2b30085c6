//! Shared by the integration tests: servers on 127.0.0.1 (port 0), and an
//! event recorder bound through the C ABI exactly as a C caller would.
#![allow(dead_code, clippy::result_large_err)]

use std::ffi::{c_void, CStr, CString};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::handshake::server::{Request, Response};
use tungstenite::{Message, WebSocket};
use wsembed::ffi::*;

pub mod socks;
#[cfg(feature = "tls")]
pub mod tls_proxy;

/// Generous: the suite must not flake on a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct Server {
    pub port: u16,
}

impl Server {
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    pub fn curl(&self) -> CString {
        CString::new(self.url()).unwrap()
    }
}

/// A raw TCP server: `serve` gets each accepted connection on its own
/// thread, so it can lie, stall or hang up at will.
pub fn raw_server(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let serve = Arc::new(serve);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let serve = serve.clone();
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || serve(stream))
                .unwrap();
        }
    });
    Server { port }
}

/// A tungstenite WebSocket server; `serve` runs after the handshake.
pub fn ws_server(serve: impl Fn(WebSocket<TcpStream>) + Send + Sync + 'static) -> Server {
    raw_server(move |stream| {
        if let Ok(ws) = tungstenite::accept(stream) {
            serve(ws)
        }
    })
}

/// Echoes every data message until the client closes.
pub fn echo(mut ws: WebSocket<TcpStream>) {
    loop {
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                if ws.send(m).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

pub fn echo_server() -> Server {
    ws_server(echo)
}

/// A server that records the handshake request headers, picks the first
/// offered subprotocol, then echoes.
pub fn header_server(seen: Arc<Mutex<Vec<(String, String)>>>) -> Server {
    raw_server(move |stream| {
        let seen = seen.clone();
        let callback = move |req: &Request, mut resp: Response| {
            let mut s = seen.lock().unwrap();
            for (k, v) in req.headers() {
                s.push((k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()));
            }
            if let Some(p) = req.headers().get("Sec-WebSocket-Protocol") {
                let first = p
                    .to_str()
                    .unwrap()
                    .split(',')
                    .next()
                    .unwrap()
                    .trim()
                    .to_owned();
                resp.headers_mut()
                    .insert("Sec-WebSocket-Protocol", first.parse().unwrap());
            }
            Ok(resp)
        };
        if let Ok(ws) = tungstenite::accept_hdr(stream, callback) {
            echo(ws)
        }
    })
}

/// Reads an HTTP request head from a raw stream.
pub fn read_request(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The `Sec-WebSocket-Accept` answer to a raw request head's key.
pub fn accept_key(request: &str) -> String {
    let key = request
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| v.trim().to_owned())
        })
        .expect("a key");
    tungstenite::handshake::derive_accept_key(key.as_bytes())
}

/// A server frame (unmasked) with the given first byte and payload.
pub fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![first];
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n if n <= 0xFFFF => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

/// Answers a raw handshake correctly, leaving the stream for raw frames.
pub fn raw_handshake(stream: &mut TcpStream) {
    let request = read_request(stream);
    let accept = accept_key(&request);
    write!(
        stream,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .unwrap();
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ev {
    Open,
    Message(Vec<u8>, bool),
    Error(i32, String),
    Close(u16, String, bool),
}

/// Collects the events of one socket through real C callbacks.
#[derive(Default)]
pub struct Recorder {
    events: Mutex<Vec<Ev>>,
    changed: Condvar,
    pub finalized: std::sync::atomic::AtomicUsize,
}

pub unsafe extern "C" fn record(_socket: ws_handle, event: *const ws_event, userdata: *mut c_void) {
    // SAFETY: userdata is the Arc<Recorder> leaked by `bind_all`, alive
    // until its finalizer; event is valid during the call.
    let (r, e) = unsafe { (&*(userdata as *const Recorder), &*event) };
    let ev = match e.kind {
        WS_EVENT_OPEN => Ev::Open,
        WS_EVENT_MESSAGE => {
            // SAFETY: data has len bytes plus a NUL.
            let bytes = unsafe { std::slice::from_raw_parts(e.data, e.len + 1) };
            assert_eq!(bytes[e.len], 0, "message not NUL-terminated");
            Ev::Message(bytes[..e.len].to_vec(), e.is_binary)
        }
        WS_EVENT_ERROR => Ev::Error(e.error_code, reason(e)),
        WS_EVENT_CLOSE => Ev::Close(e.code, reason(e), e.was_clean),
        other => panic!("unknown kind {other}"),
    };
    r.push(ev);
}

fn reason(e: &ws_event) -> String {
    assert!(!e.reason.is_null());
    // SAFETY: reason is a NUL-terminated string valid during the callback.
    unsafe { CStr::from_ptr(e.reason) }
        .to_str()
        .unwrap()
        .to_owned()
}

pub unsafe extern "C" fn release(userdata: *mut c_void) {
    // SAFETY: userdata came from Arc::into_raw in `bind_all`.
    let r = unsafe { Arc::from_raw(userdata as *const Recorder) };
    r.finalized
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    pub fn push(&self, ev: Ev) {
        self.events.lock().unwrap().push(ev);
        self.changed.notify_all();
    }

    pub fn events(&self) -> Vec<Ev> {
        self.events.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the events so far; panics with them
    /// after `DEADLINE`.
    pub fn wait_for(&self, what: &str, done: impl Fn(&[Ev]) -> bool) -> Vec<Ev> {
        let end = Instant::now() + DEADLINE;
        let mut events = self.events.lock().unwrap();
        while !done(&events) {
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; events: {events:?}"
            );
            events = self.changed.wait_timeout(events, left).unwrap().0;
        }
        events.clone()
    }

    pub fn wait_open(&self) {
        self.wait_for("open", |e| e.contains(&Ev::Open) || has_close(e));
        assert!(self.events().contains(&Ev::Open), "{:?}", self.events());
    }

    pub fn wait_close(&self) -> Vec<Ev> {
        self.wait_for("close", has_close)
    }

    pub fn wait_messages(&self, n: usize) -> Vec<(Vec<u8>, bool)> {
        let events = self.wait_for(&format!("{n} messages"), |e| {
            messages(e).len() >= n || has_close(e)
        });
        let m = messages(&events);
        assert!(m.len() >= n, "closed early: {events:?}");
        m
    }

    /// Binds this recorder to all four kinds with a finalizer each.
    pub fn bind_all(self: &Arc<Self>, h: ws_handle) {
        for kind in [
            WS_EVENT_OPEN,
            WS_EVENT_MESSAGE,
            WS_EVENT_ERROR,
            WS_EVENT_CLOSE,
        ] {
            self.bind(h, kind);
        }
    }

    pub fn bind(self: &Arc<Self>, h: ws_handle, kind: ws_event_kind) {
        let ud = Arc::into_raw(self.clone()) as *mut c_void;
        assert_eq!(ws_bind_ex(h, kind, Some(record), ud, Some(release)), WS_OK);
    }
}

pub fn has_close(e: &[Ev]) -> bool {
    e.iter().any(|e| matches!(e, Ev::Close(..)))
}

pub fn messages(e: &[Ev]) -> Vec<(Vec<u8>, bool)> {
    e.iter()
        .filter_map(|e| match e {
            Ev::Message(d, b) => Some((d.clone(), *b)),
            _ => None,
        })
        .collect()
}

/// Checks the protocol order of one socket's events: open?, message*,
/// error?, close, nothing after.
pub fn assert_protocol_order(events: &[Ev]) {
    let rank = |e: &Ev| match e {
        Ev::Open => 0,
        Ev::Message(..) => 1,
        Ev::Error(..) => 2,
        Ev::Close(..) => 3,
    };
    assert!(
        events.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])),
        "out of order: {events:?}"
    );
    let count = |r: i32| events.iter().filter(|e| rank(e) == r).count();
    assert!(
        count(0) <= 1 && count(2) <= 1,
        "repeated open/error: {events:?}"
    );
    assert_eq!(count(3), 1, "exactly one close: {events:?}");
    assert!(
        matches!(events.last(), Some(Ev::Close(..))),
        "close last: {events:?}"
    );
}

pub fn open(url: &str) -> ws_handle {
    let c = CString::new(url).unwrap();
    let h = ws_open(c.as_ptr());
    assert_ne!(h, 0, "ws_open failed: {}", last_error());
    h
}

pub fn open_with(url: &str, options: *const ws_options) -> ws_handle {
    let c = CString::new(url).unwrap();
    let h = ws_open_ex(c.as_ptr(), options);
    assert_ne!(h, 0, "ws_open_ex failed: {}", last_error());
    h
}

pub fn last_error() -> String {
    // SAFETY: ws_last_error never returns NULL.
    unsafe { CStr::from_ptr(ws_last_error()) }
        .to_string_lossy()
        .into_owned()
}

pub fn send_text(h: ws_handle, text: &str) -> i32 {
    ws_send_text(h, text.as_ptr().cast(), text.len())
}

/// Waits for a condition that is not an event (e.g. a server-side count).
pub fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

/// A server process that prints "PORT <n>" and stops when stdin closes.
pub struct Peer {
    child: Child,
    pub port: u16,
}

impl Peer {
    pub fn start(program: &str, args: &[&str]) -> Peer {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{program} {args:?} said {line:?}"));
        Peer { child, port }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A wss:// echo server with a throwaway self-signed certificate for
/// 127.0.0.1 (clients connect in insecure mode: tests/tls.rs covers
/// verification).
#[cfg(feature = "tls")]
pub fn tls_echo_server() -> Server {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap(),
    );
    raw_server(move |tcp| {
        let conn = rustls::ServerConnection::new(config.clone()).unwrap();
        if let Ok(mut ws) = tungstenite::accept(rustls::StreamOwned::new(conn, tcp)) {
            while let Ok(m) = ws.read() {
                if (m.is_text() || m.is_binary()) && ws.send(m).is_err() {
                    return;
                }
            }
        }
    })
}

/// New options with `url` as the proxy.
pub fn options_with_proxy(url: &str) -> *mut ws_options {
    let o = ws_options_new();
    let c = CString::new(url).unwrap();
    assert_eq!(
        ws_options_set_proxy(o, c.as_ptr()),
        WS_OK,
        "{}",
        last_error()
    );
    o
}
