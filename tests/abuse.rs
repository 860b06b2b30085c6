//! API abuse: a seeded random walk over the whole C API from 4 threads and
//! from inside callbacks, with zero, stale and random handles, NULL pointers
//! and random bytes. Some sockets deliver through one of two dispatchers,
//! each drained by a thread of its own, and the walk also dispatches,
//! wakes and frees dispatchers from anywhere. Checked: every status code is
//! one the call may give; per socket, events in protocol order with at most
//! one close; no callback after `ws_free` returns; every `ws_bind_ex`
//! finalizer exactly once.
//!
//! `WSEMBED_ABUSE_OPS` sets the operation count (default 100,000) and
//! `WSEMBED_ABUSE_SEED` the seed (default: time-based, printed on failure).

mod common;

use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use common::*;
use wsembed::ffi::*;

/// xorshift64*: small, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// What the callbacks and the checks share about one socket.
#[derive(Default)]
struct SocketLog {
    kinds: Mutex<Vec<u32>>,
    /// Set right after a `ws_free` of this socket returned WS_OK.
    freed: AtomicBool,
}

struct World {
    url: CString,
    /// Drained by their own threads until the end of the walk.
    dispatchers: [ws_dispatcher; 2],
    live: Mutex<Vec<ws_handle>>,
    stale: Mutex<Vec<ws_handle>>,
    logs: Mutex<HashMap<ws_handle, Arc<SocketLog>>>,
    after_free: AtomicUsize,
    binds: AtomicUsize,
    finalized: AtomicUsize,
    ops: AtomicU64,
    opened: AtomicUsize,
}

static WORLD: std::sync::OnceLock<World> = std::sync::OnceLock::new();
static CALLBACK_CALLS: AtomicU64 = AtomicU64::new(0);

fn world() -> &'static World {
    WORLD.get().unwrap()
}

fn log_of(h: ws_handle) -> Arc<SocketLog> {
    world().logs.lock().unwrap().entry(h).or_default().clone()
}

/// Userdata of each binding, released by the finalizer. Only the four
/// bindings made right after `ws_open` record the event order; the random
/// extra ones (which get late replays) only check for calls after free.
struct Userdata {
    log: Arc<SocketLog>,
    records_order: bool,
}

unsafe extern "C" fn on_event(h: ws_handle, e: *const ws_event, ud: *mut c_void) {
    // SAFETY: ud is the Box<Userdata> leaked by `bind`, alive until the
    // finalizer; e is valid during the call.
    let (ud, e) = unsafe { (&*(ud as *const Userdata), &*e) };
    let log = &ud.log;
    if log.freed.load(Ordering::SeqCst) {
        world().after_free.fetch_add(1, Ordering::SeqCst);
    }
    if ud.records_order {
        log.kinds.lock().unwrap().push(e.kind);
    }
    // Sometimes act from inside the callback, as real code does. The call
    // count is mixed in: a choice fixed per socket and event would repeat
    // in every replay, and a close listener that binds a close listener
    // that is replayed the close... never ends.
    let call = CALLBACK_CALLS.fetch_add(1, Ordering::Relaxed);
    let mut rng = Rng(e.len as u64
        ^ h.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ call.wrapping_mul(0xD6E8_FEB8_6659_FD93)
        | 1);
    match rng.below(40) {
        0 => {
            let s = ws_send(h, c"from a callback".as_ptr());
            assert!(
                [
                    WS_OK,
                    WS_ERR_INVALID_STATE,
                    WS_ERR_INVALID_HANDLE,
                    WS_ERR_QUEUE_FULL
                ]
                .contains(&s),
                "{s}"
            );
        }
        1 => {
            let s = ws_close(h);
            assert!([WS_OK, WS_ERR_INVALID_HANDLE].contains(&s), "{s}");
        }
        2 if e.kind == WS_EVENT_MESSAGE && ws_free(h) == WS_OK => {
            log.freed.store(true, Ordering::SeqCst);
            world().stale.lock().unwrap().push(h);
        }
        3 => bind(h, rng.below(7) as u32, false),
        5 => {
            let s = ws_reconnect(h);
            assert!(
                [WS_OK, WS_ERR_INVALID_STATE, WS_ERR_INVALID_HANDLE].contains(&s),
                "{s}"
            );
        }
        4 => {
            // Its own dispatcher refuses (nested); another may run here.
            let d = world().dispatchers[rng.below(2) as usize];
            let s = ws_dispatch(d, 0, 1);
            assert!(s >= 0 || s == WS_ERR_INVALID_STATE, "{s}");
        }
        _ => {}
    }
}

