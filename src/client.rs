//! The safe API the C face calls: open, send, close, free, bind, by handle.

use std::sync::Arc;

use crate::dispatcher::Dispatcher;
use crate::event::{EventKind, ListenerId};
use crate::framing::DataOpcode;
use crate::io::{self, Command};
use crate::options::Options;
use crate::registry;
use crate::route::Route;
use crate::socket::{Host, Loop, Socket};
use crate::status::{Error, ErrorKind, Result};
use crate::target::Target;

/// Whether this build speaks `wss://`.
pub const HAS_TLS: bool = cfg!(feature = "tls");

/// Opens a socket in CONNECTING and returns its handle at once; the network
/// work happens on the IO thread. Proxy and TLS are decided here, so bad
/// settings fail now.
pub fn open(url: &str, options: &Options) -> Result<u64> {
    let target = Target::parse(url)?;
    let route = Route::new(&target, options)?;
    let host = options.dispatcher.map(dispatcher).transpose()?;
    let io = io::io_thread()?;
    let handle = registry::next_handle();
    let serving: Arc<dyn Loop> = io.clone();
    let host = host.map(|d| {
        d.attach();
        d as Arc<dyn Host>
    });
    let socket = Arc::new(Socket::new(
        handle,
        target,
        options.clone(),
        route,
        serving,
        host,
    ));
    registry::insert(socket.clone());
    io.send(Command::Open(socket));
    Ok(handle)
}

pub fn socket(handle: u64) -> Result<Arc<Socket>> {
    registry::get(handle).ok_or_else(Error::invalid_handle)
}

/// Queues text, checking UTF-8 before anything is copied or queued.
pub fn send_text(socket: &Arc<Socket>, bytes: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::new(
            ErrorKind::InvalidUtf8,
            format!("text is not valid UTF-8: {e}; nothing was sent"),
        )
    })?;
    socket.send(DataOpcode::Text, text.as_bytes())
}

pub fn send_binary(socket: &Arc<Socket>, data: &[u8]) -> Result<()> {
    socket.send(DataOpcode::Binary, data)
}

/// Checks a close code and reason as the browser's `close(code, reason)`.
pub fn check_close_frame(code: u16, reason: &str) -> Result<()> {
    if code != 1000 && !(3000..=4999).contains(&code) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("close code {code} is neither 1000 nor in 3000-4999"),
        ));
    }
    if reason.len() > 123 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("close reason is {} bytes; at most 123", reason.len()),
        ));
    }
    Ok(())
}

pub fn close(socket: &Arc<Socket>, frame: Option<(u16, String)>) -> Result<()> {
    if let Some((code, reason)) = &frame {
        check_close_frame(*code, reason)?;
    }
    socket.close(frame);
    Ok(())
}

/// Releases a handle; see `Socket::free` for the callback guarantee.
pub fn free(handle: u64) -> Result<()> {
    let socket = registry::remove(handle).ok_or_else(Error::invalid_handle)?;
    socket.free();
    Ok(())
}

/// Removes a listener; as removeEventListener, one that is not bound is
/// not an error.
pub fn unbind(handle: u64, kind: EventKind, id: ListenerId) -> Result<()> {
    socket(handle)?.unbind(kind, id);
    Ok(())
}

pub fn shutdown() {
    io::shutdown();
}

// ----- dispatchers ---------------------------------------------------------

pub fn dispatcher_new() -> Result<u64> {
    Ok(registry::insert_dispatcher(Arc::new(Dispatcher::new()?)))
}

fn invalid_dispatcher() -> Error {
    Error::new(
        ErrorKind::InvalidHandle,
        "invalid dispatcher: 0, unknown or freed",
    )
}

pub fn dispatcher(handle: u64) -> Result<Arc<Dispatcher>> {
    registry::dispatcher(handle).ok_or_else(invalid_dispatcher)
}

/// Ends a dispatcher once no socket uses it; see `Dispatcher::close`.
pub fn dispatcher_free(handle: u64) -> Result<()> {
    dispatcher(handle)?.close()?;
    // Two threads freeing at once: one succeeds, the other finds it gone.
    match registry::remove_dispatcher(handle) {
        Some(_) => Ok(()),
        None => Err(invalid_dispatcher()),
    }
}
