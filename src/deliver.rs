//! Running listeners: turns what a connection produced into calls, in
//! protocol order, with no internal lock held while a listener runs. It
//! only delivers: what a socket's state becomes is the connection's to say.
//!
//! Producing an event (the connection) and running its callbacks (here) are
//! kept apart: for a socket opened with a dispatcher, the IO thread only
//! queues its events, and the thread in `ws_dispatch` runs them here.
//!
//! Every snapshot of a listener list is taken and dropped inside the
//! socket's gate: `ws_free` waits for the gate, so once it returns no
//! snapshot is left that could run a finalizer later.

use std::sync::Arc;

use tungstenite::Message;

use crate::event::{
    buffered_low_view, message_view, open_view, Binding, CloseRecord, ErrorRecord, EventView,
    Queued, ReconnectRecord,
};
use crate::panic_guard;
use crate::socket::{BindingList, PendingReplay, Replay, Socket};
use crate::status::AsyncErrorKind;

/// Owned by a thread that runs callbacks (the IO thread, or one inside
/// `ws_dispatch`). Its scratch buffer gives every message its trailing NUL
/// without an allocation per message.
#[derive(Default)]
pub struct Delivery {
    scratch: Vec<u8>,
}

/// Calls each listener of a snapshot; must run inside the socket's gate.
fn call_all<'a>(
    socket: &Socket,
    list: impl IntoIterator<Item = &'a Binding>,
    event: &EventView<'_>,
) {
    for binding in list {
        // Checked per listener: a callback may free the socket or unbind
        // the next listener.
        if socket.is_freed() || binding.is_removed() {
            continue;
        }
        // A listener written in Rust could panic; it must not take the IO
        // thread down with it.
        let _ = panic_guard::catch(|| binding.listener.call(socket.handle, event));
    }
}

/// Gives one message to a snapshot of listeners; must run inside the
/// socket's gate. The payload is copied into `scratch` to give it the
/// trailing NUL the C contract promises.
fn deliver(socket: &Socket, scratch: &mut Vec<u8>, message: &Message, list: &BindingList) {
    let (payload, is_binary) = match message {
        Message::Text(t) => (t.as_bytes(), false),
        Message::Binary(b) => (&b[..], true),
        _ => return,
    };
    scratch.clear();
    scratch.reserve(payload.len() + 1);
    scratch.extend_from_slice(payload);
    scratch.push(0);
    call_all(
        socket,
        list.iter().map(|b| &**b),
        &message_view(scratch, is_binary),
    );
    // One huge message should not pin its size for the socket's life.
    if scratch.capacity() > 1 << 20 {
        *scratch = Vec::new();
    }
}

impl Delivery {
    // ----- what the IO engine calls ------------------------------------
    //
    // A socket opened with a dispatcher gets its events queued for the
    // dispatcher's thread instead; that thread runs them with `run`.

    /// `attempt`: how many times the socket opened before.
    pub fn open(&mut self, socket: &Arc<Socket>, attempt: u32) {
        match socket.host() {
            Some(_) => socket.queue_for_host(Queued::Open(attempt)),
            None => self.run_open(socket, attempt),
        }
    }

    /// A lost connection that will be tried again.
    pub fn reconnecting(&mut self, socket: &Arc<Socket>, record: ReconnectRecord) {
        match socket.host() {
            Some(_) => socket.queue_for_host(Queued::Reconnecting(record)),
            None => self.run_reconnecting(socket, record),
        }
    }

    pub fn error(
        &mut self,
        socket: &Arc<Socket>,
        kind: AsyncErrorKind,
        message: &str,
        http_status: Option<u16>,
    ) {
        crate::log::log_at!(Error, socket.handle, "{message}");
        let record = ErrorRecord::new(kind, message, http_status);
        match socket.host() {
            Some(_) => socket.queue_for_host(Queued::Error(record)),
            None => self.run_error(socket, record),
        }
    }

