//! `https://` proxies: TLS to the proxy, HTTP CONNECT inside it, then the
//! WebSocket (and for `wss://` the server's TLS) inside the tunnel, against
//! the proxy in `tests/common/tls_proxy.rs`.
#![cfg(feature = "tls")]

mod common;

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use common::tls_proxy::{header, tls_proxy, ProxyMode, TlsProxy};
use common::*;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use wsembed::ffi::*;

type TlsClient = StreamOwned<ClientConnection, TcpStream>;

/// A plain rustls client to the proxy, trusting its certificate only.
fn tls_client(proxy: &TlsProxy) -> TlsClient {
    let mut roots = RootCertStore::empty();
    roots.add(proxy.cert_der.clone()).unwrap();
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let conn = ClientConnection::new(
        Arc::new(config),
        ServerName::try_from("127.0.0.1").unwrap().to_owned(),
    )
    .unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    tcp.set_nodelay(true).unwrap();
    StreamOwned::new(conn, tcp)
}

/// Sends a CONNECT for `target` with `extra` header lines (each ending in
/// CRLF) and returns the answer's head. A byte at a time, so that nothing
/// after the head is consumed.
fn connect(client: &mut TlsClient, target: &str, extra: &str) -> String {
    write!(
        client,
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{extra}\r\n"
    )
    .unwrap();
    client.flush().unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!("answer cut short ({other:?}): {head:?}"),
        }
    }
    String::from_utf8(head).unwrap()
}

/// A TCP server that sends back whatever it reads. No Nagle: its echo
/// comes in pieces, and a piece held for the ACK of the previous one waits
/// out the peer's delayed ACK (40 ms a round).
fn byte_echo_server() -> Server {
    raw_server(|mut stream| {
        stream.set_nodelay(true).unwrap();
        let mut reader = stream.try_clone().unwrap();
        let _ = std::io::copy(&mut reader, &mut stream);
    })
}

/// The proxy's answer ends the session: the client sees close_notify.
fn assert_closed(client: &mut TlsClient) {
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn the_test_proxy_tunnels_tls_to_an_echo_server() {
    let server = byte_echo_server();
    let proxy = tls_proxy(ProxyMode::Forward);
    for host in ["127.0.0.1", "localhost"] {
        let mut client = tls_client(&proxy);
        let target = format!("{host}:{}", server.port);
        let answer = connect(&mut client, &target, "");
        assert_eq!(answer, "HTTP/1.1 200 Connection established\r\n\r\n");
        // 1 MiB in 16 KiB steps: many TLS records each way, while each step
        // is small enough that neither side can block the other.
        let chunk: Vec<u8> = (0..16 * 1024).map(|i| (i * 7 % 251) as u8).collect();
        for round in 0..64u8 {
            let sent: Vec<u8> = chunk.iter().map(|b| b ^ round).collect();
            client.write_all(&sent).unwrap();
            client.flush().unwrap();
            let mut back = vec![0u8; sent.len()];
            client.read_exact(&mut back).unwrap();
            assert!(back == sent, "round {round} came back changed");
        }
        // Closing our side reaches the echo server, whose close comes back
        // as the proxy's close_notify.
        client.conn.send_close_notify();
        client.flush().unwrap();
        assert_closed(&mut client);
    }
    let requests = proxy.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(
        requests[0].starts_with(&format!("CONNECT 127.0.0.1:{} HTTP/1.1\r\n", server.port)),
        "{requests:?}"
    );
    assert_eq!(
        header(&requests[1], "host"),
        Some(&*format!("localhost:{}", server.port))
    );
}

#[test]
fn the_test_proxy_asks_for_credentials_refuses_and_stays_on_this_machine() {
    let server = byte_echo_server();
    let target = format!("127.0.0.1:{}", server.port);
    let proxy = tls_proxy(ProxyMode::Auth("alice".into(), "s3cret".into()));
    for extra in ["", "Proxy-Authorization: Basic YWxpY2U6d3Jvbmc=\r\n"] {
        let mut client = tls_client(&proxy);
        let answer = connect(&mut client, &target, extra);
        assert!(
            answer.starts_with("HTTP/1.1 407 Proxy Authentication Required\r\n")
                && answer.contains("\r\nProxy-Authenticate: Basic realm=\"test\"\r\n"),
            "{answer}"
        );
        assert_closed(&mut client);
    }
    let mut client = tls_client(&proxy);
    // base64("alice:s3cret"), with the scheme in another case.
    let answer = connect(
        &mut client,
        &target,
        "proxy-authorization: basic YWxpY2U6czNjcmV0\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    client.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    client.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");
    assert_eq!(proxy.requests().len(), 3);

    let proxy = tls_proxy(ProxyMode::Refuse);
    let mut client = tls_client(&proxy);
    let answer = connect(&mut client, &target, "");
    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
    assert_closed(&mut client);

    // Refused before any connection is tried.
    let proxy = tls_proxy(ProxyMode::Forward);
    for target in ["192.0.2.1:80", "example.com:443"] {
        let mut client = tls_client(&proxy);
        let answer = connect(&mut client, target, "");
        assert!(answer.starts_with("HTTP/1.1 502 "), "{target}: {answer}");
        assert_closed(&mut client);
    }
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Options with `proxy_url` as the proxy and the proxy's certificate as a
/// trust root.
fn trusting(proxy: &TlsProxy, proxy_url: &str) -> *mut ws_options {
    let o = options_with_proxy(proxy_url);
    let ca = cstr(proxy.ca_path.to_str().unwrap());
    assert_eq!(ws_options_set_ca_file(o, ca.as_ptr()), WS_OK);
    o
}

/// Opens `url`, echoes a text and a binary message, closes with 1000.
fn echo_through(url: &str, o: *mut ws_options) {
    let r = Recorder::new();
    let h = open_with(url, o);
    ws_options_free(o);
    r.bind_all(h);
    r.wait_open();
    assert_eq!(send_text(h, "through TLS to the proxy"), WS_OK);
    let binary = [0u8, 1, 2, 0xFF, 0xFE];
    assert_eq!(
        ws_send_binary(h, binary.as_ptr().cast(), binary.len()),
        WS_OK
    );
    let got = r.wait_messages(2);
    assert_eq!(got[0], (b"through TLS to the proxy".to_vec(), false));
    assert_eq!(got[1], (binary.to_vec(), true));
    let reason = cstr("done");
    assert_eq!(ws_close_ex(h, 1000, reason.as_ptr()), WS_OK);
    let events = r.wait_close();
    assert_protocol_order(&events);
    assert_eq!(events.last(), Some(&Ev::Close(1000, "done".into(), true)));
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
fn ws_through_an_https_proxy() {
    let server = echo_server();
    let proxy = tls_proxy(ProxyMode::Forward);
    echo_through(&server.url(), trusting(&proxy, &proxy.url("")));
    let requests = proxy.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].starts_with(&format!("CONNECT 127.0.0.1:{} HTTP/1.1\r\n", server.port)),
        "{requests:?}"
    );
    assert_eq!(header(&requests[0], "proxy-authorization"), None);
}

#[test]
fn wss_inside_an_https_proxy_tunnel() {
    // TLS inside TLS: the server's session runs through the proxy's. The
    // two hops share the socket's trust settings: insecure mode (needed for
    // tls_echo_server's throwaway certificate) would also accept any proxy
    // certificate, so the proxy's CA file is given too, as a caller trusting
    // both properly would.
    let server = tls_echo_server();
    let proxy = tls_proxy(ProxyMode::Forward);
    let o = trusting(&proxy, &proxy.url(""));
    assert_eq!(ws_options_set_insecure_skip_verify(o, true), WS_OK);
    echo_through(&format!("wss://127.0.0.1:{}/", server.port), o);
    let requests = proxy.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].starts_with(&format!("CONNECT 127.0.0.1:{} ", server.port)),
        "{requests:?}"
    );
}

