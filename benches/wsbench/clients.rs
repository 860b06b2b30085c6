//! The clients of the round-trip and streaming figures.
//!
//! Both are one loop with a window of messages in flight: a round trip is
//! a window of one (the next message goes out when the echo of the last
//! one is in), streaming a window of several. wsembed runs it the way an
//! application would, from its callbacks on the IO thread, through the C
//! ABI (`wsembed::ffi`, exactly the functions C calls); tungstenite runs it
//! as a plain blocking client; raw TCP runs the same bytes with no framing.
//!
//! Every payload is copied once per send by every client (wsembed copies
//! in `ws_send_*`; the others build an owned message), and every echo is
//! checked for its length and first and last bytes, or, for the deflate
//! figure's JSON (`--data json`), compared byte for byte: there the bytes
//! went through two codecs and an echo that did not inflate them.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tungstenite::protocol::WebSocketConfig;
use tungstenite::Message;
use wsembed::ffi::{self, ws_event, ws_handle};

use crate::{alloc_counts, deflate, die, usage, watchdog, Args, Json, Usage};

/// What a run asks for.
#[derive(Clone, Copy)]
struct Plan {
    size: usize,
    binary: bool,
    /// Untimed messages first (connection warm, buffers grown).
    warmup: u64,
    /// Timed messages after the warm-up.
    count: u64,
    window: u64,
    /// tungstenite only: its read buffer size (0: its default).
    read_buffer: usize,
    /// wsembed only: offer permessage-deflate (`--deflate 1`).
    deflate: bool,
    /// Send JSON-like text from a pool of distinct messages, each echo
    /// compared in full (`--data json`), instead of one repeated payload.
    json: bool,
}

impl Plan {
    fn total(&self) -> u64 {
        self.warmup + self.count
    }

    fn payload(&self) -> Vec<u8> {
        // Printable ASCII, so the same bytes are valid text.
        (0..self.size).map(|i| b'a' + (i % 26) as u8).collect()
    }

    /// The messages a JSON run cycles through (none otherwise).
    fn pool(&self) -> Vec<Vec<u8>> {
        if self.json {
            deflate::json_messages(self.size, deflate::POOL)
        } else {
            Vec::new()
        }
    }

    /// The next message of a tungstenite client: one copy of the payload,
    /// as every client makes.
    fn tungstenite_message(&self, payload: &[u8], text: &str) -> Message {
        if self.binary {
            Message::binary(payload.to_vec())
        } else {
            Message::text(text)
        }
    }

    /// Whether a message a tungstenite client read is an echo (false for a
    /// ping or pong); dies on anything else or a bad echo.
    fn tungstenite_echo(&self, payload: &[u8], message: &Message) -> bool {
        let echo: &[u8] = match message {
            Message::Text(t) if !self.binary => t.as_bytes(),
            Message::Binary(b) if self.binary => &b[..],
            Message::Ping(_) | Message::Pong(_) => return false,
            other => die(&format!("tungstenite: unexpected {other:?}")),
        };
        if !self.check(payload, echo) {
            die(&format!("tungstenite: bad echo: {} bytes", echo.len()));
        }
        true
    }

    fn check(&self, payload: &[u8], echo: &[u8]) -> bool {
        if self.json {
            return echo == payload;
        }
        echo.len() == payload.len()
            && echo.first() == payload.first()
            && echo.last() == payload.last()
    }
}

/// A snapshot at the start or the end of the timed part.
#[derive(Clone, Copy)]
struct Mark {
    at: Instant,
    usage: Usage,
    allocs: (u64, u64),
}

fn mark() -> Mark {
    Mark {
        at: Instant::now(),
        usage: usage(),
        allocs: alloc_counts(),
    }
}

