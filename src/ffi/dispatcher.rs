//! Dispatchers: running a socket's callbacks on a thread of the host's
//! choosing, from the host's own event loop.

use std::os::raw::c_int;

use super::error::{report, status};
use super::panic::boundary;
use crate::client;

/// An opaque dispatcher handle issued by `ws_dispatcher_new`. 0 is never
/// valid, and a handle is never reused within a process, so a stale handle
/// is an error (`WS_ERR_INVALID_HANDLE`), never another dispatcher.
pub type ws_dispatcher = u64;

/// Creates a dispatcher: a queue of events that the host runs on a thread
/// of its choosing, by calling `ws_dispatch`.
///
/// A socket opened with options naming a dispatcher
/// (`ws_options_set_dispatcher`) still does all its networking, TLS, name
/// resolution and timers (pings, pong and close timeouts) on wsembed's IO
/// thread; only its callbacks move: they run inside `ws_dispatch`, on the
/// thread that calls it, and nowhere else. Use this when callbacks must run
/// on your thread: a Lua state, a GUI thread, a game's main loop, an
/// asyncio loop. Sockets without a dispatcher keep running their callbacks
/// on the IO thread; both kinds, and any number of dispatchers on any
/// number of threads, work side by side.
///
/// Returns the handle, or 0 with `ws_last_error()` set (the system refused
/// a descriptor). Ownership: the caller frees it with `ws_dispatcher_free`.
/// Any thread.
#[no_mangle]
pub extern "C" fn ws_dispatcher_new() -> ws_dispatcher {
    boundary(|| match client::dispatcher_new() {
        Ok(handle) => handle,
        Err(e) => {
            report(&e);
            0
        }
    })
}

/// Returns a file descriptor that is readable exactly while events wait in
/// the dispatcher's queue (or a wakeup is pending), or a negative status
/// (`WS_ERR_INVALID_HANDLE`).
///
/// Readiness is level-triggered: the descriptor stays readable until
/// `ws_dispatch` has taken every queued event, and a dispatch that leaves
/// events queued (a `max_events` budget) signals it again, so
/// edge-triggered watchers (EPOLLET, kqueue EV_CLEAR, tokio's AsyncFd) also
/// see every batch. It may be readable with nothing left to run; then
/// `ws_dispatch` returns 0. The rule: when it is readable, call
/// `ws_dispatch(d, 0, 0)`.
///
/// Watch it for reading only. It belongs to wsembed: never read, write or
/// close it; it stays valid until `ws_dispatcher_free`. Any thread.
#[no_mangle]
pub extern "C" fn ws_dispatcher_fd(dispatcher: ws_dispatcher) -> c_int {
    boundary(|| match client::dispatcher(dispatcher) {
        Ok(d) => d.fd().unwrap_or(crate::ffi::WS_ERR_INVALID_HANDLE),
        Err(e) => report(&e),
    })
}

/// Runs queued callbacks of the dispatcher's sockets on the calling thread
/// and returns the number of events taken from the queue and run (>= 0;
/// an event with no callback bound counts too: a callback bound later gets
/// it as a replay), or a negative status.
///
/// `timeout_ms` bounds the wait when nothing is queued: 0 never waits, -1
/// waits until an event arrives or `ws_dispatcher_wakeup` is called, a
/// positive value waits at most that long. `max_events` caps the events run
/// in this call: 0 runs every event queued when the call starts (events
/// queued while it runs wait for the next call); n runs at most n, for a
/// per-frame budget. A `close` with its reason, a message with its payload:
/// each is one event, whatever number of callbacks it calls.
///
/// Order: a socket's events run in protocol order (`open`, messages, at
/// most one `error`, then `close`), and the events of all the dispatcher's
/// sockets in the order they arrived. Callbacks bound after their event
/// happened, and messages held while no `message` callback was bound, are
/// queued too: they run in a later `ws_dispatch`, never inside `ws_bind`.
///
/// Not reentrant: from one of its own callbacks, or while another thread
/// is inside `ws_dispatch` for the same dispatcher, it returns
/// `WS_ERR_INVALID_STATE` and runs nothing. Every other wsembed call is
/// allowed from a callback (send, close, free, bind, open, even
/// `ws_dispatch` of another dispatcher). No wsembed lock is held while a
/// callback runs.
///
/// The IO thread never waits for you: pings, pongs and timeouts go on while
/// you do not dispatch. Messages waiting here count against the socket's
/// undelivered cap (the larger of its send-queue limit and its maximum
/// message size): over it, the IO thread stops reading that socket (TCP
/// then pushes back on the server, and pings from the server wait too);
/// it reads again once dispatching brings the waiting messages under half
/// the cap. Returns `WS_ERR_INVALID_HANDLE` for a stale dispatcher. Any
/// thread, one at a time.
#[no_mangle]
pub extern "C" fn ws_dispatch(
    dispatcher: ws_dispatcher,
    timeout_ms: c_int,
    max_events: usize,
) -> c_int {
    boundary(|| {
        let result =
            client::dispatcher(dispatcher).and_then(|d| d.dispatch(timeout_ms, max_events));
        match result {
            Ok(n) => c_int::try_from(n).unwrap_or(c_int::MAX),
            Err(e) => report(&e),
        }
    })
}

/// Makes a `ws_dispatch` of this dispatcher that is waiting return now (0
/// if nothing was queued), or, if none is waiting, the next one return
/// without waiting. For ending a thread that loops on
/// `ws_dispatch(d, -1, 0)`. Returns `WS_OK` or `WS_ERR_INVALID_HANDLE`. Any
/// thread, including from a callback.
#[no_mangle]
pub extern "C" fn ws_dispatcher_wakeup(dispatcher: ws_dispatcher) -> c_int {
    boundary(|| status(client::dispatcher(dispatcher).map(|d| d.wakeup())))
}

/// Frees a dispatcher and closes its descriptor.
///
/// Refused with `WS_ERR_INVALID_STATE` while a socket opened with it is not
/// freed (`ws_free` every socket first, as `uv_loop_close` wants every
/// handle closed), or while a `ws_dispatch` of it runs. Events still queued
/// are dropped without running. After `WS_OK` the handle is stale. Any
/// thread, but not from one of this dispatcher's callbacks.
#[no_mangle]
pub extern "C" fn ws_dispatcher_free(dispatcher: ws_dispatcher) -> c_int {
    boundary(|| status(client::dispatcher_free(dispatcher)))
}