#[test]
fn credentials_accepted_and_refused() {
    let server = echo_server();
    let proxy = tls_proxy(ProxyMode::Auth("alice".into(), "s3cret".into()));
    echo_through(&server.url(), trusting(&proxy, &proxy.url("alice:s3cret")));
    let requests = proxy.requests();
    assert_eq!(
        header(&requests[0], "proxy-authorization"),
        Some("Basic YWxpY2U6czNjcmV0"),
        "{requests:?}"
    );

    let (code, message) = failure(
        &server.url(),
        trusting(&proxy, &proxy.url("alice:wrong-pass")),
    );
    assert_eq!(code, WS_ERR_PROXY);
    assert!(message.contains("407"), "{message}");
    let (code, message2) = failure(&server.url(), trusting(&proxy, &proxy.url("")));
    assert_eq!(code, WS_ERR_PROXY);
    assert!(message2.contains("407"), "{message2}");
    for m in [message, message2, last_error()] {
        assert!(!m.contains("wrong-pass") && !m.contains("s3cret"), "{m}");
    }
}

#[test]
fn a_refusing_https_proxy_is_a_proxy_error_naming_its_answer() {
    let server = echo_server();
    let proxy = tls_proxy(ProxyMode::Refuse);
    let (code, message) = failure(&server.url(), trusting(&proxy, &proxy.url("")));
    assert_eq!(code, WS_ERR_PROXY);
    assert!(message.contains("403"), "{message}");
}

#[test]
fn an_untrusted_proxy_certificate_is_a_tls_error_naming_the_proxy() {
    let server = echo_server();
    let proxy = tls_proxy(ProxyMode::Forward);
    let (code, message) = failure(&server.url(), options_with_proxy(&proxy.url("")));
    assert_eq!(code, WS_ERR_TLS, "{message}");
    assert!(
        message.contains("127.0.0.1")
            && (message.contains(&proxy.port.to_string()) || message.contains("proxy")),
        "{message}"
    );
    assert!(
        proxy.requests().is_empty(),
        "no CONNECT over a refused session"
    );
}

#[test]
fn an_https_proxy_url_without_a_port_is_accepted() {
    // 443 by default; nothing connects here.
    let o = ws_options_new();
    for url in ["https://127.0.0.1", "https://alice:s3cret@proxy.invalid"] {
        let c = cstr(url);
        assert_eq!(
            ws_options_set_proxy(o, c.as_ptr()),
            WS_OK,
            "{url}: {}",
            last_error()
        );
    }
    ws_options_free(o);
}
