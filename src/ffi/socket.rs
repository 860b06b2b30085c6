//! Opening, binding, sending, closing and freeing sockets, and their state.

use std::os::raw::{c_char, c_int, c_void};

use super::args::{
    bytes_arg, copy_binary_out, copy_bytes_out, copy_out, optional_str_arg, str_arg,
};
use super::error::{report, set_last_error, status, WS_OK};
use super::event::{ws_callback, ws_event_kind, ws_userdata_free, CListener, Finalizer};
use super::options::ws_options;
use super::panic::boundary;
use super::ws_handle;
use crate::client;
use crate::event::{EventKind, ListenerId};
use crate::options::Options;
use crate::status::{Error, ErrorKind, Result};

/// `ws_ready_state`: the connection is being established.
pub const WS_CONNECTING: c_int = 0;
/// `ws_ready_state`: open; messages can be sent.
pub const WS_OPEN: c_int = 1;
/// `ws_ready_state`: the closing handshake is under way.
pub const WS_CLOSING: c_int = 2;
/// `ws_ready_state`: closed (the `close` event has been or is being
/// delivered; for a socket opened with a dispatcher, it may still wait in
/// the dispatcher's queue: the state is the connection's, and runs ahead
/// of the events the host has not dispatched yet).
pub const WS_CLOSED: c_int = 3;

fn open_with(url: *const c_char, options: &Options) -> ws_handle {
    // SAFETY: the caller passes NULL or a NUL-terminated string valid during
    // this call (the documented contract).
    let url = unsafe { str_arg(url, "url", ErrorKind::InvalidUrl) };
    match url.and_then(|url| client::open(url, options)) {
        Ok(handle) => handle,
        Err(e) => {
            report(&e);
            0
        }
    }
}

/// Opens a WebSocket to `url` (`ws://` or `wss://`) with default options.
///
/// Returns a handle in state CONNECTING at once, or 0 on a synchronous
/// failure (`url` NULL: `WS_ERR_INVALID_ARGUMENT`; bad URL:
/// `WS_ERR_INVALID_URL`; `wss://` without TLS: `WS_ERR_UNSUPPORTED`), with
/// `ws_last_status()` and `ws_last_error()` set. Never blocks on the
/// network: resolution, connect and handshake run on the IO thread, and
/// their failures arrive as an `error` event then a `close` event.
///
/// Bind callbacks right after: an event that happens before its callback is
/// bound is not lost (see `ws_bind`). Ownership: the caller owns the handle
/// and must release it with `ws_free`. The URL is copied. Any thread,
/// including from a callback.
#[no_mangle]
pub extern "C" fn ws_open(url: *const c_char) -> ws_handle {
    boundary(|| open_with(url, &Options::default()))
}

/// As `ws_open`, with options (NULL means defaults). The options are copied:
/// free them whenever you like. Options naming a feature this build lacks
/// make it fail with `WS_ERR_UNSUPPORTED`.
#[no_mangle]
pub extern "C" fn ws_open_ex(url: *const c_char, options: *const ws_options) -> ws_handle {
    boundary(|| {
        // SAFETY: NULL or a live pointer from ws_options_new that no other
        // thread mutates during this call (the documented contract).
        match unsafe { options.as_ref() } {
            Some(options) => open_with(url, &options.inner),
            None => open_with(url, &Options::default()),
        }
    })
}

fn event_kind(kind: ws_event_kind) -> Result<EventKind> {
    EventKind::from_raw(kind).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "unknown event kind {kind}; expected WS_EVENT_OPEN..WS_EVENT_BUFFERED_AMOUNT_LOW"
            ),
        )
    })
}

fn bind(
    socket: ws_handle,
    kind: ws_event_kind,
    callback: ws_callback,
    userdata: *mut c_void,
    free_userdata: ws_userdata_free,
) -> c_int {
    // Built first, so that every failure below still finalizes userdata.
    let finalizer = Finalizer::new(free_userdata, userdata);
    let result = (|| {
        let sock = client::socket(socket)?;
        let kind = event_kind(kind)?;
        let callback =
            callback.ok_or_else(|| Error::new(ErrorKind::InvalidArgument, "callback is NULL"))?;
        let listener = CListener {
            callback,
            userdata,
            finalizer,
        };
        sock.bind(kind, Box::new(listener))
    })();
    status(result)
}

