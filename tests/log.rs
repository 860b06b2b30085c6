//! The process-wide log callback through the C ABI: arguments, turning it
//! off, replacing it while the IO thread logs, and a callback that calls
//! back into the library.
//!
//! The callback is process-wide and the tests of this file run on parallel
//! threads of one process: each takes `SERIAL` first, and its `Off` guard
//! turns logging off when it ends, panicking or not.

mod common;

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use common::*;
use wsembed::ffi::*;

static SERIAL: Mutex<()> = Mutex::new(());

/// (level, handle, message) of every line `collect` got.
static LINES: Mutex<Vec<(c_int, ws_handle, String)>> = Mutex::new(Vec::new());

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A failed test poisons the lock; the next must still run.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Holds the turn of one test and turns logging off when dropped.
struct Off {
    _turn: MutexGuard<'static, ()>,
}

impl Drop for Off {
    fn drop(&mut self) {
        ws_set_log_callback(0, None, ptr::null_mut());
        locked(&LINES).clear();
    }
}

fn serial() -> Off {
    let turn = locked(&SERIAL);
    locked(&LINES).clear();
    Off { _turn: turn }
}

unsafe extern "C" fn collect(level: c_int, h: ws_handle, message: *const c_char, _: *mut c_void) {
    // SAFETY: message is a NUL-terminated string valid during the call.
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    locked(&LINES).push((level, h, text));
}

/// Opens a socket to `url`, waits for it to open, closes it and frees it.
fn open_and_close(url: &str) -> ws_handle {
    let r = Recorder::new();
    let h = open(url);
    r.bind_all(h);
    r.wait_open();
    assert_eq!(ws_close(h), WS_OK);
    r.wait_close();
    assert_eq!(ws_free(h), WS_OK);
    h
}

#[test]
fn a_level_out_of_range_is_rejected() {
    let _off = serial();
    for level in [0, 5, -1, c_int::MAX] {
        assert_eq!(
            ws_set_log_callback(level, Some(collect), ptr::null_mut()),
            WS_ERR_INVALID_ARGUMENT,
            "level {level}"
        );
        assert_eq!(ws_last_status(), WS_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("log level"), "{}", last_error());
    }
    for level in [WS_LOG_ERROR, WS_LOG_WARN, WS_LOG_INFO, WS_LOG_DEBUG] {
        assert_eq!(
            ws_set_log_callback(level, Some(collect), ptr::null_mut()),
            WS_OK
        );
    }
    assert_eq!(
        (WS_LOG_ERROR, WS_LOG_WARN, WS_LOG_INFO, WS_LOG_DEBUG),
        (1, 2, 3, 4)
    );
}

#[test]
fn null_turns_it_off_whatever_the_level() {
    let _off = serial();
    for level in [0, WS_LOG_DEBUG, 99, -7] {
        assert_eq!(ws_set_log_callback(level, None, ptr::null_mut()), WS_OK);
    }
    assert_eq!(
        ws_set_log_callback(WS_LOG_DEBUG, Some(collect), ptr::null_mut()),
        WS_OK
    );
    assert_eq!(ws_set_log_callback(0, None, ptr::null_mut()), WS_OK);
    let server = echo_server();
    open_and_close(&server.url());
    assert!(locked(&LINES).is_empty(), "{:?}", locked(&LINES));
}

/// The userdata of one installed callback: `retired` is set right after
/// the `ws_set_log_callback` that replaced it returns; a call that sees it
/// counts as late.
#[derive(Default)]
struct Generation {
    retired: AtomicBool,
    calls: AtomicUsize,
    late: AtomicUsize,
}

