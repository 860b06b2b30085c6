//! permessage-deflate over real sockets, through the C ABI: two independent
//! servers (Python `websockets`, Node `ws`) behind a byte-counting relay,
//! and scripted servers that answer the offer wrongly or send what a
//! compressing peer must not.

// Without the feature only the refusals run; the helpers of the rest stay.
#![cfg_attr(not(feature = "deflate"), allow(dead_code))]

mod common;

use std::ffi::CStr;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use common::*;
use wsembed::ffi::*;

fn extensions(h: ws_handle) -> String {
    let mut buf = [0 as std::os::raw::c_char; 512];
    let n = ws_extensions(h, buf.as_mut_ptr(), buf.len());
    assert!(n < buf.len());
    // SAFETY: ws_extensions NUL-terminates within cap.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned()
}

/// Options offering deflate, with the given parameters if any.
fn deflate_options(params: Option<(u8, u8, bool, bool)>) -> *mut ws_options {
    let o = ws_options_new();
    assert_eq!(ws_options_set_deflate(o, true), WS_OK);
    if let Some((c, s, cr, sr)) = params {
        assert_eq!(ws_options_set_deflate_params(o, c, s, cr, sr), WS_OK);
    }
    o
}

/// An error event's code and text, from events that have one.
fn error_of(events: &[Ev]) -> (i32, String) {
    events
        .iter()
        .find_map(|e| match e {
            Ev::Error(code, text) => Some((*code, text.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no error event: {events:?}"))
}

// ----- independent servers ---------------------------------------------

fn servers_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/servers"))
}

fn python_peer(args: &[&str]) -> Peer {
    let script = servers_dir().join("deflate_echo_server.py");
    let mut all = vec![script.to_str().unwrap()];
    all.extend_from_slice(args);
    Peer::start("python3", &all)
}

/// Node's `ws` from npm, installed next to the script when missing.
fn node_peer() -> Peer {
    static INSTALL: Mutex<()> = Mutex::new(());
    let dir = servers_dir();
    {
        let _once = INSTALL.lock().unwrap();
        if !dir.join("node_modules/ws/package.json").exists() {
            let status = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(dir)
                .status()
                .expect("npm (Node.js) is needed for the Node `ws` interop test");
            assert!(status.success(), "npm install ws failed");
        }
    }
    Peer::start("node", &[dir.join("node_ws_echo.js").to_str().unwrap()])
}

/// A relay on 127.0.0.1 that counts the bytes each way: what really
/// crossed the wire, whatever the server's implementation.
struct Relay {
    port: u16,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
}

fn relay_to(port: u16) -> Relay {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay = Relay {
        port: listener.local_addr().unwrap().port(),
        up: Arc::default(),
        down: Arc::default(),
    };
    let (up, down) = (relay.up.clone(), relay.down.clone());
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let server = TcpStream::connect(("127.0.0.1", port)).unwrap();
            pump(
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                up.clone(),
            );
            pump(server, client, down.clone());
        }
    });
    relay
}

