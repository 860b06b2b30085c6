//! `ws_event`, the callback type, and the listener that calls C.

use std::os::raw::{c_char, c_int, c_void};

use super::ws_handle;
use crate::event::{EventKind, EventView, Listener, ListenerId};

/// Event kinds, for `ws_bind` and `ws_event.kind`. An integer type rather
/// than a C enum, so that a wrong value passed from any language is an
/// error (`WS_ERR_INVALID_ARGUMENT`) and never undefined behaviour.
pub type ws_event_kind = u32;
/// The connection is open (no data).
pub const WS_EVENT_OPEN: ws_event_kind = 1;
/// A message arrived: `data`, `len`, `is_binary`.
pub const WS_EVENT_MESSAGE: ws_event_kind = 2;
/// The connection failed: `error_code` and `reason` (the message).
pub const WS_EVENT_ERROR: ws_event_kind = 3;
/// The connection is closed: `code`, `reason`, `was_clean`. Always the
/// last event of a socket.
pub const WS_EVENT_CLOSE: ws_event_kind = 4;
/// Automatic reconnection (`ws_options_set_reconnect`): the connection was
/// lost, or could not be made, and another attempt comes after `delay_ms`.
/// `code`, `reason`, `was_clean`: how the lost connection ended (1006 when
/// no close frame came; `reason` says what failed when the peer gave
/// none); `error_code`: the failure, if one ended it (0 for a close by the
/// server); `http_status`: the status of a refused handshake; `attempt`:
/// the number of the coming attempt, from 1 since the last stable
/// connection; `len`: the bytes queued and never written, now dropped.
/// Calling `ws_close` from this callback cancels the retry: `close`
/// follows (1006, not clean), with no `error`.
pub const WS_EVENT_RECONNECTING: ws_event_kind = 5;
/// `bufferedAmount` fell from above the socket's low threshold
/// (`ws_set_buffered_amount_low_threshold`, default 0) to at or below it:
/// room for more. `len`: `bufferedAmount` now. Fired once per fall, never
/// while it stays low; nothing is watched for it unless a callback is
/// bound. Not replayed to a callback bound late.
pub const WS_EVENT_BUFFERED_AMOUNT_LOW: ws_event_kind = 6;

/// One event, passed to callbacks by pointer.
///
/// Lifetime: the event and everything it points to are owned by wsembed
/// and valid only during the callback; copy what you keep. Fields may be
/// appended in later versions: never allocate or copy a `ws_event` by
/// value, only read it through the pointer you are given.
#[repr(C)]
pub struct ws_event {
    /// Which event this is (`WS_EVENT_*`).
    pub kind: ws_event_kind,
    /// MESSAGE: the payload, followed by a NUL byte not counted in `len`
    /// (so text can be used as a C string); never NULL for a message, even
    /// an empty one. Other kinds: NULL.
    pub data: *const u8,
    /// MESSAGE: payload length in bytes; RECONNECTING: bytes that were
    /// queued and never written, dropped with the lost connection;
    /// BUFFERED_AMOUNT_LOW: `bufferedAmount` now; 0 for other kinds.
    pub len: usize,
    /// MESSAGE: false for text (valid UTF-8), true for binary.
    pub is_binary: bool,
    /// CLOSE, RECONNECTING: the close code (1005: the peer sent none;
    /// 1006: abnormal closure, no close frame). 0 for other kinds.
    pub code: u16,
    /// CLOSE: the peer's reason; ERROR: a message saying what failed;
    /// RECONNECTING: the peer's reason, or what failed.
    /// NUL-terminated UTF-8, never NULL ("" when there is none).
    pub reason: *const c_char,
    /// CLOSE, RECONNECTING: true when the closing handshake completed.
    pub was_clean: bool,
    /// ERROR: one of `WS_ERR_DNS` .. `WS_ERR_PROXY`; RECONNECTING: the
    /// failure that ended the connection, or 0; 0 for other kinds.
    pub error_code: c_int,
    /// OPEN: how many times the socket opened before (0: the first open; 1
    /// after the first reconnection, ...). RECONNECTING: the number of the
    /// coming attempt, from 1 since the last stable connection. 0 for
    /// other kinds.
    pub attempt: u32,
    /// RECONNECTING: milliseconds before the coming attempt (jitter and a
    /// server's `Retry-After` included). 0 for other kinds.
    pub delay_ms: u32,
    /// ERROR (and RECONNECTING): the HTTP status the server answered
    /// instead of 101 when it refused the opening handshake (`error_code`
    /// is then `WS_ERR_HANDSHAKE`, or `WS_ERR_TIMEOUT` if its body did not
    /// arrive within the connect timeout); `ws_response_header` and
    /// `ws_response_body` give the rest of its answer. 0 otherwise.
    pub http_status: i32,
}