/// Binds `callback(socket, event, userdata)` to events of `kind`
/// (`WS_EVENT_OPEN`, `WS_EVENT_MESSAGE`, `WS_EVENT_ERROR`, `WS_EVENT_CLOSE`,
/// `WS_EVENT_RECONNECTING`, `WS_EVENT_BUFFERED_AMOUNT_LOW`).
///
/// Several callbacks may be bound to one kind; they run in the order bound.
/// Binding the same (callback, userdata) pair again to the same kind is a
/// no-op that returns `WS_OK` (as addEventListener).
///
/// No event is lost to a bind race: a callback bound after its `open`,
/// `error` or `close` already happened is called once with that event,
/// soon, on the thread that runs the socket's callbacks, never inside this
/// call. Messages that arrive while no `message` callback is bound are held
/// and delivered, in order, to the first one bound. What is replayed is the
/// current state: with reconnection, a late `open` callback gets the open
/// of the current connection (none while it is down), and a late
/// `reconnecting` callback the loss the socket is recovering from (none
/// once it is open again). `bufferedamountlow` is an edge, never replayed.
///
/// Callbacks run on the IO thread, or inside `ws_dispatch` for a socket
/// opened with a dispatcher (see `ws_callback`). `userdata` is passed back
/// untouched and must stay valid until the binding ends: after `ws_unbind`
/// returns (mind a call already under way on another thread: use
/// `ws_bind_ex` to learn when the last call is over) or after `ws_free`
/// returns. Returns `WS_ERR_INVALID_HANDLE`, or `WS_ERR_INVALID_ARGUMENT`
/// for a NULL callback or an unknown kind. Any thread, including from a
/// callback.
#[no_mangle]
pub extern "C" fn ws_bind(
    socket: ws_handle,
    kind: ws_event_kind,
    callback: ws_callback,
    userdata: *mut c_void,
) -> c_int {
    boundary(|| bind(socket, kind, callback, userdata, None))
}

/// As `ws_bind`, plus a finalizer for `userdata`: `free_userdata(userdata)`
/// runs exactly once, after the last call of this binding: when it is
/// unbound, when the socket is freed, or, when `ws_bind_ex` fails, before it
/// returns. It runs on the thread that unbinds or frees, or, if a call of
/// the binding was under way on another thread, on that thread right after
/// the call: for a socket opened with a dispatcher, that is the thread in
/// `ws_dispatch`, never the IO thread. `free_userdata` may be NULL. Binding a
/// pair that is already bound returns `WS_OK` and does not call this
/// `free_userdata` (the first binding's finalizer still runs once).
#[no_mangle]
pub extern "C" fn ws_bind_ex(
    socket: ws_handle,
    kind: ws_event_kind,
    callback: ws_callback,
    userdata: *mut c_void,
    free_userdata: ws_userdata_free,
) -> c_int {
    boundary(|| bind(socket, kind, callback, userdata, free_userdata))
}

/// Removes the binding of (callback, userdata) from events of `kind`. As
/// removeEventListener, removing a pair that is not bound is not an error
/// (`WS_OK`). A call already running on another thread finishes; no new
/// call starts after this returns. Any thread, including from a callback.
#[no_mangle]
pub extern "C" fn ws_unbind(
    socket: ws_handle,
    kind: ws_event_kind,
    callback: ws_callback,
    userdata: *mut c_void,
) -> c_int {
    boundary(|| {
        status((|| {
            client::socket(socket)?;
            let kind = event_kind(kind)?;
            let callback = callback
                .ok_or_else(|| Error::new(ErrorKind::InvalidArgument, "callback is NULL"))?;
            client::unbind(
                socket,
                kind,
                ListenerId(callback as usize, userdata as usize),
            )
        })())
    })
}

/// Sends a NUL-terminated UTF-8 text message.
///
/// The text is copied and queued; this never blocks on the network.
/// Returns `WS_ERR_INVALID_STATE` unless OPEN, `WS_ERR_INVALID_UTF8` for text
/// that is not UTF-8, `WS_ERR_INVALID_ARGUMENT` for NULL, `WS_ERR_TOO_LARGE`
/// over the max message size, `WS_ERR_QUEUE_FULL` when the send queue is
/// over its limit; on any error nothing is queued. Any thread, including
/// from a callback.
#[no_mangle]
pub extern "C" fn ws_send(socket: ws_handle, text: *const c_char) -> c_int {
    boundary(|| {
        status((|| {
            let sock = client::socket(socket)?;
            // SAFETY: NULL or a NUL-terminated string valid during this call
            // (the documented contract).
            let text = unsafe { str_arg(text, "text", ErrorKind::InvalidUtf8) }?;
            client::send_text(&sock, text.as_bytes())
        })())
    })
}