fn pump(mut from: TcpStream, mut to: TcpStream, count: Arc<AtomicU64>) {
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    count.fetch_add(n as u64, Ordering::SeqCst);
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// JSON-like text of about `len` bytes, the same every time.
fn json(len: usize, seed: u32) -> String {
    let mut out = String::from("[");
    let mut i = seed;
    while out.len() < len {
        i = i.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        out.push_str(&format!(
            "{{\"id\":{},\"name\":\"user{}\",\"active\":{},\"score\":{}.{}}},",
            i % 100_000,
            i % 977,
            i % 2 == 0,
            i % 1000,
            i % 7
        ));
    }
    out.truncate(len - 1);
    out.push(']');
    out
}

/// What one echo session saw: the agreed extensions, payload bytes sent,
/// and the bytes that crossed the wire each way.
struct Session {
    extensions: String,
    payload: u64,
    up: u64,
    down: u64,
}

/// Echoes 1 MiB of JSON in one message, then smaller text and binary
/// messages (empty ones too), through a counting relay; checks every echo
/// byte for byte and in order.
fn echo_session(port: u16, options: *mut ws_options) -> Session {
    let relay = relay_to(port);
    let h = open_with(&format!("ws://127.0.0.1:{}/", relay.port), options);
    ws_options_free(options);
    let rec = Recorder::new();
    rec.bind_all(h);
    rec.wait_open();
    let extensions = extensions(h);
    let mut sent: Vec<(Vec<u8>, bool)> = vec![(json(1 << 20, 1).into_bytes(), false)];
    for (i, len) in [0, 1, 100, 1023, 1024, 5000, 16 << 10, 100 << 10]
        .into_iter()
        .enumerate()
    {
        sent.push((
            json(len.max(2), i as u32).into_bytes()[..len].to_vec(),
            false,
        ));
        sent.push((
            json(len.max(2), 99 + i as u32).into_bytes()[..len].to_vec(),
            true,
        ));
    }
    for (data, binary) in &sent {
        let rc = if *binary {
            ws_send_binary(h, data.as_ptr().cast(), data.len())
        } else {
            ws_send_text(h, data.as_ptr().cast(), data.len())
        };
        assert_eq!(rc, WS_OK, "{}", last_error());
    }
    let got = rec.wait_messages(sent.len());
    assert_eq!(got.len(), sent.len());
    for (i, (g, s)) in got.iter().zip(&sent).enumerate() {
        assert!(
            g == s,
            "message {i} ({} bytes) came back different",
            s.0.len()
        );
    }
    assert_eq!(ws_close(h), WS_OK);
    let events = rec.wait_close();
    let others: Vec<&Ev> = events
        .iter()
        .filter(|e| !matches!(e, Ev::Message(..)))
        .collect();
    assert!(
        matches!(events.last(), Some(Ev::Close(1005, _, true))),
        "{others:?}"
    );
    assert_protocol_order(&events);
    ws_free(h);
    Session {
        extensions,
        payload: sent.iter().map(|(d, _)| d.len() as u64).sum(),
        up: relay.up.load(Ordering::SeqCst),
        down: relay.down.load(Ordering::SeqCst),
    }
}

/// Both ways, the wire carried far fewer bytes than the payload.
fn assert_compressed(s: &Session) {
    assert!(
        s.up * 3 < s.payload,
        "sent {} wire bytes for {}",
        s.up,
        s.payload
    );
    assert!(
        s.down * 3 < s.payload,
        "got {} wire bytes for {}",
        s.down,
        s.payload
    );
}

#[cfg(feature = "deflate")]
#[test]
fn python_websockets_compresses_both_ways() {
    assert!(ws_has_deflate());
    let peer = python_peer(&[]);
    let s = echo_session(peer.port, deflate_options(None));
    assert_eq!(s.extensions, "permessage-deflate");
    assert_compressed(&s);
}

#[cfg(feature = "deflate")]
#[test]
fn python_websockets_limiting_our_window_to_10_bits() {
    let peer = python_peer(&["--client-max-window-bits", "10"]);
    let s = echo_session(peer.port, deflate_options(None));
    assert_eq!(
        s.extensions,
        "permessage-deflate; client_max_window_bits=10"
    );
    assert_compressed(&s);
}

#[cfg(feature = "deflate")]
#[test]
fn python_websockets_requiring_client_no_context_takeover() {
    let peer = python_peer(&["--client-no-context-takeover"]);
    let s = echo_session(peer.port, deflate_options(None));
    assert_eq!(
        s.extensions,
        "permessage-deflate; client_no_context_takeover"
    );
    assert_compressed(&s);
}

#[cfg(feature = "deflate")]
#[test]
fn python_websockets_with_server_no_context_takeover() {
    let peer = python_peer(&["--server-no-context-takeover"]);
    let s = echo_session(peer.port, deflate_options(None));
    assert_eq!(
        s.extensions,
        "permessage-deflate; server_no_context_takeover"
    );
    assert_compressed(&s);
}

#[cfg(feature = "deflate")]
#[test]
fn python_websockets_granting_every_parameter_we_ask() {
    let peer = python_peer(&[]);
    let s = echo_session(peer.port, deflate_options(Some((9, 10, true, true))));
    for part in [
        "permessage-deflate",
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits=10",
        "client_max_window_bits=9",
    ] {
        assert!(s.extensions.contains(part), "{part} in {:?}", s.extensions);
    }
    assert_compressed(&s);
}

#[cfg(feature = "deflate")]
#[test]
fn node_ws_compresses_both_ways() {
    let peer = node_peer();
    let s = echo_session(peer.port, deflate_options(None));
    assert!(
        s.extensions.starts_with("permessage-deflate"),
        "{:?}",
        s.extensions
    );
    assert_compressed(&s);
}

#[cfg(feature = "deflate")]
#[test]
fn a_server_without_deflate_declines_and_nothing_is_compressed() {
    let server = echo_server();
    let s = echo_session(server.port, deflate_options(None));
    assert_eq!(s.extensions, "");
    assert!(s.up > s.payload && s.down > s.payload);
}

#[test]
fn without_an_offer_nothing_is_offered_or_compressed() {
    let peer = python_peer(&[]);
    let s = echo_session(peer.port, ws_options_new());
    assert_eq!(s.extensions, "");
    assert!(s.up > s.payload && s.down > s.payload);
}

// ----- scripted servers --------------------------------------------------

/// Answers the handshake with `extensions` (if any) and `then` in the same
/// write, and returns the request it read.
fn answer(stream: &mut TcpStream, extensions: Option<&str>, then: &[u8]) -> String {
    let request = read_request(stream);
    let accept = accept_key(&request);
    let mut head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    );
    if let Some(e) = extensions {
        head.push_str(&format!("Sec-WebSocket-Extensions: {e}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(then);
    stream.write_all(&bytes).unwrap();
    request
}

fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    server_frame(first, payload)
}

/// Reads one client frame: (first byte, unmasked payload).
fn read_client_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    stream.read_exact(&mut h).unwrap();
    let len = match h[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b).unwrap();
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    assert!(h[1] & 0x80 != 0, "client frames are masked");
    let mut mask = [0u8; 4];
    stream.read_exact(&mut mask).unwrap();
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload).unwrap();
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    (h[0], payload)
}

