//! The ready state and what callers hand to the IO thread: data frames
//! (encoded and masked on the caller's thread, see `wire`) and the close
//! request.
//!
//! The ready state is written only with the queue locked, so a send never
//! slips into the queue after the state left OPEN, and closing empties it.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::framing::{append_frame, DataOpcode};
use crate::status::{Error, ErrorKind, Result};
use crate::sync::lock;

/// `readyState` values, as in the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ReadyState {
    Connecting = 0,
    Open = 1,
    Closing = 2,
    Closed = 3,
}

impl ReadyState {
    fn from_u8(v: u8) -> ReadyState {
        match v {
            0 => ReadyState::Connecting,
            1 => ReadyState::Open,
            2 => ReadyState::Closing,
            _ => ReadyState::Closed,
        }
    }
}

/// What a caller asked `close` to do; read by the IO thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CloseRequest {
    /// Closed while connecting: drop the attempt.
    Abort,
    /// The closing handshake, with an optional code and reason.
    Handshake(Option<(u16, String)>),
}

struct Queue {
    /// Encoded frames, masked, ready for the wire. Empty exactly when
    /// `Outbox::queued` is false.
    frames: Vec<u8>,
    /// Payload bytes in `frames`: what they add to `bufferedAmount`.
    payload: usize,
    /// Messages in `frames` (one frame each).
    messages: usize,
    /// The payload of a ping the caller asked for, not yet sent.
    ping: Option<Vec<u8>>,
    /// The loop was asked to take the frames and has not yet.
    scheduled: bool,
    close: Option<CloseRequest>,
    /// Which connection of the socket the queue serves; a lost connection
    /// moves it on, so a frame compressed for the old one is refused.
    generation: u64,
}

/// What the IO thread took from the queue at once.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Taken {
    /// Payload bytes: what leaves `bufferedAmount` once written.
    pub payload: usize,
    pub messages: usize,
}

pub(crate) struct Outbox {
    ready: AtomicU8,
    /// `bufferedAmount`: payload bytes accepted and not yet written.
    buffered: AtomicUsize,
    /// Frames wait in the queue; lets the IO thread skip the lock when
    /// none does.
    queued: AtomicBool,
    queue: Mutex<Queue>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            ready: AtomicU8::new(ReadyState::Connecting as u8),
            buffered: AtomicUsize::new(0),
            queued: AtomicBool::new(false),
            queue: Mutex::new(Queue {
                frames: Vec::new(),
                payload: 0,
                messages: 0,
                ping: None,
                scheduled: false,
                close: None,
                generation: 0,
            }),
        }
    }
}

impl Outbox {
    pub fn ready_state(&self) -> ReadyState {
        ReadyState::from_u8(self.ready.load(Ordering::Acquire))
    }

    pub fn buffered(&self) -> usize {
        self.buffered.load(Ordering::SeqCst)
    }

    fn set_ready(&self, state: ReadyState) {
        self.ready.store(state as u8, Ordering::Release);
    }

    // ----- caller side -------------------------------------------------

