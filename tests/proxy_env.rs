//! Proxies named by the environment (`ws_proxy`, `http_proxy`, ...), the
//! `no_proxy` rules, the loopback exemption and the CGI guard, through the
//! C ABI. One test function: it sets the process's environment, which no
//! other thread of this test binary may read at the same time.

mod common;

use std::ffi::CString;

use common::socks::{socks_proxy, Behaviour};
use common::*;
use wsembed::ffi::*;

/// Opens `url`, echoes one message, frees; true if it got through.
fn echoes(url: &str, o: *mut ws_options) -> bool {
    let r = Recorder::new();
    let h = open_with(url, o);
    ws_options_free(o);
    r.bind_all(h);
    let events = r.wait_for("open or close", |e| e.contains(&Ev::Open) || has_close(e));
    let ok = events.contains(&Ev::Open)
        && send_text(h, "hi") == WS_OK
        && r.wait_messages(1)[0].0 == b"hi";
    assert_eq!(ws_free(h), WS_OK);
    ok
}

fn options(set: impl FnOnce(*mut ws_options)) -> *mut ws_options {
    let o = ws_options_new();
    set(o);
    o
}

#[test]
fn the_environment_names_the_proxy_and_no_proxy_and_loopback_exempt_hosts() {
    let server = echo_server();
    let proxy = socks_proxy(Behaviour::Forward, &["echo.invalid"]);
    let asked = || proxy.asked.lock().unwrap().len();
    let by_name = format!("ws://echo.invalid:{}/", server.port);
    let by_ip = server.url();
    for name in [
        "ws_proxy",
        "WS_PROXY",
        "http_proxy",
        "HTTP_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        std::env::remove_var(name);
    }
    std::env::remove_var("no_proxy");
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("REQUEST_METHOD");

    // ws_proxy carries ws://; a name only the proxy knows gets through.
    std::env::set_var("ws_proxy", proxy.url("socks5h", ""));
    assert!(echoes(&by_name, ws_options_new()));
    assert_eq!(asked(), 1);

    // Loopback never goes through a proxy from the environment...
    assert!(echoes(&by_ip, ws_options_new()));
    assert_eq!(asked(), 1, "127.0.0.1 went direct");
    // ...unless an explicit no_proxy list replaces that exemption.
    assert!(echoes(
        &by_ip,
        options(|o| {
            assert_eq!(ws_options_set_no_proxy(o, c"".as_ptr()), WS_OK);
        })
    ));
    assert_eq!(asked(), 2);
    assert!(echoes(
        &by_ip,
        options(|o| {
            assert_eq!(
                ws_options_set_no_proxy(o, c"10.0.0.0/8, 127.0.0.0/8".as_ptr()),
                WS_OK
            );
        })
    ));
    assert_eq!(asked(), 2, "listed in no_proxy: direct");

    // The environment's no_proxy exempts the name: it then fails to
    // resolve, as it exists only for the proxy.
    std::env::set_var("no_proxy", ".invalid");
    assert!(!echoes(&by_name, ws_options_new()));
    std::env::remove_var("no_proxy");
    assert_eq!(asked(), 2);

    // "" as the proxy, or the environment turned off: direct.
    assert!(!echoes(
        &by_name,
        options(|o| {
            assert_eq!(ws_options_set_proxy(o, c"".as_ptr()), WS_OK);
        })
    ));
    assert!(!echoes(
        &by_name,
        options(|o| {
            assert_eq!(ws_options_set_proxy_env(o, false), WS_OK);
        })
    ));
    assert_eq!(asked(), 2);

    // A CGI program reads no proxy variable.
    std::env::set_var("REQUEST_METHOD", "GET");
    assert!(!echoes(&by_name, ws_options_new()));
    assert_eq!(asked(), 2);
    std::env::remove_var("REQUEST_METHOD");

    // HTTP_PROXY (upper case) is never read for ws://; all_proxy is.
    std::env::remove_var("ws_proxy");
    std::env::set_var("HTTP_PROXY", proxy.url("socks5h", ""));
    assert!(!echoes(&by_name, ws_options_new()));
    std::env::remove_var("HTTP_PROXY");
    std::env::set_var("all_proxy", proxy.url("socks5h", ""));
    assert!(echoes(&by_name, ws_options_new()));
    assert_eq!(asked(), 3);

    // An explicit proxy wins over the environment, and an unusable one
    // from the environment fails ws_open_ex with a clear message.
    std::env::set_var("all_proxy", "ftp://nowhere");
    let url = CString::new(by_name.clone()).unwrap();
    assert_eq!(ws_open_ex(url.as_ptr(), std::ptr::null()), 0);
    assert!(last_error().contains("environment"), "{}", last_error());
    let explicit = CString::new(proxy.url("socks5h", "")).unwrap();
    assert!(echoes(
        &by_name,
        options(|o| {
            assert_eq!(ws_options_set_proxy(o, explicit.as_ptr()), WS_OK);
        })
    ));
    assert_eq!(asked(), 4);
    std::env::remove_var("all_proxy");

    // Each reconnection attempt reads the environment again: a proxy
    // changed meanwhile carries the next connection.
    let second = socks_proxy(Behaviour::Forward, &["echo.invalid"]);
    std::env::set_var("ws_proxy", proxy.url("socks5h", ""));
    let o = options(|o| {
        assert_eq!(ws_options_set_reconnect(o, true), WS_OK);
    });
    let r = Recorder::new();
    let h = open_with(&by_name, o);
    ws_options_free(o);
    r.bind_all(h);
    r.wait_open();
    assert_eq!(asked(), 5);
    std::env::set_var("ws_proxy", second.url("socks5h", ""));
    assert_eq!(ws_reconnect(h), WS_OK);
    r.wait_for("a second open", |e| {
        e.iter().filter(|e| **e == Ev::Open).count() == 2
    });
    assert_eq!(send_text(h, "again"), WS_OK);
    assert_eq!(r.wait_messages(1)[0].0, b"again");
    assert_eq!(asked(), 5, "the first proxy was not asked again");
    assert_eq!(second.asked.lock().unwrap().len(), 1);
    assert_eq!(ws_free(h), WS_OK);

    // A redirect chooses the proxy again for its new host: from loopback
    // (direct) to a name only the proxy knows.
    let location = format!("ws://echo.invalid:{}/", server.port);
    let redirecting = raw_server(move |mut tcp| {
        use std::io::Write;
        read_request(&mut tcp);
        let answer =
            format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
        let _ = tcp.write_all(answer.as_bytes());
    });
    let before = second.asked.lock().unwrap().len();
    assert!(echoes(
        &redirecting.url(),
        options(|o| {
            assert_eq!(ws_options_set_max_redirects(o, 1), WS_OK);
        })
    ));
    assert_eq!(second.asked.lock().unwrap().len(), before + 1);
    std::env::remove_var("ws_proxy");
}
