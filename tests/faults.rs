//! Peers that refuse, stall, lie or vanish: each gets the error and close
//! events API.md promises.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use tungstenite::Message;
use wsembed::ffi::*;

/// SO_LINGER 0: dropping the socket sends RST instead of FIN.
fn reset_on_close(s: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a properly sized linger struct.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
}

fn expect_failure(url: &str, options: *const ws_options, code: i32, text: &str) {
    let r = Recorder::new();
    let h = open_with(url, options);
    r.bind_all(h);
    let events = r.wait_close();
    assert_protocol_order(&events);
    assert!(!events.contains(&Ev::Open), "{events:?}");
    match &events[..] {
        [Ev::Error(c, m), Ev::Close(1006, _, false)] => {
            assert_eq!(*c, code, "{m}");
            assert!(m.contains(text), "{m:?} lacks {text:?}");
        }
        other => panic!("expected error then close: {other:?}"),
    }
    assert_eq!(ws_ready_state(h), WS_CLOSED);
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn refused_connection() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    expect_failure(
        &format!("ws://127.0.0.1:{port}/"),
        std::ptr::null(),
        WS_ERR_CONNECT,
        "refused",
    );
}

#[test]
fn names_resolve_off_the_io_thread() {
    let server = echo_server();
    let r = Recorder::new();
    let h = open(&format!("ws://localhost:{}/", server.port));
    r.bind_all(h);
    let events = r.wait_for("open or close", |e| !e.is_empty());
    // localhost may resolve to ::1 first, where nothing listens; the next
    // address must then be tried.
    assert_eq!(events[0], Ev::Open, "{events:?}");
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn handshake_never_answered_hits_the_connect_timeout() {
    let server = raw_server(|s| {
        thread::sleep(Duration::from_secs(30));
        drop(s);
    });
    let o = ws_options_new();
    assert_eq!(ws_options_set_connect_timeout_ms(o, 200), WS_OK);
    expect_failure(&server.url(), o, WS_ERR_TIMEOUT, "200 ms");
    ws_options_free(o);
}

#[test]
fn handshake_answers_that_are_not_101() {
    let cases: Vec<(&str, i32, &str)> = vec![
        ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", WS_ERR_HANDSHAKE, "200"),
        ("HTTP/1.1 301 Moved Permanently\r\nLocation: ws://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n", WS_ERR_HANDSHAKE, "301"),
        ("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", WS_ERR_HANDSHAKE, "404"),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: d3Jvbmc=\r\n\r\n", WS_ERR_HANDSHAKE, "Accept"),
        ("garbage\r\n\r\n", WS_ERR_HANDSHAKE, "handshake"),
    ];
    for (answer, code, text) in cases {
        let server = raw_server(move |mut s| {
            read_request(&mut s);
            let _ = s.write_all(answer.as_bytes());
            thread::sleep(Duration::from_millis(500));
        });
        expect_failure(&server.url(), std::ptr::null(), code, text);
    }
    // A peer that hangs up without answering.
    let server = raw_server(|mut s| {
        read_request(&mut s);
    });
    let r = Recorder::new();
    let h = open(&server.url());
    r.bind_all(h);
    let events = r.wait_close();
    assert!(
        matches!(&events[..], [Ev::Error(..), Ev::Close(1006, _, false)]),
        "{events:?}"
    );
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn a_subprotocol_that_was_not_offered_is_refused() {
    let server = raw_server(|mut s| {
        let req = read_request(&mut s);
        let key = req
            .lines()
            .find_map(|l| {
                l.strip_prefix("sec-websocket-key: ")
                    .or_else(|| l.strip_prefix("Sec-WebSocket-Key: "))
            })
            .unwrap()
            .trim()
            .to_owned();
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let _ = write!(s, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: other\r\n\r\n");
        thread::sleep(Duration::from_millis(500));
    });
    let o = ws_options_new();
    let p = std::ffi::CString::new("mine").unwrap();
    assert_eq!(ws_options_add_protocol(o, p.as_ptr()), WS_OK);
    expect_failure(&server.url(), o, WS_ERR_HANDSHAKE, "ubprotocol");
    ws_options_free(o);
}

#[test]
fn peer_vanishes_mid_message() {
    let server = raw_server(|mut s| {
        raw_handshake(&mut s);
        // A binary frame announcing 1000 bytes, then 10 of them, then reset.
        let mut frame = vec![0x82, 126, 0x03, 0xE8];
        frame.extend_from_slice(&[9u8; 10]);
        s.write_all(&frame).unwrap();
        reset_on_close(&s);
    });
    let r = Recorder::new();
    let h = open(&server.url());
    r.bind_all(h);
    let events = r.wait_close();
    assert_protocol_order(&events);
    assert!(
        matches!(
            &events[..],
            [Ev::Open, Ev::Error(WS_ERR_IO, _), Ev::Close(1006, _, false)]
        ),
        "{events:?}"
    );
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn peer_closes_tcp_without_a_close_frame() {
    let server = ws_server(|mut ws| {
        let _ = ws.send(Message::text("last words"));
        // Dropping the socket: no close frame.
    });
    let r = Recorder::new();
    let h = open(&server.url());
    r.bind_all(h);
    let events = r.wait_close();
    assert_protocol_order(&events);
    assert!(events.contains(&Ev::Message(b"last words".to_vec(), false)));
    assert!(
        matches!(events.last(), Some(Ev::Close(1006, _, false))),
        "{events:?}"
    );
    assert!(events.iter().any(|e| matches!(e, Ev::Error(WS_ERR_IO, _))));
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn close_never_answered_hits_the_close_timeout() {
    let server = raw_server(|mut s| {
        raw_handshake(&mut s);
        // Read and ignore everything, close frames included.
        let mut buf = [0u8; 1024];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                return;
            }
        }
    });
    let o = ws_options_new();
    assert_eq!(ws_options_set_close_timeout_ms(o, 200), WS_OK);
    let r = Recorder::new();
    let h = open_with(&server.url(), o);
    ws_options_free(o);
    r.bind_all(h);
    r.wait_open();
    assert_eq!(ws_close(h), WS_OK);
    let events = r.wait_close();
    assert_eq!(
        events,
        vec![Ev::Open, Ev::Close(1006, String::new(), false)]
    );
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn message_over_the_maximum_fails_with_1009() {
    let got = Arc::new(Mutex::new(None));
    let g2 = got.clone();
    let server = ws_server(move |mut ws| {
        let _ = ws.send(Message::binary(vec![0u8; 5000]));
        loop {
            match ws.read() {
                Ok(Message::Close(f)) => *g2.lock().unwrap() = f.map(|f| u16::from(f.code)),
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let o = ws_options_new();
    assert_eq!(ws_options_set_max_message_size(o, 4096), WS_OK);
    let r = Recorder::new();
    let h = open_with(&server.url(), o);
    ws_options_free(o);
    r.bind_all(h);
    let events = r.wait_close();
    assert_protocol_order(&events);
    assert!(
        matches!(&events[..], [Ev::Open, Ev::Error(WS_ERR_PROTOCOL, m), Ev::Close(1006, _, false)] if m.contains("too big")),
        "{events:?}"
    );
    wait_until("server saw 1009", || *got.lock().unwrap() == Some(1009));
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn protocol_violations_fail_the_connection() {
    // (frame bytes, expected close code on the wire)
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (vec![0x81, 0x82, 1, 2, 3, 4, 0x61 ^ 1, 0x62 ^ 2], 1002), // masked by the server
        (vec![0xC1, 0x01, 0x61], 1002),                           // RSV1 without an extension
        (vec![0x83, 0x00], 1002),                                 // reserved opcode
        (vec![0x81, 0x02, 0xC3, 0x28], 1007),                     // invalid UTF-8 text
        (
            {
                let mut f = vec![0x89, 126, 0, 126];
                f.extend_from_slice(&[0u8; 126]);
                f
            },
            1002,
        ), // ping over 125 bytes
    ];
    for (frame, code) in cases {
        let (events, frames) = peer_fails_the_connection(frame);
        assert!(
            matches!(events[1], Ev::Error(WS_ERR_PROTOCOL, _)),
            "{events:?}"
        );
        // The client's close frame carries the code RFC 6455 7.4.1 asks for.
        let last = frames.last().unwrap();
        assert_eq!(
            (last.0, &last.1[..2]),
            (8, &code.to_be_bytes()[..]),
            "{frames:?}"
        );
    }
}

/// A scripted peer completes the handshake, sends `bytes`, and records the
/// client's frames until its close. Checks that the client saw open, one
/// error and an abnormal close (1006), frees the socket, and returns the
/// events and the frames.
fn peer_fails_the_connection(bytes: Vec<u8>) -> (Vec<Ev>, Vec<(u8, Vec<u8>)>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g2 = got.clone();
    let server = raw_server(move |mut s| {
        raw_handshake(&mut s);
        s.write_all(&bytes).unwrap();
        *g2.lock().unwrap() = read_client_frames(&mut s);
    });
    let r = Recorder::new();
    let h = open(&server.url());
    r.bind_all(h);
    let events = r.wait_close();
    assert_protocol_order(&events);
    assert!(
        matches!(
            &events[..],
            [Ev::Open, Ev::Error(..), Ev::Close(1006, _, false)]
        ),
        "{events:?}"
    );
    wait_until("server read the client", || !got.lock().unwrap().is_empty());
    assert_eq!(ws_free(h), WS_OK);
    let frames = got.lock().unwrap().clone();
    (events, frames)
}

/// Reads the client's frames (masked) until it sends a close; returns
/// (opcode, unmasked payload) of each.
fn read_client_frames(s: &mut std::net::TcpStream) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    loop {
        let mut head = [0u8; 2];
        if s.read_exact(&mut head).is_err() {
            return frames;
        }
        let opcode = head[0] & 0x0F;
        let mut len = u64::from(head[1] & 0x7F);
        if len == 126 {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            len = u64::from_be_bytes(b);
        }
        let mut mask = [0u8; 4];
        s.read_exact(&mut mask).unwrap();
        let mut payload = vec![0u8; len as usize];
        s.read_exact(&mut payload).unwrap();
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        frames.push((opcode, payload));
        if opcode == 8 {
            return frames;
        }
    }
}

unsafe extern "C" fn echo_back(h: ws_handle, e: *const ws_event, _: *mut std::ffi::c_void) {
    // SAFETY: valid during the call.
    let e = unsafe { &*e };
    if e.kind == WS_EVENT_MESSAGE {
        assert_eq!(ws_send_text(h, e.data.cast(), e.len), WS_OK);
    }
}

#[test]
fn a_reply_sent_from_the_callback_precedes_the_close_reply() {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g2 = got.clone();
    let server = raw_server(move |mut s| {
        raw_handshake(&mut s);
        // A text frame and a close frame in one write: one read pass.
        s.write_all(&[0x81, 0x02, b'h', b'i', 0x88, 0x02, 0x03, 0xE8])
            .unwrap();
        *g2.lock().unwrap() = read_client_frames(&mut s);
    });
    let r = Recorder::new();
    let h = open(&server.url());
    assert_eq!(
        ws_bind(h, WS_EVENT_MESSAGE, Some(echo_back), std::ptr::null_mut()),
        WS_OK
    );
    r.bind_all(h);
    r.wait_close();
    wait_until("server read the client", || !got.lock().unwrap().is_empty());
    let frames = got.lock().unwrap().clone();
    assert_eq!(frames[0], (1, b"hi".to_vec()), "{frames:?}");
    assert_eq!(frames[1].0, 8, "{frames:?}");
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn close_codes_that_may_not_be_sent_fail_the_connection() {
    for code in [999u16, 1005, 1006, 1015, 5000] {
        let c = code.to_be_bytes();
        let (events, frames) = peer_fails_the_connection(vec![0x88, 0x02, c[0], c[1]]);
        assert!(
            matches!(&events[1], Ev::Error(WS_ERR_PROTOCOL, m) if m.contains("invalid close code")),
            "{code}: {events:?}"
        );
        let last = frames.last().unwrap();
        assert_eq!(
            (last.0, &last.1[..2]),
            (8, &1002u16.to_be_bytes()[..]),
            "{code}: {frames:?}"
        );
    }
}

/// A tungstenite server that closes at once with `code` and `reason`, as a
/// real peer would, then waits for the client's answer and hang-up.
fn closing_server(code: u16, reason: &'static str) -> Server {
    ws_server(move |mut ws| {
        let frame = tungstenite::protocol::CloseFrame {
            code: code.into(),
            reason: reason.into(),
        };
        if ws.close(Some(frame)).is_err() {
            return;
        }
        while ws.read().is_ok() {}
    })
}

#[test]
fn every_close_code_a_peer_may_send_is_delivered_as_sent() {
    // 1002 "Protocol violation" is exactly what a Python `websockets`
    // server sends for `ws.close(1002, "Protocol violation")`, and also the
    // text tungstenite puts in its own reply to an invalid code: the code
    // on the wire decides, never the reason.
    let cases = [
        (1002, "Protocol violation"),
        (1002, "bad frame"),
        (1003, "no binary here"),
        (1007, "not UTF-8"),
        (1011, "server bug"),
        (3000, "unauthorized"),
        (4999, ""),
    ];
    for (code, reason) in cases {
        let server = closing_server(code, reason);
        let r = Recorder::new();
        let h = open(&server.url());
        r.bind_all(h);
        let events = r.wait_close();
        assert_protocol_order(&events);
        assert_eq!(
            events,
            [Ev::Open, Ev::Close(code, reason.to_owned(), true)],
            "{code} {reason:?}"
        );
        assert_eq!(ws_free(h), WS_OK);
    }
}

#[test]
fn invalid_utf8_in_a_close_reason_fails_with_1007() {
    let (events, frames) = peer_fails_the_connection(vec![0x88, 0x04, 0x03, 0xE8, 0xC3, 0x28]);
    assert!(
        matches!(events[1], Ev::Error(WS_ERR_PROTOCOL, _)),
        "{events:?}"
    );
    assert_eq!(
        frames.last().map(|f| (f.0, f.1[..2].to_vec())),
        Some((8, 1007u16.to_be_bytes().to_vec()))
    );
}

#[test]
fn a_peer_that_reads_nothing_fills_the_queue_and_nothing_accepted_is_lost() {
    // The peer stays silent until told to read, then counts what arrives.
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let go_rx = Mutex::new(Some(go_rx));
    let got = Arc::new(Mutex::new(Vec::new()));
    let g2 = got.clone();
    let server = raw_server(move |mut s| {
        raw_handshake(&mut s);
        let rx = go_rx.lock().unwrap().take().unwrap();
        rx.recv().unwrap();
        *g2.lock().unwrap() = read_client_frames(&mut s);
    });
    let o = ws_options_new();
    assert_eq!(ws_options_set_max_send_queue(o, 512 * 1024), WS_OK);
    let r = Recorder::new();
    let h = open_with(&server.url(), o);
    ws_options_free(o);
    r.bind_all(h);
    r.wait_open();
    let mut accepted = 0u32;
    loop {
        let msg = accepted.to_be_bytes().repeat(256);
        match ws_send_binary(h, msg.as_ptr().cast(), msg.len()) {
            WS_OK => accepted += 1,
            WS_ERR_QUEUE_FULL => break,
            other => panic!("{other}"),
        }
    }
    assert!(accepted > 10);
    assert_eq!(ws_close(h), WS_OK);
    go_tx.send(()).unwrap();
    r.wait_close();
    wait_until("server read everything", || !got.lock().unwrap().is_empty());
    let frames = got.lock().unwrap().clone();
    let data: Vec<_> = frames.iter().filter(|f| f.0 == 2).collect();
    assert_eq!(
        data.len() as u32,
        accepted,
        "every accepted message arrived"
    );
    for (i, f) in data.iter().enumerate() {
        assert_eq!(f.1, (i as u32).to_be_bytes().repeat(256));
    }
    assert_eq!(frames.last().unwrap().0, 8);
    assert_eq!(ws_free(h), WS_OK);
}