unsafe extern "C" fn release(ud: *mut c_void) {
    // SAFETY: from Box::into_raw in `bind`; the finalizer runs once.
    drop(unsafe { Box::from_raw(ud as *mut Userdata) });
    world().finalized.fetch_add(1, Ordering::SeqCst);
}

/// Binds a fresh userdata (never a duplicate pair) to `kind`, which may be
/// out of range; every call, failed or not, must finalize exactly once.
fn bind(h: ws_handle, kind: u32, records_order: bool) {
    let ud = Box::into_raw(Box::new(Userdata {
        log: log_of(h),
        records_order,
    })) as *mut c_void;
    world().binds.fetch_add(1, Ordering::SeqCst);
    let s = ws_bind_ex(h, kind, Some(on_event), ud, Some(release));
    assert!(
        [WS_OK, WS_ERR_INVALID_HANDLE, WS_ERR_INVALID_ARGUMENT].contains(&s),
        "bind {s}"
    );
    if (1..=5).contains(&kind) && s == WS_ERR_INVALID_ARGUMENT {
        panic!("valid kind {kind} refused");
    }
}

fn pick_handle(rng: &mut Rng) -> ws_handle {
    let w = world();
    match rng.below(10) {
        0 => 0,
        1 => rng.next(),
        2 => w.stale.lock().unwrap().last().copied().unwrap_or(u64::MAX),
        _ => {
            let live = w.live.lock().unwrap();
            if live.is_empty() {
                0
            } else {
                live[rng.below(live.len() as u64) as usize]
            }
        }
    }
}

