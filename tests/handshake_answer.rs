//! The server's answer to the opening handshake, through the C ABI: the
//! status, headers and body of a refusal (read whole, within the connect
//! timeout) and the headers of a 101, read from inside the callbacks.

mod common;

use std::ffi::{c_void, CStr, CString};
use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::*;
use wsembed::ffi::*;

/// What a callback saw, read while it ran.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    kind: u32,
    error_code: i32,
    http_status: i32,
    /// ws_response_status
    status: i32,
    /// ws_response_header for each asked name: value, or None when absent
    headers: Vec<Option<String>>,
    body: Vec<u8>,
}

struct Probe {
    names: Vec<CString>,
    seen: Mutex<Vec<Seen>>,
    changed: Condvar,
}

fn header(h: ws_handle, name: &CStr) -> Option<String> {
    let len = ws_response_header(h, name.as_ptr(), std::ptr::null_mut(), 0);
    let mut buf = vec![0 as std::os::raw::c_char; len + 1];
    let again = ws_response_header(h, name.as_ptr(), buf.as_mut_ptr(), buf.len());
    assert_eq!(again, len);
    if ws_last_status() != WS_OK {
        assert_eq!(ws_last_status(), WS_ERR_INVALID_ARGUMENT);
        assert_eq!(len, 0);
        return None;
    }
    // SAFETY: NUL-terminated within buf.
    Some(
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned(),
    )
}

fn body(h: ws_handle) -> Vec<u8> {
    let len = ws_response_body(h, std::ptr::null_mut(), 0);
    let mut buf = vec![0u8; len];
    assert_eq!(ws_response_body(h, buf.as_mut_ptr().cast(), len), len);
    buf
}

unsafe extern "C" fn probe(h: ws_handle, event: *const ws_event, userdata: *mut c_void) {
    // SAFETY: userdata is the Probe kept alive by the test until it frees
    // the socket; event is valid during the call.
    let (p, e) = unsafe { (&*(userdata as *const Probe), &*event) };
    let seen = Seen {
        kind: e.kind,
        error_code: e.error_code,
        http_status: e.http_status,
        status: ws_response_status(h),
        headers: p.names.iter().map(|n| header(h, n)).collect(),
        body: body(h),
    };
    p.seen.lock().unwrap().push(seen);
    p.changed.notify_all();
}

/// Opens `url`, probes every event with `names`, returns what was seen by
/// the close event.
fn answers(url: &str, names: &[&str], options: *mut ws_options) -> Vec<Seen> {
    let p = Arc::new(Probe {
        names: names.iter().map(|n| CString::new(*n).unwrap()).collect(),
        seen: Mutex::new(Vec::new()),
        changed: Condvar::new(),
    });
    let h = open_with(url, options);
    ws_options_free(options);
    let ud = Arc::as_ptr(&p) as *mut c_void;
    for kind in [WS_EVENT_OPEN, WS_EVENT_ERROR, WS_EVENT_CLOSE] {
        assert_eq!(ws_bind(h, kind, Some(probe), ud), WS_OK);
    }
    let end = Instant::now() + DEADLINE;
    let mut seen = p.seen.lock().unwrap();
    while !seen.iter().any(|s| s.kind == WS_EVENT_CLOSE) {
        assert!(Instant::now() < end, "no close: {seen:?}");
        seen = p
            .changed
            .wait_timeout(seen, Duration::from_millis(50))
            .unwrap()
            .0;
    }
    let out = seen.clone();
    drop(seen);
    ws_free(h);
    out
}