/// Sends `len` bytes at `data` as a text message (they may contain NUL).
/// `data` may be NULL only when `len` is 0. Otherwise as `ws_send`.
#[no_mangle]
pub extern "C" fn ws_send_text(socket: ws_handle, data: *const c_char, len: usize) -> c_int {
    boundary(|| {
        status((|| {
            let sock = client::socket(socket)?;
            // SAFETY: NULL (with len 0) or `len` readable bytes valid during
            // this call (the documented contract).
            let bytes = unsafe { bytes_arg(data.cast(), len, "data") }?;
            client::send_text(&sock, bytes)
        })())
    })
}

/// Sends `len` bytes at `data` as a binary message; `data` may be NULL only
/// when `len` is 0. The bytes are copied. Otherwise as `ws_send`.
#[no_mangle]
pub extern "C" fn ws_send_binary(socket: ws_handle, data: *const c_void, len: usize) -> c_int {
    boundary(|| {
        status((|| {
            let sock = client::socket(socket)?;
            // SAFETY: NULL (with len 0) or `len` readable bytes valid during
            // this call (the documented contract).
            let bytes = unsafe { bytes_arg(data.cast(), len, "data") }?;
            client::send_binary(&sock, bytes)
        })())
    })
}

/// Closes as the browser's `close()` with no code: from OPEN, messages
/// already queued are sent, then a close frame without status; the `close`
/// event follows the peer's answer (or the close timeout). From CONNECTING
/// the attempt is aborted: a `close` event with code 1006 and no `error`.
/// Closing a CLOSING or CLOSED socket is not an error. Any thread,
/// including from a callback.
#[no_mangle]
pub extern "C" fn ws_close(socket: ws_handle) -> c_int {
    boundary(|| status(client::socket(socket).and_then(|s| client::close(&s, None))))
}

/// As `ws_close`, with a close code (1000 or 3000-4999, else
/// `WS_ERR_INVALID_ARGUMENT`) and a reason (NULL for none; UTF-8, else
/// `WS_ERR_INVALID_UTF8`; at most 123 bytes, else
/// `WS_ERR_INVALID_ARGUMENT`). The reason is copied.
#[no_mangle]
pub extern "C" fn ws_close_ex(socket: ws_handle, code: u16, reason: *const c_char) -> c_int {
    boundary(|| {
        status((|| {
            let sock = client::socket(socket)?;
            // SAFETY: NULL or a NUL-terminated string valid during this call
            // (the documented contract).
            let reason = unsafe { optional_str_arg(reason, "reason", ErrorKind::InvalidUtf8) }?;
            client::close(&sock, Some((code, reason.to_owned())))
        })())
    })
}

/// Releases the handle. A socket still open is closed with code 1001
/// (going away) in the background, without further events.
///
/// Called from outside every wsembed callback: when `ws_free` returns, no
/// callback of this socket is running or will run, and every `ws_bind_ex`
/// finalizer of it has run (on the calling thread): you may free your
/// userdata. If a callback of the socket is running on another thread (the
/// IO thread, or a thread inside `ws_dispatch`), it waits for that one
/// callback to return, and only for it.
///
/// Called from inside any wsembed callback (of this socket or another, on
/// the IO thread or inside `ws_dispatch`), it never waits, so two threads
/// freeing each other's sockets from callbacks cannot deadlock: no callback
/// of the socket starts after it returns; one already running elsewhere
/// finishes, and the finalizers of bindings it uses run right after it, on
/// its thread. Events of the socket still queued for a dispatcher are
/// dropped. The handle is invalid afterwards (`WS_ERR_INVALID_HANDLE`). Any
/// thread, including from a callback.
#[no_mangle]
pub extern "C" fn ws_free(socket: ws_handle) -> c_int {
    boundary(|| status(client::free(socket)))
}

/// Drops the current connection and connects again at once, on a socket
/// opened with automatic reconnection (`ws_options_set_reconnect`): an
/// open connection is closed with 1000 first (its `reconnecting` event
/// reports that close), an attempt under way is abandoned, and a wait
/// before the next attempt is cut short. The failure count starts over:
/// the new attempt is attempt 1, with no delay. Use it after changing the
/// headers (`ws_set_header`) or when the application knows the connection
/// is stale.
///
/// Returns `WS_OK`, or `WS_ERR_INVALID_STATE` when reconnection is off for
/// the socket, or when `ws_close` was called or the socket is CLOSED. Any
/// thread, including from a callback; the work happens on the IO thread.
#[no_mangle]
pub extern "C" fn ws_reconnect(socket: ws_handle) -> c_int {
    boundary(|| status(client::socket(socket).and_then(|s| s.reconnect())))
}

