//! The one managed IO thread: its command queue, its start and its stop.
//!
//! The IO engine: `reactor` polls and runs commands and timers, and one
//! `connection` per socket drives the network side; `crate::deliver` runs
//! the callbacks (or queues them for a dispatcher). Sockets reach it only
//! by posting requests (`socket::Loop`).

mod closing;
mod connection;
mod deadlines;
mod eyeballs;
mod failure;
mod handshake;
mod out_queue;
mod reactor;
mod resolver;
pub(crate) use resolver::set_answer as set_resolver_answer;
mod staging;
mod stream;
mod timers;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle, ThreadId};

use mio::{Poll, Token, Waker};

use crate::socket::{Loop, Request, Socket};
use crate::status::{Error, ErrorKind, Result};
use crate::sync::lock;

/// Work for the IO thread, sent by any thread.
pub(crate) enum Command {
    /// A new socket: start connecting.
    Open(Arc<Socket>),
    /// What a socket asked for (see `socket::Request`).
    Socket(Arc<Socket>, Request),
    /// A name resolved, for the connection of this handle.
    Resolved(u64, io::Result<Vec<SocketAddr>>),
    Shutdown,
}

pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// The IO thread's inbox, shared with every socket it serves.
pub(crate) struct IoShared {
    queue: Mutex<Vec<Command>>,
    /// Set from a send until the IO thread takes the queue: later sends
    /// need not wake it again.
    notified: AtomicBool,
    waker: Waker,
    thread: OnceLock<ThreadId>,
}

impl IoShared {
    pub fn send(&self, command: Command) {
        lock(&self.queue).push(command);
        // The IO thread drains its queue before it polls again, so a
        // command sent from a callback needs no wake-up.
        if self.is_io_thread() {
            return;
        }
        if !self.notified.swap(true, Ordering::AcqRel) {
            // A failed wake leaves the command for the next poll; nothing
            // else can be done from here.
            let _ = self.waker.wake();
        }
    }

    /// Moves every pending command into `into`.
    pub fn take(&self, into: &mut Vec<Command>) {
        self.notified.store(false, Ordering::Release);
        std::mem::swap(&mut *lock(&self.queue), into);
    }

    pub fn is_io_thread(&self) -> bool {
        self.thread.get() == Some(&thread::current().id())
    }
}

impl Loop for IoShared {
    fn post(&self, socket: &Arc<Socket>, request: Request) {
        // From a callback of this socket's message, its connection takes
        // the outbox as soon as the callback returns.
        if request == Request::Flush && staging::is_staged(socket.handle) {
            return;
        }
        self.send(Command::Socket(socket.clone(), request));
    }
}

struct IoThread {
    shared: Arc<IoShared>,
    join: JoinHandle<()>,
}

static IO_THREAD: Mutex<Option<IoThread>> = Mutex::new(None);

/// The running IO thread's inbox, starting the thread if needed.
pub(crate) fn io_thread() -> Result<Arc<IoShared>> {
    let mut slot = lock(&IO_THREAD);
    if let Some(t) = slot.as_ref() {
        return Ok(t.shared.clone());
    }
    let internal = |what: &str, e: io::Error| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot start the IO thread: {what}: {e}"),
        )
    };
    let poll = Poll::new().map_err(|e| internal("poll", e))?;
    let waker = Waker::new(poll.registry(), WAKER_TOKEN).map_err(|e| internal("waker", e))?;
    let shared = Arc::new(IoShared {
        queue: Mutex::new(Vec::new()),
        notified: AtomicBool::new(false),
        waker,
        thread: OnceLock::new(),
    });
    let reactor = reactor::Reactor::new(poll, shared.clone());
    let join = thread::Builder::new()
        .name("wsembed-io".into())
        .spawn(move || reactor.run())
        .map_err(|e| internal("spawn", e))?;
    let _ = shared.thread.set(join.thread().id());
    *slot = Some(IoThread {
        shared: shared.clone(),
        join,
    });
    Ok(shared)
}

/// Closes every socket and joins the IO thread. From the IO thread itself
/// (a callback) it only asks the thread to stop, since it cannot join itself.
pub(crate) fn shutdown() {
    let Some(t) = lock(&IO_THREAD).take() else {
        return;
    };
    t.shared.send(Command::Shutdown);
    if t.shared.is_io_thread() {
        return;
    }
    // A panic on the IO thread has already been contained there.
    let _ = t.join.join();
}
