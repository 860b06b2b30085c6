//! wss:// end to end: certificates made here with rcgen, a rustls server on
//! 127.0.0.1, every trust decision checked.
#![cfg(feature = "tls")]

mod common;

use std::ffi::CString;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use rcgen::{date_time_ymd, BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};
use wsembed::ffi::*;

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    der: CertificateDer<'static>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        der: cert.der().clone(),
        issuer: Issuer::new(params, key),
    }
}

struct Leaf {
    pem: String,
    der: CertificateDer<'static>,
    key: KeyPair,
}

fn leaf(ca: &Ca, names: &[&str], expired: bool) -> Leaf {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    for n in names {
        params.subject_alt_names.push(match n.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName((*n).try_into().unwrap()),
        });
    }
    if expired {
        params.not_before = date_time_ymd(2001, 1, 1);
        params.not_after = date_time_ymd(2002, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    Leaf {
        pem: cert.pem(),
        der: cert.der().clone(),
        key,
    }
}

fn key_der(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A wss echo server; with `client_ca`, it requires a client certificate
/// signed by it.
fn tls_server(cert: &Leaf, client_ca: Option<&Ca>) -> Server {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.der.clone()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider())
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = Arc::new(
        builder
            .with_single_cert(vec![cert.der.clone()], key_der(&cert.key))
            .unwrap(),
    );
    raw_server(move |tcp: TcpStream| {
        let conn = ServerConnection::new(config.clone()).unwrap();
        let tls = StreamOwned::new(conn, tcp);
        if let Ok(ws) = tungstenite::accept(tls) {
            let mut ws = ws;
            loop {
                match ws.read() {
                    // "close CODE REASON": the server closes with them.
                    Ok(tungstenite::Message::Text(t)) if t.starts_with("close ") => {
                        let (code, reason) = t[6..].split_once(' ').unwrap_or((&t[6..], ""));
                        let frame = tungstenite::protocol::CloseFrame {
                            code: code.parse::<u16>().unwrap().into(),
                            reason: reason.to_owned().into(),
                        };
                        if ws.close(Some(frame)).is_err() {
                            return;
                        }
                    }
                    Ok(m @ (tungstenite::Message::Text(_) | tungstenite::Message::Binary(_))) => {
                        if ws.send(m).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        }
    })
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsembed-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn options_with_ca_file(ca: &Ca, tag: &str) -> *mut ws_options {
    let path = temp_file(&format!("{tag}-ca.pem"), &ca.pem);
    let o = ws_options_new();
    let p = cstr(path.to_str().unwrap());
    assert_eq!(ws_options_set_ca_file(o, p.as_ptr()), WS_OK);
    o
}

fn wss_url(server: &Server) -> String {
    format!("wss://127.0.0.1:{}/", server.port)
}

fn echo_once(url: &str, options: *const ws_options) {
    let r = Recorder::new();
    let h = open_with(url, options);
    r.bind_all(h);
    r.wait_open();
    assert_eq!(send_text(h, "secret"), WS_OK);
    let big = vec![42u8; 300_000];
    assert_eq!(ws_send_binary(h, big.as_ptr().cast(), big.len()), WS_OK);
    let m = r.wait_messages(2);
    assert_eq!(m[0], (b"secret".to_vec(), false));
    assert!(m[1].1 && m[1].0 == big);
    assert_eq!(ws_close(h), WS_OK);
    let events = r.wait_close();
    assert_protocol_order(&events);
    assert!(
        matches!(events.last(), Some(Ev::Close(1005, _, true))),
        "{events:?}"
    );
    assert_eq!(ws_free(h), WS_OK);
}

fn expect_tls_error(url: &str, options: *const ws_options, text: &str) {
    let r = Recorder::new();
    let h = open_with(url, options);
    r.bind_all(h);
    let events = r.wait_close();
    match &events[..] {
        [Ev::Error(WS_ERR_TLS, m), Ev::Close(1006, _, false)] => {
            assert!(m.contains(text), "{m:?} lacks {text:?}")
        }
        other => panic!("expected a TLS error then close: {other:?}"),
    }
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn the_build_has_tls() {
    assert!(ws_has_tls());
}

#[test]
fn echo_with_a_private_ca_from_a_file_and_from_pem_text() {
    let ca = ca("wsembed test CA");
    let server = tls_server(&leaf(&ca, &["127.0.0.1", "localhost"], false), None);
    let o = options_with_ca_file(&ca, "file");
    echo_once(&wss_url(&server), o);
    // By name: SNI and a DNS SAN.
    echo_once(&format!("wss://localhost:{}/", server.port), o);
    ws_options_free(o);

    let o = ws_options_new();
    let pem = cstr(&ca.pem);
    assert_eq!(ws_options_set_ca_pem(o, pem.as_ptr()), WS_OK);
    echo_once(&wss_url(&server), o);
    ws_options_free(o);
}

#[test]
fn untrusted_wrong_name_and_expired_certificates_are_rejected() {
    let ca = ca("wsembed test CA");
    let good = tls_server(&leaf(&ca, &["127.0.0.1"], false), None);
    expect_tls_error(&wss_url(&good), std::ptr::null(), "unknown authority");

    let o = options_with_ca_file(&ca, "names");
    let other = tls_server(&leaf(&ca, &["other.example"], false), None);
    expect_tls_error(&wss_url(&other), o, "not valid for");
    let expired = tls_server(&leaf(&ca, &["127.0.0.1"], true), None);
    expect_tls_error(&wss_url(&expired), o, "expired");
    ws_options_free(o);
}

#[test]
fn insecure_mode_accepts_what_verification_refuses() {
    let ca = ca("untrusted CA");
    let server = tls_server(&leaf(&ca, &["other.example"], true), None);
    let o = ws_options_new();
    assert_eq!(ws_options_set_insecure_skip_verify(o, true), WS_OK);
    echo_once(&wss_url(&server), o);
    ws_options_free(o);
}

#[test]
fn mutual_tls() {
    let server_ca = ca("server CA");
    let client_ca = ca("client CA");
    let server = tls_server(&leaf(&server_ca, &["127.0.0.1"], false), Some(&client_ca));
    let client = leaf(&client_ca, &["client.example"], false);
    let cert = temp_file("client.pem", &client.pem);
    let key = temp_file("client.key", &client.key.serialize_pem());

    let o = options_with_ca_file(&server_ca, "mtls");
    // Without a client certificate the server refuses the handshake.
    let r = Recorder::new();
    let h = open_with(&wss_url(&server), o);
    r.bind_all(h);
    let events = r.wait_close();
    assert!(
        matches!(
            &events[..],
            [
                Ev::Error(WS_ERR_TLS | WS_ERR_IO | WS_ERR_HANDSHAKE, _),
                Ev::Close(1006, _, false)
            ]
        ),
        "{events:?}"
    );
    assert_eq!(ws_free(h), WS_OK);

    let (c, k) = (cstr(cert.to_str().unwrap()), cstr(key.to_str().unwrap()));
    assert_eq!(ws_options_set_client_cert(o, c.as_ptr(), k.as_ptr()), WS_OK);
    echo_once(&wss_url(&server), o);
    ws_options_free(o);
}

#[test]
fn bad_trust_files_fail_at_open() {
    let o = ws_options_new();
    let missing = cstr("/nonexistent/ca.pem");
    assert_eq!(ws_options_set_ca_file(o, missing.as_ptr()), WS_OK);
    let url = cstr("wss://127.0.0.1:1/");
    assert_eq!(ws_open_ex(url.as_ptr(), o), 0);
    assert!(last_error().contains("CA file"), "{}", last_error());
    ws_options_free(o);

    let o = ws_options_new();
    let junk = cstr("not a certificate");
    assert_eq!(ws_options_set_ca_pem(o, junk.as_ptr()), WS_OK);
    assert_eq!(ws_open_ex(url.as_ptr(), o), 0);
    ws_options_free(o);
}

#[test]
fn a_tls_peer_that_stalls_mid_handshake_hits_the_connect_timeout() {
    let server = raw_server(|s| {
        thread::sleep(Duration::from_secs(30));
        drop(s);
    });
    let o = ws_options_new();
    assert_eq!(ws_options_set_connect_timeout_ms(o, 300), WS_OK);
    assert_eq!(ws_options_set_insecure_skip_verify(o, true), WS_OK);
    let r = Recorder::new();
    let h = open_with(&wss_url(&server), o);
    ws_options_free(o);
    r.bind_all(h);
    let events = r.wait_close();
    assert!(
        matches!(
            &events[..],
            [Ev::Error(WS_ERR_TIMEOUT, _), Ev::Close(1006, _, false)]
        ),
        "{events:?}"
    );
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn two_hundred_wss_sockets_at_once() {
    let ca = ca("wsembed test CA");
    let server = tls_server(&leaf(&ca, &["127.0.0.1"], false), None);
    let o = options_with_ca_file(&ca, "many");
    let recorders: Vec<_> = (0..200).map(|_| Recorder::new()).collect();
    let handles: Vec<_> = recorders
        .iter()
        .map(|r| {
            let h = open_with(&wss_url(&server), o);
            r.bind_all(h);
            h
        })
        .collect();
    ws_options_free(o);
    for (r, &h) in recorders.iter().zip(&handles) {
        r.wait_open();
        assert_eq!(send_text(h, &format!("n{h}")), WS_OK);
    }
    for (r, &h) in recorders.iter().zip(&handles) {
        assert_eq!(r.wait_messages(1)[0].0, format!("n{h}").into_bytes());
    }
    for h in handles {
        assert_eq!(ws_free(h), WS_OK);
    }
}

#[test]
fn ipv6_literal_verifies_against_an_ip_san() {
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here; nothing to test");
        return;
    };
    drop(listener);
    let ca = ca("wsembed test CA");
    let cert = leaf(&ca, &["::1"], false);
    // The shared helper listens on 127.0.0.1; this one needs [::1].
    let listener = std::net::TcpListener::bind("[::1]:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der.clone()], key_der(&cert.key))
            .unwrap(),
    );
    thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let conn = ServerConnection::new(config.clone()).unwrap();
            if let Ok(ws) = tungstenite::accept(StreamOwned::new(conn, tcp)) {
                echo_tls(ws);
            }
        }
    });
    let o = options_with_ca_file(&ca, "v6");
    echo_once(&format!("wss://[::1]:{port}/"), o);
    ws_options_free(o);
}

fn echo_tls(mut ws: tungstenite::WebSocket<StreamOwned<ServerConnection, TcpStream>>) {
    while let Ok(m) = ws.read() {
        if (m.is_text() || m.is_binary()) && ws.send(m).is_err() {
            return;
        }
    }
}

#[test]
fn big_messages_queued_just_before_close_all_arrive_first() {
    // Several megabytes queued at once fill the TLS and TCP buffers: the
    // close frame must still leave after the last of them.
    let ca = ca("wsembed test CA");
    let server = tls_server(&leaf(&ca, &["127.0.0.1"], false), None);
    let o = options_with_ca_file(&ca, "backpressure");
    let r = Recorder::new();
    let h = open_with(&wss_url(&server), o);
    ws_options_free(o);
    r.bind_all(h);
    r.wait_open();
    let sent: Vec<Vec<u8>> = (0..8u8)
        .map(|i| (0..256 * 1024).map(|j| (j % 251) as u8 ^ i).collect())
        .collect();
    for message in &sent {
        assert_eq!(
            ws_send_binary(h, message.as_ptr().cast(), message.len()),
            WS_OK
        );
    }
    assert_eq!(ws_close(h), WS_OK);
    let events = r.wait_close();
    assert_protocol_order(&events);
    let echoed = messages(&events);
    assert_eq!(echoed.len(), sent.len(), "{} echoes", echoed.len());
    for (echo, message) in echoed.iter().zip(&sent) {
        assert!(echo.1 && &echo.0 == message);
    }
    assert!(
        matches!(events.last(), Some(Ev::Close(1005, _, true))),
        "{:?}",
        events.last()
    );
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn close_codes_are_judged_as_sent_under_tls_too() {
    let root = ca("close codes CA");
    let server = tls_server(&leaf(&root, &["127.0.0.1"], false), None);
    let options = options_with_ca_file(&root, "close-codes");
    let url = wss_url(&server);

    let r = Recorder::new();
    let h = open_with(&url, options);
    r.bind_all(h);
    r.wait_open();
    assert_eq!(send_text(h, "close 1002 Protocol violation"), WS_OK);
    let events = r.wait_close();
    assert_eq!(
        events,
        [Ev::Open, Ev::Close(1002, "Protocol violation".into(), true)]
    );
    assert_eq!(ws_free(h), WS_OK);

    // 1005 may not be sent: inside TLS too, the client fails the connection.
    let r = Recorder::new();
    let h = open_with(&url, options);
    r.bind_all(h);
    r.wait_open();
    assert_eq!(send_text(h, "close 1005 never"), WS_OK);
    let events = r.wait_close();
    assert!(
        matches!(
            &events[..],
            [Ev::Open, Ev::Error(WS_ERR_PROTOCOL, m), Ev::Close(1006, _, false)]
                if m.contains("invalid close code")
        ),
        "{events:?}"
    );
    assert_eq!(ws_free(h), WS_OK);
    ws_options_free(options);
}

/// A TLS server that answers every handshake with a 302 to `location`.
fn tls_redirect_server(cert: &Leaf, location: String) -> Server {
    let config = Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der.clone()], key_der(&cert.key))
            .unwrap(),
    );
    raw_server(move |tcp: TcpStream| {
        let conn = ServerConnection::new(config.clone()).unwrap();
        let mut tls = StreamOwned::new(conn, tcp);
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match std::io::Read::read(&mut tls, &mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let answer =
            format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
        let _ = std::io::Write::write_all(&mut tls, answer.as_bytes());
        let _ = std::io::Write::flush(&mut tls);
        thread::sleep(Duration::from_millis(200));
    })
}

#[test]
fn redirects_go_from_ws_to_wss_but_never_from_wss_to_ws() {
    let ca = ca("redirect CA");
    let cert = leaf(&ca, &["127.0.0.1"], false);
    let secure = tls_server(&cert, None);
    // ws:// -> wss://: followed, with the trust settings loaded at open.
    let plain = tls_free_redirect(format!("https://127.0.0.1:{}/", secure.port));
    let o = options_with_ca_file(&ca, "redirect");
    assert_eq!(ws_options_set_max_redirects(o, 1), WS_OK);
    echo_once(&plain.url(), o);
    ws_options_free(o);
    // wss:// -> ws://: refused, though redirects are allowed.
    let insecure = echo_server();
    let downgrading = tls_redirect_server(&cert, insecure.url());
    let o = options_with_ca_file(&ca, "redirect-down");
    assert_eq!(ws_options_set_max_redirects(o, 5), WS_OK);
    let r = Recorder::new();
    let h = open_with(&wss_url(&downgrading), o);
    ws_options_free(o);
    r.bind_all(h);
    let events = r.wait_close();
    match &events[..] {
        [Ev::Error(WS_ERR_HANDSHAKE, m), Ev::Close(1006, _, false)] => {
            assert!(m.contains("from wss:// to ws://"), "{m}")
        }
        other => panic!("expected a refused redirect: {other:?}"),
    }
    assert_eq!(ws_response_status(h), 302);
    assert_eq!(ws_free(h), WS_OK);
}

/// A plain server that answers every handshake with a 302 to `location`.
fn tls_free_redirect(location: String) -> Server {
    raw_server(move |mut tcp: TcpStream| {
        read_request(&mut tcp);
        let answer =
            format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
        let _ = std::io::Write::write_all(&mut tcp, answer.as_bytes());
        thread::sleep(Duration::from_millis(200));
    })
}

/// permessage-deflate inside TLS: Python `websockets` (compression on by
/// default) over Python's `ssl`, with a private CA made here.
#[cfg(feature = "deflate")]
#[test]
fn deflate_over_wss_against_python_websockets() {
    let ca = ca("deflate CA");
    let cert = leaf(&ca, &["127.0.0.1"], false);
    let crt = temp_file("deflate-server.pem", &cert.pem);
    let key = temp_file("deflate-server.key", &cert.key.serialize_pem());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/servers/python_echo_server.py"
    );
    let peer = Peer::start(
        "python3",
        &[
            script,
            "--tls",
            crt.to_str().unwrap(),
            key.to_str().unwrap(),
        ],
    );
    let port = peer.port;

    let o = options_with_ca_file(&ca, "deflate");
    assert_eq!(ws_options_set_deflate(o, true), WS_OK);
    let r = Recorder::new();
    let h = open_with(&format!("wss://127.0.0.1:{port}/"), o);
    ws_options_free(o);
    r.bind_all(h);
    r.wait_open();
    let mut ext = [0 as std::os::raw::c_char; 128];
    ws_extensions(h, ext.as_mut_ptr(), ext.len());
    // SAFETY: NUL-terminated within ext.
    let ext = unsafe { std::ffi::CStr::from_ptr(ext.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    assert!(ext.starts_with("permessage-deflate"), "{ext}");
    let text: String = (0..40_000).map(|i| format!("{{\"n\":{i}}},")).collect();
    for _ in 0..3 {
        assert_eq!(send_text(h, &text), WS_OK);
    }
    let got = r.wait_messages(3);
    assert!(got.iter().all(|(d, b)| !b && d == text.as_bytes()));
    assert_eq!(ws_close(h), WS_OK);
    let events = r.wait_close();
    assert_protocol_order(&events);
    assert_eq!(ws_free(h), WS_OK);
}