    /// `bufferedAmount` fell to the low threshold, to `buffered`.
    pub fn buffered_low(&mut self, socket: &Arc<Socket>, buffered: usize) {
        match socket.host() {
            Some(_) => socket.queue_for_host(Queued::BufferedAmountLow(buffered)),
            None => self.run_buffered_low(socket, buffered),
        }
    }

    /// Delivers the one `close` event of a socket its connection has
    /// marked CLOSED.
    pub fn close(&mut self, socket: &Arc<Socket>, record: CloseRecord) {
        match socket.host() {
            Some(_) => socket.queue_for_host(Queued::Close(record)),
            None => self.run_close(socket, record),
        }
    }

    /// Delivers a message, or holds it while no `message` listener is bound.
    pub fn message(&mut self, socket: &Arc<Socket>, message: Message) {
        match socket.host() {
            Some(_) => socket.queue_for_host(Queued::Message(message)),
            None => self.run_message(socket, message),
        }
    }

    /// Runs pending replays and held messages (after a late bind).
    pub fn catch_up(&mut self, socket: &Arc<Socket>) {
        match socket.host() {
            Some(_) => socket.queue_for_host(Queued::CatchUp),
            None => self.run_catch_up(socket),
        }
    }

    // ----- running, on whichever thread delivers -------------------------

    /// Runs one queued event of a dispatcher socket, on the dispatching
    /// thread.
    pub fn run(&mut self, socket: &Arc<Socket>, event: Queued) {
        match event {
            Queued::Open(attempt) => self.run_open(socket, attempt),
            Queued::Reconnecting(record) => self.run_reconnecting(socket, record),
            Queued::Message(message) => self.run_message(socket, message),
            Queued::Error(record) => self.run_error(socket, record),
            Queued::Close(record) => self.run_close(socket, record),
            Queued::BufferedAmountLow(buffered) => self.run_buffered_low(socket, buffered),
            Queued::CatchUp => self.run_catch_up(socket),
        }
        socket.resume_if_drained();
    }

    fn run_open(&mut self, socket: &Socket, attempt: u32) {
        self.run_catch_up(socket);
        socket.with_gate(|| {
            let list = socket.listeners().record_open(attempt);
            call_all(socket, list.iter().map(|b| &**b), &open_view(attempt));
        });
    }

    fn run_reconnecting(&mut self, socket: &Socket, record: ReconnectRecord) {
        // Messages of the lost connection, and replays, come before.
        self.run_catch_up(socket);
        socket.with_gate(|| {
            let (list, record) = socket.listeners().record_reconnecting(record);
            call_all(socket, list.iter().map(|b| &**b), &record.view());
        });
    }

    fn run_buffered_low(&mut self, socket: &Socket, buffered: usize) {
        socket.with_gate(|| {
            let list = socket.listeners().low_listeners();
            call_all(
                socket,
                list.iter().map(|b| &**b),
                &buffered_low_view(buffered),
            );
        });
    }

    fn run_error(&mut self, socket: &Socket, record: ErrorRecord) {
        self.run_catch_up(socket);
        socket.with_gate(|| {
            let (list, record) = socket.listeners().record_error(record);
            call_all(socket, list.iter().map(|b| &**b), &record.view());
        });
    }

    fn run_close(&mut self, socket: &Socket, record: CloseRecord) {
        self.run_catch_up(socket);
        socket.with_gate(|| {
            let (list, record) = socket.listeners().record_close(record);
            call_all(socket, list.iter().map(|b| &**b), &record.view());
        });
    }

