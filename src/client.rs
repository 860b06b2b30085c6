//! The safe API the C face calls: open, send, close, free, bind, by handle.

use std::sync::Arc;

use crate::event::{EventKind, Listener, ListenerId};
use crate::io::{self, Command, Route};
use crate::options::Options;
use crate::proxy::Proxy;
use crate::registry;
use crate::socket::Socket;
use crate::status::{Error, ErrorKind, Result};
use crate::target::Target;
use crate::wire::DataOpcode;

/// Whether this build speaks `wss://`.
pub const HAS_TLS: bool = cfg!(feature = "tls");

/// Opens a socket in CONNECTING and returns its handle at once; the network
/// work happens on the IO thread.
pub fn open(url: &str, options: &Options) -> Result<u64> {
    let target = Target::parse(url)?;
    let route = route(&target, options)?;
    let io = io::io_thread()?;
    let handle = registry::next_handle();
    let socket = Arc::new(Socket::new(
        handle,
        target,
        options.clone(),
        route,
        io.clone(),
    ));
    registry::insert(socket.clone());
    io.send(Command::Open(socket));
    Ok(handle)
}

/// Decides proxy and TLS now, on the caller's thread, so that bad settings
/// fail synchronously and the IO thread never reads certificate files.
fn route(target: &Target, options: &Options) -> Result<Route> {
    let proxy = options.proxy.as_deref().map(Proxy::parse).transpose()?;
    if target.secure {
        #[cfg(feature = "tls")]
        return Ok(Route {
            proxy,
            tls: Some(crate::tls::client_tls(&options.tls, &target.host)?),
        });
        #[cfg(not(feature = "tls"))]
        return Err(Error::new(
            ErrorKind::Unsupported,
            "wss:// needs TLS, which this build of wsembed lacks",
        ));
    }
    Ok(Route::plain(proxy))
}

pub fn socket(handle: u64) -> Result<Arc<Socket>> {
    registry::get(handle).ok_or_else(Error::invalid_handle)
}

/// Queues text, checking UTF-8 before anything is copied or queued.
pub fn send_text(socket: &Socket, bytes: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::new(
            ErrorKind::InvalidUtf8,
            format!("text is not valid UTF-8: {e}; nothing was sent"),
        )
    })?;
    socket.send(DataOpcode::Text, text.as_bytes())
}

pub fn send_binary(socket: &Socket, data: &[u8]) -> Result<()> {
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

pub fn close(socket: &Socket, frame: Option<(u16, String)>) -> Result<()> {
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

pub fn bind(handle: u64, kind: EventKind, listener: Box<dyn Listener>) -> Result<()> {
    // On an invalid handle the listener is dropped here, which releases it.
    socket(handle)?.bind(kind, listener)
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
