//! What a socket reports, and who listens.

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use tungstenite::Message;

use crate::status::AsyncErrorKind;

/// The event kinds; the discriminants are the C `ws_event_kind` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum EventKind {
    Open = 1,
    Message = 2,
    Error = 3,
    Close = 4,
    /// A connection was lost and another attempt is coming (automatic
    /// reconnection).
    Reconnecting = 5,
    /// `bufferedAmount` fell to the socket's low threshold.
    BufferedAmountLow = 6,
}

/// How many kinds there are: the size of a socket's listener table.
pub(crate) const KINDS: usize = 6;

impl EventKind {
    pub const ALL: [EventKind; KINDS] = [
        EventKind::Open,
        EventKind::Message,
        EventKind::Error,
        EventKind::Close,
        EventKind::Reconnecting,
        EventKind::BufferedAmountLow,
    ];

    pub fn from_raw(raw: u32) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| *k as u32 == raw)
    }

    pub fn index(self) -> usize {
        self as usize - 1
    }
}

/// One event as a listener sees it; borrowed, valid during the call only.
pub struct EventView<'a> {
    pub kind: EventKind,
    /// MESSAGE: the payload followed by one 0 byte (so text can be read as a
    /// C string without a copy); empty for other kinds.
    pub payload_with_nul: &'a [u8],
    pub is_binary: bool,
    pub code: u16,
    /// CLOSE: the reason; ERROR: the message; empty otherwise.
    pub reason: &'a CStr,
    pub was_clean: bool,
    pub error_code: i32,
    /// ERROR, RECONNECTING: the HTTP status of a refused handshake; 0
    /// otherwise.
    pub http_status: i32,
    /// OPEN: opens before this one; RECONNECTING: the coming attempt.
    pub attempt: u32,
    /// RECONNECTING: the wait before the coming attempt.
    pub delay_ms: u32,
    /// RECONNECTING: bytes queued and never written, dropped with the lost
    /// connection; BUFFERED_AMOUNT_LOW: `bufferedAmount` now.
    pub dropped: usize,
}

impl EventView<'_> {
    pub fn payload(&self) -> &[u8] {
        self.payload_with_nul
            .split_last()
            .map_or(&[][..], |(_, payload)| payload)
    }
}

/// Something bound to a socket's event. Implemented by the C face (function
/// pointer + userdata) and by Rust users. Dropping it releases what it holds
/// (the C face runs the userdata finalizer there), and it is dropped after
/// its last call.
pub trait Listener: Send + Sync {
    fn call(&self, socket: u64, event: &EventView<'_>);
    /// Two listeners with the same identity are the same binding: binding it
    /// twice runs it once, and unbinding needs only the identity.
    fn identity(&self) -> ListenerId;
    /// Called instead of using a listener that duplicates one already
    /// bound: what it would release belongs to the first binding.
    fn disarm(&mut self) {}
}

/// Identity of a binding; for C, the (callback, userdata) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerId(pub usize, pub usize);

/// A listener in a socket's list. `removed` stops a call that a snapshot
/// taken before the unbind would still make.
pub struct Binding {
    pub listener: Box<dyn Listener>,
    removed: AtomicBool,
}

impl Binding {
    pub fn new(listener: Box<dyn Listener>) -> Self {
        Binding {
            listener,
            removed: AtomicBool::new(false),
        }
    }

    pub fn mark_removed(&self) {
        self.removed.store(true, Ordering::Release);
    }

    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }
}

/// The `error` event of a socket, kept for listeners bound after it.
#[derive(Debug, Clone)]
pub struct ErrorRecord {
    pub kind: AsyncErrorKind,
    pub message: CString,
    /// The HTTP status of a refused handshake, if that is what failed.
    pub http_status: Option<u16>,
}

/// The `close` event of a socket, kept for listeners bound after it.
#[derive(Debug, Clone)]
pub struct CloseRecord {
    pub code: u16,
    pub reason: CString,
    pub was_clean: bool,
}

