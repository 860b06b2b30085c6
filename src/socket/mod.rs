//! The part of a socket that every thread may touch, and what callers do
//! to it: send, close, bind, unbind, free.
//!
//! A socket knows nothing of the IO engine that serves it: it asks for
//! work through the narrow `Loop` trait (the IO thread in the library, a
//! recorder in unit tests), and the engine reads and records through the
//! `pub(crate)` parts below.

mod free_gate;
mod listeners;
mod outbox;
mod stats;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::answer::Answer;
use crate::event::{message_len, EventKind, Listener, ListenerId, Queued};
use crate::framing::{new_mask, Agreement, DataOpcode};
#[cfg(feature = "deflate")]
use crate::framing::{Compressor, RSV1};
use crate::options::{check_header, Options};
use crate::route::Route;
use crate::status::{Error, ErrorKind, Result};
use crate::target::Target;

use free_gate::FreeGate;
pub(crate) use listeners::{BindingList, Bound, Listeners, PendingReplay, Replay};
pub(crate) use outbox::{CloseRequest, Outbox, ReadyState};
pub(crate) use stats::{SharedStats, Stats};

/// Header names and values for an opening handshake.
pub(crate) type Headers = Vec<(String, String)>;

/// What a socket asks of the loop that serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// Frames wait in the outbox.
    Flush,
    /// The outbox holds a close request.
    Close,
    /// The caller freed the socket: end it quietly.
    Free,
    /// Late listeners wait for the events they missed.
    Replay,
    /// A `message` listener was bound while messages were held.
    DeliverHeld,
    /// Reading paused while undelivered messages were over the cap; the
    /// host has delivered enough of them.
    Resume,
    /// The caller asked to drop the connection and connect again.
    Reconnect,
    /// The outbox holds a ping the caller asked for.
    Ping,
}

/// Where a socket posts its requests; any thread may post.
pub(crate) trait Loop: Send + Sync {
    fn post(&self, socket: &Arc<Socket>, request: Request);
}

/// Where a socket opened with a dispatcher sends its events: a queue that
/// the host drains on its own thread (`ws_dispatch`).
pub(crate) trait Host: Send + Sync {
    fn queue(&self, socket: &Arc<Socket>, event: Queued);
    /// The socket was freed: it no longer keeps the host in use.
    fn detach(&self);
}

pub(crate) struct Socket {
    pub handle: u64,
    pub target: Target,
    pub options: Options,
    pub route: Route,
    serving: Arc<dyn Loop>,
    /// Set for a socket opened with a dispatcher.
    host: Option<Arc<dyn Host>>,
    /// Payload bytes of messages queued for the host and not yet run.
    undelivered: AtomicUsize,
    /// The IO thread stopped reading: held and undelivered messages were
    /// over the cap. Whoever brings them under half the cap resumes it.
    reading_paused: AtomicBool,
    outbox: Outbox,
    /// The current connection's subprotocol and the server's
    /// `Sec-WebSocket-Extensions`; empty until open, and again after a
    /// lost connection.
    protocol: Mutex<String>,
    extensions: Mutex<String>,
    /// Headers for the next opening handshake, once `set_header` edited
    /// the options' list.
    headers: Mutex<Option<Arc<Headers>>>,
    /// The answer to the last opening handshake, once it came.
    answer: Mutex<Option<Arc<Answer>>>,
    /// The URL the last redirect led to.
    redirected_to: Mutex<Option<String>>,
    /// permessage-deflate was agreed with the current connection: sends
    /// take `compressor`. Read first so that sends without deflate touch
    /// no lock.
    #[cfg(feature = "deflate")]
    deflating: AtomicBool,
    /// The current connection's compressor, with the outbox generation
    /// (connection) it compresses for.
    #[cfg(feature = "deflate")]
    compressor: Mutex<Option<(u64, Arc<Compressor>)>>,
    listeners: Listeners,
    gate: FreeGate,
    /// Published by the IO thread (shared with the stream, which stores
    /// the bytes on the wire).
    pub stats: Arc<SharedStats>,
    /// `bufferedamountlow` fires when `bufferedAmount` falls from above
    /// this to at or below it.
    low_threshold: AtomicUsize,
}

