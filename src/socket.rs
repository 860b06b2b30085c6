//! The part of a socket that every thread may touch: ready state, the
//! outbound queue, listeners and the record of past events.
//!
//! The IO thread owns the network side (`io::connection`); callers reach it
//! only through this struct and the reactor's command queue.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::{self, ThreadId};

use tungstenite::Message;

use crate::event::{Binding, CloseRecord, ErrorRecord, EventKind, Listener, ListenerId};
use crate::io::{Command, IoShared, Route};
use crate::options::Options;
use crate::status::{Error, ErrorKind, Result};
use crate::target::Target;
use crate::wire::{append_frame, new_mask, DataOpcode};

thread_local! {
    /// The socket whose connection hands its outbound queue to the protocol
    /// right after the callback now running on this (the IO) thread
    /// returns: a send to it from that callback needs no flush command.
    static STAGING: Cell<u64> = const { Cell::new(0) };
    /// This thread's id, kept: `thread::current()` counts a reference up
    /// and down, twice per delivered message.
    static THIS_THREAD: ThreadId = thread::current().id();
}

/// Marks `handle` as staged by its connection after the current delivery;
/// the mark lifts when the guard drops (also on unwind).
pub struct StagingGuard(u64);

impl StagingGuard {
    pub fn new(handle: u64) -> StagingGuard {
        StagingGuard(STAGING.replace(handle))
    }
}

impl Drop for StagingGuard {
    fn drop(&mut self) {
        STAGING.set(self.0);
    }
}

/// `readyState` values, as in the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ReadyState {
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
#[derive(Debug, Clone)]
pub enum CloseRequest {
    /// Closed while connecting: drop the attempt.
    Abort,
    /// The closing handshake, with an optional code and reason.
    Handshake(Option<(u16, String)>),
}

pub type BindingList = Arc<Vec<Arc<Binding>>>;

/// Listener lists and the events a late listener must still see.
#[derive(Default)]
struct Listeners {
    lists: [BindingList; 4],
    opened: bool,
    error: Option<ErrorRecord>,
    closed: Option<CloseRecord>,
    held: VecDeque<Message>,
}

struct Outbound {
    /// Encoded frames, masked, ready for the wire (see `wire`). Empty
    /// exactly when `Socket::queued` is false.
    frames: Vec<u8>,
    /// Payload bytes in `frames`: what they add to `bufferedAmount`.
    payload: usize,
    /// A flush command is on its way to the IO thread.
    scheduled: bool,
}

/// Which thread, if any, is running a callback of this socket right now.
#[derive(Default)]
struct Gate {
    running_on: Option<ThreadId>,
    /// Threads in `free` waiting for the mark to clear: std's condvar makes
    /// a futex call on every notify, so notify only when one waits.
    waiters: usize,
}

pub struct Socket {
    pub handle: u64,
    pub target: Target,
    pub options: Options,
    pub route: Route,
    io: Arc<IoShared>,
    /// Written only with `outbound` locked, so a send never slips into the
    /// queue after the state left OPEN.
    ready: AtomicU8,
    buffered: AtomicUsize,
    outbound: Mutex<Outbound>,
    /// The outbound queue is not empty; lets the IO thread skip the lock
    /// when it is. A send that the IO thread misses here sends a flush
    /// command (or runs on the IO thread, inside a delivery it stages).
    queued: AtomicBool,
    close_request: Mutex<Option<CloseRequest>>,
    protocol: OnceLock<String>,
    listeners: Mutex<Listeners>,
    /// Late listeners waiting for the event they missed.
    replays: Mutex<Vec<(EventKind, Weak<Binding>)>>,
    has_replays: AtomicBool,
    /// Payload bytes in `listeners.held`; written under that lock, read
    /// without it by the IO thread before every read.
    held_bytes: AtomicUsize,
    freed: AtomicBool,
    gate: Mutex<Gate>,
    gate_changed: Condvar,
}

/// Locks a mutex whose data stays consistent even if a holder panicked:
/// every critical section here is a few plain assignments.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Payload length of a data message.
pub fn message_len(message: &Message) -> usize {
    match message {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 0,
    }
}

