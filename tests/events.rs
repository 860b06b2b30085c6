//! Events over a real socket: echo, order, late binds, held messages,
//! handshake options, closing and keepalive.

mod common;

use std::ffi::{c_void, CString};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use tungstenite::Message;
use wsembed::ffi::*;

#[test]
fn echo_text_binary_empty_and_order() {
    let server = echo_server();
    let r = Recorder::new();
    let h = open(&server.url());
    r.bind_all(h);
    r.wait_open();
    assert_eq!(send_text(h, "hello"), WS_OK);
    let bin = [0u8, 1, 2, 255];
    assert_eq!(ws_send_binary(h, bin.as_ptr().cast(), bin.len()), WS_OK);
    assert_eq!(send_text(h, ""), WS_OK);
    assert_eq!(ws_send_binary(h, ptr::null(), 0), WS_OK);
    let unicode = CString::new("héllo wörld ✓ 🚀").unwrap();
    assert_eq!(ws_send(h, unicode.as_ptr()), WS_OK);
    let with_nul = "a\0b";
    assert_eq!(send_text(h, with_nul), WS_OK);
    let m = r.wait_messages(6);
    assert_eq!(m[0], (b"hello".to_vec(), false));
    assert_eq!(m[1], (bin.to_vec(), true));
    assert_eq!(m[2], (vec![], false));
    assert_eq!(m[3], (vec![], true));
    assert_eq!(m[4], (unicode.as_bytes().to_vec(), false));
    assert_eq!(m[5], (with_nul.as_bytes().to_vec(), false));
    assert_eq!(ws_close(h), WS_OK);
    let events = r.wait_close();
    assert_protocol_order(&events);
    // close() without a code: the server echoes an empty close frame.
    assert_eq!(events.last(), Some(&Ev::Close(1005, String::new(), true)));
    assert_eq!(ws_free(h), WS_OK);
    wait_until("finalizers", || r.finalized.load(Ordering::SeqCst) == 4);
}

