//! HTTP CONNECT proxies, through a real proxy server (Debian's tinyproxy)
//! started by each test on 127.0.0.1.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use wsembed::ffi::*;

struct Tinyproxy {
    child: Child,
    port: u16,
    _dir: PathBuf,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts tinyproxy in the foreground with `extra` config lines.
fn tinyproxy(tag: &str, extra: &str) -> Tinyproxy {
    let dir = std::env::temp_dir().join(format!("wsembed-proxy-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let conf = dir.join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nMaxClients 300\n\
             LogLevel Error\nLogFile \"{}\"\nDisableViaHeader Yes\n{extra}\n",
            dir.join("tinyproxy.log").display()
        ),
    )
    .unwrap();
    let child = Command::new("tinyproxy")
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tinyproxy is installed (Debian: apt-get install tinyproxy-bin)");
    let end = Instant::now() + DEADLINE;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < end,
            "tinyproxy did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Tinyproxy {
        child,
        port,
        _dir: dir,
    }
}

fn echo_through(url: &str, o: *const ws_options) {
    let r = Recorder::new();
    let h = open_with(url, o);
    r.bind_all(h);
    r.wait_open();
    assert_eq!(send_text(h, "through the tunnel"), WS_OK);
    assert_eq!(r.wait_messages(1)[0].0, b"through the tunnel");
    assert_eq!(ws_close(h), WS_OK);
    let events = r.wait_close();
    assert!(
        matches!(events.last(), Some(Ev::Close(1005, _, true))),
        "{events:?}"
    );
    assert_eq!(ws_free(h), WS_OK);
}

/// `texts`: the message must contain one of them; `code`: the error's
/// (`WS_ERR_PROXY` for a refusal, `WS_ERR_CONNECT` for a proxy not there).
fn expect_failure(url: &str, o: *const ws_options, code: i32, texts: &[&str]) {
    let r = Recorder::new();
    let h = open_with(url, o);
    r.bind_all(h);
    let events = r.wait_close();
    match &events[..] {
        [Ev::Error(c, m), Ev::Close(1006, _, false)] if *c == code => {
            assert!(texts.iter().any(|t| m.contains(t)), "{m:?} lacks {texts:?}")
        }
        other => panic!("expected error {code}: {other:?}"),
    }
    assert_eq!(ws_free(h), WS_OK);
}

fn expect_refusal(url: &str, o: *const ws_options, texts: &[&str]) {
    expect_failure(url, o, WS_ERR_PROXY, texts)
}

#[test]
fn ws_through_a_proxy() {
    let proxy = tinyproxy("plain", "");
    let server = echo_server();
    let o = options_with_proxy(&format!("http://127.0.0.1:{}", proxy.port));
    echo_through(&server.url(), o);
    // The proxy resolves the name.
    echo_through(&format!("ws://localhost:{}/", server.port), o);
    ws_options_free(o);
}

#[test]
fn basic_auth_accepted_and_refused() {
    let proxy = tinyproxy("auth", "BasicAuth alice s3cret");
    let server = echo_server();
    let o = options_with_proxy(&format!("http://alice:s3cret@127.0.0.1:{}", proxy.port));
    echo_through(&server.url(), o);
    ws_options_free(o);
    let o = options_with_proxy(&format!("http://alice:wrong@127.0.0.1:{}", proxy.port));
    // tinyproxy answers 401 where RFC 9110 says 407.
    expect_refusal(&server.url(), o, &["407", "401"]);
    ws_options_free(o);
    let o = options_with_proxy(&format!("http://127.0.0.1:{}", proxy.port));
    // tinyproxy answers 401 where RFC 9110 says 407.
    expect_refusal(&server.url(), o, &["407", "401"]);
    ws_options_free(o);
}

#[test]
fn a_proxy_that_refuses_the_port() {
    let proxy = tinyproxy("ports", "ConnectPort 443");
    let server = echo_server();
    let o = options_with_proxy(&format!("http://127.0.0.1:{}", proxy.port));
    expect_refusal(&server.url(), o, &["403"]);
    ws_options_free(o);
}

#[test]
fn an_unreachable_proxy() {
    let o = options_with_proxy(&format!("http://127.0.0.1:{}", free_port()));
    let server = echo_server();
    expect_failure(&server.url(), o, WS_ERR_CONNECT, &["127.0.0.1"]);
    ws_options_free(o);
}

#[cfg(feature = "tls")]
#[test]
fn wss_through_a_proxy() {
    // Insecure mode keeps this test about the tunnel (tests/tls.rs covers
    // verification).
    let server = tls_echo_server();
    let proxy = tinyproxy("tls", "");
    let o = options_with_proxy(&format!("http://127.0.0.1:{}", proxy.port));
    assert_eq!(ws_options_set_insecure_skip_verify(o, true), WS_OK);
    echo_through(&format!("wss://127.0.0.1:{}/", server.port), o);
    ws_options_free(o);
}
