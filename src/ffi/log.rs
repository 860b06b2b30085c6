//! `ws_set_log_callback`: the process-wide log, handed to C.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};

use super::error::{set_last_error, ws_last_error, ws_last_status, WS_ERR_INVALID_ARGUMENT, WS_OK};
use super::panic::boundary;
use super::ws_handle;
use crate::log::{self, Level};

/// Log level: a socket failed. The line has the same text as the socket's
/// `error` event.
pub const WS_LOG_ERROR: c_int = 1;
/// Log level: something went wrong and was recovered from (a reconnection
/// scheduled, a peer misbehaving).
pub const WS_LOG_WARN: c_int = 2;
/// Log level: one line per connection step.
pub const WS_LOG_INFO: c_int = 3;
/// Log level: finer detail.
pub const WS_LOG_DEBUG: c_int = 4;

/// A log callback, set with `ws_set_log_callback`: `level` is one of
/// `WS_LOG_ERROR` .. `WS_LOG_DEBUG`, `h` the socket the line is about (0
/// for none), `message` the line (NUL-terminated UTF-8, valid only during
/// the call), `userdata` as given to `ws_set_log_callback`.
pub type ws_log_fn = Option<
    unsafe extern "C" fn(level: c_int, h: ws_handle, message: *const c_char, userdata: *mut c_void),
>;

/// Sets the process-wide log callback: `fn` gets every line of wsembed's
/// log up to `max_level`, one of `WS_LOG_ERROR` (1), `WS_LOG_WARN` (2),
/// `WS_LOG_INFO` (3) or `WS_LOG_DEBUG` (4), each level including those
/// before it. NULL `fn` turns logging off (then `max_level` is ignored).
/// Off is the default. Returns `WS_OK`, or `WS_ERR_INVALID_ARGUMENT` with
/// `ws_last_error()` set for a non-NULL `fn` with any other `max_level`
/// (the callback in place stays).
///
/// What each level carries:
/// - `WS_LOG_ERROR`: a socket's failure, with the same text as its `error`
///   event.
/// - `WS_LOG_WARN`: what went wrong and was recovered from: a reconnection
///   scheduled, a peer misbehaving.
/// - `WS_LOG_INFO`: one line per connection step: the name resolved,
///   connecting to an address, the proxy tunnel up, TLS established (with
///   its version and cipher suite), the status of the handshake's answer,
///   open, the close codes sent and received.
/// - `WS_LOG_DEBUG`: finer detail.
///
/// The text is for people: its wording may change between versions, so do
/// not parse it (the events carry the same facts as fields). Credentials
/// never appear in it: not a proxy's password, not the value of an
/// `Authorization` header. A line above `max_level` costs nothing: it is
/// not even formatted.
///
/// One callback serves the whole process (every socket, every
/// dispatcher); a new call replaces it. The callback is called on the
/// thread where the line is written: mostly wsembed's IO thread (the
/// connection steps), sometimes the thread of the wsembed call the line is
/// about, and so concurrently with event callbacks and with itself: it
/// must be thread-safe. It runs on the IO thread with every socket
/// waiting, so keep it quick: copy the line to a queue rather than write
/// to a slow device. It may call any wsembed function (including this
/// one); the calls it makes do not change the `ws_last_error()` of the
/// code its line interrupted. A line the callback itself causes (through a
/// wsembed call it makes) is dropped rather than delivered inside it.
///
/// Teardown: when this function returns, the callback it replaced is in no
/// call on any other thread and will not be called again, so its userdata
/// may be freed at once. (Called from inside that callback, it does not
/// wait for the call it is made from.) Call `ws_set_log_callback(0, NULL,
/// NULL)` before unloading the code `fn` lives in.
///
/// `userdata` is passed back unchanged and never read. Any thread.
#[no_mangle]
pub extern "C" fn ws_set_log_callback(
    max_level: c_int,
    r#fn: ws_log_fn,
    userdata: *mut c_void,
) -> c_int {
    boundary(|| {
        let Some(callback) = r#fn else {
            log::clear_sink();
            return WS_OK;
        };
        let Some(max_level) = Level::from_number(i64::from(max_level)) else {
            set_last_error(
                WS_ERR_INVALID_ARGUMENT,
                &format!(
                    "log level {max_level} is not one of WS_LOG_ERROR (1) .. WS_LOG_DEBUG (4)"
                ),
            );
            return WS_ERR_INVALID_ARGUMENT;
        };
        let userdata = Userdata(userdata);
        log::set_sink(max_level, move |level, handle, message| {
            let message = c_text(message);
            // A log line can come between a failed call's error and its
            // return (or the caller's read of ws_last_error): what the
            // callback's own calls record must not replace it.
            let status = ws_last_status();
            // SAFETY: ws_last_error never returns NULL, and its text stays
            // valid until this thread's next wsembed call, after the copy.
            let error = unsafe { CStr::from_ptr(ws_last_error()) }
                .to_string_lossy()
                .into_owned();
            // SAFETY: `callback` is the non-NULL function the caller set,
            // with the userdata it gave; `message` outlives the call.
            unsafe { callback(level as c_int, handle, message.as_ptr(), userdata.get()) };
            set_last_error(status, &error);
        });
        WS_OK
    })
}

/// The caller's userdata pointer, passed back and never read.
struct Userdata(*mut c_void);

impl Userdata {
    // A method rather than `.0` in the closure: a closure that named the
    // field would capture the bare pointer, which is not Send.
    fn get(&self) -> *mut c_void {
        self.0
    }
}

// SAFETY: wsembed never dereferences the pointer, only passes it back to
// the caller's callback, and the header tells the caller that the callback
// runs on any thread, concurrently: the caller who sets it accepts that
// for the userdata.
unsafe impl Send for Userdata {}
// SAFETY: as above: shared only to be passed back.
unsafe impl Sync for Userdata {}

/// The line as a C string: interior NULs (from a peer's close reason, say)
/// become U+FFFD rather than cut it short.
fn c_text(message: &str) -> CString {
    let mut bytes = Vec::with_capacity(message.len() + 1);
    if message.contains('\0') {
        bytes.extend_from_slice(message.replace('\0', "\u{FFFD}").as_bytes());
    } else {
        bytes.extend_from_slice(message.as_bytes());
    }
    CString::new(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interior_nuls_are_replaced() {
        assert_eq!(c_text("a\0b").to_str().unwrap(), "a\u{FFFD}b");
        assert_eq!(c_text("plain").to_str().unwrap(), "plain");
    }

    #[test]
    fn the_c_levels_are_the_rust_levels() {
        for (c, level) in [
            (WS_LOG_ERROR, Level::Error),
            (WS_LOG_WARN, Level::Warn),
            (WS_LOG_INFO, Level::Info),
            (WS_LOG_DEBUG, Level::Debug),
        ] {
            assert_eq!(Level::from_number(i64::from(c)), Some(level));
            assert_eq!(level as c_int, c);
        }
    }
}