impl Socket {
    pub fn new(
        handle: u64,
        target: Target,
        options: Options,
        route: Route,
        serving: Arc<dyn Loop>,
        host: Option<Arc<dyn Host>>,
    ) -> Socket {
        Socket {
            handle,
            target,
            options,
            route,
            serving,
            host,
            undelivered: AtomicUsize::new(0),
            reading_paused: AtomicBool::new(false),
            outbox: Outbox::default(),
            protocol: Mutex::default(),
            extensions: Mutex::default(),
            headers: Mutex::new(None),
            answer: Mutex::new(None),
            redirected_to: Mutex::new(None),
            #[cfg(feature = "deflate")]
            deflating: AtomicBool::new(false),
            #[cfg(feature = "deflate")]
            compressor: Mutex::new(None),
            listeners: Listeners::default(),
            gate: FreeGate::default(),
            stats: Arc::default(),
            low_threshold: AtomicUsize::new(0),
        }
    }

    pub fn ready_state(&self) -> ReadyState {
        self.outbox.ready_state()
    }

    pub fn buffered_amount(&self) -> usize {
        self.outbox.buffered()
    }

    /// SeqCst here and in `written`, with the buffered amount's update
    /// and read: a caller that sets the threshold and then reads
    /// `bufferedAmount` either sees the fall or the IO thread sees the new
    /// threshold, never neither (a store then a load on each side).
    pub fn set_buffered_amount_low_threshold(&self, bytes: usize) {
        self.low_threshold.store(bytes, Ordering::SeqCst);
    }

    /// Records `bytes` of payload written: Some(bufferedAmount) when that
    /// took it from above the low threshold to at or below it while a
    /// `bufferedamountlow` listener is bound (otherwise nothing is
    /// compared: the message path does not pay for an unused event).
    #[inline]
    pub(crate) fn written(&self, bytes: usize) -> Option<usize> {
        let (before, after) = self.outbox.written(bytes);
        if !self.listeners.wants_low() {
            return None;
        }
        let threshold = self.low_threshold.load(Ordering::SeqCst);
        (before > threshold && after <= threshold).then_some(after)
    }

    pub fn protocol(&self) -> String {
        crate::sync::lock(&self.protocol).clone()
    }

    pub fn extensions(&self) -> String {
        crate::sync::lock(&self.extensions).clone()
    }

    /// The caller's headers for the next opening handshake.
    pub fn handshake_headers(&self) -> Arc<Headers> {
        crate::sync::lock(&self.headers)
            .clone()
            .unwrap_or_else(|| Arc::new(self.options.headers.clone()))
    }

    /// The answer to the last opening handshake, if one came.
    pub fn answer(&self) -> Option<Arc<Answer>> {
        crate::sync::lock(&self.answer).clone()
    }

    /// The URL as parsed, or where redirects led.
    pub fn url(&self) -> String {
        crate::sync::lock(&self.redirected_to)
            .clone()
            .unwrap_or_else(|| self.target.url.to_string())
    }

    pub(crate) fn set_redirected_to(&self, url: Option<&str>) {
        *crate::sync::lock(&self.redirected_to) = url.map(str::to_owned);
    }

    pub fn is_freed(&self) -> bool {
        self.gate.is_freed()
    }

    // ----- what callers do ---------------------------------------------

