//! Dispatchers: callbacks of a socket opened with one run only inside
//! `ws_dispatch`, on the thread that calls it, while the IO thread keeps
//! the networking and the timers.

mod common;

use std::ffi::c_void;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use common::*;
use tungstenite::Message;
use wsembed::ffi::*;

fn new_dispatcher() -> ws_dispatcher {
    let d = ws_dispatcher_new();
    assert_ne!(d, 0, "{}", last_error());
    d
}

fn options_for(d: ws_dispatcher) -> *mut ws_options {
    let o = ws_options_new();
    assert_eq!(ws_options_set_dispatcher(o, d), WS_OK);
    o
}

fn open_on(url: &str, d: ws_dispatcher) -> ws_handle {
    let o = options_for(d);
    let h = open_with(url, o);
    ws_options_free(o);
    h
}

/// Dispatches until `cond` holds; panics after the common deadline.
fn dispatch_until(d: ws_dispatcher, what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out dispatching until {what}");
        let n = ws_dispatch(d, 20, 0);
        assert!(n >= 0, "ws_dispatch: {n} {}", last_error());
    }
}

fn poll_fd(fd: i32, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    unsafe { libc::poll(&mut pfd, 1, timeout_ms) == 1 }
}

fn free_all(d: ws_dispatcher, sockets: &[ws_handle]) {
    for &h in sockets {
        assert_eq!(ws_free(h), WS_OK);
    }
    assert_eq!(ws_dispatcher_free(d), WS_OK, "{}", last_error());
}

/// The threads a callback ran on.
#[derive(Default)]
struct Threads(Mutex<Vec<ThreadId>>);

unsafe extern "C" fn note_thread(_: ws_handle, _: *const ws_event, ud: *mut c_void) {
    // SAFETY: `ud` is an Arc<Threads> kept alive by the test.
    let t = unsafe { &*(ud as *const Threads) };
    t.0.lock().unwrap().push(thread::current().id());
}

fn bind_threads(h: ws_handle, threads: &Arc<Threads>) {
    let ud = Arc::as_ptr(threads) as *mut c_void;
    for kind in [
        WS_EVENT_OPEN,
        WS_EVENT_MESSAGE,
        WS_EVENT_ERROR,
        WS_EVENT_CLOSE,
    ] {
        assert_eq!(ws_bind(h, kind, Some(note_thread), ud), WS_OK);
    }
}

/// A server that, once the handshake is done, sends `messages` text frames
/// and a close frame 1000 in one write, then waits for the client.
fn burst_server(messages: usize) -> Server {
    raw_server(move |mut s| {
        raw_handshake(&mut s);
        let mut out = Vec::new();
        for i in 0..messages {
            let text = format!("m{i}");
            out.extend([0x81, text.len() as u8]);
            out.extend(text.as_bytes());
        }
        out.extend([0x88, 0x02, 0x03, 0xE8]);
        s.write_all(&out).unwrap();
        let mut sink = [0u8; 256];
        while matches!(std::io::Read::read(&mut s, &mut sink), Ok(n) if n > 0) {}
    })
}

#[test]
fn callbacks_run_only_inside_ws_dispatch_on_its_thread() {
    let server = echo_server();
    let d = new_dispatcher();
    let fd = ws_dispatcher_fd(d);
    assert!(fd >= 0);
    assert!(!poll_fd(fd, 0), "nothing queued yet");
    let h = open_on(&server.url(), d);
    let r = Recorder::new();
    r.bind_all(h);
    let threads = Arc::new(Threads::default());
    bind_threads(h, &threads);
    // The IO thread opened the socket and queued `open`: nothing ran.
    assert!(poll_fd(fd, 30_000), "the open event makes the fd readable");
    assert_eq!(ws_ready_state(h), WS_OPEN);
    assert!(r.events().is_empty(), "{:?}", r.events());
    dispatch_until(d, "open", || r.events().contains(&Ev::Open));
    assert_eq!(send_text(h, "hi"), WS_OK);
    dispatch_until(d, "the echo", || !messages(&r.events()).is_empty());
    assert_eq!(ws_close(h), WS_OK);
    dispatch_until(d, "close", || has_close(&r.events()));
    let events = r.events();
    assert_protocol_order(&events);
    assert_eq!(messages(&events), [(b"hi".to_vec(), false)]);
    let me = thread::current().id();
    let seen = threads.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|t| *t == me), "{seen:?} vs {me:?}");
    free_all(d, &[h]);
}