fn report(what: &str, implementation: &str, plan: &Plan, start: Mark, end: Mark, extra: Json) {
    let secs = end.at.duration_since(start.at).as_secs_f64();
    let n = plan.count as f64;
    let cpu = end.usage.cpu - start.usage.cpu;
    Json::default()
        .str("bench", what)
        .str("impl", implementation)
        .num("size", plan.size as f64)
        .num("count", n)
        .num("window", plan.window as f64)
        .num("secs", secs)
        .num("per_sec", n / secs)
        .num("gb_per_sec", n * plan.size as f64 / secs / 1e9)
        .num("cpu_secs", cpu)
        .num("cpu_util", cpu / secs)
        .num(
            "vcsw_per_msg",
            (end.usage.voluntary - start.usage.voluntary) as f64 / n,
        )
        .num(
            "ivcsw_per_msg",
            (end.usage.involuntary - start.usage.involuntary) as f64 / n,
        )
        .num("allocs_per_msg", (end.allocs.0 - start.allocs.0) as f64 / n)
        .num(
            "alloc_bytes_per_msg",
            (end.allocs.1 - start.allocs.1) as f64 / n,
        )
        .with(extra)
        .print();
}

fn plan(args: &Args, default_size: u64, binary: bool, window: u64) -> Plan {
    Plan {
        size: args.num("size", default_size) as usize,
        binary: args.str("binary", if binary { "1" } else { "0" }) == "1",
        warmup: args.num("warmup", 0),
        count: args.num("count", 10_000).max(1),
        window: args.num("window", window).max(1),
        read_buffer: args.num("read-buffer", 0) as usize,
        deflate: args.num("deflate", 0) != 0,
        json: match args.str("data", "letters").as_str() {
            "letters" => false,
            "json" => true,
            other => die(&format!("--data {other:?}: letters or json")),
        },
    }
}

/// `rtt --impl wsembed|tungstenite --port P --size S --count N --warmup W`
/// `[--log-level 1..4]` (wsembed: a log callback that discards its lines)
pub fn rtt(args: &Args) {
    let mut plan = plan(args, 16, false, 1);
    plan.warmup = args.num("warmup", 1000.min(plan.count));
    plan.window = 1;
    run(args, "rtt", &plan);
}

/// `stream --impl wsembed|tungstenite|tcp --port P --size S --count N --window W`
/// `[--deflate 1] [--data json] [--binary 0]`
pub fn stream(args: &Args) {
    let plan = plan(args, 64 << 10, true, 16);
    run(args, "stream", &plan);
}

fn run(args: &Args, what: &str, plan: &Plan) {
    let max_secs = args.num("max-secs", 600);
    watchdog(max_secs, "client");
    let port = args.num("port", 0);
    if port == 0 {
        die("--port is required");
    }
    let mut implementation = args.str("impl", "wsembed");
    if (plan.deflate || plan.json) && !implementation.starts_with("wsembed") {
        die("--deflate and --data json are for --impl wsembed only");
    }
    // `--log-level 1` measures the cost of a log callback set at
    // WS_LOG_ERROR (which a healthy run never calls).
    let log_level = args.num("log-level", 0);
    if log_level > 0 {
        if !implementation.starts_with("wsembed") {
            die("--log-level is for --impl wsembed only");
        }
        let status =
            ffi::ws_set_log_callback(log_level as c_int, Some(discard_log_line), null_mut());
        if status != ffi::WS_OK {
            die(&format!("ws_set_log_callback: {}", last_error()));
        }
        implementation = format!("{implementation}-log{log_level}");
    }
    // wsembed's run gives up before the watchdog fires, with its own
    // message: at half its time (300 s by default).
    let limit = Duration::from_secs(max_secs / 2);
    let plain = |(start, end): (Mark, Mark)| (start, end, Json::default());
    let (start, end, extra) = match implementation.split("-log").next().unwrap_or("") {
        "wsembed" => wsembed_run(port, plan, false, limit),
        "wsembed-dispatch" => wsembed_run(port, plan, true, limit),
        "tungstenite" => plain(tungstenite_run(port, plan)),
        "tungstenite-epoll" => plain(tungstenite_epoll_run(port, plan)),
        "tcp" => plain(tcp_run(port, plan)),
        other => die(&format!(
            "--impl {other:?}: wsembed, wsembed-dispatch, tungstenite, tungstenite-epoll or tcp"
        )),
    };
    if plan.read_buffer > 0 && implementation == "tungstenite" {
        implementation = format!("tungstenite-rb{}", plan.read_buffer);
    }
    report(what, &implementation, plan, start, end, extra);
}

// ----- wsembed, through the C ABI ------------------------------------------

unsafe extern "C" fn discard_log_line(_: c_int, _: u64, _: *const c_char, _: *mut c_void) {}