/// Runs a scripted server once; returns the client's recorder and what
/// the script reported.
fn scripted<T: Send + 'static>(
    options: *mut ws_options,
    script: impl Fn(&mut TcpStream) -> T + Send + Sync + 'static,
    until: impl Fn(&[Ev]) -> bool,
) -> (Vec<Ev>, T) {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    let server = raw_server(move |mut stream| {
        let report = script(&mut stream);
        let _ = tx.lock().unwrap().send(report);
    });
    let h = open_with(&server.url(), options);
    ws_options_free(options);
    let rec = Recorder::new();
    rec.bind_all(h);
    let events = rec.wait_for("the scripted outcome", until);
    let report = rx.recv_timeout(DEADLINE).expect("the script finished");
    ws_free(h);
    (events, report)
}

#[test]
fn an_extension_that_was_not_offered_fails_the_handshake() {
    let (events, request) = scripted(
        ws_options_new(),
        |s| answer(s, Some("permessage-deflate"), b""),
        has_close,
    );
    assert!(!request
        .to_ascii_lowercase()
        .contains("sec-websocket-extensions"));
    let (code, text) = error_of(&events);
    assert_eq!(code, WS_ERR_HANDSHAKE);
    assert!(
        text.contains("\"permessage-deflate\", which was not offered"),
        "{text}"
    );
    assert!(matches!(events.last(), Some(Ev::Close(1006, _, false))));
}

#[cfg(feature = "deflate")]
#[test]
fn answers_the_offer_does_not_allow_fail_the_handshake() {
    for (options, answer_with, expected) in [
        (
            None,
            "permessage-deflate; client_max_window_bits=16",
            "from 8 to 15",
        ),
        (
            None,
            "permessage-deflate; foo",
            "unknown permessage-deflate parameter",
        ),
        (None, "permessage-deflate, permessage-deflate", "twice"),
        (
            Some((10, 0, false, false)),
            "permessage-deflate; client_max_window_bits=12",
            "above the 10 offered",
        ),
        (
            Some((0, 9, false, false)),
            "permessage-deflate; server_max_window_bits=12",
            "above the 9 requested",
        ),
        (
            Some((0, 0, false, true)),
            "permessage-deflate",
            "server_no_context_takeover",
        ),
        (None, "x-webkit-deflate-frame", "not offered"),
    ] {
        let (events, request) = scripted(
            deflate_options(options),
            move |s| answer(s, Some(answer_with), b""),
            has_close,
        );
        assert!(request.contains("permessage-deflate"), "{request}");
        let (code, text) = error_of(&events);
        assert_eq!(code, WS_ERR_HANDSHAKE, "{answer_with}: {text}");
        assert!(
            text.contains(expected),
            "{answer_with}: {text:?} lacks {expected:?}"
        );
        assert!(
            matches!(events.last(), Some(Ev::Close(1006, _, false))),
            "{events:?}"
        );
    }
}

