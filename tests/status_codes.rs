//! Every status code reachable from bad input, through the C functions.

mod common;

use std::ffi::{CStr, CString};
use std::ptr;

use common::*;
use wsembed::ffi::*;

fn open_err(url: &str) -> String {
    let c = CString::new(url).unwrap();
    assert_eq!(ws_open(c.as_ptr()), 0, "{url} should fail");
    last_error()
}

#[test]
fn bad_urls_give_zero_and_a_message() {
    assert_eq!(ws_open(ptr::null()), 0);
    assert!(last_error().contains("NULL"), "{}", last_error());
    assert_eq!(ws_last_status(), WS_ERR_INVALID_ARGUMENT);
    let url = CString::new("http://127.0.0.1/").unwrap();
    assert_eq!(ws_open(url.as_ptr()), 0);
    assert_eq!(ws_last_status(), WS_ERR_INVALID_URL);
    assert_eq!(ws_ready_state(0), WS_ERR_INVALID_HANDLE);
    assert_eq!(ws_last_status(), WS_ERR_INVALID_HANDLE);
    for url in [
        "",
        "not a url",
        "http://127.0.0.1/",
        "ws://127.0.0.1/#frag",
        "ws://",
    ] {
        let msg = open_err(url);
        assert!(!msg.is_empty(), "{url}");
    }
    // Not UTF-8.
    let bytes = b"ws://\xff\xfe/\0";
    assert_eq!(ws_open(bytes.as_ptr().cast()), 0);
    assert!(last_error().contains("UTF-8"));
    assert_eq!(ws_open_ex(ptr::null(), ptr::null()), 0);
}

#[cfg(not(feature = "tls"))]
#[test]
fn wss_and_tls_options_are_unsupported_without_tls() {
    assert!(!ws_has_tls());
    let msg = open_err("wss://127.0.0.1:1/");
    assert!(msg.contains("TLS"), "{msg}");
    let o = ws_options_new();
    let path = CString::new("/tmp/ca.pem").unwrap();
    assert_eq!(ws_options_set_ca_file(o, path.as_ptr()), WS_ERR_UNSUPPORTED);
    assert_eq!(ws_options_set_ca_pem(o, path.as_ptr()), WS_ERR_UNSUPPORTED);
    assert_eq!(
        ws_options_set_client_cert(o, path.as_ptr(), path.as_ptr()),
        WS_ERR_UNSUPPORTED
    );
    assert_eq!(
        ws_options_set_insecure_skip_verify(o, true),
        WS_ERR_UNSUPPORTED
    );
    ws_options_free(o);
}

#[test]
fn proxy_urls_are_checked_when_set() {
    let o = ws_options_new();
    // https:// proxies speak TLS to the proxy: a build without TLS refuses them.
    let https_status = if ws_has_tls() {
        WS_OK
    } else {
        WS_ERR_UNSUPPORTED
    };
    for (bad, status) in [
        ("https://127.0.0.1:3128", https_status),
        ("ftp://127.0.0.1:21", WS_ERR_INVALID_ARGUMENT),
        ("http://", WS_ERR_INVALID_ARGUMENT),
        ("socks5://[::1", WS_ERR_INVALID_ARGUMENT),
    ] {
        let c = CString::new(bad).unwrap();
        assert_eq!(ws_options_set_proxy(o, c.as_ptr()), status, "{bad}");
    }
    // NULL: back to the default (the environment's); "": none.
    assert_eq!(ws_options_set_proxy(o, ptr::null()), WS_OK);
    assert_eq!(ws_options_set_proxy(o, c"".as_ptr()), WS_OK);
    for good in [
        "http://user:pw@127.0.0.1:3128",
        "socks5://127.0.0.1:1080",
        "socks5h://user:pw@proxy.example",
        // Without a scheme: http://, as curl reads it.
        "127.0.0.1:3128",
    ] {
        let c = CString::new(good).unwrap();
        assert_eq!(ws_options_set_proxy(o, c.as_ptr()), WS_OK, "{good}");
    }
    assert_eq!(
        ws_options_set_proxy(ptr::null_mut(), ptr::null()),
        WS_ERR_INVALID_ARGUMENT
    );
    ws_options_free(o);
}