/// Turns text into a C string, dropping interior NULs rather than the text.
pub fn lossy_cstring(text: &str) -> CString {
    CString::new(text.replace('\0', "")).unwrap_or_default()
}

impl ErrorRecord {
    pub fn new(kind: AsyncErrorKind, message: &str, http_status: Option<u16>) -> Self {
        ErrorRecord {
            kind,
            message: lossy_cstring(message),
            http_status,
        }
    }

    pub fn view(&self) -> EventView<'_> {
        EventView {
            kind: EventKind::Error,
            payload_with_nul: &[],
            is_binary: false,
            code: 0,
            reason: &self.message,
            was_clean: false,
            error_code: self.kind as i32,
            http_status: self.http_status.map_or(0, i32::from),
            attempt: 0,
            delay_ms: 0,
            dropped: 0,
        }
    }
}

impl CloseRecord {
    pub fn view(&self) -> EventView<'_> {
        EventView {
            kind: EventKind::Close,
            payload_with_nul: &[],
            is_binary: false,
            code: self.code,
            reason: &self.reason,
            was_clean: self.was_clean,
            error_code: 0,
            http_status: 0,
            attempt: 0,
            delay_ms: 0,
            dropped: 0,
        }
    }
}

/// `attempt`: how many times the socket opened before.
pub fn open_view(attempt: u32) -> EventView<'static> {
    EventView {
        kind: EventKind::Open,
        payload_with_nul: &[],
        is_binary: false,
        code: 0,
        reason: c"",
        was_clean: false,
        error_code: 0,
        http_status: 0,
        attempt,
        delay_ms: 0,
        dropped: 0,
    }
}

pub fn message_view(payload_with_nul: &[u8], is_binary: bool) -> EventView<'_> {
    EventView {
        kind: EventKind::Message,
        payload_with_nul,
        is_binary,
        code: 0,
        reason: c"",
        was_clean: false,
        error_code: 0,
        http_status: 0,
        attempt: 0,
        delay_ms: 0,
        dropped: 0,
    }
}

/// `bufferedAmount` fell to the low threshold; `buffered` is its value.
pub fn buffered_low_view(buffered: usize) -> EventView<'static> {
    EventView {
        kind: EventKind::BufferedAmountLow,
        payload_with_nul: &[],
        is_binary: false,
        code: 0,
        reason: c"",
        was_clean: false,
        error_code: 0,
        http_status: 0,
        attempt: 0,
        delay_ms: 0,
        dropped: buffered,
    }
}

/// A lost connection that will be tried again: how it ended, what failed
/// (if something did), and the coming attempt.
#[derive(Debug, Clone)]
pub struct ReconnectRecord {
    pub close: CloseRecord,
    /// What failed, if a failure ended the connection.
    pub error: Option<AsyncErrorKind>,
    pub http_status: Option<u16>,
    pub attempt: u32,
    pub delay_ms: u32,
    pub dropped: usize,
}

impl ReconnectRecord {
    pub fn view(&self) -> EventView<'_> {
        EventView {
            kind: EventKind::Reconnecting,
            payload_with_nul: &[],
            is_binary: false,
            code: self.close.code,
            reason: &self.close.reason,
            was_clean: self.close.was_clean,
            error_code: self.error.map_or(0, |k| k as i32),
            http_status: self.http_status.map_or(0, i32::from),
            attempt: self.attempt,
            delay_ms: self.delay_ms,
            dropped: self.dropped,
        }
    }
}

/// An event of a socket opened with a dispatcher, queued by the IO thread
/// for the thread that calls `ws_dispatch`.
pub enum Queued {
    /// With how many times the socket opened before.
    Open(u32),
    Message(Message),
    Error(ErrorRecord),
    Close(CloseRecord),
    Reconnecting(ReconnectRecord),
    /// `bufferedAmount` fell to the low threshold, to this.
    BufferedAmountLow(usize),
    /// Late listeners wait for a replay, or held messages for a listener.
    CatchUp,
}

/// Payload length of a data message.
pub fn message_len(message: &Message) -> usize {
    match message {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 0,
    }
}