/// Sets the value of a header for the socket's next opening handshakes
/// (the next automatic reconnection, a `ws_reconnect`, or a redirect hop),
/// replacing every value of that name (compared without case) given to
/// `ws_options_add_header` or to an earlier `ws_set_header`; `value` NULL
/// removes the header. The usual use: a fresh `Authorization` token from
/// the `reconnecting` callback.
///
/// The same rules as `ws_options_add_header`: `name` a token and not one
/// the handshake writes itself (Host, Upgrade, Sec-WebSocket-*, ...), the
/// value without CR, LF or NUL, else `WS_ERR_INVALID_ARGUMENT`.
/// `WS_ERR_INVALID_STATE` once the socket is CLOSED. Both strings are
/// copied. Any thread, including from a callback.
#[no_mangle]
pub extern "C" fn ws_set_header(
    socket: ws_handle,
    name: *const c_char,
    value: *const c_char,
) -> c_int {
    boundary(|| {
        status((|| {
            let sock = client::socket(socket)?;
            // SAFETY: the caller passes NULL or NUL-terminated strings valid
            // during this call (the documented contract).
            let name = unsafe { str_arg(name, "name", ErrorKind::InvalidArgument) }?;
            let value = match value.is_null() {
                true => None,
                // SAFETY: as above.
                false => Some(unsafe { str_arg(value, "value", ErrorKind::InvalidArgument) }?),
            };
            sock.set_header(name, value)
        })())
    })
}

/// The ready state: `WS_CONNECTING`, `WS_OPEN`, `WS_CLOSING` or
/// `WS_CLOSED`; `WS_ERR_INVALID_HANDLE` (negative) for a bad handle. With
/// reconnection, `WS_CONNECTING` again while it waits for and makes the
/// next attempt. Any thread.
#[no_mangle]
pub extern "C" fn ws_ready_state(socket: ws_handle) -> c_int {
    boundary(|| match client::socket(socket) {
        Ok(s) => s.ready_state() as c_int,
        Err(e) => report(&e),
    })
}

/// Sets the socket's low-water mark for `bufferedAmount` (default 0): a
/// `WS_EVENT_BUFFERED_AMOUNT_LOW` callback runs each time the bytes
/// queued fall from above `bytes` to at or below it, so a producer can
/// send until `ws_send` says `WS_ERR_QUEUE_FULL` (or it chooses to pause)
/// and resume at that event instead of polling `ws_buffered_amount`. As
/// WebRTC's `bufferedAmountLowThreshold`. Takes effect for the next fall.
/// `WS_ERR_INVALID_HANDLE` for a bad handle. Any thread, including from a
/// callback.
#[no_mangle]
pub extern "C" fn ws_set_buffered_amount_low_threshold(socket: ws_handle, bytes: usize) -> c_int {
    boundary(|| status(client::socket(socket).map(|s| s.set_buffered_amount_low_threshold(bytes))))
}

/// Payload bytes accepted by `ws_send*` and not yet written to the
/// operating system's socket. 0 for a bad handle (with `ws_last_error`
/// set), once the socket is closed, and after a lost connection (with
/// reconnection: what was queued for it is dropped). Any thread.
#[no_mangle]
pub extern "C" fn ws_buffered_amount(socket: ws_handle) -> usize {
    boundary(|| match client::socket(socket) {
        Ok(s) => s.buffered_amount(),
        Err(e) => {
            report(&e);
            0
        }
    })
}

fn copy_string(
    socket: ws_handle,
    buf: *mut c_char,
    cap: usize,
    get: impl FnOnce(&crate::socket::Socket) -> String,
) -> usize {
    let result = client::socket(socket).and_then(|s| {
        let text = get(&s);
        // SAFETY: NULL (with cap 0) or `cap` writable bytes (the documented
        // contract).
        unsafe { copy_out(&text, buf, cap) }
    });
    match result {
        Ok(len) => len,
        Err(e) => {
            report(&e);
            0
        }
    }
}

/// Copies the subprotocol the server selected ("" until OPEN, or if none;
/// with reconnection, the current connection's, "" while it is down)
/// into `buf`, NUL-terminated when `cap > 0` (truncated to fit), and
/// returns its full length without the NUL, as snprintf: call with cap 0
/// (buf may be NULL) to size the buffer. 0 for a bad handle. Any thread.
#[no_mangle]
pub extern "C" fn ws_protocol(socket: ws_handle, buf: *mut c_char, cap: usize) -> usize {
    boundary(|| copy_string(socket, buf, cap, |s| s.protocol()))
}