unsafe extern "C" fn counting(_: c_int, _: ws_handle, _: *const c_char, ud: *mut c_void) {
    // SAFETY: ud is a Generation the test keeps alive to the end.
    let g = unsafe { &*(ud as *const Generation) };
    g.calls.fetch_add(1, Ordering::SeqCst);
    // Widen the window in which a replacement finds this call in flight.
    thread::sleep(Duration::from_micros(100));
    if g.retired.load(Ordering::SeqCst) {
        g.late.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_replaced_callback_is_never_called_after_the_setter_returns() {
    let _off = serial();
    let server = echo_server();
    let url = server.url();
    let churn = thread::spawn(move || {
        for _ in 0..50 {
            open_and_close(&url);
        }
    });
    let mut generations: Vec<Box<Generation>> = Vec::new();
    while !churn.is_finished() {
        let g = Box::<Generation>::default();
        let ud = &*g as *const Generation as *mut c_void;
        assert_eq!(ws_set_log_callback(WS_LOG_DEBUG, Some(counting), ud), WS_OK);
        if let Some(previous) = generations.last() {
            previous.retired.store(true, Ordering::SeqCst);
        }
        generations.push(g);
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(ws_set_log_callback(0, None, ptr::null_mut()), WS_OK);
    if let Some(last) = generations.last() {
        last.retired.store(true, Ordering::SeqCst);
    }
    churn.join().unwrap();
    // Lines still being written (closing handshakes) must not reach any.
    thread::sleep(Duration::from_millis(50));
    for (i, g) in generations.iter().enumerate() {
        assert_eq!(
            g.late.load(Ordering::SeqCst),
            0,
            "callback {i} of {} called after it was replaced",
            generations.len()
        );
    }
}

/// What `reentrant`'s calls of `ws_send` returned.
static SENDS: Mutex<Vec<c_int>> = Mutex::new(Vec::new());

unsafe extern "C" fn reentrant(
    level: c_int,
    h: ws_handle,
    message: *const c_char,
    ud: *mut c_void,
) {
    // SAFETY: ws_last_error never returns NULL; its text is valid until
    // this thread's next wsembed call.
    let _ = unsafe { CStr::from_ptr(ws_last_error()) }.to_bytes().len();
    if h != 0 {
        let status = ws_send(h, c"from the log callback".as_ptr());
        locked(&SENDS).push(status);
    }
    // SAFETY: as `collect`, with the same arguments.
    unsafe { collect(level, h, message, ud) };
}

#[test]
fn the_callback_may_call_back_into_the_library() {
    let _off = serial();
    locked(&SENDS).clear();
    assert_eq!(
        ws_set_log_callback(WS_LOG_DEBUG, Some(reentrant), ptr::null_mut()),
        WS_OK
    );
    let server = echo_server();
    let r = Recorder::new();
    let h = open(&server.url());
    r.bind_all(h);
    r.wait_open();
    assert_eq!(send_text(h, "hello"), WS_OK);
    r.wait_for("the echo", |e| {
        messages(e).iter().any(|(m, _)| m == b"hello") || has_close(e)
    });
    assert_eq!(ws_close(h), WS_OK);
    r.wait_close();
    assert_eq!(ws_free(h), WS_OK);
    // A send made from a line about a socket that is not open yet, or no
    // longer, fails as any other would; it never deadlocks.
    for status in locked(&SENDS).iter() {
        assert!(
            [WS_OK, WS_ERR_INVALID_STATE, WS_ERR_INVALID_HANDLE].contains(status),
            "ws_send from the log callback: {status}"
        );
    }
}

/// The lines `collect` got for socket `h`, without their level.
fn lines_of(h: ws_handle) -> Vec<(c_int, String)> {
    locked(&LINES)
        .iter()
        .filter(|(_, handle, _)| *handle == h)
        .map(|(level, _, text)| (*level, text.clone()))
        .collect()
}

/// Asserts that `wanted` appear in this order among `lines` (each is a
/// piece of one line, at that level).
fn assert_in_order(lines: &[(c_int, String)], wanted: &[(c_int, &str)]) {
    let mut at = 0;
    for (level, piece) in wanted {
        match lines[at..]
            .iter()
            .position(|(l, text)| l == level && text.contains(piece))
        {
            Some(i) => at += i + 1,
            None => panic!("no level-{level} line with {piece:?} after line {at}: {lines:#?}"),
        }
    }
}

#[test]
fn a_connection_logs_each_step_at_its_level() {
    let _off = serial();
    assert_eq!(
        ws_set_log_callback(WS_LOG_DEBUG, Some(collect), ptr::null_mut()),
        WS_OK
    );
    let server = echo_server();
    let port = server.port;
    let h = open_and_close(&format!("ws://localhost:{port}/"));
    // The close event comes before its line is surely in: wait for it.
    wait_until("the closed line", || {
        lines_of(h).iter().any(|(_, t)| t.starts_with("closed"))
    });
    let lines = lines_of(h);
    assert_in_order(
        &lines,
        &[
            (WS_LOG_DEBUG, "resolving \"localhost\""),
            (WS_LOG_INFO, "resolved \"localhost\": 127.0.0.1"),
            (WS_LOG_INFO, &format!("connecting to 127.0.0.1:{port}")),
            (WS_LOG_INFO, &format!("connected to 127.0.0.1:{port}")),
            (WS_LOG_INFO, "open: HTTP 101"),
            (WS_LOG_INFO, "sending close without a code"),
            (WS_LOG_INFO, "received close"),
            (WS_LOG_INFO, "closed: code 1005"),
        ],
    );
    assert!(
        lines.iter().all(|(l, _)| *l != WS_LOG_ERROR),
        "no error: {lines:#?}"
    );

    // At INFO, the DEBUG lines are not even formatted.
    locked(&LINES).clear();
    assert_eq!(
        ws_set_log_callback(WS_LOG_INFO, Some(collect), ptr::null_mut()),
        WS_OK
    );
    let h = open_and_close(&format!("ws://localhost:{port}/"));
    wait_until("the closed line", || {
        lines_of(h).iter().any(|(_, t)| t.starts_with("closed"))
    });
    let lines = lines_of(h);
    assert!(lines.iter().all(|(l, _)| *l <= WS_LOG_INFO), "{lines:#?}");
    assert!(
        lines.iter().any(|(_, t)| t.starts_with("open")),
        "{lines:#?}"
    );
}

#[cfg(feature = "tls")]
#[test]
fn tls_is_named_with_its_version_and_cipher() {
    let _off = serial();
    assert_eq!(
        ws_set_log_callback(WS_LOG_INFO, Some(collect), ptr::null_mut()),
        WS_OK
    );
    let server = tls_echo_server();
    let o = ws_options_new();
    assert_eq!(ws_options_set_insecure_skip_verify(o, true), WS_OK);
    let r = Recorder::new();
    let h = open_with(&format!("wss://127.0.0.1:{}/", server.port), o);
    ws_options_free(o);
    r.bind_all(h);
    r.wait_open();
    let lines = lines_of(h);
    assert_in_order(
        &lines,
        &[(WS_LOG_INFO, "TLS established: TLSv1_3 with TLS13_")],
    );
    assert_eq!(ws_free(h), WS_OK);
}

#[test]
fn failures_are_errors_retries_warnings_and_no_secret_shows() {
    let _off = serial();
    assert_eq!(
        ws_set_log_callback(WS_LOG_DEBUG, Some(collect), ptr::null_mut()),
        WS_OK
    );
    // A proxy that wants other credentials: the error line is the error
    // event's text, and the password is in no line.
    let proxy = socks::socks_proxy(socks::Behaviour::Auth("alice".into(), "right".into()), &[]);
    let o = options_with_proxy(&proxy.url("socks5", "alice:s3cret@"));
    assert_eq!(ws_options_set_no_proxy(o, c"".as_ptr()), WS_OK);
    let r = Recorder::new();
    let h = open_with("ws://127.0.0.1:9/", o);
    ws_options_free(o);
    r.bind_all(h);
    let events = r.wait_close();
    let error = events
        .iter()
        .find_map(|e| match e {
            Ev::Error(_, message) => Some(message.clone()),
            _ => None,
        })
        .expect("an error event");
    let lines = lines_of(h);
    assert!(
        lines.contains(&(WS_LOG_ERROR, error.clone())),
        "{error:?} not logged: {lines:#?}"
    );
    assert_in_order(
        &lines,
        &[(
            WS_LOG_INFO,
            &format!("asking the proxy 127.0.0.1:{} (SOCKS5)", proxy.port),
        )],
    );
    assert!(
        locked(&LINES).iter().all(|(_, _, t)| !t.contains("s3cret")),
        "a secret in the log"
    );
    assert_eq!(ws_free(h), WS_OK);

    // A connection that will be retried: a warning saying when.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let o = ws_options_new();
    assert_eq!(ws_options_set_reconnect(o, true), WS_OK);
    let h = open_with(&format!("ws://127.0.0.1:{port}/"), o);
    ws_options_free(o);
    wait_until("a warning", || {
        lines_of(h).iter().any(|(l, _)| *l == WS_LOG_WARN)
    });
    let warning = format!("connection lost (cannot connect to 127.0.0.1:{port}");
    assert!(
        lines_of(h).iter().any(|(l, t)| *l == WS_LOG_WARN
            && t.starts_with(&warning)
            && t.contains("): attempt 1 in ")),
        "{:#?}",
        lines_of(h)
    );
    assert_eq!(ws_free(h), WS_OK);
}