    /// Checks that a message of `len` bytes may be queued now: the socket
    /// is OPEN and the queue has room under `limit`.
    pub fn check_room(&self, len: usize, limit: usize) -> Result<()> {
        let state = self.ready_state();
        if state != ReadyState::Open {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!("cannot send while the socket is {state:?}"),
            ));
        }
        let buffered = self.buffered();
        if len > limit {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!("message of {len} bytes is over the send queue limit of {limit} bytes"),
            ));
        }
        if buffered + len > limit {
            return Err(Error::new(
                ErrorKind::QueueFull,
                format!(
                    "send queue full: {buffered} bytes queued, limit {limit}; retry when bufferedAmount drops"
                ),
            ));
        }
        Ok(())
    }

    /// Appends a message as one masked frame if the socket is OPEN and the
    /// queue has room under `limit` bytes. `wire` is the payload as sent;
    /// `len`, the message's own size, is what counts against the limit and
    /// in `bufferedAmount`. Ok(true) when the loop must be asked to take
    /// the frames (it was not asked since it last took).
    pub fn push(
        &self,
        opcode: DataOpcode,
        wire: &[u8],
        len: usize,
        mask: [u8; 4],
        limit: usize,
    ) -> Result<bool> {
        let queue = lock(&self.queue);
        self.append(queue, opcode, 0, wire, len, mask, limit)
    }

    /// `push` for a message compressed for connection `generation`
    /// (`flags` has RSV1 when `wire` is compressed): refused if that
    /// connection was lost meanwhile, as its compression context went
    /// with it.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    #[allow(clippy::too_many_arguments)]
    pub fn push_for(
        &self,
        generation: u64,
        opcode: DataOpcode,
        flags: u8,
        wire: &[u8],
        len: usize,
        mask: [u8; 4],
        limit: usize,
    ) -> Result<bool> {
        let queue = lock(&self.queue);
        if queue.generation != generation {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "cannot send: the connection was lost while the message was compressed",
            ));
        }
        self.append(queue, opcode, flags, wire, len, mask, limit)
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn append(
        &self,
        mut queue: MutexGuard<'_, Queue>,
        opcode: DataOpcode,
        flags: u8,
        wire: &[u8],
        len: usize,
        mask: [u8; 4],
        limit: usize,
    ) -> Result<bool> {
        self.check_room(len, limit)?;
        append_frame(&mut queue.frames, opcode, flags, wire, mask);
        queue.payload += len;
        queue.messages += 1;
        self.queued.store(true, Ordering::Release);
        self.buffered.fetch_add(len, Ordering::AcqRel);
        Ok(!std::mem::replace(&mut queue.scheduled, true))
    }

    /// Asks for a ping with `payload` (at most 125 bytes, checked by the
    /// caller) on the open connection; a ping asked for and not yet sent is
    /// replaced. Ok(true) when the loop must be told.
    pub fn request_ping(&self, payload: Vec<u8>) -> Result<bool> {
        let mut queue = lock(&self.queue);
        if self.ready_state() != ReadyState::Open {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "cannot ping: the socket is not open",
            ));
        }
        Ok(queue.ping.replace(payload).is_none())
    }

    /// Records a close request and moves to CLOSING: an abort while
    /// CONNECTING, the closing handshake while OPEN. False when already
    /// CLOSING or CLOSED (closing twice is not an error, and asks nothing);
    /// while CLOSING the request is still recorded, so that a connection
    /// closing for another reason is not reconnected.
    pub fn request_close(&self, frame: Option<(u16, String)>) -> bool {
        let mut queue = lock(&self.queue);
        let request = match self.ready_state() {
            ReadyState::Connecting => CloseRequest::Abort,
            ReadyState::Open => CloseRequest::Handshake(frame),
            ReadyState::Closing => {
                queue.close.get_or_insert(CloseRequest::Handshake(frame));
                return false;
            }
            ReadyState::Closed => return false,
        };
        queue.close = Some(request);
        self.set_ready(ReadyState::Closing);
        true
    }

    // ----- IO-thread side ----------------------------------------------

    pub fn close_request(&self) -> Option<CloseRequest> {
        lock(&self.queue).close.clone()
    }

    /// The caller asked to close: no reconnection may follow.
    pub fn close_requested(&self) -> bool {
        lock(&self.queue).close.is_some()
    }

    // Read by compressed sends only.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub fn generation(&self) -> u64 {
        lock(&self.queue).generation
    }

    /// Back to CONNECTING for a new connection, unless the caller asked to
    /// close (`None`): drops every frame not yet written and returns their
    /// payload bytes.
    pub fn begin_reconnect(&self) -> Option<usize> {
        let mut queue = lock(&self.queue);
        if queue.close.is_some() || self.ready_state() == ReadyState::Closed {
            return None;
        }
        let dropped = self.buffered.swap(0, Ordering::AcqRel);
        self.set_ready(ReadyState::Connecting);
        queue.frames = Vec::new();
        queue.payload = 0;
        queue.messages = 0;
        queue.ping = None;
        queue.scheduled = false;
        queue.generation += 1;
        self.queued.store(false, Ordering::Release);
        Some(dropped)
    }

    /// CONNECTING → OPEN. False when a close got there first.
    pub fn mark_open(&self) -> bool {
        let _queue = lock(&self.queue);
        self.ready
            .compare_exchange(
                ReadyState::Connecting as u8,
                ReadyState::Open as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// A close frame is on its way (ours or the peer's): sends are refused
    /// from now on.
    pub fn mark_closing(&self) {
        let _queue = lock(&self.queue);
        if self.ready_state() != ReadyState::Closed {
            self.set_ready(ReadyState::Closing);
        }
    }

    /// CLOSED: whatever is still queued will never be sent. True the first
    /// time, so a close is recorded once.
    pub fn mark_closed(&self) -> bool {
        let mut queue = lock(&self.queue);
        let was = self.ready_state();
        self.set_ready(ReadyState::Closed);
        queue.frames = Vec::new();
        queue.payload = 0;
        queue.messages = 0;
        queue.scheduled = false;
        self.queued.store(false, Ordering::Release);
        self.buffered.store(0, Ordering::Release);
        was != ReadyState::Closed
    }

    /// Frames are queued that no connection pass has taken yet.
    pub fn has_frames(&self) -> bool {
        self.queued.load(Ordering::Acquire)
    }

    /// Moves every queued frame into `into` (which the caller passes empty;
    /// its buffer is kept for the next ones, so a steady flow allocates
    /// nothing). Returns the payload bytes moved; they stay in
    /// `bufferedAmount` until `written` is called for them.
    pub fn take(&self, into: &mut Vec<u8>) -> Taken {
        if !self.queued.load(Ordering::Acquire) {
            return Taken::default();
        }
        let mut queue = lock(&self.queue);
        std::mem::swap(&mut queue.frames, into);
        queue.frames.clear();
        queue.scheduled = false;
        self.queued.store(false, Ordering::Release);
        Taken {
            payload: std::mem::take(&mut queue.payload),
            messages: std::mem::take(&mut queue.messages),
        }
    }

    /// The ping the caller asked for, if one waits.
    pub fn take_ping(&self) -> Option<Vec<u8>> {
        lock(&self.queue).ping.take()
    }

    /// Bytes handed to the socket: they leave `bufferedAmount`.
    /// Returns `bufferedAmount` before and after.
    pub fn written(&self, bytes: usize) -> (usize, usize) {
        // SeqCst: see `Socket::set_buffered_amount_low_threshold`.
        let before = self.buffered.fetch_sub(bytes, Ordering::SeqCst);
        (before, before - bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [1, 2, 3, 4];

    fn open() -> Outbox {
        let outbox = Outbox::default();
        assert!(outbox.mark_open());
        outbox
    }

    #[test]
    fn sends_only_while_open() {
        let outbox = Outbox::default();
        let err = outbox
            .push(DataOpcode::Text, b"x", 1, MASK, 100)
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidState);
        assert!(outbox.mark_open());
        assert!(outbox.push(DataOpcode::Text, b"x", 1, MASK, 100).is_ok());
        outbox.mark_closing();
        let err = outbox
            .push(DataOpcode::Text, b"x", 1, MASK, 100)
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidState);
    }

    #[test]
    fn asks_the_loop_once_until_it_takes() {
        let outbox = open();
        assert!(outbox
            .push(DataOpcode::Binary, b"ab", 2, MASK, 100)
            .unwrap());
        assert!(!outbox
            .push(DataOpcode::Binary, b"cd", 2, MASK, 100)
            .unwrap());
        assert_eq!(outbox.buffered(), 4);
        let mut frames = Vec::new();
        assert_eq!(
            outbox.take(&mut frames),
            Taken {
                payload: 4,
                messages: 2
            }
        );
        assert_eq!(frames.len(), 2 * (2 + 4 + 2), "two masked frames");
        assert!(!outbox.has_frames());
        assert_eq!(outbox.buffered(), 4, "taken is not yet written");
        outbox.written(4);
        assert_eq!(outbox.buffered(), 0);
        assert!(outbox
            .push(DataOpcode::Binary, b"ef", 2, MASK, 100)
            .unwrap());
    }

    #[test]
    fn limits_leave_the_queue_unchanged() {
        let outbox = open();
        let err = outbox
            .push(DataOpcode::Binary, &[0; 11], 11, MASK, 10)
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::TooLarge);
        outbox
            .push(DataOpcode::Binary, &[0; 6], 6, MASK, 10)
            .unwrap();
        let err = outbox
            .push(DataOpcode::Binary, &[0; 5], 5, MASK, 10)
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::QueueFull);
        assert_eq!(outbox.buffered(), 6);
    }

    #[test]
    fn close_requests_follow_the_state() {
        let connecting = Outbox::default();
        assert!(connecting.request_close(None));
        assert_eq!(connecting.close_request(), Some(CloseRequest::Abort));
        assert!(!connecting.mark_open(), "a close got there first");

        let outbox = open();
        assert!(outbox.request_close(Some((1000, "bye".into()))));
        assert_eq!(
            outbox.close_request(),
            Some(CloseRequest::Handshake(Some((1000, "bye".into()))))
        );
        assert_eq!(outbox.ready_state(), ReadyState::Closing);
        assert!(!outbox.request_close(None), "closing twice asks nothing");
    }

    #[test]
    fn closed_drops_the_queue_once() {
        let outbox = open();
        outbox
            .push(DataOpcode::Text, b"lost", 4, MASK, 100)
            .unwrap();
        assert!(outbox.mark_closed());
        assert!(!outbox.mark_closed());
        assert_eq!(outbox.buffered(), 0);
        assert!(!outbox.has_frames());
        outbox.mark_closing();
        assert_eq!(outbox.ready_state(), ReadyState::Closed);
    }

    #[test]
    fn reconnecting_drops_the_queue_and_refuses_old_compressed_frames() {
        let outbox = open();
        let generation = outbox.generation();
        outbox
            .push_for(generation, DataOpcode::Text, 0, b"lost", 4, MASK, 100)
            .unwrap();
        assert_eq!(outbox.begin_reconnect(), Some(4));
        assert_eq!(outbox.ready_state(), ReadyState::Connecting);
        assert_eq!(outbox.buffered(), 0);
        assert!(!outbox.has_frames());
        assert!(outbox.mark_open());
        let err = outbox
            .push_for(generation, DataOpcode::Text, 0, b"old", 3, MASK, 100)
            .unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::InvalidState,
            "compressed for the lost one"
        );
        let now = outbox.generation();
        assert!(outbox
            .push_for(now, DataOpcode::Text, 0, b"new", 3, MASK, 100)
            .is_ok());
    }

    #[test]
    fn a_close_asked_while_closing_forbids_reconnecting() {
        let outbox = open();
        outbox.mark_closing();
        assert!(!outbox.request_close(None), "nothing to ask the loop");
        assert!(outbox.close_requested());
        assert_eq!(outbox.begin_reconnect(), None);
    }
}