/// "Hello" compressed, RFC 7692 7.2.3.1.
const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

#[cfg(feature = "deflate")]
#[test]
fn a_compressed_frame_in_the_same_write_as_the_101_is_read() {
    let mut frames = frame(0xC1, &HELLO);
    // Fragmented, with a ping between the fragments.
    frames.extend(frame(0x41, &HELLO[..4]));
    frames.extend(frame(0x89, b"p"));
    frames.extend(frame(0x80, &HELLO[4..]));
    let (events, ()) = scripted(
        deflate_options(None),
        move |s| {
            answer(s, Some("permessage-deflate"), &frames);
        },
        |e| messages(e).len() >= 2 || has_close(e),
    );
    assert_eq!(
        messages(&events),
        [(b"Hello".to_vec(), false), (b"Hello".to_vec(), false)]
    );
}

#[cfg(feature = "deflate")]
#[test]
fn compressed_sends_set_rsv1_and_a_window_of_8_sends_plain() {
    let message = json(10_000, 7);
    for (answer_with, compressed) in [
        ("permessage-deflate", true),
        ("permessage-deflate; client_max_window_bits=8", false),
    ] {
        let text = message.clone();
        let server = raw_server(move |mut s| {
            answer(&mut s, Some(answer_with), b"");
            let (first, payload) = read_client_frame(&mut s);
            let echo = if first & 0x40 != 0 {
                let mut d = flate2::Decompress::new(false);
                let mut out = Vec::with_capacity(1 << 20);
                let mut input = payload.clone();
                input.extend_from_slice(&[0, 0, 0xff, 0xff]);
                d.decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync)
                    .unwrap();
                out
            } else {
                payload
            };
            // Tell the client what came, uncompressed, as its first byte says.
            let verdict = format!("{:02x} {}", first, echo == text.as_bytes());
            let _ = s.write_all(&frame(0x81, verdict.as_bytes()));
            let mut sink = [0u8; 1024];
            while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
        });
        let h = open_with(&server.url(), deflate_options(None));
        let rec = Recorder::new();
        rec.bind_all(h);
        rec.wait_open();
        assert_eq!(send_text(h, &message), WS_OK);
        let got = rec.wait_messages(1);
        let expected = if compressed { "c1 true" } else { "81 true" };
        assert_eq!(
            String::from_utf8_lossy(&got[0].0),
            expected,
            "{answer_with}"
        );
        ws_free(h);
    }
}

