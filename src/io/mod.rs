//! The one managed IO thread: its command queue, its start and its stop.

mod connection;
mod frame_tally;
mod out_queue;
mod reactor;
mod resolver;
mod stream;

pub(crate) use stream::Route;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle, ThreadId};

use mio::{Poll, Token, Waker};

use crate::socket::Socket;
use crate::status::{Error, ErrorKind, Result};

/// Work for the IO thread, sent by any thread.
pub enum Command {
    Open(Arc<Socket>),
    /// The socket's outbound queue has data.
    Flush(u64),
    /// The socket's close request is set.
    Close(u64),
    Free(u64),
    /// Late listeners wait for the events they missed (the socket holds
    /// the list, with weak references so unbind or free still finalize).
    Replay(u64),
    /// A `message` listener was bound while messages were held.
    DeliverHeld(u64),
    Resolved(u64, io::Result<Vec<SocketAddr>>),
    Shutdown,
}

pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// The IO thread's inbox, shared with every socket it serves.
pub struct IoShared {
    queue: Mutex<Vec<Command>>,
    /// Set from a send until the IO thread takes the queue: later sends
    /// need not wake it again.
    notified: AtomicBool,
    waker: Waker,
    thread: OnceLock<ThreadId>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

struct IoThread {
    shared: Arc<IoShared>,
    join: JoinHandle<()>,
}

static IO_THREAD: Mutex<Option<IoThread>> = Mutex::new(None);

/// The running IO thread's inbox, starting the thread if needed.
pub fn io_thread() -> Result<Arc<IoShared>> {
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
pub fn shutdown() {
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