impl Socket {
    pub fn new(
        handle: u64,
        target: Target,
        options: Options,
        route: Route,
        io: Arc<IoShared>,
    ) -> Socket {
        Socket {
            handle,
            target,
            options,
            route,
            io,
            ready: AtomicU8::new(ReadyState::Connecting as u8),
            buffered: AtomicUsize::new(0),
            outbound: Mutex::new(Outbound {
                frames: Vec::new(),
                payload: 0,
                scheduled: false,
            }),
            queued: AtomicBool::new(false),
            close_request: Mutex::new(None),
            protocol: OnceLock::new(),
            listeners: Mutex::new(Listeners::default()),
            replays: Mutex::new(Vec::new()),
            has_replays: AtomicBool::new(false),
            held_bytes: AtomicUsize::new(0),
            freed: AtomicBool::new(false),
            gate: Mutex::new(Gate::default()),
            gate_changed: Condvar::new(),
        }
    }

    pub fn ready_state(&self) -> ReadyState {
        ReadyState::from_u8(self.ready.load(Ordering::Acquire))
    }

    pub fn buffered_amount(&self) -> usize {
        self.buffered.load(Ordering::Acquire)
    }

    pub fn protocol(&self) -> &str {
        self.protocol.get().map_or("", String::as_str)
    }

    pub fn url(&self) -> &str {
        self.target.url.as_str()
    }

    pub fn is_freed(&self) -> bool {
        self.freed.load(Ordering::Acquire)
    }

    // ----- caller side -------------------------------------------------