/// Copies the extensions the server agreed to (its
/// `Sec-WebSocket-Extensions` answer, e.g. "permessage-deflate;
/// client_max_window_bits=15") into `buf`, as `ws_protocol` does: "" before
/// open, when none was agreed, and while a lost connection is being
/// replaced. Any thread.
#[no_mangle]
pub extern "C" fn ws_extensions(socket: ws_handle, buf: *mut c_char, cap: usize) -> usize {
    boundary(|| copy_string(socket, buf, cap, |s| s.extensions()))
}

/// Copies the URL as parsed (e.g. "ws://example.org/" for
/// "ws://EXAMPLE.org") into `buf`, as `ws_protocol` does. Any thread.
#[no_mangle]
pub extern "C" fn ws_url(socket: ws_handle, buf: *mut c_char, cap: usize) -> usize {
    boundary(|| copy_string(socket, buf, cap, |s| s.url()))
}

/// The HTTP status of the socket's last opening handshake answer: 101 once
/// the socket opened; the server's status (401, 403, 429, 503, 302...)
/// when it refused the handshake; 0 while no answer has come (or if none
/// ever did: DNS, connect or TLS failures) and for a bad handle.
///
/// The answer (status, headers, body) is kept from the moment the `open`
/// or `error` callback runs until the socket is freed; with reconnection,
/// until the next attempt starts (so the `reconnecting` callback can read
/// a refusal's `Retry-After`). Any thread.
#[no_mangle]
pub extern "C" fn ws_response_status(socket: ws_handle) -> c_int {
    boundary(|| match client::socket(socket) {
        Ok(s) => s.answer().map_or(0, |a| c_int::from(a.status)),
        Err(e) => {
            report(&e);
            0
        }
    })
}

/// Copies the value of header `name` (any letter case) of the socket's last
/// handshake answer into `buf`, as `ws_protocol` does (snprintf rules:
/// NUL-terminated when `cap > 0`, returns the full length). A header sent
/// several times gives its values joined with ", ". Works for the 101 of an
/// open socket (e.g. "Sec-WebSocket-Extensions", a server's own headers)
/// and for a refusal ("WWW-Authenticate", "Retry-After", "Location").
///
/// An absent header writes "" and returns 0, like an empty one. To tell
/// them apart, this function always sets `ws_last_status()`: `WS_OK` when
/// the header is there (even empty), `WS_ERR_INVALID_ARGUMENT` when it is
/// not (or no answer came yet), `WS_ERR_INVALID_HANDLE` for a bad handle.
/// Any thread.
#[no_mangle]
pub extern "C" fn ws_response_header(
    socket: ws_handle,
    name: *const c_char,
    buf: *mut c_char,
    cap: usize,
) -> usize {
    boundary(|| {
        let result = (|| {
            let s = client::socket(socket)?;
            // SAFETY: NULL or a NUL-terminated string valid during this call
            // (the documented contract).
            let name = unsafe { str_arg(name, "name", ErrorKind::InvalidArgument) }?;
            let value = s.answer().and_then(|a| a.header(name));
            let found = value.is_some();
            // SAFETY: NULL (with cap 0) or `cap` writable bytes (the
            // documented contract).
            let len = unsafe { copy_bytes_out(value.as_deref().unwrap_or(b""), buf, cap) }?;
            if found {
                Ok(len)
            } else {
                Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!("the handshake's answer has no header {name:?}"),
                ))
            }
        })();
        match result {
            Ok(len) => {
                set_last_error(WS_OK, "");
                len
            }
            Err(e) => {
                report(&e);
                0
            }
        }
    })
}

/// Copies the body of a refused handshake's answer (at most its first 64
/// KiB, chunked encoding removed; read within the connect timeout) into
/// `buf`: up to `cap` bytes, binary, not NUL-terminated. Returns the body's
/// full length (call with cap 0, buf may be NULL, to size the buffer); 0
/// when there is none (a 101, no answer yet) and for a bad handle. Any
/// thread.
#[no_mangle]
pub extern "C" fn ws_response_body(socket: ws_handle, buf: *mut c_void, cap: usize) -> usize {
    boundary(|| {
        let result = client::socket(socket).and_then(|s| {
            let answer = s.answer();
            let body = answer.as_ref().map_or(&[][..], |a| a.body.as_slice());
            // SAFETY: NULL (with cap 0) or `cap` writable bytes (the
            // documented contract).
            unsafe { copy_binary_out(body, buf, cap) }
        });
        match result {
            Ok(len) => len,
            Err(e) => {
                report(&e);
                0
            }
        }
    })
}