    fn run_message(&mut self, socket: &Socket, message: Message) {
        // The common case (a listener bound, nothing held, nothing to
        // replay) goes straight to the listeners; anything else takes the
        // ordered path through the hold queue. The snapshot is taken inside
        // the gate, as every snapshot must be.
        let listeners = socket.listeners();
        let slow = if listeners.has_replays() {
            Some(message)
        } else {
            let scratch = &mut self.scratch;
            let mut slow = None;
            socket.with_gate(|| match listeners.ready_for(message) {
                Ok((message, list)) => deliver(socket, scratch, &message, &list),
                Err(message) => slow = Some(message),
            });
            slow
        };
        if let Some(message) = slow {
            listeners.hold(message);
            self.run_catch_up(socket);
        }
    }

    /// Brings late listeners up to date before anything newer is
    /// delivered, in protocol order: a missed `open`, then held messages
    /// (if a `message` listener is bound now), then a missed `error` and
    /// `close`.
    fn run_catch_up(&mut self, socket: &Socket) {
        let order = socket.listeners().take_replays();
        self.replay(socket, &order.before_held);
        self.deliver_held(socket);
        self.replay(socket, &order.after_held);
    }

    /// Delivers held messages in order while a listener is bound.
    fn deliver_held(&mut self, socket: &Socket) {
        let scratch = &mut self.scratch;
        socket.with_gate(|| {
            while let Some((message, list)) = socket.listeners().next_held() {
                deliver(socket, scratch, &message, &list);
            }
        });
    }

