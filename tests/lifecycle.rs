//! Freeing, racing and scale: the guarantees that keep a host alive.

mod common;

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::*;
use tungstenite::Message;
use wsembed::ffi::*;

/// A server that streams numbered messages as fast as it can.
fn firehose() -> Server {
    ws_server(|mut ws| {
        let mut i = 0u64;
        while ws.send(Message::text(i.to_string())).is_ok() {
            i += 1;
        }
    })
}

/// Userdata that detects a callback after free: `freed` is set right after
/// `ws_free` returns, and a callback seeing it counts a violation.
struct Guard {
    freed: AtomicBool,
    calls: AtomicUsize,
    late: AtomicUsize,
}

unsafe extern "C" fn guarded(_: ws_handle, _: *const ws_event, ud: *mut c_void) {
    // SAFETY: ud is a Guard kept alive by the test until after ws_free.
    let g = unsafe { &*(ud as *const Guard) };
    g.calls.fetch_add(1, Ordering::SeqCst);
    // Widen the race window.
    thread::yield_now();
    if g.freed.load(Ordering::SeqCst) {
        g.late.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn free_from_another_thread_while_messages_flow() {
    let server = firehose();
    for _ in 0..20 {
        let g = Box::new(Guard {
            freed: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
            late: AtomicUsize::new(0),
        });
        let ud = &*g as *const Guard as *mut c_void;
        // The firehose never answers a close: keep the background drain short.
        let o = ws_options_new();
        assert_eq!(ws_options_set_close_timeout_ms(o, 100), WS_OK);
        let h = open_with(&server.url(), o);
        ws_options_free(o);
        for kind in [
            WS_EVENT_OPEN,
            WS_EVENT_MESSAGE,
            WS_EVENT_ERROR,
            WS_EVENT_CLOSE,
        ] {
            assert_eq!(ws_bind(h, kind, Some(guarded), ud), WS_OK);
        }
        wait_until("messages flow", || g.calls.load(Ordering::SeqCst) > 50);
        assert_eq!(ws_free(h), WS_OK);
        g.freed.store(true, Ordering::SeqCst);
        let calls = g.calls.load(Ordering::SeqCst);
        // Give a buggy IO thread the chance to call again.
        thread::sleep(Duration::from_millis(5));
        assert_eq!(g.late.load(Ordering::SeqCst), 0);
        assert_eq!(
            g.calls.load(Ordering::SeqCst),
            calls,
            "a callback ran after ws_free"
        );
        drop(g); // the userdata really goes away
    }
}

static FREED_INSIDE: AtomicUsize = AtomicUsize::new(0);
static AFTER_FREE: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn free_on_fifth(h: ws_handle, e: *const ws_event, ud: *mut c_void) {
    // SAFETY: valid during the call; ud is a static counter.
    let (e, seen) = unsafe { (&*e, &*(ud as *const AtomicU64)) };
    if e.kind != WS_EVENT_MESSAGE {
        return;
    }
    let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
    if n == 5 {
        assert_eq!(ws_free(h), WS_OK);
        // Still allowed to use the library from here.
        assert_eq!(ws_free(h), WS_ERR_INVALID_HANDLE);
        FREED_INSIDE.fetch_add(1, Ordering::SeqCst);
    } else if n > 5 {
        AFTER_FREE.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn free_from_inside_a_callback_while_messages_flow() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let server = firehose();
    let h = open(&server.url());
    let ud = &SEEN as *const AtomicU64 as *mut c_void;
    // Bound twice with different userdata would run twice; once is enough.
    assert_eq!(ws_bind(h, WS_EVENT_MESSAGE, Some(free_on_fifth), ud), WS_OK);
    wait_until("freed inside", || FREED_INSIDE.load(Ordering::SeqCst) == 1);
    // A later socket proves the IO thread is still serving.
    let r = Recorder::new();
    let echo = echo_server();
    let h2 = open(&echo.url());
    r.bind_all(h2);
    r.wait_open();
    assert_eq!(send_text(h2, "alive"), WS_OK);
    r.wait_messages(1);
    assert_eq!(AFTER_FREE.load(Ordering::SeqCst), 0);
    assert_eq!(ws_free(h2), WS_OK);
}

#[test]
fn a_thousand_sockets_on_one_io_thread() {
    let server = echo_server();
    let n = 1000;
    let recorders: Vec<_> = (0..n).map(|_| Recorder::new()).collect();
    let handles: Vec<_> = recorders
        .iter()
        .map(|r| {
            let h = open(&server.url());
            r.bind_all(h);
            h
        })
        .collect();
    for (r, &h) in recorders.iter().zip(&handles) {
        r.wait_open();
        assert_eq!(send_text(h, &h.to_string()), WS_OK);
    }
    for (r, &h) in recorders.iter().zip(&handles) {
        assert_eq!(r.wait_messages(1)[0].0, h.to_string().into_bytes());
    }
    // The client side adds no thread per socket (the server side does).
    let client_threads = thread_names()
        .iter()
        .filter(|n| n.starts_with("wsembed"))
        .count();
    assert!(client_threads <= 3, "{client_threads} wsembed threads");
    for (r, &h) in recorders.iter().zip(&handles) {
        assert_eq!(ws_close(h), WS_OK);
        r.wait_close();
    }
    for h in handles {
        assert_eq!(ws_free(h), WS_OK);
    }
}

fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|t| {
                let path = t.ok()?.path().join("comm");
                std::fs::read_to_string(path)
                    .ok()
                    .map(|s| s.trim().to_owned())
            })
            .collect()
        })
        .unwrap_or_default()
}

