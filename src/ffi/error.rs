//! Status codes, `ws_strerror` and the per-thread `ws_last_error`.

use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::os::raw::{c_char, c_int};

use super::panic::boundary;
use crate::event::lossy_cstring;
use crate::status::{describe, Error};

/// Success.
pub const WS_OK: c_int = 0;
/// The handle is 0, was never issued, or was already freed.
pub const WS_ERR_INVALID_HANDLE: c_int = -1;
/// NULL where a value is required, a bad close code, a reason over 123
/// bytes, an unknown event kind or a bad option value.
pub const WS_ERR_INVALID_ARGUMENT: c_int = -2;
/// Not a URL, not `ws://` or `wss://`, or a URL with a fragment.
pub const WS_ERR_INVALID_URL: c_int = -3;
/// A feature this build lacks, such as `wss://` without TLS.
pub const WS_ERR_UNSUPPORTED: c_int = -4;
/// A send while the socket is not OPEN (CONNECTING, CLOSING or CLOSED).
pub const WS_ERR_INVALID_STATE: c_int = -5;
/// Text that is not valid UTF-8; nothing was sent.
pub const WS_ERR_INVALID_UTF8: c_int = -6;
/// The send queue is over its limit; nothing was queued, retry later.
pub const WS_ERR_QUEUE_FULL: c_int = -7;
/// A message over the maximum message size (or over the whole send queue).
pub const WS_ERR_TOO_LARGE: c_int = -8;
/// A bug caught at the boundary (a Rust panic); the process goes on.
pub const WS_ERR_INTERNAL: c_int = -9;
/// `error` event: the host name could not be resolved.
pub const WS_ERR_DNS: c_int = -20;
/// `error` event: the TCP connection failed (refused, unreachable).
pub const WS_ERR_CONNECT: c_int = -21;
/// `error` event: the connect timeout or the pong timeout passed.
pub const WS_ERR_TIMEOUT: c_int = -22;
/// `error` event: TLS failed (certificate, handshake).
pub const WS_ERR_TLS: c_int = -23;
/// `error` event: the opening handshake was refused or malformed.
pub const WS_ERR_HANDSHAKE: c_int = -24;
/// `error` event: the peer violated RFC 6455 (or sent a message over the
/// maximum size).
pub const WS_ERR_PROTOCOL: c_int = -25;
/// `error` event: the connection broke (reset, or closed without a closing
/// handshake).
pub const WS_ERR_IO: c_int = -26;
/// `error` event: the proxy refused: an HTTP CONNECT answered with a
/// status other than 2xx (the reason quotes its status line), or a SOCKS5
/// proxy that accepted no authentication method, rejected the username
/// and password, or refused the connection to the target (the reason
/// names the reply). A proxy that cannot be reached at all is
/// `WS_ERR_DNS` or `WS_ERR_CONNECT`, naming the proxy.
pub const WS_ERR_PROXY: c_int = -27;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    static LAST_STATUS: Cell<c_int> = const { Cell::new(WS_OK) };
}

pub(crate) fn set_last_error(status: c_int, message: &str) {
    LAST_ERROR.with(|e| *e.borrow_mut() = lossy_cstring(message));
    LAST_STATUS.with(|s| s.set(status));
}

/// Records `error` for `ws_last_error` and returns its status code.
pub(crate) fn report(error: &Error) -> c_int {
    let status = error.kind as c_int;
    set_last_error(status, &error.message);
    status
}

/// A status for a call that returns nothing else.
pub(crate) fn status(result: crate::status::Result<()>) -> c_int {
    match result {
        Ok(()) => WS_OK,
        Err(e) => report(&e),
    }
}

/// Returns a static, NUL-terminated English description of any status code
/// (also of the asynchronous `error_code`s). Unknown codes get
/// "unknown status code".
///
/// Never NULL; the string is static and must not be freed. Any thread.
#[no_mangle]
pub extern "C" fn ws_strerror(status: c_int) -> *const c_char {
    boundary(|| describe(status).as_ptr())
}

/// Returns the status code (`WS_ERR_*`) of this thread's last failed
/// wsembed call, or `WS_OK` if none failed yet. This is how to learn why
/// `ws_open`/`ws_open_ex` returned 0 (`WS_ERR_INVALID_URL`,
/// `WS_ERR_UNSUPPORTED`, `WS_ERR_INVALID_ARGUMENT`...), or why a getter
/// returned 0; `ws_last_error` gives the message. Any thread; per thread.
#[no_mangle]
pub extern "C" fn ws_last_status() -> c_int {
    LAST_STATUS.try_with(Cell::get).unwrap_or(WS_OK)
}

/// Returns this thread's message for its last failed wsembed call, or ""
/// if none failed yet. Never NULL.
///
/// Lifetime: the text is owned by wsembed and stays valid until this
/// thread's next wsembed call; copy it to keep it. Each thread has its own.
#[no_mangle]
pub extern "C" fn ws_last_error() -> *const c_char {
    // Not behind `boundary`: that could overwrite the very text returned.
    LAST_ERROR
        .try_with(|e| e.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}
