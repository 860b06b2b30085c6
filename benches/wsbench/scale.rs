//! Scale: thousands of sockets on wsembed's one IO thread.
//!
//! `scale --port P --sockets N`: opens N sockets at once through the C
//! ABI, waits until all are open, lets them sit idle, then sends one 16-byte
//! message on each and waits for every echo, then closes them all.
//! Reports the time to open all, resident memory per idle socket (growth
//! of VmRSS over the process before the first `ws_open`, divided by N),
//! the thread count, and the time of the round.
//!
//! `--deflate 1` offers permessage-deflate (the server must agree: `server
//! --deflate 1`) and `--size S` sets the round's message size (default 16;
//! with deflate, JSON-like text that the compressor works on), so the RSS
//! after the round shows what a socket keeps once its compression contexts
//! exist.

use std::ffi::{c_void, CStr, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use wsembed::ffi::{self, ws_event, ws_handle};

use crate::{die, proc_status, raise_nofile, usage, watchdog, Args, Json};

struct Counters {
    opened: AtomicU64,
    received: AtomicU64,
    closed: AtomicU64,
    errors: AtomicU64,
    lock: Mutex<()>,
    changed: Condvar,
}

/// The round's message size, checked on every echo.
static SIZE: AtomicU64 = AtomicU64::new(16);

static COUNTERS: Counters = Counters {
    opened: AtomicU64::new(0),
    received: AtomicU64::new(0),
    closed: AtomicU64::new(0),
    errors: AtomicU64::new(0),
    lock: Mutex::new(()),
    changed: Condvar::new(),
};

/// Wakes the main thread when a counter reaches its goal (the userdata).
fn bump(counter: &AtomicU64, goal: *mut c_void) {
    if counter.fetch_add(1, Ordering::AcqRel) + 1 == goal as u64 {
        let _guard = COUNTERS.lock.lock().unwrap_or_else(|e| e.into_inner());
        COUNTERS.changed.notify_all();
    }
}

unsafe extern "C" fn on_open(_: ws_handle, _: *const ws_event, goal: *mut c_void) {
    bump(&COUNTERS.opened, goal);
}

unsafe extern "C" fn on_message(_: ws_handle, event: *const ws_event, goal: *mut c_void) {
    // SAFETY: the event is valid during the call.
    if unsafe { (*event).len } as u64 != SIZE.load(Ordering::Relaxed) {
        COUNTERS.errors.fetch_add(1, Ordering::Relaxed);
    }
    bump(&COUNTERS.received, goal);
}

unsafe extern "C" fn on_error(_: ws_handle, event: *const ws_event, _: *mut c_void) {
    if COUNTERS.errors.fetch_add(1, Ordering::Relaxed) == 0 {
        // SAFETY: reason is NUL-terminated during the call.
        let reason = unsafe { CStr::from_ptr((*event).reason) };
        eprintln!("wsbench scale: first error: {}", reason.to_string_lossy());
    }
}

unsafe extern "C" fn on_close(_: ws_handle, _: *const ws_event, goal: *mut c_void) {
    bump(&COUNTERS.closed, goal);
}

/// Waits until `counter` reaches `goal` (or errors stop it); false on
/// timeout.
fn wait_for(counter: &AtomicU64, goal: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut guard = COUNTERS.lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let done = counter.load(Ordering::Acquire);
        if done >= goal {
            return true;
        }
        if done + COUNTERS.errors.load(Ordering::Relaxed) >= goal {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        // Bounded waits: a wake-up between the check and the wait is
        // covered by the next check.
        let step = (deadline - now).min(Duration::from_millis(50));
        guard = COUNTERS
            .changed
            .wait_timeout(guard, step)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

pub fn main(args: &Args) {
    watchdog(args.num("max-secs", 600), "scale");
    let port = args.num("port", 0);
    let n = args.num("sockets", 10_000);
    let limit = raise_nofile(n + 256);
    if limit < n + 64 {
        die(&format!(
            "open-file limit {limit} is too low for {n} sockets"
        ));
    }
    let url = CString::new(format!("ws://127.0.0.1:{port}/")).expect("no NUL");
    let goal = n as usize as *mut c_void;
    let deflate = args.num("deflate", 0) == 1;
    let size = args.num("size", 16) as usize;
    SIZE.store(size as u64, Ordering::Relaxed);
    // Text a compressor has work to do on: records that repeat in shape.
    let mut payload = String::with_capacity(size + 64);
    let mut i = 0u64;
    while payload.len() < size {
        i = i
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        payload.push_str(&format!(
            "{{\"id\":{},\"name\":\"user{}\"}},",
            i % 100_000,
            i % 977
        ));
    }
    payload.truncate(size);
    let options = ffi::ws_options_new();
    if deflate && ffi::ws_options_set_deflate(options, true) != ffi::WS_OK {
        die("this build has no deflate");
    }

    let rss_before = proc_status("VmRSS");
    let threads_before = proc_status("Threads");
    let cpu_before = usage().cpu;
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let ws = ffi::ws_open_ex(url.as_ptr(), options);
        if ws == 0 {
            die("ws_open failed");
        }
        ffi::ws_bind(ws, ffi::WS_EVENT_OPEN, Some(on_open), goal);
        ffi::ws_bind(ws, ffi::WS_EVENT_MESSAGE, Some(on_message), goal);
        ffi::ws_bind(ws, ffi::WS_EVENT_ERROR, Some(on_error), goal);
        ffi::ws_bind(ws, ffi::WS_EVENT_CLOSE, Some(on_close), goal);
        handles.push(ws);
    }
    if !wait_for(&COUNTERS.opened, n, Duration::from_secs(120)) {
        die(&format!(
            "only {} of {n} sockets opened ({} errors)",
            COUNTERS.opened.load(Ordering::Relaxed),
            COUNTERS.errors.load(Ordering::Relaxed)
        ));
    }
    ffi::ws_options_free(options);
    let open_secs = t0.elapsed().as_secs_f64();
    if deflate {
        let mut ext = [0 as std::os::raw::c_char; 128];
        ffi::ws_extensions(handles[0], ext.as_mut_ptr(), ext.len());
        // SAFETY: NUL-terminated within ext.
        if unsafe { CStr::from_ptr(ext.as_ptr()) }
            .to_bytes()
            .is_empty()
        {
            die("the server declined permessage-deflate");
        }
    }
    let open_cpu = usage().cpu - cpu_before;
    // Idle: nothing moves; let the allocator and the kernel settle.
    std::thread::sleep(Duration::from_millis(300));
    let rss_idle = proc_status("VmRSS");
    let threads_idle = proc_status("Threads");

    let t1 = Instant::now();
    for &ws in &handles {
        let status = ffi::ws_send_text(ws, payload.as_ptr().cast(), payload.len());
        if status != ffi::WS_OK {
            die(&format!("ws_send_text: {status}"));
        }
    }
    let queued_secs = t1.elapsed().as_secs_f64();
    if !wait_for(&COUNTERS.received, n, Duration::from_secs(120)) {
        die(&format!(
            "only {} of {n} echoes came back",
            COUNTERS.received.load(Ordering::Relaxed)
        ));
    }
    let round_secs = t1.elapsed().as_secs_f64();
    let rss_after_round = proc_status("VmRSS");

    let t2 = Instant::now();
    for &ws in &handles {
        ffi::ws_close(ws);
    }
    let all_closed = wait_for(&COUNTERS.closed, n, Duration::from_secs(60));
    let close_secs = t2.elapsed().as_secs_f64();
    for &ws in &handles {
        ffi::ws_free(ws);
    }
    ffi::ws_shutdown();

    Json::default()
        .str("bench", "scale")
        .num("deflate", if deflate { 1.0 } else { 0.0 })
        .num("size", size as f64)
        .str("impl", "wsembed")
        .num("sockets", n as f64)
        .num("open_secs", open_secs)
        .num("open_per_sec", n as f64 / open_secs)
        .num("open_cpu_secs", open_cpu)
        .num("rss_before_kib", rss_before as f64)
        .num("rss_idle_kib", rss_idle as f64)
        .num(
            "rss_per_socket_kib",
            (rss_idle as f64 - rss_before as f64) / n as f64,
        )
        .num(
            "rss_per_socket_after_round_kib",
            (rss_after_round as f64 - rss_before as f64) / n as f64,
        )
        .num("threads_before", threads_before as f64)
        .num("threads", threads_idle as f64)
        .num("round_secs", round_secs)
        .num("round_queue_secs", queued_secs)
        .num("round_msgs_per_sec", n as f64 / round_secs)
        .num("close_secs", close_secs)
        .num("all_closed", if all_closed { 1.0 } else { 0.0 })
        .num("errors", COUNTERS.errors.load(Ordering::Relaxed) as f64)
        .print();
}