/// The state the callbacks share; reached through the userdata pointer.
struct Shared {
    plan: Plan,
    payload: Vec<u8>,
    /// `--data json`: what is sent instead of `payload`, in turn.
    pool: Vec<Vec<u8>>,
    /// The server's port: which of the process's sockets is ours.
    port: u16,
    sent: AtomicU64,
    received: AtomicU64,
    state: Mutex<Progress>,
    changed: Condvar,
}

#[derive(Default)]
struct Progress {
    start: Option<Mark>,
    end: Option<Mark>,
    closed: bool,
    failure: Option<String>,
    /// The kernel's byte counts of the connection when it opened (deflate
    /// runs only), so the handshake is not counted as payload.
    wire_at_open: Option<(u64, u64)>,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
        self.changed.notify_all();
    }

    /// Waits until `done` holds or `limit` passes.
    fn wait(&self, limit: Duration, done: impl Fn(&Progress) -> bool) -> bool {
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (_guard, timeout) = self
            .changed
            .wait_timeout_while(guard, limit, |p| !done(p))
            .unwrap_or_else(|e| e.into_inner());
        !timeout.timed_out()
    }

    /// The message sent after `counter` others (echoes come back in the
    /// order sent). Figures 1, 2 and 5 send one payload: their clients pay
    /// one branch for the pool, not a load and an index.
    fn payload(&self, counter: &AtomicU64) -> &[u8] {
        if self.plan.json {
            &self.pool[counter.load(Ordering::Relaxed) as usize & (deflate::POOL - 1)]
        } else {
            &self.payload
        }
    }

    /// Sends the next message if any is left; on the IO thread.
    fn send_next(&self, ws: ws_handle) {
        if self.sent.load(Ordering::Relaxed) >= self.plan.total() {
            return;
        }
        let payload = self.payload(&self.sent);
        self.sent.fetch_add(1, Ordering::Relaxed);
        let status = if self.plan.binary {
            ffi::ws_send_binary(ws, payload.as_ptr().cast(), payload.len())
        } else {
            ffi::ws_send_text(ws, payload.as_ptr().cast(), payload.len())
        };
        if status != ffi::WS_OK {
            let text = last_error();
            self.update(|p| p.failure = Some(format!("ws_send: {status}: {text}")));
        }
    }
}

