//! Happy Eyeballs (RFC 8305) through the C ABI: a name whose first address
//! never answers. The name is made to resolve so with the test hook (no
//! hosts file gives one), to `::1`, where a listener with a full accept
//! queue leaves every connect hanging, then to 127.0.0.1, where an echo
//! server listens on the same port.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use common::{echo_server, open_with, send_text, Recorder};
use wsembed::ffi::*;

/// A listener on `[::1]:port` whose accept queue is full: connects to it
/// neither succeed nor fail, as with a route that drops packets.
struct BlackHole {
    _listener: OwnedFd,
    _filler: TcpStream,
}

fn black_hole(port: u16) -> Option<BlackHole> {
    // SAFETY: plain socket calls on a descriptor this function owns (the
    // OwnedFd closes it on every path); the address is a valid sockaddr_in6
    // that lives across the bind call.
    unsafe {
        let fd = libc::socket(libc::AF_INET6, libc::SOCK_STREAM, 0);
        if fd < 0 {
            return None;
        }
        let listener = OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_in6 = std::mem::zeroed();
        addr.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        addr.sin6_port = port.to_be();
        addr.sin6_addr.s6_addr = Ipv6Addr::LOCALHOST.octets();
        let len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        if libc::bind(listener.as_raw_fd(), &addr as *const _ as *const _, len) != 0
            || libc::listen(listener.as_raw_fd(), 0) != 0
        {
            return None;
        }
        // A backlog of 0 holds one connection; this one fills it.
        let filler = TcpStream::connect((Ipv6Addr::LOCALHOST, port)).ok()?;
        Some(BlackHole {
            _listener: listener,
            _filler: filler,
        })
    }
}

/// The connects this process has pending (SYN sent, no answer) to
/// `[::1]:port`.
fn hanging_connects_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3
                && fields[3] == "02"
                && fields[2]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
        })
        .count()
}

fn options(delay_ms: u32, timeout_ms: u32) -> *mut ws_options {
    let o = ws_options_new();
    assert_eq!(ws_options_set_happy_eyeballs_delay_ms(o, delay_ms), WS_OK);
    assert_eq!(ws_options_set_connect_timeout_ms(o, timeout_ms), WS_OK);
    o
}

/// Resolves `name` to `::1` then 127.0.0.1.
fn dual_stack_name(name: &str) {
    wsembed::testing::resolve_name_as(
        name,
        vec![
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        ],
    );
}

#[test]
fn an_address_that_never_answers_costs_the_delay_not_the_timeout() {
    let server = echo_server();
    let Some(_hole) = black_hole(server.port) else {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    };
    dual_stack_name("dual.eyeballs.test");
    let url = format!("ws://dual.eyeballs.test:{}/", server.port);

    // Raced (the default delay): open long before the connect timeout.
    let rec = Recorder::new();
    let started = Instant::now();
    let o = options(250, 20_000);
    let h = open_with(&url, o);
    ws_options_free(o);
    rec.bind_all(h);
    rec.wait_open();
    let took = started.elapsed();
    eprintln!("open after {took:?} with a 250 ms attempt delay");
    // The losing attempt was closed, not left to hang.
    assert_eq!(hanging_connects_to(server.port), 0);
    assert_eq!(send_text(h, "raced"), WS_OK);
    assert_eq!(rec.wait_messages(1)[0].0, b"raced");
    assert_eq!(ws_close(h), WS_OK);
    rec.wait_close();
    ws_free(h);

    // One address at a time: the first one eats the whole timeout.
    let rec = Recorder::new();
    let o = options(0, 1_000);
    let h = open_with(&url, o);
    ws_options_free(o);
    rec.bind_all(h);
    // What the raced attempt above was checked for: this one hangs.
    common::wait_until("the connect to ::1 to hang", || {
        hanging_connects_to(server.port) == 1
    });
    let events = rec.wait_close();
    let error = events
        .iter()
        .find_map(|e| match e {
            common::Ev::Error(code, message) => Some((*code, message.clone())),
            _ => None,
        })
        .expect("an error event");
    assert_eq!(error.0, WS_ERR_TIMEOUT, "{}", error.1);
    ws_free(h);
    wsembed::testing::resolve_name_as("dual.eyeballs.test", Vec::new());
}

#[test]
fn a_refused_address_starts_the_next_at_once() {
    let server = echo_server();
    // Nothing listens on [::1]:port: refused at once, so the 127.0.0.1
    // attempt starts without waiting out a (here very long) delay.
    if std::net::TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))).is_err() {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    }
    dual_stack_name("refused.eyeballs.test");
    let rec = Recorder::new();
    let o = options(60_000, 20_000);
    let h = open_with(&format!("ws://refused.eyeballs.test:{}/", server.port), o);
    ws_options_free(o);
    rec.bind_all(h);
    rec.wait_open();
    assert_eq!(ws_close(h), WS_OK);
    rec.wait_close();
    ws_free(h);
    wsembed::testing::resolve_name_as("refused.eyeballs.test", Vec::new());
}

#[test]
fn every_address_failing_reports_the_last_failure() {
    // Two addresses, nobody listening: a connect error naming the last.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    dual_stack_name("nobody.eyeballs.test");
    let rec = Recorder::new();
    let o = options(250, 20_000);
    let h = open_with(&format!("ws://nobody.eyeballs.test:{port}/"), o);
    ws_options_free(o);
    rec.bind_all(h);
    let events = rec.wait_close();
    let (code, message) = events
        .iter()
        .find_map(|e| match e {
            common::Ev::Error(code, message) => Some((*code, message.clone())),
            _ => None,
        })
        .expect("an error event");
    assert_eq!(code, WS_ERR_CONNECT, "{message}");
    assert!(message.contains(&port.to_string()), "{message}");
    ws_free(h);
    wsembed::testing::resolve_name_as("nobody.eyeballs.test", Vec::new());
}

#[test]
fn zero_and_large_delays_are_accepted_and_null_options_refused() {
    let o = ws_options_new();
    for ms in [0, 1, 250, u32::MAX] {
        assert_eq!(ws_options_set_happy_eyeballs_delay_ms(o, ms), WS_OK);
    }
    ws_options_free(o);
    assert_eq!(
        ws_options_set_happy_eyeballs_delay_ms(std::ptr::null_mut(), 250),
        WS_ERR_INVALID_ARGUMENT
    );
}
