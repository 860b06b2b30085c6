//! SOCKS5 through a real SOCKS server, Debian's dante-server (`danted`),
//! started by the test on 127.0.0.1. Skipped, saying so, where danted is
//! not installed: tests/socks.rs covers the protocol (credentials, split
//! replies, refusals) with the test's own proxy everywhere; danted's
//! username method needs system accounts, which a test cannot add.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use wsembed::ffi::*;

struct Dante {
    child: Child,
    port: u16,
    _dir: PathBuf,
}

impl Drop for Dante {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn danted() -> Option<PathBuf> {
    ["/usr/sbin/danted", "/usr/local/sbin/danted"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Starts danted on a free port with `socksmethod: method`.
fn dante(tag: &str, method: &str) -> Option<Dante> {
    let program = danted()?;
    let dir = std::env::temp_dir().join(format!("wsembed-dante-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // As with tinyproxy: the port may be taken between finding it free and
    // danted binding it; then danted exits and another port is tried.
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join("danted.conf");
        std::fs::write(
            &conf,
            format!(
                "logoutput: {log}\n\
                 internal: 127.0.0.1 port = {port}\n\
                 external: 127.0.0.1\n\
                 clientmethod: none\n\
                 socksmethod: {method}\n\
                 client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n\
                 socks pass {{ from: 127.0.0.0/8 to: 127.0.0.0/8 }}\n\
                 socks block {{ from: 0.0.0.0/0 to: 0.0.0.0/0 }}\n",
                log = dir.join("danted.log").display()
            ),
        )
        .unwrap();
        let mut child = Command::new(&program)
            .args(["-f", conf.to_str().unwrap(), "-N", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        if answers_as_socks(port, &mut child) {
            return Some(Dante {
                child,
                port,
                _dir: dir,
            });
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("danted did not start");
}

/// True once danted answers a SOCKS5 greeting on `port`.
fn answers_as_socks(port: u16, child: &mut Child) -> bool {
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
        let _ = probe.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = probe.write_all(&[5, 1, 0]);
        let mut answer = [0u8; 2];
        return probe.read_exact(&mut answer).is_ok() && answer[0] == 5;
    }
    false
}

fn through(proxy_url: &str, server_url: &str) -> Vec<Ev> {
    let o = options_with_proxy(proxy_url);
    // The server is on loopback, which the environment's proxy would
    // skip: an explicit proxy is taken for it.
    assert_eq!(ws_options_set_no_proxy(o, c"".as_ptr()), WS_OK);
    let r = Recorder::new();
    let h = open_with(server_url, o);
    ws_options_free(o);
    r.bind_all(h);
    let events = r.wait_for("open or close", |e| e.contains(&Ev::Open) || has_close(e));
    if events.contains(&Ev::Open) {
        assert_eq!(send_text(h, "through dante"), WS_OK);
        assert_eq!(r.wait_messages(1)[0].0, b"through dante");
        assert_eq!(ws_close(h), WS_OK);
    }
    let events = r.wait_close();
    assert_eq!(ws_free(h), WS_OK);
    events
}

#[test]
fn ws_and_socks5h_through_dante() {
    let Some(proxy) = dante("none", "none") else {
        eprintln!("skipped: danted is not installed (Debian: apt-get install dante-server)");
        return;
    };
    let server = echo_server();
    for scheme in ["socks5", "socks5h"] {
        let url = format!("{scheme}://127.0.0.1:{}", proxy.port);
        // By name too: danted resolves it for socks5h, we do for socks5.
        for server_url in [server.url(), format!("ws://localhost:{}/", server.port)] {
            let events = through(&url, &server_url);
            assert!(events.contains(&Ev::Open), "{url} {server_url}: {events:?}");
        }
    }
}

#[test]
fn dante_refusing_a_destination_is_a_proxy_error() {
    let Some(proxy) = dante("block", "none") else {
        eprintln!("skipped: danted is not installed (Debian: apt-get install dante-server)");
        return;
    };
    // Its rules pass 127.0.0.0/8 only: ::1 is refused by rule.
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    }
    let events = through(
        &format!("socks5://127.0.0.1:{}", proxy.port),
        "ws://[::1]:9/",
    );
    match &events[..] {
        [Ev::Error(code, message), Ev::Close(1006, _, false)] => {
            assert_eq!(*code, WS_ERR_PROXY, "{message}");
            assert!(message.contains("SOCKS5"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