fn last_error() -> String {
    // SAFETY: ws_last_error returns a NUL-terminated string valid until this
    // thread's next wsembed call; it is copied at once.
    unsafe { CStr::from_ptr(ffi::ws_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// # Safety
/// `userdata` is the `Shared` that `wsembed_run` keeps alive until after
/// `ws_free`.
unsafe fn shared<'a>(userdata: *mut c_void) -> &'a Shared {
    // SAFETY: see above.
    unsafe { &*(userdata as *const Shared) }
}

unsafe extern "C" fn on_open(ws: ws_handle, _event: *const ws_event, userdata: *mut c_void) {
    // SAFETY: bound with a live `Shared`.
    let s = unsafe { shared(userdata) };
    if s.plan.deflate {
        let counts = tcp_counts(s.port);
        s.update(|p| p.wire_at_open = counts);
    }
    if s.plan.warmup == 0 {
        let m = mark();
        s.update(|p| p.start = Some(m));
    }
    for _ in 0..s.plan.window {
        s.send_next(ws);
    }
}

unsafe extern "C" fn on_message(ws: ws_handle, event: *const ws_event, userdata: *mut c_void) {
    // SAFETY: bound with a live `Shared`; the event is valid during the call.
    let (s, event) = unsafe { (shared(userdata), &*event) };
    // SAFETY: a message event's data points to `len` bytes.
    let echo = unsafe { std::slice::from_raw_parts(event.data, event.len) };
    let sent = s.payload(&s.received);
    if !s.plan.check(sent, echo) || event.is_binary != s.plan.binary {
        let len = event.len;
        s.update(|p| p.failure = Some(format!("bad echo: {len} bytes")));
        return;
    }
    let n = s.received.fetch_add(1, Ordering::Relaxed) + 1;
    if n == s.plan.warmup {
        let m = mark();
        s.update(|p| p.start = Some(m));
    }
    if n == s.plan.total() {
        let m = mark();
        s.update(|p| p.end = Some(m));
        return;
    }
    s.send_next(ws);
}

unsafe extern "C" fn on_error(_ws: ws_handle, event: *const ws_event, userdata: *mut c_void) {
    // SAFETY: as on_message.
    let (s, event) = unsafe { (shared(userdata), &*event) };
    // SAFETY: reason is a NUL-terminated string during the call.
    let reason = unsafe { CStr::from_ptr(event.reason) }
        .to_string_lossy()
        .into_owned();
    s.update(|p| p.failure = Some(format!("error event: {reason}")));
}

unsafe extern "C" fn on_close(_ws: ws_handle, _event: *const ws_event, userdata: *mut c_void) {
    // SAFETY: as on_open.
    let s = unsafe { shared(userdata) };
    s.update(|p| p.closed = true);
}

/// With `dispatch`, the socket is opened with a dispatcher and this (the
/// main) thread runs its callbacks in `ws_dispatch`, as a host loop would.
/// A deflate run also reports the extensions agreed and the bytes on the
/// wire each way.
fn wsembed_run(port: u64, plan: &Plan, dispatch: bool, limit: Duration) -> (Mark, Mark, Json) {
    let shared = Arc::new(Shared {
        plan: *plan,
        payload: plan.payload(),
        pool: plan.pool(),
        port: port as u16,
        sent: AtomicU64::new(0),
        received: AtomicU64::new(0),
        state: Mutex::new(Progress::default()),
        changed: Condvar::new(),
    });
    let url = CString::new(format!("ws://127.0.0.1:{port}/")).expect("no NUL");
    let dispatcher = if dispatch {
        let d = ffi::ws_dispatcher_new();
        if d == 0 {
            die(&format!("ws_dispatcher_new: {}", last_error()));
        }
        Some(d)
    } else {
        None
    };
    let options = ffi::ws_options_new();
    if plan.deflate && ffi::ws_options_set_deflate(options, true) != ffi::WS_OK {
        die(&format!("ws_options_set_deflate: {}", last_error()));
    }
    if let Some(d) = dispatcher {
        if ffi::ws_options_set_dispatcher(options, d) != ffi::WS_OK {
            die(&format!("ws_options_set_dispatcher: {}", last_error()));
        }
    }
    let ws = ffi::ws_open_ex(url.as_ptr(), options);
    ffi::ws_options_free(options);
    if ws == 0 {
        die(&format!("ws_open: {}", last_error()));
    }
    let userdata = Arc::as_ptr(&shared) as *mut c_void;
    for (kind, callback) in [
        (ffi::WS_EVENT_OPEN, on_open as ffi_callback),
        (ffi::WS_EVENT_MESSAGE, on_message),
        (ffi::WS_EVENT_ERROR, on_error),
        (ffi::WS_EVENT_CLOSE, on_close),
    ] {
        if ffi::ws_bind(ws, kind, Some(callback), userdata) != ffi::WS_OK {
            die(&format!("ws_bind: {}", last_error()));
        }
    }
    // Waits for `done`, dispatching on this thread if there is a dispatcher.
    let wait = |limit: Duration, done: &dyn Fn(&Progress) -> bool| match dispatcher {
        None => shared.wait(limit, done),
        Some(d) => {
            let end = Instant::now() + limit;
            loop {
                if done(&shared.state.lock().unwrap_or_else(|e| e.into_inner())) {
                    return true;
                }
                if Instant::now() >= end {
                    return false;
                }
                if ffi::ws_dispatch(d, 100, 0) < 0 {
                    die(&format!("ws_dispatch: {}", last_error()));
                }
            }
        }
    };
    let finished = wait(limit, &|p| {
        p.end.is_some() || p.failure.is_some() || p.closed
    });
    let progress = |f: &dyn Fn(&Progress) -> Option<String>| {
        f(&shared.state.lock().unwrap_or_else(|e| e.into_inner()))
    };
    if let Some(failure) = progress(&|p| p.failure.clone()) {
        die(&format!("wsembed: {failure}"));
    }
    if !finished || progress(&|p| p.end.is_none().then(String::new)).is_some() {
        die("wsembed: the run did not finish");
    }
    let mut extra = Json::default();
    if plan.deflate {
        let mut agreed = [0 as c_char; 256];
        ffi::ws_extensions(ws, agreed.as_mut_ptr(), agreed.len());
        // SAFETY: ws_extensions NUL-terminates within the buffer it is given.
        let agreed = unsafe { CStr::from_ptr(agreed.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        // Every echo is in, and each carried the acknowledgement of what
        // the server had read before it: the counts are final.
        let at_open = progress_wire(&shared);
        let (out, into) = match (at_open, tcp_counts(port as u16)) {
            (Some(a), Some(b)) => ((b.0 - a.0) as f64, (b.1 - a.1) as f64),
            _ => (f64::NAN, f64::NAN),
        };
        extra = extra
            .str("extensions", &agreed)
            .num("payload_bytes", (plan.count * plan.size as u64) as f64)
            .num("wire_out_bytes", out)
            .num("wire_in_bytes", into);
    }
    ffi::ws_close(ws);
    wait(Duration::from_secs(10), &|p| p.closed);
    ffi::ws_free(ws);
    if let Some(d) = dispatcher {
        ffi::ws_dispatcher_free(d);
    }
    ffi::ws_shutdown();
    let p = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    (p.start.expect("started"), p.end.expect("ended"), extra)
}

fn progress_wire(shared: &Shared) -> Option<(u64, u64)> {
    shared
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .wire_at_open
}

/// Bytes this process has sent (and had acknowledged) and received on its
/// TCP connection to 127.0.0.1:`port`, as the kernel counts them
/// (TCP_INFO): what crossed the wire, whatever wsembed made of the
/// payload. wsembed does not hand out its socket, so it is found among the
/// process's descriptors by its peer.
fn tcp_counts(port: u16) -> Option<(u64, u64)> {
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<libc::c_int>() else {
            continue;
        };
        // SAFETY: getpeername and getsockopt write at most the lengths
        // given into structs we own; a descriptor that is not a socket
        // (or closed meanwhile) only makes them fail.
        unsafe {
            let mut peer: libc::sockaddr_in = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if libc::getpeername(fd, (&mut peer as *mut libc::sockaddr_in).cast(), &mut len) != 0
                || peer.sin_family != libc::AF_INET as libc::sa_family_t
                || u16::from_be(peer.sin_port) != port
            {
                continue;
            }
            let mut info: libc::tcp_info = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
            if libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            ) == 0
            {
                return Some((info.tcpi_bytes_acked, info.tcpi_bytes_received));
            }
        }
    }
    None
}

#[allow(non_camel_case_types)]
type ffi_callback = unsafe extern "C" fn(ws_handle, *const ws_event, *mut c_void);

// ----- plain blocking tungstenite ------------------------------------------

fn connect_tcp(port: u64) -> TcpStream {
    let tcp = TcpStream::connect(("127.0.0.1", port as u16))
        .unwrap_or_else(|e| die(&format!("connect: {e}")));
    // As wsembed does: small messages go out at once.
    let _ = tcp.set_nodelay(true);
    tcp
}

fn tungstenite_run(port: u64, plan: &Plan) -> (Mark, Mark) {
    let url = format!("ws://127.0.0.1:{port}/");
    // The default configuration unless --read-buffer says otherwise (wsembed
    // configures 16 KiB; tungstenite's default is 128 KiB, zeroed before
    // each read).
    let mut config = WebSocketConfig::default();
    if plan.read_buffer > 0 {
        config = config.read_buffer_size(plan.read_buffer);
    }
    let (mut ws, _) =
        tungstenite::client::client_with_config(url.as_str(), connect_tcp(port), Some(config))
            .unwrap_or_else(|e| die(&format!("tungstenite handshake: {e}")));
    let payload = plan.payload();
    let text = String::from_utf8(payload.clone()).expect("ASCII");
    let total = plan.total();
    let (mut sent, mut received) = (0u64, 0u64);
    let mut start = (plan.warmup == 0).then(mark);
    let fail = |e: tungstenite::Error| -> ! { die(&format!("tungstenite: {e}")) };
    while received < total {
        while sent < total && sent - received < plan.window {
            ws.write(plan.tungstenite_message(&payload, &text))
                .unwrap_or_else(|e| fail(e));
            sent += 1;
        }
        ws.flush().unwrap_or_else(|e| fail(e));
        let message = ws.read().unwrap_or_else(|e| fail(e));
        if !plan.tungstenite_echo(&payload, &message) {
            continue;
        }
        received += 1;
        if received == plan.warmup {
            start = Some(mark());
        }
    }
    let end = mark();
    let _ = ws.close(None);
    while ws.read().is_ok() {}
    (start.expect("started"), end)
}

// ----- tungstenite on an epoll loop ------------------------------------------

/// tungstenite as an event loop drives it: a non-blocking socket, mio
/// (edge-triggered epoll), every read until it would block, all on the
/// one thread and with wsembed's 16 KiB read buffer. No FFI, no second
/// thread, no callbacks: what any readiness-driven client pays over a
/// blocking one, which wsembed pays too.
fn tungstenite_epoll_run(port: u64, plan: &Plan) -> (Mark, Mark) {
    use mio::{Events, Interest, Poll, Token};
    let url = format!("ws://127.0.0.1:{port}/");
    let config = WebSocketConfig::default().read_buffer_size(16 << 10);
    let (ws, _) =
        tungstenite::client::client_with_config(url.as_str(), connect_tcp(port), Some(config))
            .unwrap_or_else(|e| die(&format!("tungstenite handshake: {e}")));
    let fail = |e: tungstenite::Error| -> ! { die(&format!("tungstenite: {e}")) };
    let std_tcp = ws.into_inner();
    std_tcp
        .set_nonblocking(true)
        .unwrap_or_else(|e| die(&format!("nonblocking: {e}")));
    let mut tcp = mio::net::TcpStream::from_std(std_tcp);
    let mut poll = Poll::new().unwrap_or_else(|e| die(&format!("poll: {e}")));
    poll.registry()
        .register(&mut tcp, Token(0), Interest::READABLE)
        .unwrap_or_else(|e| die(&format!("register: {e}")));
    let mut ws = tungstenite::WebSocket::from_raw_socket(
        tcp,
        tungstenite::protocol::Role::Client,
        Some(config),
    );
    let mut events = Events::with_capacity(16);
    let payload = plan.payload();
    let text = String::from_utf8(payload.clone()).expect("ASCII");
    let total = plan.total();
    let (mut sent, mut received) = (0u64, 0u64);
    let mut start = (plan.warmup == 0).then(mark);
    while received < total {
        while sent < total && sent - received < plan.window {
            ws.write(plan.tungstenite_message(&payload, &text))
                .unwrap_or_else(|e| fail(e));
            sent += 1;
        }
        match ws.flush() {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => fail(e),
        }
        let message = match ws.read() {
            Ok(message) => message,
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                poll.poll(&mut events, None)
                    .unwrap_or_else(|e| die(&format!("poll: {e}")));
                continue;
            }
            Err(e) => fail(e),
        };
        if !plan.tungstenite_echo(&payload, &message) {
            continue;
        }
        received += 1;
        if received == plan.warmup {
            start = Some(mark());
        }
    }
    let end = mark();
    (start.expect("started"), end)
}

// ----- raw TCP ---------------------------------------------------------------

fn tcp_run(port: u64, plan: &Plan) -> (Mark, Mark) {
    let mut tcp = connect_tcp(port);
    let payload = plan.payload();
    let size = payload.len() as u64;
    let total = plan.total() * size;
    let warmup = plan.warmup * size;
    let window = plan.window * size;
    let mut buf = vec![0u8; (size as usize).max(64 << 10)];
    let (mut sent, mut received) = (0u64, 0u64);
    let mut start = (warmup == 0).then(mark);
    while received < total {
        while sent < total && sent - received < window {
            // The same one copy per message as the WebSocket clients.
            let chunk = payload.clone();
            tcp.write_all(&chunk)
                .unwrap_or_else(|e| die(&format!("tcp write: {e}")));
            sent += size;
        }
        let n = match tcp.read(&mut buf) {
            Ok(0) => die("tcp: the server hung up"),
            Ok(n) => n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => die(&format!("tcp read: {e}")),
        };
        if start.is_none() && received < warmup && received + n >= warmup {
            start = Some(mark());
        }
        received += n;
    }
    let end = mark();
    (start.expect("started"), end)
}