fn step(rng: &mut Rng) {
    let w = world();
    w.ops.fetch_add(1, Ordering::Relaxed);
    let h = pick_handle(rng);
    let ok_or_handle = |s: i32, extra: &[i32]| {
        assert!(
            s == WS_OK || s == WS_ERR_INVALID_HANDLE || extra.contains(&s),
            "status {s}"
        );
    };
    match rng.below(22) {
        0 | 1 => {
            if w.live.lock().unwrap().len() >= 40 {
                return;
            }
            // A third of the sockets deliver on the IO thread, the rest
            // through one of the two dispatchers.
            let options = ws_options_new();
            if let Some(&d) = w.dispatchers.get(rng.below(3) as usize) {
                assert_eq!(ws_options_set_dispatcher(options, d), WS_OK);
            }
            // Some offer compression (the server declines it, so the
            // inflating layer passes everything through) or allow redirects.
            if rng.below(3) == 0 {
                let s = ws_options_set_deflate(options, true);
                assert!(s == WS_OK || s == WS_ERR_UNSUPPORTED, "{s}");
            }
            if rng.below(4) == 0 {
                assert_eq!(ws_options_set_max_redirects(options, 2), WS_OK);
            }
            // And some reconnect, quickly (the walk's ws_reconnect and
            // the echo server's going away make them cycle).
            if rng.below(4) == 0 {
                assert_eq!(ws_options_set_reconnect(options, true), WS_OK);
                assert_eq!(ws_options_set_reconnect_delay(options, 1, 20), WS_OK);
            }
            let h = ws_open_ex(w.url.as_ptr(), options);
            ws_options_free(options);
            assert_ne!(h, 0);
            w.opened.fetch_add(1, Ordering::Relaxed);
            for kind in [
                WS_EVENT_OPEN,
                WS_EVENT_MESSAGE,
                WS_EVENT_ERROR,
                WS_EVENT_CLOSE,
                WS_EVENT_RECONNECTING,
            ] {
                bind(h, kind, true);
            }
            w.live.lock().unwrap().push(h);
        }
        2 => {
            let bad = [
                c"http://x/".as_ptr(),
                c"ws://a/#f".as_ptr(),
                c"".as_ptr(),
                ptr::null(),
            ];
            assert_eq!(ws_open(bad[rng.below(4) as usize]), 0);
        }
        3 => bind(h, rng.below(7) as u32, false),
        4 => ok_or_handle(
            ws_unbind(h, rng.below(6) as u32, Some(on_event), ptr::null_mut()),
            &[WS_ERR_INVALID_ARGUMENT],
        ),
        5..=8 => {
            let n = rng.below(300) as usize;
            let data = rng.bytes(n);
            let s = if rng.below(2) == 0 {
                ws_send_text(h, data.as_ptr().cast(), data.len())
            } else {
                ws_send_binary(h, data.as_ptr().cast(), data.len())
            };
            ok_or_handle(
                s,
                &[WS_ERR_INVALID_STATE, WS_ERR_INVALID_UTF8, WS_ERR_QUEUE_FULL],
            );
        }
        9 => ok_or_handle(ws_send(h, ptr::null()), &[WS_ERR_INVALID_ARGUMENT]),
        10 => {
            let code = [1000, 3000, 4999, 0, 999, 1001, 1005, 5000][rng.below(8) as usize];
            let reason = CString::new("x".repeat(rng.below(130) as usize)).unwrap();
            ok_or_handle(
                ws_close_ex(h, code, reason.as_ptr()),
                &[WS_ERR_INVALID_ARGUMENT, WS_ERR_INVALID_UTF8],
            );
        }
        11 => ok_or_handle(ws_close(h), &[]),
        12 | 13 => {
            if ws_free(h) == WS_OK {
                log_of(h).freed.store(true, Ordering::SeqCst);
                w.live.lock().unwrap().retain(|&x| x != h);
                w.stale.lock().unwrap().push(h);
            }
        }
        14 => {
            let s = ws_ready_state(h);
            assert!(
                (WS_CONNECTING..=WS_CLOSED).contains(&s) || s == WS_ERR_INVALID_HANDLE,
                "{s}"
            );
        }
        15 => {
            let _ = ws_buffered_amount(h);
        }
        16 => {
            let mut buf = vec![0i8; rng.below(40) as usize];
            let n = ws_url(h, buf.as_mut_ptr(), buf.len());
            if !buf.is_empty() && n > 0 {
                assert!(buf.contains(&0), "NUL-terminated");
            }
            let _ = ws_protocol(h, ptr::null_mut(), 0);
            let _ = ws_extensions(h, buf.as_mut_ptr(), buf.len());
            let status = ws_response_status(h);
            assert!(status == 0 || status == 101, "{status}");
            // The answer's accessors, with NULLs and short buffers.
            let names = [c"upgrade".as_ptr(), c"X-Missing".as_ptr(), ptr::null()];
            let name = names[rng.below(3) as usize];
            let _ = ws_response_header(h, name, buf.as_mut_ptr(), buf.len());
            if name.is_null() {
                assert!(
                    [WS_ERR_INVALID_ARGUMENT, WS_ERR_INVALID_HANDLE].contains(&ws_last_status()),
                    "{}",
                    ws_last_status()
                );
            }
            let mut body = vec![0u8; rng.below(8) as usize];
            assert_eq!(ws_response_body(h, body.as_mut_ptr().cast(), body.len()), 0);
            let _ = ws_response_body(h, ptr::null_mut(), 1);
        }
        17 => {
            // Arguments that must be refused whatever the handle.
            ok_or_handle(
                ws_send_binary(h, ptr::null(), 3),
                &[WS_ERR_INVALID_ARGUMENT],
            );
            ok_or_handle(
                ws_bind(h, WS_EVENT_OPEN, None, ptr::null_mut()),
                &[WS_ERR_INVALID_ARGUMENT],
            );
        }
        18 => {
            // Process-wide: rare.
            if rng.below(2000) == 0 {
                ws_shutdown();
            }
        }
        19 => {
            let d = match rng.below(4) {
                0 => rng.next(),
                1 => 0,
                _ => w.dispatchers[rng.below(2) as usize],
            };
            match rng.below(5) {
                0 => {
                    // Its own thread is usually inside: often refused.
                    let s = ws_dispatch(d, 0, rng.below(3) as usize);
                    assert!(
                        s >= 0 || [WS_ERR_INVALID_STATE, WS_ERR_INVALID_HANDLE].contains(&s),
                        "{s}"
                    );
                }
                1 => ok_or_handle(ws_dispatcher_wakeup(d), &[]),
                2 => {
                    let fd = ws_dispatcher_fd(d);
                    assert!(fd >= 0 || fd == WS_ERR_INVALID_HANDLE, "{fd}");
                }
                // The walk's own dispatchers are freed at the end only: one
                // with no socket left would be freed for good here.
                _ if !w.dispatchers.contains(&d) => {
                    assert_eq!(ws_dispatcher_free(d), WS_ERR_INVALID_HANDLE);
                }
                _ => ok_or_handle(ws_dispatcher_wakeup(d), &[]),
            }
        }
        20 => {
            if rng.below(2) == 0 {
                ok_or_handle(ws_reconnect(h), &[WS_ERR_INVALID_STATE]);
            } else {
                let names = [
                    c"X-Walk".as_ptr(),
                    c"Host".as_ptr(),
                    c"a b".as_ptr(),
                    ptr::null(),
                ];
                let values = [c"1".as_ptr(), c"a\r\nb".as_ptr(), ptr::null()];
                ok_or_handle(
                    ws_set_header(
                        h,
                        names[rng.below(4) as usize],
                        values[rng.below(3) as usize],
                    ),
                    &[WS_ERR_INVALID_ARGUMENT, WS_ERR_INVALID_STATE],
                );
            }
        }
        _ => {
            let _ = ws_strerror(rng.next() as i32);
            let _ = ws_last_error();
        }
    }
}

