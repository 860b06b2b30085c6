//! SOCKS5 proxies (`socks5://`, `socks5h://`) through the C ABI, against a
//! SOCKS5 proxy written in the test (`tests/common/socks.rs`) that records
//! what each client asked and replies a byte at a time.

mod common;

use std::ffi::CString;
use std::time::{Duration, Instant};

use common::socks::{socks_proxy, Behaviour};
use common::*;
use wsembed::ffi::*;

fn echo_through(url: &str, o: *mut ws_options) {
    let r = Recorder::new();
    let h = open_with(url, o);
    ws_options_free(o);
    r.bind_all(h);
    r.wait_open();
    assert_eq!(send_text(h, "through SOCKS"), WS_OK);
    assert_eq!(r.wait_messages(1)[0].0, b"through SOCKS");
    assert_eq!(ws_free(h), WS_OK);
}

/// The error event of a socket that could not get through.
fn failure(url: &str, o: *mut ws_options) -> (i32, String) {
    let r = Recorder::new();
    let h = open_with(url, o);
    ws_options_free(o);
    r.bind_all(h);
    let events = r.wait_close();
    assert_eq!(ws_free(h), WS_OK);
    match &events[..] {
        [Ev::Error(code, message), Ev::Close(1006, _, false)] => (*code, message.clone()),
        other => panic!("expected an error then a close: {other:?}"),
    }
}

#[test]
fn socks5h_sends_the_name_and_the_proxy_resolves_it() {
    let server = echo_server();
    // A name no resolver knows: only the proxy does.
    let proxy = socks_proxy(Behaviour::Forward, &["echo.invalid"]);
    let o = options_with_proxy(&proxy.url("socks5h", ""));
    echo_through(&format!("ws://echo.invalid:{}/", server.port), o);
    let asked = proxy.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!((asked[0].atyp, asked[0].host.as_str()), (3, "echo.invalid"));
    assert_eq!(asked[0].port, server.port);
    assert_eq!(asked[0].methods, [0], "no credentials: no-auth only");
}

#[test]
fn socks5_resolves_the_name_here_and_sends_an_address() {
    let server = echo_server();
    let proxy = socks_proxy(Behaviour::Forward, &[]);
    let o = options_with_proxy(&proxy.url("socks5", ""));
    echo_through(&format!("ws://localhost:{}/", server.port), o);
    let o = options_with_proxy(&proxy.url("socks5", ""));
    echo_through(&server.url(), o);
    let asked = proxy.asked.lock().unwrap().clone();
    assert!(
        matches!(asked[0].atyp, 1 | 4),
        "an address, not the name: {asked:?}"
    );
    assert_eq!((asked[1].atyp, asked[1].host.as_str()), (1, "127.0.0.1"));
}

#[test]
fn username_and_password_accepted_and_refused() {
    let server = echo_server();
    let proxy = socks_proxy(
        Behaviour::Auth("alice".into(), "s3cret".into()),
        &["echo.invalid"],
    );
    let o = options_with_proxy(&proxy.url("socks5h", "alice:s3cret@"));
    echo_through(&format!("ws://echo.invalid:{}/", server.port), o);
    let asked = proxy.asked.lock().unwrap().clone();
    assert_eq!(asked[0].methods, [0, 2]);
    assert_eq!(
        asked[0].credentials,
        Some(("alice".into(), "s3cret".into()))
    );

    let o = options_with_proxy(&proxy.url("socks5h", "alice:wrong-pass@"));
    let (code, message) = failure(&server.url(), o);
    assert_eq!(code, WS_ERR_PROXY);
    assert!(message.contains("username and password"), "{message}");
    assert!(!message.contains("wrong-pass"), "{message}");
    // Without credentials the proxy accepts no method.
    let o = options_with_proxy(&proxy.url("socks5h", ""));
    let (code, message) = failure(&server.url(), o);
    assert_eq!(code, WS_ERR_PROXY);
    assert!(message.contains("authentication method"), "{message}");
}