#[test]
fn send_close_free_race_from_four_threads() {
    let server = echo_server();
    for round in 0..30 {
        let r = Recorder::new();
        let h = open(&server.url());
        r.bind_all(h);
        if round % 2 == 0 {
            r.wait_open();
        }
        let barrier = Arc::new(Barrier::new(4));
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let barrier = barrier.clone();
                thread::spawn(move || {
                    barrier.wait();
                    for i in 0..200 {
                        let s = match (t + i) % 4 {
                            0 | 1 => send_text(h, "race"),
                            2 if i == 150 => ws_close(h),
                            3 if i == 199 && t == 3 => ws_free(h),
                            _ => ws_ready_state(h).min(0),
                        };
                        assert!(
                            [WS_OK, WS_ERR_INVALID_STATE, WS_ERR_INVALID_HANDLE].contains(&s),
                            "status {s}"
                        );
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let s = ws_free(h);
        assert!(s == WS_OK || s == WS_ERR_INVALID_HANDLE);
        wait_until("finalizers", || r.finalized.load(Ordering::SeqCst) == 4);
        let events = r.events();
        // Freed before or after the close: if a close came, the order held.
        if has_close(&events) {
            assert_protocol_order(&events);
        }
    }
}

#[test]
fn open_and_free_from_inside_callbacks() {
    // A callback that opens a new socket from the IO thread.
    static OPENED: AtomicU64 = AtomicU64::new(0);
    unsafe extern "C" fn on_open(h: ws_handle, e: *const ws_event, ud: *mut c_void) {
        // SAFETY: valid during the call; ud is a leaked CString.
        let (e, url) = unsafe { (&*e, ud as *const std::os::raw::c_char) };
        if e.kind == WS_EVENT_OPEN {
            let h2 = ws_open(url);
            OPENED.store(h2, Ordering::SeqCst);
            assert_eq!(ws_close(h), WS_OK);
        }
    }
    let server = echo_server();
    let url = server.curl().into_raw();
    let h = open(&server.url());
    assert_eq!(ws_bind(h, WS_EVENT_OPEN, Some(on_open), url.cast()), WS_OK);
    wait_until("nested open", || OPENED.load(Ordering::SeqCst) != 0);
    let h2 = OPENED.load(Ordering::SeqCst);
    let r = Recorder::new();
    r.bind_all(h2);
    r.wait_open();
    wait_until("first closed", || ws_ready_state(h) == WS_CLOSED);
    assert_eq!(ws_free(h), WS_OK);
    assert_eq!(ws_free(h2), WS_OK);
    // SAFETY: from into_raw above; no callback uses it after the frees.
    drop(unsafe { std::ffi::CString::from_raw(url) });
}

static FINALIZED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn count_finalized(_: *mut c_void) {
    FINALIZED.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn every_finalizer_has_run_when_ws_free_returns_while_messages_flow() {
    // Every delivery holds a snapshot of the listener list; one taken
    // outside the gate ws_free waits on would drop (and finalize) after
    // ws_free returned.
    let server = firehose();
    let o = ws_options_new();
    assert_eq!(ws_options_set_close_timeout_ms(o, 100), WS_OK);
    for round in 0..50 {
        let g = Box::new(Guard {
            freed: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
            late: AtomicUsize::new(0),
        });
        let ud = &*g as *const Guard as *mut c_void;
        let h = open_with(&server.url(), o);
        let before = FINALIZED.load(Ordering::SeqCst);
        assert_eq!(
            ws_bind_ex(
                h,
                WS_EVENT_MESSAGE,
                Some(guarded),
                ud,
                Some(count_finalized)
            ),
            WS_OK
        );
        wait_until("messages flow", || g.calls.load(Ordering::SeqCst) > 20);
        assert_eq!(ws_free(h), WS_OK);
        assert_eq!(
            FINALIZED.load(Ordering::SeqCst),
            before + 1,
            "round {round}: the finalizer had not run when ws_free returned"
        );
    }
    ws_options_free(o);
}