#[test]
fn the_fd_stays_readable_while_events_wait_even_for_edge_triggered_epoll() {
    let burst = burst_server(3);
    let idle = echo_server();
    let d = new_dispatcher();
    let fd = ws_dispatcher_fd(d);
    // SAFETY: plain epoll calls on a descriptor made here.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET) as u32,
        u64: 1,
    };
    // SAFETY: `ev` is live during the call.
    assert_eq!(
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) },
        0
    );
    let edge = || {
        let mut out = [libc::epoll_event { events: 0, u64: 0 }];
        // SAFETY: room for one event.
        unsafe { libc::epoll_wait(ep, out.as_mut_ptr(), 1, 0) == 1 }
    };

    let a = open_on(&burst.url(), d);
    let r = Recorder::new();
    r.bind_all(a);
    wait_until("the burst socket closed", || ws_ready_state(a) == WS_CLOSED);
    // One IO thread queues in order: once `b` is open, every event of `a`
    // (open, 3 messages, close) is queued before b's.
    let b = open_on(&idle.url(), d);
    wait_until("b open", || ws_ready_state(b) == WS_OPEN);
    assert!(edge());
    for left in (1..5).rev() {
        assert_eq!(ws_dispatch(d, 0, 1), 1);
        assert!(poll_fd(fd, 0), "{left} events of a still queued");
        assert!(edge(), "a capped dispatch gives a new edge");
    }
    assert_eq!(ws_dispatch(d, 0, 1), 1);
    let events = r.events();
    assert_protocol_order(&events);
    assert_eq!(messages(&events).len(), 3);
    // b's open, queued or about to be.
    let rb = Recorder::new();
    rb.bind_all(b);
    dispatch_until(d, "b's open", || rb.events().contains(&Ev::Open));
    assert_eq!(ws_dispatch(d, 0, 0), 0);
    assert!(!poll_fd(fd, 0), "nothing queued: not readable");
    // SAFETY: closes the epoll descriptor made above.
    unsafe { libc::close(ep) };
    free_all(d, &[a, b]);
}