/// A server that reads the request and writes `answer` (in `parts`, with a
/// pause between them), then hangs up, or holds the line if `hold`.
fn refusing(parts: Vec<Vec<u8>>, hold: bool) -> Server {
    let parts = Arc::new(parts);
    raw_server(move |mut s: TcpStream| {
        read_request(&mut s);
        for p in parts.iter() {
            if s.write_all(p).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        if hold {
            std::thread::sleep(Duration::from_secs(3));
        }
    })
}

#[test]
fn a_401_gives_its_status_headers_and_whole_body_in_the_error_callback() {
    let body_text = "Token expired. ".repeat(400);
    let head = format!(
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"api\"\r\nX-Empty:\r\n\
         Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: {}\r\n\r\n",
        body_text.len()
    );
    // The body comes in three writes after the head, as a slow server's.
    let b = body_text.as_bytes();
    let server = refusing(
        vec![
            head.into_bytes(),
            b[..10].to_vec(),
            b[10..3000].to_vec(),
            b[3000..].to_vec(),
        ],
        true,
    );
    let seen = answers(
        &server.url(),
        &["www-authenticate", "X-Empty", "set-cookie", "Retry-After"],
        ws_options_new(),
    );
    let error = &seen[0];
    assert_eq!(error.kind, WS_EVENT_ERROR, "{seen:?}");
    assert_eq!(error.error_code, WS_ERR_HANDSHAKE);
    assert_eq!((error.http_status, error.status), (401, 401));
    assert_eq!(
        error.headers,
        [
            Some("Bearer realm=\"api\"".to_owned()),
            Some(String::new()),
            Some("a=1, b=2".to_owned()),
            None
        ]
    );
    assert_eq!(
        error.body, b,
        "the whole body, not just what came with the head"
    );
    // The close event still has it; the close itself has no HTTP status.
    let close = seen.last().unwrap();
    assert_eq!(
        (close.kind, close.http_status, close.status),
        (WS_EVENT_CLOSE, 0, 401)
    );
    assert_eq!(close.body, b);
}

#[test]
fn a_503_with_a_chunked_body_and_retry_after() {
    let server = refusing(
        vec![
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec(),
            b"6\r\nbusy, \r\n".to_vec(),
            b"9\r\ntry later\r\n0\r\n\r\n".to_vec(),
        ],
        true,
    );
    let seen = answers(&server.url(), &["retry-after"], ws_options_new());
    assert_eq!(seen[0].http_status, 503);
    assert_eq!(seen[0].headers, [Some("7".to_owned())]);
    assert_eq!(seen[0].body, b"busy, try later");
}

#[test]
fn a_body_without_length_ends_with_the_connection_and_is_cut_at_64_kib() {
    let server = refusing(
        vec![b"HTTP/1.1 403 Forbidden\r\n\r\nnot you".to_vec()],
        false,
    );
    let seen = answers(&server.url(), &[], ws_options_new());
    assert_eq!(
        (seen[0].http_status, seen[0].body.as_slice()),
        (403, &b"not you"[..])
    );

    let big = vec![b'x'; 100_000];
    let mut answer =
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100000\r\n\r\n".to_vec();
    answer.extend_from_slice(&big);
    let server = refusing(vec![answer], true);
    let seen = answers(&server.url(), &[], ws_options_new());
    assert_eq!(seen[0].http_status, 500);
    assert_eq!(seen[0].body.len(), 64 * 1024);
}

#[test]
fn a_head_whose_body_never_comes_ends_at_the_connect_timeout_with_what_came() {
    let server = refusing(
        vec![
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 50\r\n\r\npart"
                .to_vec(),
        ],
        true,
    );
    let o = ws_options_new();
    assert_eq!(ws_options_set_connect_timeout_ms(o, 500), WS_OK);
    let started = Instant::now();
    let seen = answers(&server.url(), &["retry-after"], o);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let error = &seen[0];
    assert_eq!(error.kind, WS_EVENT_ERROR);
    assert_eq!(error.error_code, WS_ERR_TIMEOUT);
    assert_eq!((error.http_status, error.status), (429, 429));
    assert_eq!(error.headers, [Some("1".to_owned())]);
    assert_eq!(error.body, b"part");
}

#[test]
fn the_101_headers_are_read_in_open() {
    let server = raw_server(|mut s| {
        let accept = accept_key(&read_request(&mut s));
        // A frame right behind the head, in the same write.
        let mut answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\nX-Server: test\r\nX-Server: again\r\n\r\n"
        )
        .into_bytes();
        answer.extend_from_slice(&[0x81, 0x02, b'h', b'i', 0x88, 0x02, 0x03, 0xe8]);
        s.write_all(&answer).unwrap();
        std::thread::sleep(Duration::from_millis(500));
    });
    let rec = Recorder::new();
    let seen = {
        let h = open(&server.url());
        rec.bind(h, WS_EVENT_MESSAGE);
        let p = Arc::new(Probe {
            names: vec![
                CString::new("x-server").unwrap(),
                CString::new("upgrade").unwrap(),
            ],
            seen: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        });
        let ud = Arc::as_ptr(&p) as *mut c_void;
        for kind in [WS_EVENT_OPEN, WS_EVENT_CLOSE] {
            assert_eq!(ws_bind(h, kind, Some(probe), ud), WS_OK);
        }
        wait_until("close", || {
            p.seen
                .lock()
                .unwrap()
                .iter()
                .any(|s| s.kind == WS_EVENT_CLOSE)
        });
        ws_free(h);
        let seen = p.seen.lock().unwrap().clone();
        seen
    };
    let open_seen = &seen[0];
    assert_eq!(open_seen.kind, WS_EVENT_OPEN);
    assert_eq!(open_seen.status, 101);
    assert_eq!(
        open_seen.headers,
        [Some("test, again".to_owned()), Some("websocket".to_owned())]
    );
    assert!(open_seen.body.is_empty());
    // The frame that came with the head was not lost to the answer reader.
    assert_eq!(messages(&rec.events()), [(b"hi".to_vec(), false)]);
}

#[test]
fn no_answer_is_status_0_and_a_bad_handle_says_so() {
    // A port nobody listens on: the connect fails, no answer ever came.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let seen = answers(
        &format!("ws://127.0.0.1:{port}/"),
        &["server"],
        ws_options_new(),
    );
    assert_eq!(seen[0].error_code, WS_ERR_CONNECT);
    assert_eq!((seen[0].http_status, seen[0].status), (0, 0));
    assert_eq!(seen[0].headers, [None]);
    assert!(seen[0].body.is_empty());

    assert_eq!(ws_response_status(0), 0);
    assert_eq!(ws_last_status(), WS_ERR_INVALID_HANDLE);
    let name = CString::new("x").unwrap();
    assert_eq!(
        ws_response_header(0, name.as_ptr(), std::ptr::null_mut(), 0),
        0
    );
    assert_eq!(ws_last_status(), WS_ERR_INVALID_HANDLE);
    assert_eq!(ws_response_body(0, std::ptr::null_mut(), 0), 0);
    assert_eq!(ws_last_status(), WS_ERR_INVALID_HANDLE);
}