    /// Sends a ping with `payload` (at most 125 bytes) on the open
    /// connection, ahead of queued messages; its pong gives the round-trip
    /// time. A ping asked for and not yet sent is replaced.
    pub fn ping(self: &Arc<Self>, payload: &[u8]) -> Result<()> {
        if payload.len() > 125 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("a ping carries at most 125 bytes, not {}", payload.len()),
            ));
        }
        if self.outbox.request_ping(payload.to_vec())? {
            self.serving.post(self, Request::Ping);
        }
        Ok(())
    }

    /// Queues a text or binary message: checks the state and limits, then
    /// copies `payload` once, as a masked frame, into the outbox
    /// (compressed first when permessage-deflate was agreed).
    pub fn send(self: &Arc<Self>, opcode: DataOpcode, payload: &[u8]) -> Result<()> {
        let len = payload.len();
        let max = self.options.max_message_size;
        if len > max {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!("message of {len} bytes is over the maximum message size of {max} bytes"),
            ));
        }
        let mask = new_mask();
        let limit = self.options.max_send_queue;
        #[cfg(feature = "deflate")]
        if self.deflating.load(Ordering::Acquire) {
            let current = crate::sync::lock(&self.compressor).clone();
            if let Some((generation, compressor)) = current {
                return self.send_compressed(generation, &compressor, opcode, payload, mask);
            }
        }
        if self.outbox.push(opcode, payload, len, mask, limit)? {
            self.serving.post(self, Request::Flush);
        }
        Ok(())
    }

    /// `send` with deflate agreed. The checks come before compressing, so
    /// a refused message never enters the compression context (the peer's
    /// copy of it would go out of step); holding the send order keeps them
    /// true until the push, as only this socket's sends add to its queue.
    /// `generation` names the connection the compressor serves: if it was
    /// lost meanwhile, the push is refused.
    #[cfg(feature = "deflate")]
    fn send_compressed(
        self: &Arc<Self>,
        generation: u64,
        compressor: &Compressor,
        opcode: DataOpcode,
        payload: &[u8],
        mask: [u8; 4],
    ) -> Result<()> {
        let limit = self.options.max_send_queue;
        let mut sending = compressor.begin();
        self.outbox.check_room(payload.len(), limit)?;
        let ask = sending.with_message(payload, |compressed| match compressed {
            Some(wire) => {
                self.outbox
                    .push_for(generation, opcode, RSV1, wire, payload.len(), mask, limit)
            }
            None => {
                self.outbox
                    .push_for(generation, opcode, 0, payload, payload.len(), mask, limit)
            }
        })?;
        drop(sending);
        if ask {
            self.serving.post(self, Request::Flush);
        }
        Ok(())
    }

    /// Starts closing as `close()` does; closing twice is not an error.
    pub fn close(self: &Arc<Self>, frame: Option<(u16, String)>) {
        if self.outbox.request_close(frame) {
            self.serving.post(self, Request::Close);
        }
    }

    /// Asks for the current connection to be dropped (closed with 1000
    /// when open) and a new one made at once, with the failure count reset.
    /// Only for a socket with reconnection on, before it is closed.
    pub fn reconnect(self: &Arc<Self>) -> Result<()> {
        if !self.options.reconnect.enabled {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "reconnection is off for this socket (turn it on with ws_options_set_reconnect)",
            ));
        }
        if self.outbox.close_requested() || self.ready_state() == ReadyState::Closed {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "the socket is closed or closing by request",
            ));
        }
        self.serving.post(self, Request::Reconnect);
        Ok(())
    }

    /// Sets (or with `None` removes) a header of the next opening
    /// handshakes, replacing every value of that name.
    pub fn set_header(&self, name: &str, value: Option<&str>) -> Result<()> {
        check_header(name, value.unwrap_or(""))?;
        if self.ready_state() == ReadyState::Closed {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "the socket is closed: no handshake will follow",
            ));
        }
        let mut edited = crate::sync::lock(&self.headers);
        let mut headers: Headers = match edited.as_ref() {
            Some(h) => h.as_ref().clone(),
            None => self.options.headers.clone(),
        };
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if let Some(value) = value {
            headers.push((name.to_owned(), value.to_owned()));
        }
        *edited = Some(Arc::new(headers));
        Ok(())
    }

    /// Releases the socket: from outside every callback, no callback of it
    /// runs after this returns; from inside any callback this never waits,
    /// and no callback of it starts afterwards (see `free_gate`).
    pub fn free(self: &Arc<Self>) {
        if !self.gate.free() {
            return;
        }
        // Finalizers run as the bindings drop, here, outside every lock; a
        // snapshot held by a running callback keeps its bindings until it
        // returns.
        drop(self.listeners.seal());
        self.serving.post(self, Request::Free);
        if let Some(host) = &self.host {
            host.detach();
        }
    }

    /// Adds a listener; if its event already happened (or messages wait
    /// for it), asks the loop to catch it up. On an error the listener is
    /// dropped, which releases it.
    pub fn bind(self: &Arc<Self>, kind: EventKind, listener: Box<dyn Listener>) -> Result<()> {
        if self.is_freed() {
            return Err(Error::invalid_handle());
        }
        match (self.listeners.bind(kind, listener)?, &self.host) {
            // The host's thread runs the replay: never inside this call.
            (Bound::NeedsReplay | Bound::NeedsHeld, Some(_)) => {
                self.queue_for_host(Queued::CatchUp)
            }
            (Bound::NeedsReplay, None) => self.serving.post(self, Request::Replay),
            (Bound::NeedsHeld, None) => self.serving.post(self, Request::DeliverHeld),
            (Bound::Quietly | Bound::Duplicate, _) => {}
        }
        Ok(())
    }

    /// Removes a listener. Answers false when it was not bound.
    pub fn unbind(&self, kind: EventKind, id: ListenerId) -> bool {
        self.listeners.unbind(kind, id)
    }

    // ----- what the IO engine reads and records --------------------------

    pub(crate) fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    pub(crate) fn listeners(&self) -> &Listeners {
        &self.listeners
    }

    pub(crate) fn set_answer(&self, answer: Option<Answer>) {
        *crate::sync::lock(&self.answer) = answer.map(Arc::new);
    }

    /// CONNECTING → OPEN with the server's chosen subprotocol and
    /// extensions. False when a close got there first.
    pub(crate) fn mark_open(
        &self,
        protocol: Option<String>,
        extensions: String,
        deflate: Option<Agreement>,
    ) -> bool {
        *crate::sync::lock(&self.protocol) = protocol.unwrap_or_default();
        *crate::sync::lock(&self.extensions) = extensions;
        // Set before OPEN is published: a send that sees OPEN sees it.
        #[cfg(feature = "deflate")]
        if let Some(agreement) = deflate {
            let d = &self.options.deflate;
            let compressor = Compressor::new(&agreement, d.level, d.threshold);
            *crate::sync::lock(&self.compressor) =
                Some((self.outbox.generation(), Arc::new(compressor)));
            self.deflating.store(true, Ordering::Release);
        }
        let _ = deflate;
        self.outbox.mark_open()
    }

    /// The connection was lost and another will be tried: back to
    /// CONNECTING, with what was queued for the lost one dropped (the
    /// bytes, returned) and its subprotocol, extensions and compressor
    /// gone. `None` when the caller asked to close meanwhile: then the
    /// socket must end instead.
    pub(crate) fn begin_reconnect(&self) -> Option<usize> {
        let dropped = self.outbox.begin_reconnect()?;
        crate::sync::lock(&self.protocol).clear();
        crate::sync::lock(&self.extensions).clear();
        #[cfg(feature = "deflate")]
        {
            self.deflating.store(false, Ordering::Release);
            *crate::sync::lock(&self.compressor) = None;
        }
        Some(dropped)
    }

    /// Messages received and not yet given to a listener: held for one,
    /// or queued for the host.
    fn undelivered_bytes(&self) -> usize {
        self.listeners.held_bytes() + self.undelivered.load(Ordering::SeqCst)
    }

    fn undelivered_cap(&self) -> usize {
        self.options
            .max_send_queue
            .max(self.options.max_message_size)
    }

    /// Undelivered messages over the cap: the IO thread stops reading (TCP
    /// then pushes back on the peer) until they are delivered.
    pub(crate) fn hold_is_full(&self) -> bool {
        self.undelivered_bytes() > self.undelivered_cap()
    }

    /// Marks reading paused if the messages are still over the cap. Set
    /// before the second look, so that a host draining meanwhile either
    /// sees the mark or is seen to have drained.
    pub(crate) fn pause_reading(&self) -> bool {
        self.reading_paused.store(true, Ordering::SeqCst);
        if self.hold_is_full() {
            return true;
        }
        self.reading_paused.store(false, Ordering::SeqCst);
        false
    }

    pub(crate) fn reading_resumed(&self) {
        self.reading_paused.store(false, Ordering::SeqCst);
    }

    /// After a delivery on the host's thread: asks the IO thread to read
    /// again once the undelivered messages fell to half the cap.
    pub(crate) fn resume_if_drained(self: &Arc<Self>) {
        if self.reading_paused.load(Ordering::SeqCst)
            && self.undelivered_bytes() <= self.undelivered_cap() / 2
            && self.reading_paused.swap(false, Ordering::SeqCst)
        {
            self.serving.post(self, Request::Resume);
        }
    }

    pub(crate) fn host(&self) -> Option<&Arc<dyn Host>> {
        self.host.as_ref()
    }

    /// Queues an event for the host's thread; nothing once freed.
    pub(crate) fn queue_for_host(self: &Arc<Self>, event: Queued) {
        let Some(host) = &self.host else {
            return;
        };
        if self.is_freed() {
            return;
        }
        if let Queued::Message(message) = &event {
            self.undelivered
                .fetch_add(message_len(message), Ordering::SeqCst);
        }
        host.queue(self, event);
    }

    /// A queued message of `bytes` left the host's queue.
    pub(crate) fn delivered(&self, bytes: usize) {
        self.undelivered.fetch_sub(bytes, Ordering::SeqCst);
    }

    /// Runs `f` as a callback of this socket (`ws_free` waits for it),
    /// unless the socket is freed.
    pub(crate) fn with_gate(&self, f: impl FnOnce()) {
        self.gate.run(f);
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A socket without an IO thread: its loop records what it was asked.

    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    pub(crate) struct RecordingLoop {
        pub requests: Mutex<Vec<Request>>,
    }

    impl Loop for RecordingLoop {
        fn post(&self, _: &Arc<Socket>, request: Request) {
            self.requests.lock().unwrap().push(request);
        }
    }

    impl RecordingLoop {
        pub fn take(&self) -> Vec<Request> {
            std::mem::take(&mut *self.requests.lock().unwrap())
        }
    }

    pub(crate) fn socket_with(options: Options) -> (Arc<Socket>, Arc<RecordingLoop>) {
        let target = Target::parse("ws://127.0.0.1:9/").unwrap();
        let route = Route::new(&target, &options).unwrap();
        let recorder = Arc::new(RecordingLoop::default());
        let socket = Socket::new(1, target, options, route, recorder.clone(), None);
        (Arc::new(socket), recorder)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::socket_with;
    use super::*;
    use crate::event::{EventView, ListenerId};

    struct Nop(usize);

    impl Listener for Nop {
        fn call(&self, _: u64, _: &EventView<'_>) {}
        fn identity(&self) -> ListenerId {
            ListenerId(self.0, 0)
        }
    }

    #[test]
    fn sends_ask_for_one_flush_until_the_loop_takes() {
        let (socket, lp) = socket_with(Options::default());
        assert!(socket.mark_open(Some("chat".into()), String::new(), None));
        assert_eq!(socket.protocol(), "chat");
        socket.send(DataOpcode::Text, b"a").unwrap();
        socket.send(DataOpcode::Text, b"b").unwrap();
        assert_eq!(lp.take(), [Request::Flush]);
        socket.outbox().take(&mut Vec::new());
        socket.send(DataOpcode::Text, b"c").unwrap();
        assert_eq!(lp.take(), [Request::Flush]);
    }

    #[test]
    fn a_message_over_the_maximum_is_refused_before_the_queue() {
        let options = Options {
            max_message_size: 4,
            ..Options::default()
        };
        let (socket, lp) = socket_with(options);
        socket.mark_open(None, String::new(), None);
        let err = socket.send(DataOpcode::Binary, &[0; 5]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::TooLarge);
        assert!(lp.take().is_empty());
        assert_eq!(socket.buffered_amount(), 0);
    }

    #[test]
    fn close_asks_once_and_free_asks_once() {
        let (socket, lp) = socket_with(Options::default());
        socket.close(None);
        socket.close(None);
        assert_eq!(socket.ready_state(), ReadyState::Closing);
        socket.free();
        socket.free();
        assert_eq!(lp.take(), [Request::Close, Request::Free]);
        let err = socket.bind(EventKind::Open, Box::new(Nop(1))).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidHandle);
    }

    #[test]
    fn binding_late_asks_for_a_replay_or_the_held_messages() {
        let (socket, lp) = socket_with(Options::default());
        socket.bind(EventKind::Open, Box::new(Nop(1))).unwrap();
        assert!(lp.take().is_empty());
        socket.listeners().record_open(0);
        socket.bind(EventKind::Open, Box::new(Nop(2))).unwrap();
        assert_eq!(lp.take(), [Request::Replay]);
        socket.listeners().hold(tungstenite::Message::text("x"));
        socket.bind(EventKind::Message, Box::new(Nop(3))).unwrap();
        assert_eq!(lp.take(), [Request::DeliverHeld]);
    }
}