/// (open, message*, reconnecting)*, then open? message*, error?, close?,
/// and nothing after the close.
fn check_order(h: ws_handle, kinds: &[u32]) {
    let (mut open, mut errored, mut closed) = (false, false, false);
    for &k in kinds {
        assert!(!closed, "socket {h}: an event after close: {kinds:?}");
        match k {
            WS_EVENT_OPEN => {
                assert!(!open && !errored, "socket {h}: {kinds:?}");
                open = true;
            }
            WS_EVENT_MESSAGE => assert!(!errored, "socket {h}: {kinds:?}"),
            WS_EVENT_RECONNECTING => {
                assert!(!errored, "socket {h}: {kinds:?}");
                open = false;
            }
            WS_EVENT_ERROR => {
                assert!(!errored, "socket {h}: {kinds:?}");
                errored = true;
            }
            _ => closed = true,
        }
    }
}

#[test]
fn random_walk_over_the_api() {
    let server = echo_server();
    let dispatchers = [ws_dispatcher_new(), ws_dispatcher_new()];
    assert!(dispatchers.iter().all(|&d| d != 0));
    WORLD
        .set(World {
            url: server.curl(),
            dispatchers,
            live: Mutex::new(Vec::new()),
            stale: Mutex::new(Vec::new()),
            logs: Mutex::new(HashMap::new()),
            after_free: AtomicUsize::new(0),
            binds: AtomicUsize::new(0),
            finalized: AtomicUsize::new(0),
            ops: AtomicU64::new(0),
            opened: AtomicUsize::new(0),
        })
        .ok()
        .unwrap();
    let total: u64 = std::env::var("WSEMBED_ABUSE_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let seed: u64 = std::env::var("WSEMBED_ABUSE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("WSEMBED_ABUSE_SEED={seed} WSEMBED_ABUSE_OPS={total}");
    let stop = Arc::new(AtomicBool::new(false));
    let drainers: Vec<_> = dispatchers
        .iter()
        .map(|&d| {
            let stop = stop.clone();
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let s = ws_dispatch(d, -1, 0);
                    // A walker may be dispatching it at this moment.
                    assert!(s >= 0 || s == WS_ERR_INVALID_STATE, "{s}");
                    if s == WS_ERR_INVALID_STATE {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            thread::spawn(move || {
                let mut rng = Rng(seed.wrapping_add(t.wrapping_mul(0x9E37_79B9)) | 1);
                for _ in 0..total / 4 {
                    step(&mut rng);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a worker failed: see the seed above");
    }
    let w = world();
    for h in std::mem::take(&mut *w.live.lock().unwrap()) {
        if ws_free(h) == WS_OK {
            log_of(h).freed.store(true, Ordering::SeqCst);
        }
    }
    ws_shutdown();
    stop.store(true, Ordering::SeqCst);
    for (&d, drainer) in dispatchers.iter().zip(drainers) {
        assert_eq!(ws_dispatcher_wakeup(d), WS_OK);
        drainer
            .join()
            .expect("a dispatcher thread failed: see the seed above");
        // Every socket is freed: the dispatcher may go.
        assert_eq!(ws_dispatcher_free(d), WS_OK, "{}", last_error());
    }
    // Every binding ended: each finalizer ran exactly once.
    wait_until("every finalizer", || {
        w.finalized.load(Ordering::SeqCst) >= w.binds.load(Ordering::SeqCst)
    });
    assert_eq!(
        w.finalized.load(Ordering::SeqCst),
        w.binds.load(Ordering::SeqCst)
    );
    assert_eq!(
        w.after_free.load(Ordering::SeqCst),
        0,
        "callbacks after ws_free"
    );
    for (h, log) in w.logs.lock().unwrap().iter() {
        check_order(*h, &log.kinds.lock().unwrap());
    }
    let ops = w.ops.load(Ordering::SeqCst);
    assert!(ops >= total / 4 * 4, "{ops}");
    println!(
        "operations: {ops}, sockets opened: {}, bindings finalized: {}",
        w.opened.load(Ordering::SeqCst),
        w.finalized.load(Ordering::SeqCst)
    );
}
