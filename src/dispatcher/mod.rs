//! Dispatchers: delivery on the host's thread. The IO thread keeps all the
//! networking, TLS, name resolution and timers of a socket opened with a
//! dispatcher; only its events go to the dispatcher's queue, and the host
//! runs their callbacks by calling `ws_dispatch` on a thread of its own,
//! when the queue's descriptor is readable or whenever it likes.

mod queue;
mod signal;

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::deliver::Delivery;
use crate::event::{message_len, Queued};
use crate::socket::{Host, Socket};
use crate::status::{Error, ErrorKind, Result};
use crate::sync::lock;

use queue::SignalQueue;

type Entry = (Arc<Socket>, Queued);

pub(crate) struct Dispatcher {
    queue: SignalQueue<Entry>,
    /// A `ws_dispatch` (or `ws_dispatcher_free`) is under way.
    busy: AtomicBool,
    /// Sockets opened with this dispatcher and not yet freed.
    attached: AtomicUsize,
    /// The delivery state (a scratch buffer), taken out while dispatching
    /// so that no lock is held while callbacks run.
    delivery: Mutex<Option<Delivery>>,
}

/// Clears the busy mark when a dispatch ends, also on unwind.
struct Busy<'a>(&'a AtomicBool);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Dispatcher {
    pub fn new() -> Result<Dispatcher> {
        let queue = SignalQueue::new().map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot create the dispatcher's descriptor: {e}"),
            )
        })?;
        Ok(Dispatcher {
            queue,
            busy: AtomicBool::new(false),
            attached: AtomicUsize::new(0),
            delivery: Mutex::new(Some(Delivery::default())),
        })
    }

    fn enter(&self) -> Result<Busy<'_>> {
        if self.busy.swap(true, Ordering::AcqRel) {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "this dispatcher is already dispatching (ws_dispatch from one of its \
                 callbacks, or from two threads at once)",
            ));
        }
        Ok(Busy(&self.busy))
    }

    pub fn fd(&self) -> Option<RawFd> {
        self.queue.fd()
    }

    /// A socket is opened with this dispatcher.
    pub fn attach(&self) {
        self.attached.fetch_add(1, Ordering::AcqRel);
    }

    /// Runs queued events on this thread: waits up to `timeout_ms` when
    /// none is queued, then runs up to `max_events` (0: all queued now).
    /// Returns the number of events run.
    pub fn dispatch(&self, timeout_ms: i32, max_events: usize) -> Result<usize> {
        let _busy = self.enter()?;
        let mut batch: VecDeque<Entry> = VecDeque::new();
        self.queue.take(timeout_ms, max_events, &mut batch);
        let mut delivery = lock(&self.delivery).take().unwrap_or_default();
        let mut ran = 0;
        for (socket, event) in batch {
            // Off the queue: it no longer counts against the socket's cap.
            if let Queued::Message(message) = &event {
                socket.delivered(message_len(message));
            }
            // A socket freed meanwhile loses its queued events.
            if socket.is_freed() {
                continue;
            }
            delivery.run(&socket, event);
            ran += 1;
        }
        *lock(&self.delivery) = Some(delivery);
        Ok(ran)
    }

    pub fn wakeup(&self) {
        self.queue.wake();
    }

    /// Ends the dispatcher: refused while sockets are attached or a
    /// dispatch runs. Drops what is queued here, on the caller's thread,
    /// and closes the descriptor.
    pub fn close(&self) -> Result<()> {
        let _busy = self.enter()?;
        let attached = self.attached.load(Ordering::Acquire);
        if attached > 0 {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!("{attached} socket(s) opened with this dispatcher are not freed yet"),
            ));
        }
        drop(self.queue.close());
        Ok(())
    }
}

impl Host for Dispatcher {
    fn queue(&self, socket: &Arc<Socket>, event: Queued) {
        // A closed dispatcher hands the event back: dropped here.
        drop(self.queue.push((socket.clone(), event)));
    }

    fn detach(&self) {
        self.attached.fetch_sub(1, Ordering::AcqRel);
    }
}