/// The close code the client sent, read by a raw server.
fn client_close_code(s: &mut TcpStream) -> u16 {
    loop {
        let (first, payload) = read_client_frame(s);
        if first & 0x0F == 0x8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

#[cfg(feature = "deflate")]
#[test]
fn a_peer_breaking_the_compression_rules_is_failed_with_the_right_code() {
    let zeros = vec![0u8; 8 << 20];
    let mut bomb = Vec::with_capacity(1 << 20);
    flate2::Compress::new(flate2::Compression::new(9), false)
        .compress_vec(&zeros, &mut bomb, flate2::FlushCompress::Sync)
        .unwrap();
    bomb.truncate(bomb.len() - 4);
    assert!(bomb.len() < 16 << 10);
    let mut split = frame(0x41, &HELLO[..3]);
    split.extend(frame(0xC0, &HELLO[3..]));
    for (name, extensions, frames, code, text) in [
        (
            "bomb",
            Some("permessage-deflate"),
            frame(0xC2, &bomb),
            1009,
            "inflates past the maximum of 1048576 bytes",
        ),
        (
            "bad data",
            Some("permessage-deflate"),
            frame(0xC1, &[0xff; 16]),
            1007,
            "invalid compressed data",
        ),
        (
            "RSV1 on a continuation",
            Some("permessage-deflate"),
            split,
            1002,
            "RSV1 on a continuation frame",
        ),
        (
            "RSV1 on a ping",
            Some("permessage-deflate"),
            frame(0xC9, b""),
            1002,
            "RSV1 on a control frame",
        ),
        (
            "RSV1 not agreed",
            None,
            frame(0xC1, &HELLO),
            1002,
            "reserved bits",
        ),
    ] {
        let o = deflate_options(None);
        assert_eq!(ws_options_set_max_message_size(o, 1 << 20), WS_OK);
        let (events, sent) = scripted(
            o,
            move |s| {
                answer(s, extensions, &frames);
                let code = client_close_code(s);
                // Answer the close, as a server does, and hang up.
                let _ = s.write_all(&frame(0x88, &code.to_be_bytes()));
                code
            },
            has_close,
        );
        assert_eq!(sent, code, "{name}: the close code sent");
        let (kind, message) = error_of(&events);
        assert_eq!(kind, WS_ERR_PROTOCOL, "{name}: {message}");
        assert!(
            message.to_lowercase().contains(&text.to_lowercase()),
            "{name}: {message:?}"
        );
        assert!(messages(&events).is_empty(), "{name}: {events:?}");
        assert_protocol_order(&events);
    }
}

#[test]
fn deflate_is_reported_as_built() {
    assert_eq!(ws_has_deflate(), cfg!(feature = "deflate"));
    let o = ws_options_new();
    let rc = ws_options_set_deflate(o, true);
    let params = ws_options_set_deflate_params(o, 0, 0, false, false);
    let level = ws_options_set_deflate_level(o, 6);
    let threshold = ws_options_set_deflate_threshold(o, 100);
    if cfg!(feature = "deflate") {
        assert_eq!([rc, params, level, threshold], [WS_OK; 4]);
        assert_eq!(
            ws_options_set_deflate_params(o, 8, 0, false, false),
            WS_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            ws_options_set_deflate_params(o, 0, 16, false, false),
            WS_ERR_INVALID_ARGUMENT
        );
        assert_eq!(ws_options_set_deflate_level(o, 10), WS_ERR_INVALID_ARGUMENT);
    } else {
        assert_eq!([rc, params, level, threshold], [WS_ERR_UNSUPPORTED; 4]);
        assert!(last_error().contains("ws_has_deflate"), "{}", last_error());
    }
    assert_eq!(
        ws_options_set_deflate(std::ptr::null_mut(), true),
        WS_ERR_INVALID_ARGUMENT
    );
    ws_options_free(o);
    // A stale handle has no extensions.
    let mut buf = [1 as std::os::raw::c_char; 4];
    assert_eq!(ws_extensions(0, buf.as_mut_ptr(), buf.len()), 0);
    assert!(
        last_error().to_lowercase().contains("handle"),
        "{}",
        last_error()
    );
}

#[cfg(feature = "deflate")]
#[test]
fn sends_from_several_threads_keep_one_compression_stream() {
    // Python websockets inflates with one context for the connection: a
    // message compressed out of order against the shared window would fail
    // it. Four threads send numbered messages at once; each thread's come
    // back whole and in its order, and freeing while they send is safe.
    let peer = python_peer(&[]);
    let h = open_with(
        &format!("ws://127.0.0.1:{}/", peer.port),
        deflate_options(None),
    );
    let rec = Recorder::new();
    rec.bind_all(h);
    rec.wait_open();
    const THREADS: usize = 4;
    const EACH: usize = 150;
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                for i in 0..EACH {
                    let text = format!("{t} {i} {}", json(2000 + 37 * i, (t * 1000 + i) as u32));
                    assert_eq!(send_text(h, &text), WS_OK, "{}", last_error());
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let got = rec.wait_messages(THREADS * EACH);
    let mut next = [0usize; THREADS];
    for (data, binary) in &got {
        assert!(!binary);
        let text = std::str::from_utf8(data).unwrap();
        let mut parts = text.splitn(3, ' ');
        let t: usize = parts.next().unwrap().parse().unwrap();
        let i: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(i, next[t], "thread {t}'s messages out of order");
        assert_eq!(
            parts.next().unwrap(),
            json(2000 + 37 * i, (t * 1000 + i) as u32)
        );
        next[t] += 1;
    }
    // Freeing while other threads compress and send: no crash, and the
    // senders get a clean error once the handle is gone.
    let racing: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                for i in 0..EACH {
                    let text = json(5000, (t * 7 + i) as u32);
                    let rc = send_text(h, &text);
                    if rc != WS_OK {
                        assert!(
                            rc == WS_ERR_INVALID_HANDLE || rc == WS_ERR_INVALID_STATE,
                            "{rc}: {}",
                            last_error()
                        );
                        return;
                    }
                }
            })
        })
        .collect();
    thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(ws_free(h), WS_OK);
    for r in racing {
        r.join().unwrap();
    }
}