#[test]
fn stale_zero_and_unknown_handles() {
    let text = CString::new("x").unwrap();
    for h in [0u64, 12345678901, u64::MAX] {
        assert_eq!(ws_send(h, text.as_ptr()), WS_ERR_INVALID_HANDLE);
        assert_eq!(ws_send_binary(h, ptr::null(), 0), WS_ERR_INVALID_HANDLE);
        assert_eq!(ws_close(h), WS_ERR_INVALID_HANDLE);
        assert_eq!(ws_close_ex(h, 1000, ptr::null()), WS_ERR_INVALID_HANDLE);
        assert_eq!(ws_free(h), WS_ERR_INVALID_HANDLE);
        assert_eq!(ws_ready_state(h), WS_ERR_INVALID_HANDLE);
        assert_eq!(ws_buffered_amount(h), 0);
        assert_eq!(ws_protocol(h, ptr::null_mut(), 0), 0);
        assert_eq!(
            ws_bind(h, WS_EVENT_OPEN, Some(record), ptr::null_mut()),
            WS_ERR_INVALID_HANDLE
        );
        assert_eq!(
            ws_unbind(h, WS_EVENT_OPEN, Some(record), ptr::null_mut()),
            WS_ERR_INVALID_HANDLE
        );
    }
    // A freed handle stays invalid and is never reissued.
    let server = echo_server();
    let h = open(&server.url());
    assert_eq!(ws_free(h), WS_OK);
    assert_eq!(ws_free(h), WS_ERR_INVALID_HANDLE);
    assert_eq!(ws_send(h, text.as_ptr()), WS_ERR_INVALID_HANDLE);
    let h2 = open(&server.url());
    assert_ne!(h2, h);
    assert_eq!(ws_free(h2), WS_OK);
}

