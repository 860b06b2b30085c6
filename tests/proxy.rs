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
///
/// The port is found free and then released, so another test of this
/// binary may take it before tinyproxy binds it (tinyproxy then exits):
/// the proxy counts as started only once it answered as tinyproxy, and
/// another port is tried otherwise.
fn tinyproxy(tag: &str, extra: &str) -> Tinyproxy {
    let dir = std::env::temp_dir().join(format!("wsembed-proxy-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for _ in 0..5 {
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
        let mut child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy is installed (Debian: apt-get install tinyproxy-bin)");
        if answers_as_tinyproxy(port, &mut child) {
            return Tinyproxy {
                child,
                port,
                _dir: dir,
            };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("tinyproxy did not start");
}

/// Waits until tinyproxy answers on `port`: true once a request there got
/// tinyproxy's own answer, false if it exited or someone else answered.
fn answers_as_tinyproxy(port: u16, child: &mut Child) -> bool {
    use std::io::{Read, Write};
    let end = Instant::now() + DEADLINE;
    while Instant::now() < end {
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        let Ok(mut probe) = TcpStream::connect(("127.0.0.1", port)) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        // Port 1 has no server: tinyproxy answers with an error page
        // that names it (or asks for credentials, also naming it).
        let _ = probe.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = probe.write_all(b"GET http://127.0.0.1:1/ HTTP/1.0\r\n\r\n");
        let mut answer = Vec::new();
        let _ = probe.read_to_end(&mut answer);
        return String::from_utf8_lossy(&answer).contains("tinyproxy");
    }
    false
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
