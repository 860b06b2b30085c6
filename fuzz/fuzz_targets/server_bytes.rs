//! What a server sends, fuzzed: the first byte picks the opening handshake
//! answer (0: the fuzz bytes themselves; else a correct 101), the rest is
//! what follows. A real socket on 127.0.0.1 carries it to a real wsembed
//! client, which must end with exactly one close event, in protocol order,
//! whatever it got.
#![no_main]

use std::ffi::{c_void, CString};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use wsembed::ffi::*;

struct Peer {
    url: CString,
    jobs: Mutex<Sender<Vec<u8>>>,
}

fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).map_or(false, |n| n == 1) {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn serve(listener: TcpListener, jobs: Receiver<Vec<u8>>) {
    for data in jobs {
        let Ok((mut s, _)) = listener.accept() else { return };
        let head = read_head(&mut s);
        let (mode, rest) = data.split_first().map_or((0, &[][..]), |(m, r)| (*m, r));
        if mode != 0 {
            let key = head
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ").or_else(|| l.strip_prefix("sec-websocket-key: ")))
                .unwrap_or("")
                .trim()
                .to_owned();
            let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
            let _ = write!(
                s,
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            );
        }
        let _ = s.write_all(rest);
        // Let the client answer, then hang up: every input ends.
        let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
        let mut sink = [0u8; 4096];
        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
    }
}

fn peer() -> &'static Peer {
    static PEER: OnceLock<Peer> = OnceLock::new();
    PEER.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = channel();
        std::thread::spawn(move || serve(listener, rx));
        Peer {
            url: CString::new(format!("ws://127.0.0.1:{port}/")).unwrap(),
            jobs: Mutex::new(tx),
        }
    })
}

struct Seen {
    kinds: Mutex<Vec<u32>>,
    closed: std::sync::Condvar,
}

unsafe extern "C" fn on_event(_: ws_handle, e: *const ws_event, ud: *mut c_void) {
    // SAFETY: ud points to the Seen of this iteration, alive until after
    // ws_free; e is valid during the call.
    let (seen, e) = unsafe { (&*(ud as *const Seen), &*e) };
    if e.kind == WS_EVENT_MESSAGE {
        // SAFETY: data has len bytes and a trailing NUL.
        let nul = unsafe { *e.data.add(e.len) };
        assert_eq!(nul, 0);
    }
    seen.kinds.lock().unwrap().push(e.kind);
    seen.closed.notify_all();
}

fuzz_target!(|data: &[u8]| {
    let p = peer();
    p.jobs.lock().unwrap().send(data.to_vec()).unwrap();
    let o = ws_options_new();
    ws_options_set_connect_timeout_ms(o, 2000);
    ws_options_set_close_timeout_ms(o, 200);
    ws_options_set_max_message_size(o, 1 << 20);
    let h = ws_open_ex(p.url.as_ptr(), o);
    ws_options_free(o);
    assert_ne!(h, 0);
    let seen = Seen {
        kinds: Mutex::new(Vec::new()),
        closed: std::sync::Condvar::new(),
    };
    let ud = &seen as *const Seen as *mut c_void;
    for kind in [WS_EVENT_OPEN, WS_EVENT_MESSAGE, WS_EVENT_ERROR, WS_EVENT_CLOSE] {
        assert_eq!(ws_bind(h, kind, Some(on_event), ud), WS_OK);
    }
    let mut kinds = seen.kinds.lock().unwrap();
    while !kinds.contains(&WS_EVENT_CLOSE) {
        let (k, timeout) = seen.closed.wait_timeout(kinds, Duration::from_secs(10)).unwrap();
        kinds = k;
        assert!(!timeout.timed_out(), "no close event: {:?}", *kinds);
    }
    drop(kinds);
    assert_eq!(ws_free(h), WS_OK);
    let kinds = seen.kinds.lock().unwrap();
    let rank = |k: u32| if k == WS_EVENT_OPEN { 0 } else if k == WS_EVENT_MESSAGE { 1 } else if k == WS_EVENT_ERROR { 2 } else { 3 };
    assert!(kinds.windows(2).all(|w| rank(w[0]) <= rank(w[1])), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|&&k| k == WS_EVENT_CLOSE).count(), 1, "{kinds:?}");
});