#[test]
fn a_refused_connect_names_the_reply() {
    let server = echo_server();
    let proxy = socks_proxy(Behaviour::Refuse(5), &[]);
    let o = options_with_proxy(&proxy.url("socks5", ""));
    let (code, message) = failure(&server.url(), o);
    assert_eq!(code, WS_ERR_PROXY);
    assert!(message.contains("connection refused"), "{message}");
    // A name the proxy cannot resolve: host unreachable (4).
    let proxy = socks_proxy(Behaviour::Forward, &[]);
    let o = options_with_proxy(&proxy.url("socks5h", ""));
    let (code, message) = failure("ws://nowhere.invalid:9/", o);
    assert_eq!(code, WS_ERR_PROXY);
    assert!(message.contains("host unreachable"), "{message}");
}

#[test]
fn a_proxy_that_stalls_hits_the_connect_timeout() {
    let proxy = socks_proxy(Behaviour::Stall, &[]);
    let o = options_with_proxy(&proxy.url("socks5", ""));
    assert_eq!(ws_options_set_connect_timeout_ms(o, 300), WS_OK);
    let start = Instant::now();
    let (code, _) = failure("ws://127.0.0.1:9/", o);
    assert_eq!(code, WS_ERR_TIMEOUT);
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn an_unreachable_socks_proxy_is_a_connect_error_naming_it() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let o = options_with_proxy(&format!("socks5://127.0.0.1:{port}"));
    let (code, message) = failure("ws://127.0.0.1:9/", o);
    assert_eq!(code, WS_ERR_CONNECT);
    assert!(
        message.contains(&format!("the proxy at 127.0.0.1:{port}")),
        "{message}"
    );
}

#[test]
fn bad_proxy_urls_are_refused_at_once() {
    let o = ws_options_new();
    // https:// proxies speak TLS to the proxy: a build without TLS refuses them.
    let https_status = if ws_has_tls() {
        WS_OK
    } else {
        WS_ERR_UNSUPPORTED
    };
    for (url, status) in [
        ("ftp://127.0.0.1:21", WS_ERR_INVALID_ARGUMENT),
        ("https://127.0.0.1:3128", https_status),
        ("socks5://", WS_ERR_INVALID_ARGUMENT),
    ] {
        let c = CString::new(url).unwrap();
        assert_eq!(ws_options_set_proxy(o, c.as_ptr()), status, "{url}");
    }
    let long = CString::new(format!("socks5://{}:pw@127.0.0.1:1", "u".repeat(256))).unwrap();
    assert_eq!(
        ws_options_set_proxy(o, long.as_ptr()),
        WS_ERR_INVALID_ARGUMENT
    );
    // "" and NULL are both valid: none, and the default.
    assert_eq!(ws_options_set_proxy(o, c"".as_ptr()), WS_OK);
    assert_eq!(ws_options_set_proxy(o, std::ptr::null()), WS_OK);
    ws_options_free(o);
}

#[cfg(feature = "tls")]
#[test]
fn wss_runs_inside_the_socks_tunnel() {
    let server = tls_echo_server();
    let proxy = socks_proxy(Behaviour::Forward, &["tls.invalid"]);
    let o = options_with_proxy(&proxy.url("socks5h", ""));
    assert_eq!(ws_options_set_insecure_skip_verify(o, true), WS_OK);
    echo_through(&format!("wss://tls.invalid:{}/", server.port), o);
    let asked = proxy.asked.lock().unwrap().clone();
    assert_eq!((asked[0].atyp, asked[0].host.as_str()), (3, "tls.invalid"));
}

#[test]
fn a_proxy_name_that_does_not_resolve_is_named_in_the_dns_error() {
    for scheme in ["http", "socks5h"] {
        let o = options_with_proxy(&format!("{scheme}://proxy.invalid:1080"));
        let (code, message) = failure("ws://server.invalid:9/", o);
        assert_eq!(code, WS_ERR_DNS, "{scheme}");
        assert!(message.contains("proxy.invalid"), "{scheme}: {message}");
    }
}
