//! Running listeners: turns what a connection produced into calls, in
//! protocol order, with no internal lock held while a listener runs.
//!
//! Producing an event (the connection) and running its callbacks (here) are
//! kept apart so that another delivery thread can take this part's place.

use std::sync::{Arc, Weak};

use tungstenite::Message;

use crate::event::{
    message_view, open_view, Binding, CloseRecord, ErrorRecord, EventKind, EventView,
};
use crate::panic_guard;
use crate::socket::{Replay, Socket};
use crate::status::AsyncErrorKind;

/// Owned by the thread that runs callbacks. Its scratch buffer gives every
/// message its trailing NUL without an allocation per message.
#[derive(Default)]
pub struct Dispatcher {
    scratch: Vec<u8>,
}

fn run(socket: &Socket, list: &[Arc<Binding>], event: &EventView<'_>) {
    if list.is_empty() {
        return;
    }
    socket.with_gate(|| {
        for binding in list {
            // Checked per listener: a callback may free the socket or
            // unbind the next listener.
            if socket.is_freed() || binding.is_removed() {
                continue;
            }
            // A listener written in Rust could panic; it must not take the
            // IO thread down with it.
            let _ = panic_guard::catch(|| binding.listener.call(socket.handle, event));
        }
    });
}

impl Dispatcher {
    pub fn open(&mut self, socket: &Socket) {
        let list = socket.record_open();
        run(socket, &list, &open_view());
    }

    pub fn error(&mut self, socket: &Socket, kind: AsyncErrorKind, message: &str) {
        let (list, record) = socket.record_error(ErrorRecord::new(kind, message));
        run(socket, &list, &record.view());
    }

    /// Marks the socket CLOSED and delivers its one `close` event.
    pub fn close(&mut self, socket: &Socket, record: CloseRecord) {
        socket.mark_closed();
        let (list, record) = socket.record_close(record);
        run(socket, &list, &record.view());
    }

    /// Delivers a message, or holds it while no `message` listener is bound.
    pub fn message(&mut self, socket: &Socket, message: Message) {
        socket.hold(message);
        self.deliver_held(socket);
    }

    /// Delivers held messages in order while a listener is bound.
    pub fn deliver_held(&mut self, socket: &Socket) {
        while let Some((message, list)) = socket.next_held() {
            let (payload, is_binary) = match &message {
                Message::Text(t) => (t.as_bytes(), false),
                Message::Binary(b) => (&b[..], true),
                _ => continue,
            };
            self.scratch.clear();
            self.scratch.reserve(payload.len() + 1);
            self.scratch.extend_from_slice(payload);
            self.scratch.push(0);
            run(socket, &list, &message_view(&self.scratch, is_binary));
            // One huge message should not pin its size for the socket's life.
            if self.scratch.capacity() > 1 << 20 {
                self.scratch = Vec::new();
            }
        }
    }

    /// Gives a listener bound late the event of its kind that happened.
    pub fn replay(&mut self, socket: &Socket, kind: EventKind, binding: &Weak<Binding>) {
        let Some(binding) = binding.upgrade() else {
            return;
        };
        let Some(event) = socket.recorded(kind) else {
            return;
        };
        let list = [binding];
        match event {
            Replay::Open => run(socket, &list, &open_view()),
            Replay::Error(record) => run(socket, &list, &record.view()),
            Replay::Close(record) => run(socket, &list, &record.view()),
        }
    }
}
