//! HTTP redirects of the opening handshake, through the C ABI, against
//! tungstenite servers that answer some paths with a 3xx.
#![allow(clippy::result_large_err)]

mod common;

use std::ffi::{CStr, CString};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use common::*;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use wsembed::ffi::*;

/// What a server saw: each request's path and headers (names lowercase).
type Seen = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

/// A server that answers `path -> Some(location)` with `status` and that
/// Location, and accepts (then echoes) every other path.
fn redirecting(
    status: u16,
    route: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> (Server, Seen) {
    let seen = Seen::default();
    let record = seen.clone();
    let route = Arc::new(route);
    let server = raw_server(move |stream: TcpStream| {
        let record = record.clone();
        let route = route.clone();
        let callback = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            let path = req.uri().to_string();
            let headers = req
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            record.lock().unwrap().push((path.clone(), headers));
            match route(&path) {
                Some(location) => Err(tungstenite::http::Response::builder()
                    .status(status)
                    .header("Location", location)
                    .body(None)
                    .unwrap()),
                None => Ok(resp),
            }
        };
        if let Ok(ws) = tungstenite::accept_hdr(stream, callback) {
            echo(ws)
        }
    });
    (server, seen)
}

fn url_of(h: ws_handle) -> String {
    let mut buf = [0 as std::os::raw::c_char; 256];
    ws_url(h, buf.as_mut_ptr(), buf.len());
    // SAFETY: NUL-terminated within buf.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn options(max_redirects: u32, headers: &[(&str, &str)]) -> *mut ws_options {
    let o = ws_options_new();
    assert_eq!(ws_options_set_max_redirects(o, max_redirects), WS_OK);
    for (name, value) in headers {
        let (n, v) = (CString::new(*name).unwrap(), CString::new(*value).unwrap());
        assert_eq!(ws_options_add_header(o, n.as_ptr(), v.as_ptr()), WS_OK);
    }
    o
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_relative_redirect_is_followed_and_ws_url_says_where_it_led() {
    for status in [301, 302, 303, 307, 308] {
        let (server, seen) = redirecting(status, |path| {
            (path == "/start").then(|| "/next?hop=1".to_owned())
        });
        let o = options(2, &[("Authorization", "Bearer same-host")]);
        let h = open_with(&format!("ws://127.0.0.1:{}/start", server.port), o);
        ws_options_free(o);
        let rec = Recorder::new();
        rec.bind_all(h);
        rec.wait_open();
        assert_eq!(
            url_of(h),
            format!("ws://127.0.0.1:{}/next?hop=1", server.port)
        );
        assert_eq!(ws_response_status(h), 101);
        assert_eq!(send_text(h, "after the redirect"), WS_OK);
        assert_eq!(rec.wait_messages(1)[0].0, b"after the redirect");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{status}");
        assert_eq!(seen[1].0, "/next?hop=1");
        // Same host: the credentials go along.
        assert_eq!(
            header(&seen[1].1, "authorization"),
            Some("Bearer same-host")
        );
        ws_free(h);
    }
}

#[test]
fn a_redirect_to_another_host_leaves_the_credentials_behind() {
    let (target, target_seen) = redirecting(302, |_| None);
    let port = target.port;
    // 127.0.0.1 -> localhost: the same machine under another host name.
    let (first, _) = redirecting(302, move |_| Some(format!("http://localhost:{port}/there")));
    let o = options(
        1,
        &[
            ("Authorization", "Basic c2VjcmV0"),
            ("Cookie", "session=1"),
            ("X-Trace", "kept"),
        ],
    );
    let h = open_with(&first.url(), o);
    ws_options_free(o);
    let rec = Recorder::new();
    rec.bind_all(h);
    rec.wait_open();
    assert_eq!(url_of(h), format!("ws://localhost:{port}/there"));
    let seen = target_seen.lock().unwrap().clone();
    let headers = &seen[0].1;
    assert_eq!(header(headers, "authorization"), None, "{headers:?}");
    assert_eq!(header(headers, "cookie"), None, "{headers:?}");
    assert_eq!(header(headers, "x-trace"), Some("kept"));
    ws_free(h);
}

#[test]
fn a_redirect_loop_stops_after_n_hops() {
    let (server, seen) = redirecting(307, |_| Some("/again".to_owned()));
    let o = options(3, &[]);
    let h = open_with(&server.url(), o);
    ws_options_free(o);
    let rec = Recorder::new();
    rec.bind_all(h);
    let events = rec.wait_close();
    let error = events.iter().find_map(|e| match e {
        Ev::Error(code, text) => Some((*code, text.clone())),
        _ => None,
    });
    let (code, text) = error.expect("an error event");
    assert_eq!(code, WS_ERR_HANDSHAKE);
    assert!(text.contains("too many redirects"), "{text}");
    assert_eq!(
        seen.lock().unwrap().len(),
        4,
        "the first request and 3 redirects"
    );
    assert_eq!(ws_response_status(h), 307);
    assert!(matches!(events.last(), Some(Ev::Close(1006, _, false))));
    ws_free(h);
}

#[test]
fn without_redirects_allowed_a_3xx_is_refused_with_its_location() {
    let (server, seen) = redirecting(302, |path| (path == "/").then(|| "/elsewhere".to_owned()));
    let h = open(&server.url());
    let rec = Recorder::new();
    rec.bind_all(h);
    let events = rec.wait_close();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Ev::Error(WS_ERR_HANDSHAKE, t) if t.contains("HTTP 302"))),
        "{events:?}"
    );
    assert_eq!(ws_response_status(h), 302);
    let name = CString::new("location").unwrap();
    let mut buf = [0 as std::os::raw::c_char; 64];
    ws_response_header(h, name.as_ptr(), buf.as_mut_ptr(), buf.len());
    // SAFETY: NUL-terminated within buf.
    assert_eq!(
        unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap(),
        "/elsewhere"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(url_of(h), server.url());
    ws_free(h);
}

#[test]
fn a_redirect_without_location_or_to_another_scheme_is_refused() {
    for (location, expected) in [
        ("ftp://127.0.0.1/file", "scheme \"ftp\""),
        ("http://", "not a URL"),
    ] {
        let (server, _) = redirecting(302, move |_| Some(location.to_owned()));
        let o = options(5, &[]);
        let h = open_with(&server.url(), o);
        ws_options_free(o);
        let rec = Recorder::new();
        rec.bind_all(h);
        let events = rec.wait_close();
        let text = events
            .iter()
            .find_map(|e| match e {
                Ev::Error(WS_ERR_HANDSHAKE, t) => Some(t.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{location}: {events:?}"));
        assert!(text.contains(expected), "{location}: {text}");
        ws_free(h);
    }
}