#[test]
fn keepalive_goes_on_while_nobody_dispatches() {
    let pings = Arc::new(AtomicUsize::new(0));
    let p2 = pings.clone();
    let server = ws_server(move |mut ws| loop {
        match ws.read() {
            Ok(Message::Ping(_)) => {
                p2.fetch_add(1, Ordering::SeqCst);
            }
            Ok(m @ Message::Text(_)) => {
                if ws.send(m).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    });
    let d = new_dispatcher();
    let o = options_for(d);
    assert_eq!(ws_options_set_ping_interval_ms(o, 100), WS_OK);
    assert_eq!(ws_options_set_pong_timeout_ms(o, 300), WS_OK);
    let h = open_with(&server.url(), o);
    ws_options_free(o);
    let r = Recorder::new();
    r.bind_all(h);
    // Two seconds without dispatching: the IO thread answers on its own.
    thread::sleep(Duration::from_secs(2));
    assert!(
        pings.load(Ordering::SeqCst) >= 5,
        "{} pings",
        pings.load(Ordering::SeqCst)
    );
    assert_eq!(ws_ready_state(h), WS_OPEN);
    assert_eq!(send_text(h, "still here"), WS_OK);
    dispatch_until(d, "the echo", || !messages(&r.events()).is_empty());
    assert_eq!(r.events()[0], Ev::Open);
    assert!(!r.events().iter().any(|e| matches!(e, Ev::Error(..))));
    free_all(d, &[h]);
}

struct Reentry {
    d: ws_dispatcher,
    nested: Mutex<Option<i32>>,
}

unsafe extern "C" fn dispatch_inside(_: ws_handle, e: *const ws_event, ud: *mut c_void) {
    // SAFETY: valid during the call; `ud` is an Arc<Reentry> kept by the test.
    let (e, r) = unsafe { (&*e, &*(ud as *const Reentry)) };
    if e.kind == WS_EVENT_OPEN {
        *r.nested.lock().unwrap() = Some(ws_dispatch(r.d, 0, 0));
    }
}

#[test]
fn ws_dispatch_is_not_reentrant_nor_concurrent() {
    let server = echo_server();
    let d = new_dispatcher();
    let h = open_on(&server.url(), d);
    let reentry = Arc::new(Reentry {
        d,
        nested: Mutex::new(None),
    });
    let ud = Arc::as_ptr(&reentry) as *mut c_void;
    assert_eq!(ws_bind(h, WS_EVENT_OPEN, Some(dispatch_inside), ud), WS_OK);
    dispatch_until(d, "open", || reentry.nested.lock().unwrap().is_some());
    assert_eq!(*reentry.nested.lock().unwrap(), Some(WS_ERR_INVALID_STATE));

    // A callback that holds the dispatcher busy; another thread tries.
    let (inside_tx, inside_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let hold = Box::new((inside_tx, Mutex::new(release_rx)));
    unsafe extern "C" fn hold_busy(_: ws_handle, e: *const ws_event, ud: *mut c_void) {
        // SAFETY: as above; `ud` is the boxed pair below, alive until free.
        let (e, h) = unsafe {
            (
                &*e,
                &*(ud as *const (mpsc::Sender<()>, Mutex<mpsc::Receiver<()>>)),
            )
        };
        if e.kind == WS_EVENT_MESSAGE {
            h.0.send(()).unwrap();
            h.1.lock().unwrap().recv().unwrap();
        }
    }
    let ud = &*hold as *const _ as *mut c_void;
    assert_eq!(ws_bind(h, WS_EVENT_MESSAGE, Some(hold_busy), ud), WS_OK);
    assert_eq!(send_text(h, "x"), WS_OK);
    let dispatcher_thread = thread::spawn(move || {
        let end = Instant::now() + DEADLINE;
        let mut ran = 0;
        while ran == 0 && Instant::now() < end {
            ran = ws_dispatch(d, 20, 0);
        }
        ran
    });
    inside_rx.recv_timeout(DEADLINE).unwrap();
    assert_eq!(ws_dispatch(d, 0, 0), WS_ERR_INVALID_STATE);
    assert!(
        last_error().contains("already dispatching"),
        "{}",
        last_error()
    );
    release_tx.send(()).unwrap();
    assert_eq!(dispatcher_thread.join().unwrap(), 1);
    free_all(d, &[h]);
    drop(hold);
}

#[test]
fn free_on_the_owner_thread_drops_queued_events_and_finalizes_at_once() {
    let server = burst_server(10);
    let d = new_dispatcher();
    let h = open_on(&server.url(), d);
    let r = Recorder::new();
    r.bind_all(h);
    wait_until("all queued", || ws_ready_state(h) == WS_CLOSED);
    assert_eq!(ws_free(h), WS_OK);
    assert_eq!(
        r.finalized.load(Ordering::SeqCst),
        4,
        "finalizers ran in ws_free"
    );
    assert_eq!(ws_dispatch(d, 0, 0), 0);
    assert!(r.events().is_empty(), "{:?}", r.events());
    assert_eq!(ws_dispatcher_free(d), WS_OK);
}

struct Slow {
    entered: mpsc::Sender<()>,
    returned: AtomicBool,
}

unsafe extern "C" fn slow_message(_: ws_handle, e: *const ws_event, ud: *mut c_void) {
    // SAFETY: valid during the call; `ud` is an Arc<Slow> kept by the test.
    let (e, s) = unsafe { (&*e, &*(ud as *const Slow)) };
    if e.kind == WS_EVENT_MESSAGE {
        s.entered.send(()).unwrap();
        thread::sleep(Duration::from_millis(200));
        s.returned.store(true, Ordering::SeqCst);
    }
}

#[test]
fn free_from_another_thread_waits_for_the_running_callback_only() {
    let server = echo_server();
    let d = new_dispatcher();
    let h = open_on(&server.url(), d);
    let (tx, rx) = mpsc::channel();
    let slow = Arc::new(Slow {
        entered: tx,
        returned: AtomicBool::new(false),
    });
    let ud = Arc::as_ptr(&slow) as *mut c_void;
    assert_eq!(ws_bind(h, WS_EVENT_MESSAGE, Some(slow_message), ud), WS_OK);
    let r = Recorder::new();
    r.bind_all(h);
    dispatch_until(d, "open", || r.events().contains(&Ev::Open));
    assert_eq!(send_text(h, "a"), WS_OK);
    assert_eq!(send_text(h, "b"), WS_OK);
    let dispatching = thread::spawn(move || {
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end && ws_dispatch(d, 20, 0) >= 0 {
            if ws_ready_state(h) == WS_CLOSED || ws_ready_state(h) < 0 {
                break;
            }
        }
    });
    rx.recv_timeout(DEADLINE).unwrap();
    assert_eq!(ws_free(h), WS_OK);
    assert!(
        slow.returned.load(Ordering::SeqCst),
        "ws_free returned before the callback"
    );
    let seen = messages(&r.events()).len();
    thread::sleep(Duration::from_millis(100));
    assert!(
        messages(&r.events()).len() <= seen.max(1),
        "nothing runs after ws_free"
    );
    dispatching.join().unwrap();
    assert_eq!(ws_dispatcher_free(d), WS_OK);
}

/// What one side of the cross-free holds: the meeting point and the
/// socket of the other side.
struct Cross {
    meet: Arc<Barrier>,
    other: ws_handle,
    status: Mutex<Option<i32>>,
}

unsafe extern "C" fn meet_then_free(_: ws_handle, e: *const ws_event, ud: *mut c_void) {
    // SAFETY: valid during the call; `ud` is an Arc<Cross> kept by the test.
    let (e, c) = unsafe { (&*e, &*(ud as *const Cross)) };
    if e.kind == WS_EVENT_MESSAGE {
        // Both dispatcher threads are inside a callback now; each frees the
        // socket whose callback the other is running.
        c.meet.wait();
        *c.status.lock().unwrap() = Some(ws_free(c.other));
    }
}

#[test]
fn two_dispatcher_threads_freeing_each_others_sockets_do_not_deadlock() {
    let server = echo_server();
    let mut parts = Vec::new();
    for _ in 0..2 {
        let d = new_dispatcher();
        let h = open_on(&server.url(), d);
        let r = Recorder::new();
        r.bind(h, WS_EVENT_OPEN);
        dispatch_until(d, "open", || r.events().contains(&Ev::Open));
        parts.push((d, h));
    }
    let meet = Arc::new(Barrier::new(2));
    let sides: Vec<Arc<Cross>> = (0..2)
        .map(|i| {
            Arc::new(Cross {
                meet: meet.clone(),
                other: parts[1 - i].1,
                status: Mutex::new(None),
            })
        })
        .collect();
    for (i, side) in sides.iter().enumerate() {
        let ud = Arc::as_ptr(side) as *mut c_void;
        assert_eq!(
            ws_bind(parts[i].1, WS_EVENT_MESSAGE, Some(meet_then_free), ud),
            WS_OK
        );
    }
    for (_, h) in &parts {
        assert_eq!(send_text(*h, "go"), WS_OK);
    }
    let (done_tx, done_rx) = mpsc::channel();
    for (i, (d, _)) in parts.iter().enumerate() {
        let (d, side, done) = (*d, sides[i].clone(), done_tx.clone());
        thread::spawn(move || {
            let end = Instant::now() + DEADLINE;
            while side.status.lock().unwrap().is_none() && Instant::now() < end {
                ws_dispatch(d, 20, 0);
            }
            done.send(()).unwrap();
        });
    }
    for _ in 0..2 {
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a dispatcher thread is stuck: the cross-free deadlocked");
    }
    for side in &sides {
        assert_eq!(*side.status.lock().unwrap(), Some(WS_OK));
    }
    for (d, _) in &parts {
        assert_eq!(ws_dispatcher_free(*d), WS_OK, "{}", last_error());
    }
}

#[test]
fn io_thread_sockets_and_two_dispatchers_each_run_on_their_own_thread() {
    let server = echo_server();
    let io_threads = Arc::new(Threads::default());
    let plain = open(&server.url());
    bind_threads(plain, &io_threads);
    let rp = Recorder::new();
    rp.bind_all(plain);
    let mut workers = Vec::new();
    for _ in 0..2 {
        let url = server.url();
        workers.push(thread::spawn(move || {
            let d = new_dispatcher();
            let h = open_on(&url, d);
            let threads = Arc::new(Threads::default());
            bind_threads(h, &threads);
            let r = Recorder::new();
            r.bind_all(h);
            dispatch_until(d, "open", || r.events().contains(&Ev::Open));
            assert_eq!(send_text(h, "mine"), WS_OK);
            dispatch_until(d, "echo", || !messages(&r.events()).is_empty());
            let me = thread::current().id();
            assert!(threads.0.lock().unwrap().iter().all(|t| *t == me));
            free_all(d, &[h]);
            me
        }));
    }
    let worker_ids: Vec<ThreadId> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    rp.wait_open();
    assert_eq!(send_text(plain, "io"), WS_OK);
    rp.wait_messages(1);
    let io = io_threads.0.lock().unwrap().clone();
    assert!(!io.is_empty());
    assert!(io.iter().all(|t| *t == io[0]), "one IO thread");
    assert!(io[0] != thread::current().id() && !worker_ids.contains(&io[0]));
    assert_eq!(ws_free(plain), WS_OK);
}

fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_flood_nobody_dispatches_is_held_back_then_arrives_whole_and_in_order() {
    const MESSAGE: usize = 64 * 1024;
    const COUNT: usize = 1600; // 100 MiB
    let sent = Arc::new(AtomicUsize::new(0));
    let s2 = sent.clone();
    let server = ws_server(move |mut ws| {
        for i in 0..COUNT {
            let mut payload = vec![(i % 251) as u8; MESSAGE];
            payload[..8].copy_from_slice(&(i as u64).to_be_bytes());
            if ws.send(Message::binary(payload)).is_err() {
                return;
            }
            s2.fetch_add(1, Ordering::SeqCst);
        }
        while ws.read().is_ok() {}
    });
    let d = new_dispatcher();
    let o = options_for(d);
    assert_eq!(ws_options_set_max_send_queue(o, 1 << 20), WS_OK);
    assert_eq!(ws_options_set_max_message_size(o, 1 << 20), WS_OK);
    let before = rss_kib();
    let h = open_with(&server.url(), o);
    ws_options_free(o);
    // Nobody dispatches: the server must stall well short of the end.
    let mut last = usize::MAX;
    let end = Instant::now() + DEADLINE;
    loop {
        thread::sleep(Duration::from_millis(300));
        let now = sent.load(Ordering::SeqCst);
        if now == last {
            break;
        }
        assert!(Instant::now() < end, "the server never stalled");
        last = now;
    }
    assert!(
        last < COUNT / 2,
        "the server sent {last} of {COUNT} messages"
    );
    let grown = rss_kib().saturating_sub(before);
    assert!(
        grown < 48 * 1024,
        "client RSS grew by {grown} KiB while held back"
    );

    let received = Arc::new(Mutex::new((0usize, true)));
    unsafe extern "C" fn check(_: ws_handle, e: *const ws_event, ud: *mut c_void) {
        // SAFETY: valid during the call; `ud` is the Arc kept by the test.
        let (e, got) = unsafe { (&*e, &*(ud as *const Mutex<(usize, bool)>)) };
        if e.kind == WS_EVENT_MESSAGE {
            // SAFETY: `data` holds `len` bytes during the call.
            let data = unsafe { std::slice::from_raw_parts(e.data, e.len) };
            let mut g = got.lock().unwrap();
            let index = u64::from_be_bytes(data[..8].try_into().unwrap()) as usize;
            g.1 &= index == g.0
                && data.len() == MESSAGE
                && data[8..].iter().all(|b| *b == (index % 251) as u8);
            g.0 += 1;
        }
    }
    let ud = Arc::as_ptr(&received) as *mut c_void;
    assert_eq!(ws_bind(h, WS_EVENT_MESSAGE, Some(check), ud), WS_OK);
    dispatch_until(d, "every message", || received.lock().unwrap().0 == COUNT);
    assert!(
        received.lock().unwrap().1,
        "a message was lost, changed or reordered"
    );
    free_all(d, &[h]);
}

#[test]
fn wakeup_ends_an_unlimited_wait() {
    let d = new_dispatcher();
    let waiter = thread::spawn(move || ws_dispatch(d, -1, 0));
    thread::sleep(Duration::from_millis(50));
    assert_eq!(ws_dispatcher_wakeup(d), WS_OK);
    assert_eq!(waiter.join().unwrap(), 0);
    // A wakeup with nobody waiting makes the next wait return at once.
    assert_eq!(ws_dispatcher_wakeup(d), WS_OK);
    let start = Instant::now();
    assert_eq!(ws_dispatch(d, -1, 0), 0);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(ws_dispatcher_free(d), WS_OK);
}

#[test]
fn a_late_bind_is_replayed_by_ws_dispatch_never_inside_ws_bind() {
    let server = echo_server();
    let d = new_dispatcher();
    let h = open_on(&server.url(), d);
    let early = Recorder::new();
    early.bind(h, WS_EVENT_OPEN);
    dispatch_until(d, "open", || early.events().contains(&Ev::Open));
    let late = Recorder::new();
    late.bind_all(h);
    assert!(late.events().is_empty(), "ran inside ws_bind");
    assert_eq!(ws_dispatch(d, 0, 0), 1);
    assert_eq!(late.events(), [Ev::Open]);
    free_all(d, &[h]);
}

/// Records the thread each finalizer runs on.
unsafe extern "C" fn finalize_on(ud: *mut c_void) {
    // SAFETY: `ud` came from Arc::into_raw of a Threads.
    let t = unsafe { Arc::from_raw(ud as *const Threads) };
    t.0.lock().unwrap().push(thread::current().id());
}

unsafe extern "C" fn nothing(_: ws_handle, _: *const ws_event, _: *mut c_void) {}

#[test]
fn finalizers_run_on_the_freeing_or_dispatching_thread_never_the_io_thread() {
    let server = echo_server();
    let d = new_dispatcher();
    let finalized = Arc::new(Threads::default());
    let mut sockets = Vec::new();
    for _ in 0..20 {
        let h = open_on(&server.url(), d);
        for kind in [WS_EVENT_OPEN, WS_EVENT_MESSAGE, WS_EVENT_CLOSE] {
            let ud = Arc::into_raw(finalized.clone()) as *mut c_void;
            assert_eq!(
                ws_bind_ex(h, kind, Some(nothing), ud, Some(finalize_on)),
                WS_OK
            );
        }
        sockets.push(h);
    }
    dispatch_until(d, "all open", || {
        sockets.iter().all(|h| ws_ready_state(*h) == WS_OPEN)
    });
    for h in &sockets {
        assert_eq!(send_text(*h, "x"), WS_OK);
        assert_eq!(ws_close(*h), WS_OK);
    }
    dispatch_until(d, "all closed", || {
        sockets.iter().all(|h| ws_ready_state(*h) == WS_CLOSED)
    });
    for (i, h) in sockets.iter().enumerate() {
        if i % 2 == 0 {
            // Unbinding runs that binding's finalizer right here.
            let ud = Arc::as_ptr(&finalized) as *mut c_void;
            assert_eq!(ws_unbind(*h, WS_EVENT_MESSAGE, Some(nothing), ud), WS_OK);
        }
        assert_eq!(ws_free(*h), WS_OK);
    }
    let me = thread::current().id();
    let seen = finalized.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 60);
    assert!(
        seen.iter().all(|t| *t == me),
        "a finalizer ran on another thread"
    );
    assert_eq!(ws_dispatcher_free(d), WS_OK);
}

#[test]
fn stale_and_busy_dispatchers_are_refused() {
    assert_eq!(ws_dispatch(0, 0, 0), WS_ERR_INVALID_HANDLE);
    assert_eq!(ws_dispatcher_fd(0), WS_ERR_INVALID_HANDLE);
    assert_eq!(ws_dispatcher_wakeup(0), WS_ERR_INVALID_HANDLE);
    assert_eq!(ws_dispatcher_free(0), WS_ERR_INVALID_HANDLE);
    let o = ws_options_new();
    assert_eq!(
        ws_options_set_dispatcher(o, 12345678),
        WS_ERR_INVALID_HANDLE
    );
    assert_eq!(
        ws_options_set_dispatcher(std::ptr::null_mut(), 1),
        WS_ERR_INVALID_ARGUMENT
    );

    let server = echo_server();
    let d = new_dispatcher();
    assert_eq!(ws_options_set_dispatcher(o, d), WS_OK);
    let h = open_with(&server.url(), o);
    assert_eq!(ws_dispatcher_free(d), WS_ERR_INVALID_STATE);
    assert!(last_error().contains("not freed"), "{}", last_error());
    assert_eq!(ws_free(h), WS_OK);
    assert_eq!(ws_dispatcher_free(d), WS_OK);
    assert_eq!(ws_dispatch(d, 0, 0), WS_ERR_INVALID_HANDLE);
    assert_eq!(ws_dispatcher_free(d), WS_ERR_INVALID_HANDLE);
    // The options still name the freed dispatcher: opening fails.
    let url = std::ffi::CString::new(server.url()).unwrap();
    assert_eq!(ws_open_ex(url.as_ptr(), o), 0);
    assert_eq!(ws_last_status(), WS_ERR_INVALID_HANDLE);
    assert_eq!(ws_options_set_dispatcher(o, 0), WS_OK);
    ws_options_free(o);
}