    /// Gives listeners bound late the events of their kinds that already
    /// happened.
    fn replay(&mut self, socket: &Socket, pending: &[PendingReplay]) {
        if pending.is_empty() {
            return;
        }
        socket.with_gate(|| {
            for (kind, binding) in pending {
                let Some(binding) = binding.upgrade() else {
                    continue;
                };
                let Some(event) = socket.listeners().recorded(*kind) else {
                    continue;
                };
                let one = std::iter::once(&*binding);
                match event {
                    Replay::Open(attempt) => call_all(socket, one, &open_view(attempt)),
                    Replay::Reconnecting(record) => call_all(socket, one, &record.view()),
                    Replay::Error(record) => call_all(socket, one, &record.view()),
                    Replay::Close(record) => call_all(socket, one, &record.view()),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::event::{EventKind, Listener, ListenerId};
    use crate::options::Options;
    use crate::socket::testing::socket_with;
    use crate::status::AsyncErrorKind;

    type Log = Arc<Mutex<Vec<String>>>;

    /// Writes what it sees to a shared log; optionally runs `then` after.
    struct Recorder {
        id: usize,
        log: Log,
        then: Option<Box<dyn Fn() + Send + Sync>>,
    }

    impl Listener for Recorder {
        fn call(&self, _: u64, event: &EventView<'_>) {
            let entry = match event.kind {
                EventKind::Open => "open".to_owned(),
                EventKind::Message => {
                    assert_eq!(event.payload_with_nul.last(), Some(&0), "NUL-terminated");
                    format!("message {}", String::from_utf8_lossy(event.payload()))
                }
                EventKind::Error => format!("error {}", event.reason.to_str().unwrap()),
                EventKind::Close => format!("close {}", event.code),
                EventKind::Reconnecting => format!("reconnecting {}", event.attempt),
                EventKind::BufferedAmountLow => format!("low {}", event.dropped),
            };
            self.log
                .lock()
                .unwrap()
                .push(format!("{}: {entry}", self.id));
            if let Some(then) = &self.then {
                then();
            }
        }
        fn identity(&self) -> ListenerId {
            ListenerId(self.id, 0)
        }
    }

    fn recorder(id: usize, log: &Log) -> Box<dyn Listener> {
        Box::new(Recorder {
            id,
            log: log.clone(),
            then: None,
        })
    }

    fn close_1000() -> CloseRecord {
        CloseRecord {
            code: 1000,
            reason: c"".into(),
            was_clean: true,
        }
    }

    fn taken(log: &Log) -> Vec<String> {
        std::mem::take(&mut *log.lock().unwrap())
    }

    #[test]
    fn events_reach_their_listeners_in_bind_order() {
        let (socket, _) = socket_with(Options::default());
        let log = Log::default();
        let mut d = Delivery::default();
        for kind in EventKind::ALL {
            socket.bind(kind, recorder(1, &log)).unwrap();
            socket.bind(kind, recorder(2, &log)).unwrap();
        }
        d.open(&socket, 0);
        d.message(&socket, Message::text("hi"));
        d.error(&socket, AsyncErrorKind::Io, "lost", None);
        d.close(&socket, close_1000());
        assert_eq!(
            taken(&log),
            [
                "1: open",
                "2: open",
                "1: message hi",
                "2: message hi",
                "1: error lost",
                "2: error lost",
                "1: close 1000",
                "2: close 1000"
            ]
        );
    }

    #[test]
    fn late_listeners_catch_up_in_protocol_order() {
        let (socket, _) = socket_with(Options::default());
        let log = Log::default();
        let mut d = Delivery::default();
        // Everything happens before anyone listens.
        d.open(&socket, 0);
        d.message(&socket, Message::text("one"));
        d.message(&socket, Message::text("two"));
        d.error(&socket, AsyncErrorKind::Io, "lost", None);
        d.close(&socket, close_1000());
        assert!(taken(&log).is_empty());
        // Bound in the reverse of protocol order.
        socket.bind(EventKind::Close, recorder(1, &log)).unwrap();
        socket.bind(EventKind::Error, recorder(2, &log)).unwrap();
        socket.bind(EventKind::Message, recorder(3, &log)).unwrap();
        socket.bind(EventKind::Open, recorder(4, &log)).unwrap();
        d.catch_up(&socket);
        assert_eq!(
            taken(&log),
            [
                "4: open",
                "3: message one",
                "3: message two",
                "2: error lost",
                "1: close 1000"
            ]
        );
        d.catch_up(&socket);
        assert!(taken(&log).is_empty(), "each replay runs once");
    }

    #[test]
    fn a_message_waits_behind_held_ones() {
        let (socket, _) = socket_with(Options::default());
        let log = Log::default();
        let mut d = Delivery::default();
        d.message(&socket, Message::text("first"));
        socket.bind(EventKind::Message, recorder(1, &log)).unwrap();
        // Arrives before the loop ran the catch-up the bind asked for.
        d.message(&socket, Message::text("second"));
        assert_eq!(taken(&log), ["1: message first", "1: message second"]);
    }

    #[test]
    fn a_listener_unbound_by_an_earlier_one_is_not_called() {
        let (socket, _) = socket_with(Options::default());
        let log = Log::default();
        let mut d = Delivery::default();
        let s = socket.clone();
        let first = Recorder {
            id: 1,
            log: log.clone(),
            then: Some(Box::new(move || {
                s.unbind(EventKind::Message, ListenerId(2, 0));
            })),
        };
        socket.bind(EventKind::Message, Box::new(first)).unwrap();
        socket.bind(EventKind::Message, recorder(2, &log)).unwrap();
        d.message(&socket, Message::text("x"));
        d.message(&socket, Message::text("y"));
        assert_eq!(taken(&log), ["1: message x", "1: message y"]);
    }

    #[test]
    fn nothing_is_delivered_after_free() {
        let (socket, _) = socket_with(Options::default());
        let log = Log::default();
        let mut d = Delivery::default();
        let s = socket.clone();
        let freeing = Recorder {
            id: 1,
            log: log.clone(),
            then: Some(Box::new(move || s.free())),
        };
        socket.bind(EventKind::Message, Box::new(freeing)).unwrap();
        socket.bind(EventKind::Message, recorder(2, &log)).unwrap();
        socket.bind(EventKind::Close, recorder(3, &log)).unwrap();
        d.message(&socket, Message::text("last"));
        d.message(&socket, Message::text("never"));
        d.close(&socket, close_1000());
        assert_eq!(taken(&log), ["1: message last"]);
    }
}