#[test]
fn bad_arguments_on_a_live_socket() {
    let server = echo_server();
    let r = Recorder::new();
    let h = open(&server.url());
    r.bind_all(h);
    // Sending while CONNECTING is refused; maybe the socket already opened,
    // so only check before the open event.
    if !r.events().contains(&Ev::Open) && ws_ready_state(h) == WS_CONNECTING {
        let s = send_text(h, "early");
        assert!(s == WS_ERR_INVALID_STATE || s == WS_OK, "{s}");
    }
    r.wait_open();
    assert_eq!(ws_ready_state(h), WS_OPEN);

    assert_eq!(ws_send(h, ptr::null()), WS_ERR_INVALID_ARGUMENT);
    assert_eq!(ws_send_binary(h, ptr::null(), 5), WS_ERR_INVALID_ARGUMENT);
    let bad = b"\xc3\x28\0";
    assert_eq!(ws_send(h, bad.as_ptr().cast()), WS_ERR_INVALID_UTF8);
    assert!(last_error().contains("UTF-8"));
    assert_eq!(ws_send_text(h, bad.as_ptr().cast(), 2), WS_ERR_INVALID_UTF8);
    assert_eq!(ws_buffered_amount(h), 0, "nothing queued on errors");

    assert_eq!(
        ws_bind(h, 0, Some(record), ptr::null_mut()),
        WS_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        ws_bind(h, 99, Some(record), ptr::null_mut()),
        WS_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        ws_bind(h, WS_EVENT_OPEN, None, ptr::null_mut()),
        WS_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        ws_unbind(h, 7, Some(record), ptr::null_mut()),
        WS_ERR_INVALID_ARGUMENT
    );

    for code in [0u16, 999, 1001, 1005, 1006, 2999, 5000, 65535] {
        assert_eq!(
            ws_close_ex(h, code, ptr::null()),
            WS_ERR_INVALID_ARGUMENT,
            "{code}"
        );
    }
    let long = CString::new("x".repeat(124)).unwrap();
    assert_eq!(ws_close_ex(h, 1000, long.as_ptr()), WS_ERR_INVALID_ARGUMENT);
    assert_eq!(
        ws_close_ex(h, 1000, bad.as_ptr().cast()),
        WS_ERR_INVALID_UTF8
    );
    assert_eq!(ws_ready_state(h), WS_OPEN, "failed closes change nothing");

    let mut small = [0i8; 4];
    assert_eq!(ws_url(h, ptr::null_mut(), 8), 0);
    let n = ws_url(h, small.as_mut_ptr(), small.len());
    assert_eq!(n, server.url().len());
    // SAFETY: copy_out NUL-terminated the buffer.
    assert_eq!(
        unsafe { CStr::from_ptr(small.as_ptr()) }.to_str().unwrap(),
        "ws:"
    );

    let reason = CString::new("bye").unwrap();
    assert_eq!(ws_close_ex(h, 4000, reason.as_ptr()), WS_OK);
    assert_eq!(ws_close(h), WS_OK, "closing twice is fine");
    let events = r.wait_close();
    assert!(
        events.contains(&Ev::Close(4000, "bye".into(), true)),
        "{events:?}"
    );
    assert_eq!(send_text(h, "late"), WS_ERR_INVALID_STATE);
    assert_eq!(ws_ready_state(h), WS_CLOSED);
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn options_reject_bad_values() {
    assert_eq!(
        ws_options_add_protocol(ptr::null_mut(), ptr::null()),
        WS_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        ws_options_set_connect_timeout_ms(ptr::null_mut(), 5),
        WS_ERR_INVALID_ARGUMENT
    );
    let o = ws_options_new();
    assert!(!o.is_null());
    assert_eq!(
        ws_options_add_protocol(o, ptr::null()),
        WS_ERR_INVALID_ARGUMENT
    );
    let bad = CString::new("has space").unwrap();
    assert_eq!(
        ws_options_add_protocol(o, bad.as_ptr()),
        WS_ERR_INVALID_ARGUMENT
    );
    let name = CString::new("Sec-WebSocket-Key").unwrap();
    let value = CString::new("v").unwrap();
    assert_eq!(
        ws_options_add_header(o, name.as_ptr(), value.as_ptr()),
        WS_ERR_INVALID_ARGUMENT
    );
    let name = CString::new("X-Ok").unwrap();
    let crlf = CString::new("a\r\nb").unwrap();
    assert_eq!(
        ws_options_add_header(o, name.as_ptr(), crlf.as_ptr()),
        WS_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        ws_options_set_connect_timeout_ms(o, 0),
        WS_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        ws_options_set_close_timeout_ms(o, 0),
        WS_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        ws_options_set_pong_timeout_ms(o, 0),
        WS_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        ws_options_set_max_message_size(o, 0),
        WS_ERR_INVALID_ARGUMENT
    );
    assert_eq!(ws_options_set_max_send_queue(o, 0), WS_ERR_INVALID_ARGUMENT);
    assert_eq!(ws_options_set_ping_interval_ms(o, 0), WS_OK);
    ws_options_free(o);
    ws_options_free(ptr::null_mut());
}

#[test]
fn too_large_and_queue_full() {
    // A peer that completes the handshake and then reads nothing.
    let server = raw_server(|mut s| {
        raw_handshake(&mut s);
        std::thread::sleep(std::time::Duration::from_secs(60));
    });
    let o = ws_options_new();
    assert_eq!(ws_options_set_max_message_size(o, 1000), WS_OK);
    assert_eq!(ws_options_set_max_send_queue(o, 256 * 1024), WS_OK);
    let r = Recorder::new();
    let h = open_with(&server.url(), o);
    ws_options_free(o);
    r.bind_all(h);
    r.wait_open();
    let big = vec![7u8; 1001];
    assert_eq!(
        ws_send_binary(h, big.as_ptr().cast(), big.len()),
        WS_ERR_TOO_LARGE
    );
    let msg = vec![1u8; 1000];
    let mut accepted = 0usize;
    let status = loop {
        let s = ws_send_binary(h, msg.as_ptr().cast(), msg.len());
        if s != WS_OK {
            break s;
        }
        accepted += msg.len();
        assert!(accepted < 64 << 20, "the queue never filled");
    };
    assert_eq!(status, WS_ERR_QUEUE_FULL);
    assert!(last_error().contains("queue"));
    // Never over the cap. It may already be 0: the IO thread can have moved
    // the whole queue into the kernel's socket buffer since it was full.
    let buffered = ws_buffered_amount(h);
    assert!(buffered <= 256 * 1024, "{buffered}");
    assert!(buffered <= accepted);
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn strerror_and_version() {
    for code in [
        0, -1, -2, -3, -4, -5, -6, -7, -8, -9, -20, -21, -22, -23, -24, -25, -26, 42,
    ] {
        // SAFETY: ws_strerror returns a static NUL-terminated string.
        let s = unsafe { CStr::from_ptr(ws_strerror(code)) }
            .to_str()
            .unwrap();
        assert!(!s.is_empty(), "{code}");
    }
    // SAFETY: static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(ws_version()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    assert_eq!(v.split('.').count(), 3);
}