#[test]
fn sixteen_mebibytes_each_way() {
    let server = echo_server();
    let r = Recorder::new();
    let h = open(&server.url());
    r.bind_all(h);
    r.wait_open();
    let big: Vec<u8> = (0..16usize << 20)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    assert_eq!(ws_send_binary(h, big.as_ptr().cast(), big.len()), WS_OK);
    let text = "0123456789abcdef".repeat(1 << 20);
    assert_eq!(send_text(h, &text), WS_OK);
    let m = r.wait_messages(2);
    assert!(m[0].1 && m[0].0 == big);
    assert!(!m[1].1 && m[1].0 == text.as_bytes());
    wait_until("drained", || ws_buffered_amount(h) == 0);
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn many_messages_keep_their_order() {
    let server = echo_server();
    let r = Recorder::new();
    let h = open(&server.url());
    r.bind_all(h);
    r.wait_open();
    for i in 0..2000 {
        assert_eq!(send_text(h, &i.to_string()), WS_OK);
    }
    let m = r.wait_messages(2000);
    for (i, (data, _)) in m.iter().enumerate() {
        assert_eq!(data, i.to_string().as_bytes());
    }
    assert_eq!(ws_free(h), WS_OK);
}

/// A server that greets on connect, then closes with 4001 "done".
fn greeting_server() -> Server {
    ws_server(|mut ws| {
        let _ = ws.send(Message::text("one"));
        let _ = ws.send(Message::text("two"));
        let _ = ws.close(Some(tungstenite::protocol::CloseFrame {
            code: 4001.into(),
            reason: "done".into(),
        }));
        while ws.read().is_ok() {}
    })
}

#[test]
fn late_binds_replay_open_close_and_held_messages() {
    let server = greeting_server();
    let h = open(&server.url());
    // Nothing bound: the socket opens, receives and closes on its own.
    wait_until("closed", || ws_ready_state(h) == WS_CLOSED);
    let r = Recorder::new();
    r.bind(h, WS_EVENT_CLOSE);
    r.bind(h, WS_EVENT_OPEN);
    r.bind(h, WS_EVENT_ERROR);
    r.wait_for("replayed open and close", |e| e.len() >= 2);
    r.bind(h, WS_EVENT_MESSAGE);
    let m = messages(&r.wait_for("held messages", |e| messages(e).len() >= 2));
    assert_eq!(m, vec![(b"one".to_vec(), false), (b"two".to_vec(), false)]);
    let events = r.events();
    assert!(
        events.contains(&Ev::Close(4001, "done".into(), true)),
        "{events:?}"
    );
    assert!(events.contains(&Ev::Open));
    assert!(
        !events.iter().any(|e| matches!(e, Ev::Error(..))),
        "{events:?}"
    );
    // Binding again replays again, once per new binding.
    let r2 = Recorder::new();
    r2.bind(h, WS_EVENT_CLOSE);
    r2.wait_close();
    thread::sleep(Duration::from_millis(20));
    assert_eq!(r2.events().len(), 1);
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn several_callbacks_run_in_bind_order_and_unbind_works() {
    static ORDER: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    unsafe extern "C" fn tag(_: ws_handle, e: *const ws_event, ud: *mut c_void) {
        // SAFETY: valid during the call.
        if unsafe { (*e).kind } == WS_EVENT_MESSAGE {
            ORDER.lock().unwrap().push(ud as usize);
        }
    }
    let server = echo_server();
    let r = Recorder::new();
    let h = open(&server.url());
    r.bind_all(h);
    for i in 1..=3usize {
        assert_eq!(ws_bind(h, WS_EVENT_MESSAGE, Some(tag), tag_ptr(i)), WS_OK);
    }
    // The same pair twice runs once.
    assert_eq!(ws_bind(h, WS_EVENT_MESSAGE, Some(tag), tag_ptr(2)), WS_OK);
    r.wait_open();
    assert_eq!(send_text(h, "a"), WS_OK);
    r.wait_messages(1);
    wait_until("three tags", || ORDER.lock().unwrap().len() == 3);
    assert_eq!(*ORDER.lock().unwrap(), vec![1, 2, 3]);
    assert_eq!(ws_unbind(h, WS_EVENT_MESSAGE, Some(tag), tag_ptr(2)), WS_OK);
    assert_eq!(ws_unbind(h, WS_EVENT_MESSAGE, Some(tag), tag_ptr(2)), WS_OK);
    assert_eq!(send_text(h, "b"), WS_OK);
    r.wait_messages(2);
    wait_until("five tags", || ORDER.lock().unwrap().len() == 5);
    assert_eq!(*ORDER.lock().unwrap(), vec![1, 2, 3, 1, 3]);
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn bind_ex_finalizer_runs_exactly_once_on_every_path() {
    static FINALIZED: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn nothing(_: ws_handle, _: *const ws_event, _: *mut c_void) {}
    unsafe extern "C" fn fin(_: *mut c_void) {
        FINALIZED.fetch_add(1, Ordering::SeqCst);
    }
    // Failure paths finalize before returning.
    assert_eq!(
        ws_bind_ex(0, WS_EVENT_OPEN, Some(nothing), ptr::null_mut(), Some(fin)),
        WS_ERR_INVALID_HANDLE
    );
    assert_eq!(FINALIZED.load(Ordering::SeqCst), 1);
    let server = echo_server();
    let h = open(&server.url());
    assert_eq!(
        ws_bind_ex(h, 99, Some(nothing), ptr::null_mut(), Some(fin)),
        WS_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        ws_bind_ex(h, WS_EVENT_OPEN, None, ptr::null_mut(), Some(fin)),
        WS_ERR_INVALID_ARGUMENT
    );
    assert_eq!(FINALIZED.load(Ordering::SeqCst), 3);
    // Unbind finalizes.
    assert_eq!(
        ws_bind_ex(h, WS_EVENT_OPEN, Some(nothing), tag_ptr(1), Some(fin)),
        WS_OK
    );
    // A duplicate does not add a second finalization.
    assert_eq!(
        ws_bind_ex(h, WS_EVENT_OPEN, Some(nothing), tag_ptr(1), Some(fin)),
        WS_OK
    );
    assert_eq!(FINALIZED.load(Ordering::SeqCst), 3);
    assert_eq!(
        ws_unbind(h, WS_EVENT_OPEN, Some(nothing), tag_ptr(1)),
        WS_OK
    );
    wait_until("unbind finalizer", || FINALIZED.load(Ordering::SeqCst) == 4);
    // Free finalizes every binding.
    for kind in [
        WS_EVENT_OPEN,
        WS_EVENT_MESSAGE,
        WS_EVENT_ERROR,
        WS_EVENT_CLOSE,
    ] {
        assert_eq!(
            ws_bind_ex(h, kind, Some(nothing), tag_ptr(2), Some(fin)),
            WS_OK
        );
    }
    assert_eq!(ws_free(h), WS_OK);
    assert_eq!(FINALIZED.load(Ordering::SeqCst), 8);
}

#[test]
fn subprotocols_headers_url_and_protocol_getter() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = header_server(seen.clone());
    let o = ws_options_new();
    for p in ["chat.v2", "chat.v1"] {
        let p = CString::new(p).unwrap();
        assert_eq!(ws_options_add_protocol(o, p.as_ptr()), WS_OK);
    }
    let (n, v) = (
        CString::new("Authorization").unwrap(),
        CString::new("Bearer t0k3n").unwrap(),
    );
    assert_eq!(ws_options_add_header(o, n.as_ptr(), v.as_ptr()), WS_OK);
    let url = format!("ws://127.0.0.1:{}/path?q=1", server.port);
    let r = Recorder::new();
    let h = open_with(&url, o);
    ws_options_free(o);
    r.bind_all(h);
    r.wait_open();
    let mut buf = [0i8; 64];
    let n = ws_protocol(h, buf.as_mut_ptr(), buf.len());
    assert_eq!(n, "chat.v2".len());
    assert_eq!(ws_protocol(h, ptr::null_mut(), 0), n);
    let got: Vec<u8> = buf[..n].iter().map(|&c| c as u8).collect();
    assert_eq!(got, b"chat.v2");
    let mut ubuf = vec![0i8; 128];
    let un = ws_url(h, ubuf.as_mut_ptr(), ubuf.len());
    let got: Vec<u8> = ubuf[..un].iter().map(|&c| c as u8).collect();
    assert_eq!(String::from_utf8(got).unwrap(), url);
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.contains(&("authorization".into(), "Bearer t0k3n".into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("sec-websocket-protocol".into(), "chat.v2, chat.v1".into())),
        "{seen:?}"
    );
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn close_with_code_reaches_the_server() {
    let got = Arc::new(Mutex::new(None));
    let got2 = got.clone();
    let server = ws_server(move |mut ws| {
        // Answer the close late, so the client is surely still CLOSING
        // when the test looks (a busy machine may pause it).
        std::thread::sleep(Duration::from_millis(300));
        loop {
            match ws.read() {
                Ok(Message::Close(f)) => {
                    *got2.lock().unwrap() = f.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let r = Recorder::new();
    let h = open(&server.url());
    r.bind_all(h);
    r.wait_open();
    let reason = CString::new("finished ✓").unwrap();
    assert_eq!(ws_close_ex(h, 3123, reason.as_ptr()), WS_OK);
    assert_eq!(ws_ready_state(h), WS_CLOSING);
    let events = r.wait_close();
    assert_protocol_order(&events);
    assert_eq!(
        events.last(),
        Some(&Ev::Close(3123, "finished ✓".into(), true))
    );
    assert_eq!(*got.lock().unwrap(), Some((3123, "finished ✓".into())));
    assert_eq!(ws_ready_state(h), WS_CLOSED);
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn data_queued_before_close_is_sent_first() {
    let count = Arc::new(AtomicUsize::new(0));
    let c2 = count.clone();
    let server = ws_server(move |mut ws| loop {
        match ws.read() {
            Ok(Message::Text(_)) => {
                c2.fetch_add(1, Ordering::SeqCst);
            }
            Ok(_) => {}
            Err(_) => return,
        }
    });
    let r = Recorder::new();
    let h = open(&server.url());
    r.bind_all(h);
    r.wait_open();
    for _ in 0..100 {
        assert_eq!(send_text(h, "x"), WS_OK);
    }
    assert_eq!(ws_close(h), WS_OK);
    assert_eq!(send_text(h, "after"), WS_ERR_INVALID_STATE);
    let events = r.wait_close();
    assert!(
        matches!(events.last(), Some(Ev::Close(1005, _, true))),
        "{events:?}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 100);
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn close_while_connecting_gives_1006_without_error() {
    // A server that accepts TCP but never answers the handshake.
    let server = raw_server(|s| {
        thread::sleep(Duration::from_secs(30));
        drop(s);
    });
    let r = Recorder::new();
    let h = open(&server.url());
    r.bind_all(h);
    assert_eq!(ws_ready_state(h), WS_CONNECTING);
    assert_eq!(ws_close(h), WS_OK);
    let events = r.wait_close();
    assert_eq!(events, vec![Ev::Close(1006, String::new(), false)]);
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn server_initiated_close_is_answered() {
    let server = greeting_server();
    let r = Recorder::new();
    let h = open(&server.url());
    r.bind_all(h);
    let events = r.wait_close();
    assert_protocol_order(&events);
    assert_eq!(events.last(), Some(&Ev::Close(4001, "done".into(), true)));
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn pings_are_sent_and_pongs_answered() {
    let pings = Arc::new(AtomicUsize::new(0));
    let p2 = pings.clone();
    let server = ws_server(move |mut ws| loop {
        match ws.read() {
            Ok(Message::Ping(_)) => {
                p2.fetch_add(1, Ordering::SeqCst);
            }
            Ok(Message::Text(t)) if t.as_str() == "ping me" => {
                let _ = ws.send(Message::Ping("x".into()));
            }
            Ok(_) => {}
            Err(_) => return,
        }
    });
    let o = ws_options_new();
    assert_eq!(ws_options_set_ping_interval_ms(o, 20), WS_OK);
    assert_eq!(ws_options_set_pong_timeout_ms(o, 10_000), WS_OK);
    let r = Recorder::new();
    let h = open_with(&server.url(), o);
    ws_options_free(o);
    r.bind_all(h);
    r.wait_open();
    wait_until("three pings", || pings.load(Ordering::SeqCst) >= 3);
    assert_eq!(ws_ready_state(h), WS_OPEN, "pongs came back in time");
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn a_silent_peer_hits_the_pong_timeout() {
    let server = raw_server(|mut s| {
        raw_handshake(&mut s);
        thread::sleep(Duration::from_secs(30));
    });
    let o = ws_options_new();
    assert_eq!(ws_options_set_ping_interval_ms(o, 50), WS_OK);
    assert_eq!(ws_options_set_pong_timeout_ms(o, 100), WS_OK);
    let r = Recorder::new();
    let h = open_with(&server.url(), o);
    ws_options_free(o);
    r.bind_all(h);
    let events = r.wait_close();
    assert_protocol_order(&events);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Ev::Error(WS_ERR_TIMEOUT, m) if m.contains("pong"))),
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&Ev::Close(1006, String::new(), false)));
    assert_eq!(ws_free(h), WS_OK);
}

/// A userdata that is only a tag, never dereferenced.
fn tag_ptr(n: usize) -> *mut c_void {
    std::ptr::without_provenance_mut(n)
}

#[test]
fn late_binds_after_the_end_see_messages_before_error_and_close() {
    // A message, then a close frame with a code that may not be sent: the
    // connection fails (error, 1006) after the message.
    let server = raw_server(|mut s| {
        use std::io::Write;
        raw_handshake(&mut s);
        let _ = s.write_all(&[
            0x81, 0x05, b'h', b'e', b'l', b'l', b'o', 0x88, 0x02, 0x03, 0x6F,
        ]);
        thread::sleep(Duration::from_millis(200));
    });
    let h = open(&server.url());
    wait_until("closed", || ws_ready_state(h) == WS_CLOSED);
    let r = Recorder::new();
    r.bind(h, WS_EVENT_OPEN);
    r.bind(h, WS_EVENT_MESSAGE);
    r.bind(h, WS_EVENT_ERROR);
    r.bind(h, WS_EVENT_CLOSE);
    let events = r.wait_close();
    assert_protocol_order(&events);
    assert_eq!(
        events[1],
        Ev::Message(b"hello".to_vec(), false),
        "{events:?}"
    );
    assert!(
        matches!(events[2], Ev::Error(WS_ERR_PROTOCOL, _)),
        "{events:?}"
    );
    assert_eq!(ws_free(h), WS_OK);
}
