//! Running listeners: turns what a connection produced into calls, in
//! protocol order, with no internal lock held while a listener runs.
//!
//! Producing an event (the connection) and running its callbacks (here) are
//! kept apart so that another delivery thread can take this part's place.
//!
//! Every snapshot of a listener list is taken and dropped inside the
//! socket's gate: `ws_free` waits for the gate, so once it returns no
//! snapshot is left that could run a finalizer later.

use tungstenite::Message;

use std::sync::Weak;

use crate::event::{
    message_view, open_view, Binding, CloseRecord, ErrorRecord, EventKind, EventView,
};
use crate::panic_guard;
use crate::socket::{BindingList, Replay, Socket};
use crate::status::AsyncErrorKind;

/// Owned by the thread that runs callbacks. Its scratch buffer gives every
/// message its trailing NUL without an allocation per message.
#[derive(Default)]
pub struct Dispatcher {
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

impl Dispatcher {
    pub fn open(&mut self, socket: &Socket) {
        self.catch_up(socket);
        socket.with_gate(|| {
            let list = socket.record_open();
            call_all(socket, list.iter().map(|b| &**b), &open_view());
        });
    }

    pub fn error(&mut self, socket: &Socket, kind: AsyncErrorKind, message: &str) {
        self.catch_up(socket);
        socket.with_gate(|| {
            let (list, record) = socket.record_error(ErrorRecord::new(kind, message));
            call_all(socket, list.iter().map(|b| &**b), &record.view());
        });
    }

    /// Marks the socket CLOSED and delivers its one `close` event.
    pub fn close(&mut self, socket: &Socket, record: CloseRecord) {
        socket.mark_closed();
        self.catch_up(socket);
        socket.with_gate(|| {
            let (list, record) = socket.record_close(record);
            call_all(socket, list.iter().map(|b| &**b), &record.view());
        });
    }

    /// Delivers a message, or holds it while no `message` listener is bound.
    pub fn message(&mut self, socket: &Socket, message: Message) {
        // The common case (a listener bound, nothing held, nothing to
        // replay) goes straight to the listeners; anything else takes the
        // ordered path through the hold queue. The snapshot is taken inside
        // the gate, as every snapshot must be.
        let slow = if socket.has_replays() {
            Some(message)
        } else {
            let scratch = &mut self.scratch;
            let mut slow = None;
            socket.with_gate(|| match socket.ready_for(message) {
                Ok((message, list)) => deliver(socket, scratch, &message, &list),
                Err(message) => slow = Some(message),
            });
            slow
        };
        if let Some(message) = slow {
            socket.hold(message);
            self.catch_up(socket);
        }
    }

    /// Brings late listeners up to date before anything newer is
    /// delivered, in protocol order: a missed `open`, then held messages
    /// (if a `message` listener is bound now), then a missed `error` and
    /// `close`.
    pub fn catch_up(&mut self, socket: &Socket) {
        let mut pending = socket.take_replays();
        // Stable: listeners of one kind keep their bind order.
        pending.sort_by_key(|(kind, _)| *kind != EventKind::Open);
        let later = pending
            .iter()
            .position(|(kind, _)| *kind != EventKind::Open)
            .unwrap_or(pending.len());
        let mut rest = pending.split_off(later);
        rest.sort_by_key(|(kind, _)| *kind == EventKind::Close);
        self.replay(socket, &pending);
        self.deliver_held(socket);
        self.replay(socket, &rest);
    }

    /// Delivers held messages in order while a listener is bound.
    fn deliver_held(&mut self, socket: &Socket) {
        let scratch = &mut self.scratch;
        socket.with_gate(|| {
            while let Some((message, list)) = socket.next_held() {
                deliver(socket, scratch, &message, &list);
            }
        });
    }

    /// Gives listeners bound late the events of their kinds that already
    /// happened.
    fn replay(&mut self, socket: &Socket, pending: &[(EventKind, Weak<Binding>)]) {
        if pending.is_empty() {
            return;
        }
        socket.with_gate(|| {
            for (kind, binding) in pending {
                let Some(binding) = binding.upgrade() else {
                    continue;
                };
                let Some(event) = socket.recorded(*kind) else {
                    continue;
                };
                let one = std::iter::once(&*binding);
                match event {
                    Replay::Open => call_all(socket, one, &open_view()),
                    Replay::Error(record) => call_all(socket, one, &record.view()),
                    Replay::Close(record) => call_all(socket, one, &record.view()),
                }
            }
        });
    }
}