/// A callback bound with `ws_bind`. Runs on the IO thread, one at a time,
/// and must return promptly: while it runs, no other socket is served. For
/// a socket opened with a dispatcher it runs instead inside `ws_dispatch`,
/// on the thread that calls it. It may call any wsembed function, on any
/// socket, including `ws_free` on its own socket (but not `ws_dispatch` of
/// the dispatcher running it).
pub type ws_callback =
    Option<unsafe extern "C" fn(socket: ws_handle, event: *const ws_event, userdata: *mut c_void)>;

/// Releases a binding's userdata (see `ws_bind_ex`).
pub type ws_userdata_free = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// Runs the userdata finalizer exactly once when dropped, unless disarmed.
/// Built before any argument check so that every failure path finalizes.
pub(crate) struct Finalizer {
    free: ws_userdata_free,
    userdata: *mut c_void,
}

impl Finalizer {
    pub fn new(free: ws_userdata_free, userdata: *mut c_void) -> Finalizer {
        Finalizer { free, userdata }
    }
}

impl Drop for Finalizer {
    fn drop(&mut self) {
        if let Some(free) = self.free.take() {
            // SAFETY: the caller of ws_bind_ex gave this function for this
            // userdata; `take` makes it run at most once.
            unsafe { free(self.userdata) }
        }
    }
}

/// A C callback with its userdata, bound to one event kind.
pub(crate) struct CListener {
    pub callback: unsafe extern "C" fn(ws_handle, *const ws_event, *mut c_void),
    pub userdata: *mut c_void,
    pub finalizer: Finalizer,
}

// SAFETY: the header documents that callbacks run on the IO thread and
// finalizers on whichever thread drops the last reference; the caller who
// binds them accepts that for the userdata. wsembed itself never reads the
// userdata, it only passes the pointer back.
unsafe impl Send for CListener {}
// SAFETY: as above; the listener is called from one thread at a time.
unsafe impl Sync for CListener {}

impl Listener for CListener {
    fn call(&self, socket: u64, event: &EventView<'_>) {
        let data = if event.payload_with_nul.is_empty() {
            std::ptr::null()
        } else {
            event.payload_with_nul.as_ptr()
        };
        let raw = ws_event {
            kind: event.kind as ws_event_kind,
            data,
            len: match event.kind {
                EventKind::Message => event.payload().len(),
                _ => event.dropped,
            },
            is_binary: event.is_binary,
            code: event.code,
            reason: event.reason.as_ptr(),
            was_clean: event.was_clean,
            error_code: event.error_code,
            attempt: event.attempt,
            delay_ms: event.delay_ms,
            http_status: event.http_status,
        };
        // SAFETY: `callback` is the non-NULL function the caller bound;
        // `raw` and what it points to outlive the call.
        unsafe { (self.callback)(socket, &raw, self.userdata) }
    }

    fn identity(&self) -> ListenerId {
        ListenerId(self.callback as usize, self.userdata as usize)
    }

    fn disarm(&mut self) {
        self.finalizer.free = None;
    }
}