    /// Queues a text or binary message: checks the state and limits, then
    /// copies `payload` once, as a masked frame, into the outbound bytes.
    pub fn send(&self, opcode: DataOpcode, payload: &[u8]) -> Result<()> {
        let len = payload.len();
        if len > self.options.max_message_size {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "message of {len} bytes is over the maximum message size of {} bytes",
                    self.options.max_message_size
                ),
            ));
        }
        let mask = new_mask();
        let mut out = lock(&self.outbound);
        let state = self.ready_state();
        if state != ReadyState::Open {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!("cannot send while the socket is {state:?}"),
            ));
        }
        let buffered = self.buffered.load(Ordering::Acquire);
        let limit = self.options.max_send_queue;
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
        append_frame(&mut out.frames, opcode, payload, mask);
        out.payload += len;
        self.queued.store(true, Ordering::Release);
        self.buffered.fetch_add(len, Ordering::AcqRel);
        // From a callback of this socket's message, its connection takes
        // the queue as soon as the callback returns.
        let schedule = !out.scheduled && STAGING.get() != self.handle;
        out.scheduled |= schedule;
        drop(out);
        if schedule {
            self.io.send(Command::Flush(self.handle));
        }
        Ok(())
    }

    /// Starts closing as `close()` does; closing twice is not an error.
    pub fn close(&self, frame: Option<(u16, String)>) {
        let request = {
            let _out = lock(&self.outbound);
            match self.ready_state() {
                ReadyState::Connecting => CloseRequest::Abort,
                ReadyState::Open => CloseRequest::Handshake(frame),
                ReadyState::Closing | ReadyState::Closed => return,
            }
        };
        self.set_close_request(request);
    }

    fn set_close_request(&self, request: CloseRequest) {
        {
            let _out = lock(&self.outbound);
            let state = self.ready_state();
            if matches!(state, ReadyState::Closing | ReadyState::Closed) {
                return;
            }
            *lock(&self.close_request) = Some(request);
            self.ready
                .store(ReadyState::Closing as u8, Ordering::Release);
        }
        self.io.send(Command::Close(self.handle));
    }

    /// Releases the socket: no callback runs after this returns, unless it
    /// is called from inside one of this socket's callbacks, in which case
    /// none runs after that callback returns.
    pub fn free(&self) {
        if self.freed.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = thread::current().id();
        let mut gate = lock(&self.gate);
        while gate.running_on.is_some_and(|t| t != me) {
            gate.waiters += 1;
            gate = self
                .gate_changed
                .wait(gate)
                .unwrap_or_else(|e| e.into_inner());
            gate.waiters -= 1;
        }
        drop(gate);
        // Finalizers run as the bindings drop, outside every lock; a
        // snapshot held by a running callback keeps its bindings until it
        // returns.
        let lists = {
            let mut l = lock(&self.listeners);
            l.held.clear();
            self.held_bytes.store(0, Ordering::Release);
            std::mem::take(&mut l.lists)
        };
        for list in lists {
            for binding in list.iter() {
                binding.mark_removed();
            }
            drop(list);
        }
        self.io.send(Command::Free(self.handle));
    }

    /// Adds a listener and, if its event already happened, asks the IO
    /// thread to replay it. A duplicate of a bound listener is disarmed and
    /// dropped.
    pub fn bind(&self, kind: EventKind, mut listener: Box<dyn Listener>) -> Result<()> {
        let id = listener.identity();
        let command = {
            let mut l = lock(&self.listeners);
            // Checked under the lock `free` takes the lists under, so a
            // binding can never slip in after them.
            if self.is_freed() {
                return Err(Error::invalid_handle());
            }
            let list = &mut l.lists[kind.index()];
            if list.iter().any(|b| b.listener.identity() == id) {
                // As addEventListener: the same pair bound twice runs once.
                listener.disarm();
                None
            } else {
                let binding = Arc::new(Binding::new(listener));
                let weak = Arc::downgrade(&binding);
                let mut new_list = Vec::with_capacity(list.len() + 1);
                new_list.extend(list.iter().cloned());
                new_list.push(binding);
                *list = Arc::new(new_list);
                let happened = match kind {
                    EventKind::Open => l.opened,
                    EventKind::Error => l.error.is_some(),
                    EventKind::Close => l.closed.is_some(),
                    EventKind::Message => false,
                };
                if happened {
                    // Queued on the socket, not in the command: the IO
                    // thread runs pending replays before delivering any
                    // later event, so they keep protocol order.
                    lock(&self.replays).push((kind, weak));
                    self.has_replays.store(true, Ordering::Release);
                    Some(Command::Replay(self.handle))
                } else if kind == EventKind::Message && !l.held.is_empty() {
                    Some(Command::DeliverHeld(self.handle))
                } else {
                    None
                }
            }
        };
        if let Some(command) = command {
            self.io.send(command);
        }
        Ok(())
    }

    /// Removes a listener. Answers false when it was not bound.
    pub fn unbind(&self, kind: EventKind, id: ListenerId) -> bool {
        let removed = {
            let mut l = lock(&self.listeners);
            let list = &mut l.lists[kind.index()];
            let Some(pos) = list.iter().position(|b| b.listener.identity() == id) else {
                return false;
            };
            let mut new_list: Vec<_> = list.iter().cloned().collect();
            let removed = new_list.remove(pos);
            *list = Arc::new(new_list);
            removed
        };
        removed.mark_removed();
        true
    }

    // ----- IO-thread side ----------------------------------------------

    pub fn close_request(&self) -> Option<CloseRequest> {
        lock(&self.close_request).clone()
    }

    /// CONNECTING → OPEN. False when a close got there first.
    pub fn mark_open(&self, protocol: Option<String>) -> bool {
        if let Some(p) = protocol {
            let _ = self.protocol.set(p);
        }
        let _out = lock(&self.outbound);
        self.ready
            .compare_exchange(
                ReadyState::Connecting as u8,
                ReadyState::Open as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// The peer started closing: sends are refused from now on.
    pub fn mark_closing(&self) {
        let _out = lock(&self.outbound);
        if self.ready_state() != ReadyState::Closed {
            self.ready
                .store(ReadyState::Closing as u8, Ordering::Release);
        }
    }

    /// CLOSED: whatever is still queued will never be sent.
    pub fn mark_closed(&self) {
        let mut out = lock(&self.outbound);
        self.ready
            .store(ReadyState::Closed as u8, Ordering::Release);
        out.frames = Vec::new();
        out.payload = 0;
        self.queued.store(false, Ordering::Release);
        out.scheduled = false;
        self.buffered.store(0, Ordering::Release);
    }

    /// Frames are queued that no connection pass has taken yet.
    pub fn has_outbound(&self) -> bool {
        self.queued.load(Ordering::Acquire)
    }

    /// Moves every queued frame into `into` (which the caller passes empty;
    /// its buffer is kept for the next ones, so a steady flow allocates
    /// nothing). Returns the payload bytes moved; they stay in
    /// `bufferedAmount` until `written` is called for them.
    pub fn take_outbound(&self, into: &mut Vec<u8>) -> usize {
        if !self.queued.load(Ordering::Acquire) {
            return 0;
        }
        let mut out = lock(&self.outbound);
        std::mem::swap(&mut out.frames, into);
        out.frames.clear();
        out.scheduled = false;
        self.queued.store(false, Ordering::Release);
        std::mem::take(&mut out.payload)
    }

    /// Bytes handed to the socket: they leave `bufferedAmount`.
    pub fn written(&self, bytes: usize) {
        if bytes > 0 {
            self.buffered.fetch_sub(bytes, Ordering::AcqRel);
        }
    }

    // ----- event recording and listener snapshots ----------------------

    /// Records `open` and returns the listeners to call.
    pub fn record_open(&self) -> BindingList {
        let mut l = lock(&self.listeners);
        l.opened = true;
        l.lists[EventKind::Open.index()].clone()
    }

    pub fn record_error(&self, record: ErrorRecord) -> (BindingList, ErrorRecord) {
        let mut l = lock(&self.listeners);
        l.error = Some(record.clone());
        (l.lists[EventKind::Error.index()].clone(), record)
    }

    pub fn record_close(&self, record: CloseRecord) -> (BindingList, CloseRecord) {
        let mut l = lock(&self.listeners);
        l.closed = Some(record.clone());
        (l.lists[EventKind::Close.index()].clone(), record)
    }

    /// Appends an incoming message to the hold queue; it leaves through
    /// `next_held`, in order, once a `message` listener is bound.
    pub fn hold(&self, message: Message) {
        let mut l = lock(&self.listeners);
        self.held_bytes
            .fetch_add(message_len(&message), Ordering::AcqRel);
        l.held.push_back(message);
    }

    /// The fast path for a message: the listeners to give it to now, or
    /// `Err` with the message when it must wait behind held ones or for a
    /// listener (then the caller holds it and catches up).
    pub fn ready_for(
        &self,
        message: Message,
    ) -> std::result::Result<(Message, BindingList), Message> {
        let l = lock(&self.listeners);
        let list = &l.lists[EventKind::Message.index()];
        if !l.held.is_empty() || list.is_empty() {
            return Err(message);
        }
        Ok((message, list.clone()))
    }

    /// The next held message and the listeners to give it to, if any
    /// listener is bound.
    pub fn next_held(&self) -> Option<(Message, BindingList)> {
        let mut l = lock(&self.listeners);
        let list = l.lists[EventKind::Message.index()].clone();
        if list.is_empty() {
            return None;
        }
        let message = l.held.pop_front()?;
        self.held_bytes
            .fetch_sub(message_len(&message), Ordering::AcqRel);
        Some((message, list))
    }

    /// Held messages over the limits: the IO thread stops reading until a
    /// listener drains them.
    pub fn hold_is_full(&self) -> bool {
        self.held_bytes.load(Ordering::Acquire)
            > self
                .options
                .max_send_queue
                .max(self.options.max_message_size)
    }

    /// Late listeners wait for a replay: deliver nothing newer first.
    pub fn has_replays(&self) -> bool {
        self.has_replays.load(Ordering::Acquire)
    }

    /// Takes the pending replays to late listeners, oldest first.
    pub fn take_replays(&self) -> Vec<(EventKind, Weak<Binding>)> {
        if !self.has_replays.load(Ordering::Acquire) {
            return Vec::new();
        }
        self.has_replays.store(false, Ordering::Release);
        std::mem::take(&mut *lock(&self.replays))
    }

    /// The recorded event of `kind`, for a replay to a late listener.
    pub fn recorded(&self, kind: EventKind) -> Option<Replay> {
        let l = lock(&self.listeners);
        match kind {
            EventKind::Open if l.opened => Some(Replay::Open),
            EventKind::Error => l.error.clone().map(Replay::Error),
            EventKind::Close => l.closed.clone().map(Replay::Close),
            _ => None,
        }
    }

    /// Runs `f` with this thread marked as running a callback of this
    /// socket, unless the socket is freed. `ws_free` waits on this mark.
    pub fn with_gate(&self, f: impl FnOnce()) {
        {
            let mut gate = lock(&self.gate);
            if self.is_freed() {
                return;
            }
            gate.running_on = Some(THIS_THREAD.with(|id| *id));
        }
        // Clears the mark even if `f` unwinds.
        struct Release<'a>(&'a Socket);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                let mut gate = lock(&self.0.gate);
                gate.running_on = None;
                if gate.waiters > 0 {
                    self.0.gate_changed.notify_all();
                }
            }
        }
        let _release = Release(self);
        f();
    }
}

/// A recorded event to replay to a late listener.
pub enum Replay {
    Open,
    Error(ErrorRecord),
    Close(CloseRecord),
}
